package rollout

import (
	"fmt"
	"io"
	"slices"
)

// Event types that bound a turn.
const (
	payloadTaskStarted  = "task_started"
	payloadTaskComplete = "task_complete"
	payloadTurnAborted  = "turn_aborted"
)

// TurnStatus says how a turn ended.
type TurnStatus int

// A turn is open until its task_complete (completed) or turn_aborted
// (aborted) event. Codex shows an open turn that a later turn followed as
// "interrupted", and refuses to fork one.
const (
	TurnOpen TurnStatus = iota
	TurnCompleted
	TurnAborted
)

// String returns the status name.
func (s TurnStatus) String() string {
	switch s {
	case TurnOpen:
		return "open"
	case TurnCompleted:
		return "completed"
	case TurnAborted:
		return "aborted"
	}
	return fmt.Sprintf("TurnStatus(%d)", int(s))
}

// Turn is one turn of a thread as its file holds it.
type Turn struct {
	// ID is the turn_id of its task_started and turn_context lines ("" for
	// a task_started of an older Codex that wrote none).
	ID string
	// Offset is the byte offset of its first start line (task_started or
	// turn_context, whichever comes first): a fork before this turn is
	// cut here, so that no trace of the turn is left.
	Offset int64
	// End is the offset just past its task_complete or turn_aborted line
	// (a fork through this turn, Codex's lastTurnId, is cut here); for an
	// open turn, the offset of the next turn's first line, or 0.
	End int64
	// Status says whether and how it ended.
	Status TurnStatus
	// UserMessages is the number of counted user messages in it.
	UserMessages int
}

// TurnTracker folds lines into the thread's turns and its counted user
// messages, with each message's CutOffset set to where a fork before it
// must be cut: before its turn's start lines when it is the first counted
// message of an open turn, else before its own line (a message outside any
// turn, as in item-only histories, or a later message in the same turn).
// Rollback markers remove the last counted messages, as in Counter, and the
// turns that held them. A start or end line nested deeper than
// CodexMaxDepth starts or ends nothing, as Codex skips it. The zero value
// is ready to use.
type TurnTracker struct {
	counter Counter
	turns   []Turn
	open    bool // the last turn is open
}

// Observe folds one line in and returns its classification.
func (t *TurnTracker) Observe(l *Line) Classified {
	if !l.scanned {
		l.scan()
	}
	isStart := (l.Type == TypeEventMsg && l.PayloadType == payloadTaskStarted) || l.Type == TypeTurnContext
	isEnd := l.Type == TypeEventMsg && (l.PayloadType == payloadTaskComplete || l.PayloadType == payloadTurnAborted)
	// A line nested deeper than Codex reads is skipped by Codex.
	if l.Err == nil && !l.TooDeep() && (isStart || isEnd) {
		if turnID, err := l.PayloadTurnID(); err == nil {
			switch {
			case isStart && l.Type == TypeTurnContext && turnID == "":
				// An older turn_context without turn_id: Codex also wrote
				// these mid-turn, so it names no turn.
			case isStart:
				t.start(turnID, l.Offset)
			default:
				t.end(turnID, l.PayloadType, l.End())
			}
		}
	}
	before := len(t.counter.messages)
	cl := t.counter.Observe(l)
	switch cl.Kind {
	case KindUserMessage:
		msg := &t.counter.messages[before]
		if t.open {
			cur := &t.turns[len(t.turns)-1]
			if cur.UserMessages == 0 {
				msg.CutOffset = cur.Offset
			}
			msg.TurnID = cur.ID
			cur.UserMessages++
		}
	case KindRollback:
		t.rollback(cl.RollbackTurns)
	}
	return cl
}

// start notes a start line of turn id at offset. A task_started without
// turn_id (older Codex) always starts a turn.
func (t *TurnTracker) start(id string, offset int64) {
	if n := len(t.turns); n > 0 && t.turns[n-1].ID == id && id != "" {
		return // another start line of the current (or just ended) turn
	}
	if t.open {
		t.turns[len(t.turns)-1].End = offset
	}
	t.turns = append(t.turns, Turn{ID: id, Offset: offset})
	t.open = true
}

// end notes the task_complete or turn_aborted of turn id ("" names the
// open turn) ending at end.
func (t *TurnTracker) end(id, payloadType string, end int64) {
	if !t.open {
		return
	}
	cur := &t.turns[len(t.turns)-1]
	if id != "" && id != cur.ID {
		return
	}
	cur.End = end
	cur.Status = TurnCompleted
	if payloadType == payloadTurnAborted {
		cur.Status = TurnAborted
	}
	t.open = false
}

// rollback drops the turns that held the last k counted user messages
// (already removed from the counter), and every later turn.
func (t *TurnTracker) rollback(k int) {
	for k > 0 && len(t.turns) > 0 {
		last := t.turns[len(t.turns)-1]
		t.turns = t.turns[:len(t.turns)-1]
		k -= last.UserMessages
	}
	t.open = false
}

// Turns returns a copy of the turns so far, in file order.
func (t *TurnTracker) Turns() []Turn { return slices.Clone(t.turns) }

// Messages returns a copy of the counted user messages so far, in order,
// with CutOffset and TurnID set.
func (t *TurnTracker) Messages() []UserMessage { return t.counter.Messages() }

// History is what ScanTurns learns from a whole rollout.
type History struct {
	Turns    []Turn
	Messages []UserMessage
}

// ScanTurns reads a whole rollout stream and returns its turns and counted
// user messages (see TurnTracker).
func ScanTurns(r io.Reader) (History, error) {
	rd := NewReader(r, 0, 0)
	var t TurnTracker
	for rd.Next() {
		t.Observe(rd.Line())
	}
	if err := rd.Err(); err != nil {
		return History{}, fmt.Errorf("scan turns: %w", err)
	}
	return History{Turns: t.Turns(), Messages: t.Messages()}, nil
}

package manager

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/spoolhq/spool/rollout"
	"github.com/spoolhq/spool/rolloutfs"
	"github.com/spoolhq/spool/store"
)

// ErrTurnInProgress reports a turn that has not ended (no task_complete or
// turn_aborted): Codex refuses to fork through such a turn, and so does
// spool.
var ErrTurnInProgress = errors.New("turn is in progress")

// TurnSpan is one Codex turn located in a thread's history: positions are
// positions in the history (see docs/SCHEMA.md, History chains).
type TurnSpan struct {
	// ID is the turn's id.
	ID string `json:"turn_id"`
	// UserMessage is the ordinal of the turn's first counted user message
	// (the k of /turns/{k}); UserMessages how many it holds.
	UserMessage  int `json:"user_message"`
	UserMessages int `json:"user_messages"`
	// Offset is where the turn starts (its first task_started or
	// turn_context line): a fork or revert before the turn is cut here.
	Offset int64 `json:"offset"`
	// End is just past its task_complete or turn_aborted line (a fork
	// through the turn, Codex's lastTurnId, is cut here); for a turn in
	// progress, where the scan stopped: the next turn's start or the end
	// of the history.
	End int64 `json:"end"`
	// Status is "completed", "aborted" or "in_progress".
	Status string `json:"status"`

	lines int64 // lines of the holding file before End (for copy forks)
}

// Turn returns the Codex turn turnID of thread id: where it starts and
// ends in the thread's history and whether it ended. It reads only the
// turn's own lines, from the indexed offset of its first user message. An
// unknown turn id fails with an error wrapping ErrNotFound.
func (m *Manager) Turn(ctx context.Context, id, turnID string) (TurnSpan, error) {
	if err := m.begin(); err != nil {
		return TurnSpan{}, err
	}
	defer m.ops.Done()
	id, err := parseID("find turn of", id)
	if err != nil {
		return TurnSpan{}, err
	}
	row, src, err := m.openRead(ctx, id)
	if err != nil {
		return TurnSpan{}, threadErr(id, err, "find turn")
	}
	defer src.Close()
	span, err := m.turnSpan(ctx, row, src, turnID)
	if err != nil {
		return TurnSpan{}, threadErr(id, err, "find turn")
	}
	return span, nil
}

// ReadTurnByID returns the lines of Codex turn turnID of thread id, from
// its start (TurnSpan.Offset) to its end (TurnSpan.End), and the span.
// The caller closes the reader.
func (m *Manager) ReadTurnByID(ctx context.Context, id, turnID string) (io.ReadCloser, TurnSpan, error) {
	if err := m.begin(); err != nil {
		return nil, TurnSpan{}, err
	}
	defer m.ops.Done()
	id, err := parseID("read turn of", id)
	if err != nil {
		return nil, TurnSpan{}, err
	}
	row, src, err := m.openRead(ctx, id)
	if err != nil {
		return nil, TurnSpan{}, threadErr(id, err, "read turn %q", turnID)
	}
	span, err := m.turnSpan(ctx, row, src, turnID)
	if err != nil {
		src.Close()
		return nil, TurnSpan{}, threadErr(id, err, "read turn of") // err names the turn
	}
	return &history{SectionReader: io.NewSectionReader(src, span.Offset, span.End-span.Offset), f: src}, span, nil
}

// turnSpan locates turn turnID in src, the history of row: it starts at
// the cut of the turn's first counted user message and runs the turn
// tracker over the turn's lines until the turn ends or the next begins.
// Its errors about the turn (unknown, past the history) name it, not the
// thread.
func (m *Manager) turnSpan(ctx context.Context, row store.Thread, src rolloutfs.ReadFile, turnID string) (TurnSpan, error) {
	if turnID == "" {
		return TurnSpan{}, fmt.Errorf("%w: empty turn id", ErrInvalidArgument)
	}
	msg, err := m.store.UserMessageOfTurn(ctx, row.ID, turnID)
	if errors.Is(err, store.ErrNotFound) {
		// A turn without a counted user message of its own (a shell
		// command's, an aborted goal's) is not in the index: read for it.
		size := row.HistorySize()
		at, err := findTurn(ctx, src, size, turnID)
		if err != nil {
			return TurnSpan{}, err
		}
		return ScanTurn(ctx, io.NewSectionReader(src, at.Offset, size-at.Offset), turnID, at.UserMessage, at.Offset, at.Line)
	}
	if err != nil {
		return TurnSpan{}, err // names the turn and wraps ErrNotFound
	}
	start, size := msg.Cut(), row.HistorySize()
	if start > size {
		return TurnSpan{}, fmt.Errorf("turn %q starts at %d, past the history's end %d: %w", turnID, start, size, ErrBrokenChain)
	}
	// The turn's start lines before the message are not counted lines of
	// their own; the line count at start comes from the message's.
	lines, err := linesBefore(src, start, msg)
	if err != nil {
		return TurnSpan{}, fmt.Errorf("turn %q: %w", turnID, err)
	}
	return ScanTurn(ctx, io.NewSectionReader(src, start, size-start), turnID, msg.Ordinal, start, lines)
}

// ScanTurn reads Codex turn turnID from r, a history read from position
// start (the Cut of the turn's first counted user message, ordinal
// userMessage, whose line number is lines) to its end, up to where the turn
// ends or the next begins, and returns its span. Every backend locates a
// turn this way, from its first message.
func ScanTurn(ctx context.Context, r io.Reader, turnID string, userMessage int, start, lines int64) (TurnSpan, error) {
	span := TurnSpan{ID: turnID, UserMessage: userMessage, Offset: start, Status: "in_progress"}
	rd := rollout.NewReader(r, start, lines)
	var tr rollout.TurnTracker
	for rd.Next() {
		l := rd.Line()
		if l.Number%ctxCheckLines == 0 {
			if err := ctx.Err(); err != nil {
				return TurnSpan{}, err
			}
		}
		tr.Observe(l)
		if l.Type != rollout.TypeEventMsg {
			continue
		}
		turns := tr.Turns()
		if len(turns) == 0 {
			continue
		}
		if len(turns) > 1 || turns[0].ID != turnID {
			// The next turn began (or the turn had no start line of its
			// own): the turn never ended.
			span.End, span.lines = l.Offset, l.Number
			span.UserMessages = turns[0].UserMessages
			return span, nil
		}
		if t := turns[0]; t.Status != rollout.TurnOpen {
			span.End, span.lines = t.End, l.Number+1
			span.UserMessages = t.UserMessages
			span.Status = "completed"
			if t.Status == rollout.TurnAborted {
				span.Status = "aborted"
			}
			return span, nil
		}
	}
	if err := rd.Err(); err != nil {
		return TurnSpan{}, fmt.Errorf("read turn %q: %w", turnID, err)
	}
	span.End, span.lines = rd.End()
	span.UserMessages = len(tr.Messages())
	return span, nil
}

// TurnStart is where FindTurn found a turn: its first start line's
// offset and line number in the history, and how many counted user
// messages come before it.
type TurnStart struct {
	Offset      int64
	Line        int64
	UserMessage int
}

// FindTurn reads a whole history, r from its start, for Codex turn
// turnID as Codex shows it (rolled back turns are gone), and says where
// it starts. It is how a turn without a counted user message of its own
// is found (a shell command's or an aborted goal's: the index knows turns
// by their messages); it reads the whole history. ScanTurn from the start
// gives the span. An unknown turn fails with an error wrapping
// ErrNotFound.
func FindTurn(ctx context.Context, r io.Reader, turnID string) (TurnStart, error) {
	rd := rollout.NewReader(r, 0, 0)
	var tr rollout.TurnTracker
	lineOf := map[int64]int64{} // start lines of turns named turnID: offset to line number
	for rd.Next() {
		l := rd.Line()
		if l.Number%ctxCheckLines == 0 {
			if err := ctx.Err(); err != nil {
				return TurnStart{}, err
			}
		}
		tr.Observe(l)
		if (l.Type == rollout.TypeTurnContext || l.Type == rollout.TypeEventMsg && l.PayloadType == "task_started") && l.Err == nil {
			if id, err := l.PayloadTurnID(); err == nil && id == turnID {
				lineOf[l.Offset] = l.Number
			}
		}
	}
	if err := rd.Err(); err != nil {
		return TurnStart{}, fmt.Errorf("find turn %q: %w", turnID, err)
	}
	for _, t := range tr.Turns() {
		if t.ID != turnID {
			continue
		}
		at := TurnStart{Offset: t.Offset, Line: lineOf[t.Offset]}
		for _, msg := range tr.Messages() {
			if msg.Offset < t.Offset {
				at.UserMessage++
			}
		}
		return at, nil
	}
	return TurnStart{}, fmt.Errorf("turn %q: %w", turnID, ErrNotFound)
}

// ctxCheckLines is how many lines a turn scan reads between context checks.
const ctxCheckLines = 256

// throughTurn returns the fork cut that keeps thread row's history through
// the end of turn turnID (Codex's lastTurnId). A turn that has not ended
// fails with ErrTurnInProgress, an unknown one with ErrNotFound.
func (m *Manager) throughTurn(ctx context.Context, row store.Thread, src rolloutfs.ReadFile, turnID string) (forkCut, error) {
	span, err := m.turnSpan(ctx, row, src, turnID)
	if err != nil {
		return forkCut{}, err
	}
	if span.Status == "in_progress" {
		return forkCut{}, fmt.Errorf("turn %q: %w", turnID, ErrTurnInProgress)
	}
	kept := span.UserMessage + span.UserMessages
	before := kept
	if kept >= row.UserMessageCount {
		before = -1
	}
	return forkCut{before: before, offset: span.End, kept: kept, lines: span.lines}, nil
}

// beforeTurn returns the fork cut before turn turnID of thread row, one
// that holds no counted user message of its own (the index has none of
// it; Fork cuts before the others' first message): at the turn's start,
// found by reading the history. An unknown turn fails with ErrNotFound.
func (m *Manager) beforeTurn(ctx context.Context, row store.Thread, src rolloutfs.ReadFile, turnID string) (forkCut, error) {
	at, err := findTurn(ctx, src, row.HistorySize(), turnID)
	if err != nil {
		return forkCut{}, err
	}
	before := at.UserMessage
	if before >= row.UserMessageCount {
		before = -1
	}
	return forkCut{before: before, offset: at.Offset, kept: at.UserMessage, lines: at.Line}, nil
}

// errTurnRequest is returned for a fork naming its point more than once.
func errTurnRequest(id string) error {
	return fmt.Errorf("fork %s: %w: give one of before_user_message, before_turn_id and last_turn_id", id, ErrInvalidArgument)
}

// findTurn is FindTurn over the first size bytes of src. An id of plain
// characters that the history never holds as a JSON string is answered
// by a byte search, without parsing the history: a mistyped or guessed id
// costs a read at memory speed, not a parse of every line.
func findTurn(ctx context.Context, src io.ReaderAt, size int64, turnID string) (TurnStart, error) {
	if plainTurnID(turnID) {
		found, err := holds(ctx, io.NewSectionReader(src, 0, size), []byte(`"`+turnID+`"`))
		if err != nil {
			return TurnStart{}, err
		}
		if !found {
			return TurnStart{}, fmt.Errorf("turn %q: %w", turnID, ErrNotFound)
		}
	}
	return FindTurn(ctx, io.NewSectionReader(src, 0, size), turnID)
}

// plainTurnID reports whether id is made of characters that every JSON
// encoder writes as they are (so the id's quoted bytes are in any line
// that names it).
func plainTurnID(id string) bool {
	for _, c := range []byte(id) {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.' || c == ':') {
			return false
		}
	}
	return id != ""
}

// holdsChunk is how much holds reads at a time.
const holdsChunk = 1 << 20

// holds reports whether r, read to its end, holds needle.
func holds(ctx context.Context, r io.Reader, needle []byte) (bool, error) {
	buf := make([]byte, holdsChunk+len(needle))
	kept := 0 // bytes carried over from the last chunk: a match may straddle chunks
	for {
		if err := ctx.Err(); err != nil {
			return false, err
		}
		n, err := io.ReadFull(r, buf[kept:])
		if bytes.Contains(buf[:kept+n], needle) {
			return true, nil
		}
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			return false, nil
		}
		if err != nil {
			return false, err
		}
		kept = copy(buf, buf[kept+n-(len(needle)-1):kept+n])
	}
}

package rollout

import (
	"errors"
	"fmt"
	"strconv"
	"time"
	"unicode/utf8"
)

// ErrInvalidTurn reports a TurnSpec that RenderTurn cannot write.
var ErrInvalidTurn = errors.New("rollout: invalid turn")

// TurnSpec is one complete user turn to render: a prompt and its answer.
type TurnSpec struct {
	ThreadID  string    // the thread's id (item_completed events name it)
	TurnID    string    // the turn's id, unique in the thread
	UserText  string    // the prompt
	AgentText string    // the answer
	Cwd       string    // turn_context cwd
	Model     string    // turn_context model
	Started   time.Time // task_started and the lines up to the answer
	Completed time.Time // the answer and task_complete
	// UserItemID and AgentItemID are the ids of the item_completed items
	// of a paginated turn; Codex shows them as the turn's item ids.
	UserItemID, AgentItemID string
}

// RenderTurn returns the lines (each ending in a newline) of one complete
// user turn as Codex 0.169 writes them, in its order: task_started,
// turn_context, the response_item user message, its echo (event_msg
// user_message in a legacy thread, item_completed UserMessage in a
// paginated one), the answer's echo (agent_message, or item_completed
// AgentMessage), the answer response_item, task_complete. Codex's context
// messages, world_state and token accounting lines are not written. In a
// paginated thread every line carries a top-level ordinal counted from
// firstOrdinal. The compat test TestRenderTurnMatchesCodex compares this
// with a turn Codex 0.169 ran. next is the
// ordinal after the last line (firstOrdinal for a legacy thread). The
// rendered prompt is a counted user message unless its text is context
// (see Classify). Errors wrap ErrInvalidTurn, ErrUnknownHistoryMode,
// ErrInvalidID or ErrInvalidUTF8 (text is never silently replaced).
func RenderTurn(mode HistoryMode, firstOrdinal int64, t TurnSpec) (lines []byte, next int64, err error) {
	mode, err = ParseHistoryMode(string(mode))
	if err != nil {
		return nil, 0, fmt.Errorf("render turn: %w", err)
	}
	threadID, err := ParseID(t.ThreadID)
	if err != nil {
		return nil, 0, fmt.Errorf("render turn thread: %w", err)
	}
	if t.TurnID == "" || t.Started.IsZero() || t.Completed.IsZero() {
		return nil, 0, fmt.Errorf("render turn %q of %s: %w: turn id, start and completion are required", t.TurnID, threadID, ErrInvalidTurn)
	}
	for _, field := range [...]string{t.TurnID, t.UserText, t.AgentText, t.Cwd, t.Model, t.UserItemID, t.AgentItemID} {
		if !utf8.ValidString(field) {
			return nil, 0, fmt.Errorf("render turn of %s: %w", threadID, ErrInvalidUTF8)
		}
	}
	if firstOrdinal < 0 {
		return nil, 0, fmt.Errorf("render turn %s of %s: first ordinal %d: %w", t.TurnID, threadID, firstOrdinal, ErrInvalidOrdinal)
	}
	paginated := mode == HistoryPaginated
	if paginated && (t.UserItemID == "" || t.AgentItemID == "") {
		return nil, 0, fmt.Errorf("render turn %s of %s: %w: a paginated turn needs item ids", t.TurnID, threadID, ErrInvalidTurn)
	}
	// The prompt is in two lines, the answer in three.
	r := newTurnRenderer(firstOrdinal, paginated, 2*len(t.UserText)+3*len(t.AgentText)+4096)
	started, completed := FormatTimestamp(t.Started), FormatTimestamp(t.Completed)
	r.add(started, TypeEventMsg, map[string]any{
		"type": payloadTaskStarted, "turn_id": t.TurnID,
		"started_at": t.Started.Unix(), "model_context_window": nil, "collaboration_mode_kind": "default",
	})
	r.add(started, TypeTurnContext, map[string]any{
		"turn_id": t.TurnID, "cwd": t.Cwd, "approval_policy": "never",
		"sandbox_policy": map[string]string{"type": "read-only"}, "model": t.Model, "summary": "auto",
	})
	r.add(started, TypeResponseItem, map[string]any{
		"type": payloadMessage, "role": roleUser,
		"content": []map[string]string{{"type": contentInputText, "text": t.UserText}},
	})
	if paginated {
		r.add(started, TypeEventMsg, map[string]any{
			"type": "item_completed", "thread_id": threadID, "turn_id": t.TurnID,
			"item": map[string]any{"type": "UserMessage", "id": t.UserItemID,
				"content": []map[string]any{{"type": "text", "text": t.UserText, "text_elements": []any{}}}},
			"started_at_ms": t.Started.UnixMilli(), "completed_at_ms": t.Started.UnixMilli(),
		})
	} else {
		r.add(started, TypeEventMsg, map[string]any{
			"type": "user_message", "message": t.UserText, "images": []any{}, "local_images": []any{}, "text_elements": []any{},
		})
		r.add(completed, TypeEventMsg, map[string]any{"type": "agent_message", "message": t.AgentText})
	}
	if paginated {
		r.add(completed, TypeEventMsg, map[string]any{
			"type": "item_completed", "thread_id": threadID, "turn_id": t.TurnID,
			"item": map[string]any{"type": "AgentMessage", "id": t.AgentItemID,
				"content": []map[string]string{{"type": "Text", "text": t.AgentText}}},
			"started_at_ms": t.Completed.UnixMilli(), "completed_at_ms": t.Completed.UnixMilli(),
		})
	}
	r.add(completed, TypeResponseItem, map[string]any{
		"type": payloadMessage, "role": "assistant",
		"content": []map[string]string{{"type": contentOutputText, "text": t.AgentText}},
	})
	r.add(completed, TypeEventMsg, map[string]any{
		"type": payloadTaskComplete, "turn_id": t.TurnID, "last_agent_message": t.AgentText,
		"started_at": t.Started.Unix(), "completed_at": t.Completed.Unix(),
		"duration_ms": t.Completed.Sub(t.Started).Milliseconds(),
	})
	if r.err != nil {
		return nil, 0, fmt.Errorf("render turn %s of %s: %w", t.TurnID, threadID, r.err)
	}
	return r.buf, r.ordinal, nil
}

// turnRenderer writes a turn's lines into buf: each is the line
// EncodeItem makes of its timestamp, type and payload as encoding/json
// marshals it, with WithOrdinal's ordinal in a paginated thread, written
// in place (appendJSON): the prompt and the answer are copied into buf
// once for each line that carries them, and nowhere else.
type turnRenderer struct {
	buf       []byte
	ordinal   int64
	paginated bool
	err       error
}

func newTurnRenderer(firstOrdinal int64, paginated bool, capacity int) *turnRenderer {
	return &turnRenderer{buf: make([]byte, 0, capacity), ordinal: firstOrdinal, paginated: paginated}
}

func (r *turnRenderer) add(ts, typ string, payload map[string]any) {
	if r.err != nil {
		return
	}
	start := len(r.buf)
	r.buf = append(r.buf, `{"timestamp":`...)
	r.buf = appendString(r.buf, ts)
	if r.paginated {
		r.buf = append(r.buf, `,"ordinal":`...)
		r.buf = strconv.AppendInt(r.buf, r.ordinal, 10)
		r.ordinal++
	}
	r.buf = append(r.buf, `,"type":`...)
	r.buf = appendString(r.buf, typ)
	r.buf = append(r.buf, `,"payload":`...)
	var err error
	if r.buf, err = appendJSON(r.buf, payload); err != nil {
		r.err = err
		return
	}
	r.buf = append(r.buf, '}', '\n')
	if n := len(r.buf) - start - 1; n > MaxLineSize {
		r.err = fmt.Errorf("encode %s item: %w: %d bytes", typ, ErrLineTooLong, n)
	}
}

package manager

import (
	"bytes"
	"context"
	"fmt"

	"github.com/google/uuid"

	"github.com/spoolhq/spool/rollout"
	"github.com/spoolhq/spool/store"
)

// TurnOptions describe one complete user turn to append: a prompt and the
// answer to it.
type TurnOptions struct {
	Prompt string
	Answer string
	// TurnID is the turn's id; a new UUID when empty.
	TurnID string
	// Model is the turn_context model; "spool" when empty.
	Model string
	// Safe holds the append's preconditions, as for AppendWith: the
	// thread's expected size, and an idempotency key naming the turn (a
	// retry with the same options writes nothing and answers as the
	// first; with others it fails with ErrIdempotencyKeyReused).
	Safe AppendOptions
}

// AppendTurn appends one complete user turn as Codex 0.169 writes one
// (rollout.RenderTurn: task_started, turn_context, the user message and
// its echo, the answer, task_complete; item_completed events and ordinals
// in a paginated thread), so that Codex lists the thread, previews it and
// shows it turn by turn. A prompt appended as a bare response_item is a
// counted user message to spool but makes no turn in Codex. An empty
// prompt fails with ErrInvalidArgument, as the HTTP API refuses it.
func (m *Manager) AppendTurn(ctx context.Context, id string, o TurnOptions) (AppendResult, error) {
	id, err := parseID("append a turn to", id)
	if err != nil {
		return AppendResult{}, err
	}
	if o.Prompt == "" {
		return AppendResult{}, fmt.Errorf("append a turn to %s: %w: the prompt is empty", id, ErrInvalidArgument)
	}
	turnID := o.TurnID
	if turnID == "" {
		turnID = uuid.NewString()
	}
	model := o.Model
	if model == "" {
		model = "spool"
	}
	safe := o.Safe
	if safe.IdempotencyKey != "" {
		safe.fingerprint = fingerprintTurn(o)
	}
	return m.appendRendered(ctx, id, safe, func(row store.Thread) ([][]byte, error) {
		now := m.now()
		data, _, err := rollout.RenderTurn(rollout.HistoryMode(row.HistoryMode), row.NextOrdinal, rollout.TurnSpec{
			ThreadID: row.ID, TurnID: turnID, UserText: o.Prompt, AgentText: o.Answer,
			Cwd: row.Cwd, Model: model, Started: now, Completed: now,
			UserItemID: uuid.NewString(), AgentItemID: uuid.NewString(),
		})
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrInvalidItem, err)
		}
		return splitLines(data), nil
	})
}

// splitLines returns the lines of data, each with its newline, as slices
// of data that keep its capacity (bytes.SplitAfter caps each), so that the
// Appender sees them lie one after the other and writes data as it is.
func splitLines(data []byte) [][]byte {
	var lines [][]byte
	for start := 0; start < len(data); {
		end := len(data)
		if i := bytes.IndexByte(data[start:], '\n'); i >= 0 {
			end = start + i + 1
		}
		lines = append(lines, data[start:end])
		start = end
	}
	return lines
}

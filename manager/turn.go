package manager

import (
	"bytes"
	"context"
	"errors"
	"fmt"

	"github.com/google/uuid"

	"github.com/spoolhq/spool/rollout"
	"github.com/spoolhq/spool/store"
)

// ErrTurnExists refuses a turn whose given id names a turn with a user
// message in the thread's history already (inherited ones included):
// Codex finds a turn by its id, so a second one of that id could not be
// forked at or read by id. A turn without one (a shell command's) is not
// looked for: only a read of the whole history would find it.
var ErrTurnExists = errors.New("turn id is in the thread's history already")

// TurnOptions describe one complete user turn to append: a prompt and the
// answer to it.
type TurnOptions struct {
	Prompt string
	Answer string
	// TurnID is the turn's id; a new UUID when empty. One that names a
	// turn with a user message in the history is refused (ErrTurnExists).
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
// prompt fails with ErrInvalidArgument, as the HTTP API refuses it; a
// TurnID of a turn with a user message in the history, with
// ErrTurnExists (after an idempotency key's replay, which answers as the
// first).
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
		if o.TurnID != "" {
			if err := m.refuseKnownTurn(ctx, row.ID, o.TurnID); err != nil {
				return nil, err
			}
		}
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

// refuseKnownTurn fails with ErrTurnExists when the history of thread id
// holds turn turnID with a user message. The caller holds the thread's
// writer lock, with the lines of any other writer indexed.
func (m *Manager) refuseKnownTurn(ctx context.Context, id, turnID string) error {
	_, err := m.store.UserMessageOfTurn(ctx, id, turnID)
	switch {
	case err == nil:
		return fmt.Errorf("%w: %q", ErrTurnExists, turnID)
	case errors.Is(err, store.ErrNotFound):
		return nil
	}
	return err
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

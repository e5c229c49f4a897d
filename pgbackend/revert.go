package pgbackend

import (
	"context"
	"errors"
	"fmt"

	"github.com/spoolhq/spool/manager"
	"github.com/spoolhq/spool/pgstore"
	"github.com/spoolhq/spool/rollout"
)

var _ manager.Reverter = (*Backend)(nil)

// Revert cuts paginated thread id back before a Codex turn or user
// message, with the local backend's semantics (manager.Manager.Revert):
// the thread's history becomes its history before the cut and a new
// session_meta line whose history_base names the thread itself and the
// cut, and what is appended next is numbered on from the cut. It is one
// transaction under the thread's row lock (pgstore.Store.Revert); nothing
// is copied.
//
// A legacy thread, no cut or two, and a cut inside the history the thread
// inherits from another thread fail with ErrInvalidArgument; an unknown
// turn with ErrNotFound; a user message out of range with an
// *OutOfRangeError; an archived thread with ErrArchived; reference forks
// that continue the history past the cut with a *ReferencedError.
func (b *Backend) Revert(ctx context.Context, id string, o manager.RevertOptions) (manager.Thread, error) {
	pid, err := rollout.ParseID(id)
	if err != nil {
		return manager.Thread{}, fmt.Errorf("revert %q: %w", id, err)
	}
	if err := o.Check(); err != nil {
		return manager.Thread{}, fmt.Errorf("revert %s: %w", pid, err)
	}
	r := pgstore.Revert{ID: pid, TurnID: o.BeforeTurnID}
	if o.BeforeUserMessage != nil {
		r.BeforeUserMessage = *o.BeforeUserMessage
	}
	t, err := b.store.Revert(ctx, r)
	if errors.Is(err, pgstore.ErrTurnNotFound) {
		// A turn without a counted user message of its own: cut at its
		// start, found by reading the history (turnSpan), in the era it
		// was read in; found again if the thread changed meanwhile.
		t, err = retryChanged(func() (pgstore.Thread, error) {
			at, err := b.revertAtTurn(ctx, r)
			if err != nil {
				return pgstore.Thread{}, err
			}
			return b.store.Revert(ctx, at)
		})
	}
	if errors.Is(err, pgstore.ErrOutOfRange) {
		th, gerr := b.Get(ctx, pid)
		if gerr != nil {
			return manager.Thread{}, gerr
		}
		return manager.Thread{}, &manager.OutOfRangeError{ID: pid, Requested: r.BeforeUserMessage, Count: th.UserMessageCount}
	}
	if err != nil {
		return manager.Thread{}, b.mapErr(err)
	}
	return threadOf(t), nil
}

// revertAtTurn returns r cutting at the start of turn r.TurnID, one that
// holds no counted user message of its own, found in the history as the
// thread stands now.
func (b *Backend) revertAtTurn(ctx context.Context, r pgstore.Revert) (pgstore.Revert, error) {
	row, err := b.store.Get(ctx, r.ID)
	if err != nil {
		return r, err
	}
	era := row.Era()
	span, err := b.turnSpan(ctx, threadOf(row), era, r.TurnID)
	if err != nil {
		return r, err
	}
	r.TurnID, r.At, r.Era = "", &pgstore.Cut{Offset: span.Offset, Messages: span.UserMessage}, &era
	return r, nil
}

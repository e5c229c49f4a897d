package pgbackend

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/spoolhq/spool/manager"
	"github.com/spoolhq/spool/pgstore"
	"github.com/spoolhq/spool/rollout"
)

var _ manager.TurnReader = (*Backend)(nil)

// ReadTurnByID returns the lines of Codex turn turnID of thread id, from
// its start (TurnSpan.Offset) to its end (TurnSpan.End), and the span, as
// the local backend does: the turn is found through the user message that
// opens it (its own or inherited through the base chain), and only its own
// lines are read. The caller closes the reader.
func (b *Backend) ReadTurnByID(ctx context.Context, id, turnID string) (io.ReadCloser, manager.TurnSpan, error) {
	pid, err := rollout.ParseID(id)
	if err != nil {
		return nil, manager.TurnSpan{}, fmt.Errorf("read turn of %q: %w", id, err)
	}
	type found struct {
		rc   io.ReadCloser
		span manager.TurnSpan
	}
	f, err := retryChanged(func() (found, error) {
		row, err := b.row(ctx, pid)
		if err != nil {
			return found{}, err
		}
		span, err := b.turnSpan(ctx, threadOf(row), row.Era(), turnID)
		if err != nil {
			return found{}, fmt.Errorf("read turn: %w", err)
		}
		rc, _, err := b.store.OpenHistoryIn(ctx, row.ID, row.Era(), span.Offset, span.End)
		if err != nil {
			return found{}, b.mapErr(err)
		}
		return found{mappedReader{rc, b}, span}, nil
	})
	return f.rc, f.span, err
}

// turnSpan locates turn turnID in t's history, in era: from the cut of
// the turn's first user message, the turn's lines are read until it ends
// or the next one begins (manager.ScanTurn, as the local backend does). A
// thread reverted meanwhile fails with pgstore.ErrChanged.
func (b *Backend) turnSpan(ctx context.Context, t manager.Thread, era pgstore.Era, turnID string) (manager.TurnSpan, error) {
	if turnID == "" {
		return manager.TurnSpan{}, fmt.Errorf("%w: empty turn id", manager.ErrInvalidArgument)
	}
	msg, err := b.store.UserMessageOfTurn(ctx, t.ID, turnID)
	if errors.Is(err, pgstore.ErrTurnNotFound) {
		// A turn without a counted user message of its own is not in the
		// index: read for it (manager.FindTurn), as the local backend does.
		return b.findTurn(ctx, t, era, turnID)
	}
	if err != nil {
		return manager.TurnSpan{}, b.mapErr(err)
	}
	start, size := msg.Cut(), t.HistorySize()
	if start > size {
		return manager.TurnSpan{}, fmt.Errorf("turn %q of %s starts at %d, past the history's end %d: %w", turnID, t.ID, start, size, manager.ErrBrokenChain)
	}
	rc, _, err := b.store.OpenHistoryIn(ctx, t.ID, era, start, size)
	if err != nil {
		return manager.TurnSpan{}, b.mapErr(err)
	}
	defer rc.Close()
	span, err := manager.ScanTurn(ctx, rc, turnID, msg.Ordinal, start, 0)
	if err != nil {
		return manager.TurnSpan{}, fmt.Errorf("turn %q of %s: %w", turnID, t.ID, err)
	}
	return span, nil
}

// findTurn locates turn turnID, one without a counted user message of its
// own, by reading t's history in era for it (manager.FindTurn).
func (b *Backend) findTurn(ctx context.Context, t manager.Thread, era pgstore.Era, turnID string) (manager.TurnSpan, error) {
	size := t.HistorySize()
	rc, _, err := b.store.OpenHistoryIn(ctx, t.ID, era, 0, size)
	if err != nil {
		return manager.TurnSpan{}, b.mapErr(err)
	}
	at, err := manager.FindTurn(ctx, rc, turnID)
	rc.Close()
	if err != nil {
		return manager.TurnSpan{}, fmt.Errorf("turn %q of %s: %w", turnID, t.ID, err)
	}
	if rc, _, err = b.store.OpenHistoryIn(ctx, t.ID, era, at.Offset, size); err != nil {
		return manager.TurnSpan{}, b.mapErr(err)
	}
	defer rc.Close()
	span, err := manager.ScanTurn(ctx, rc, turnID, at.UserMessage, at.Offset, 0)
	if err != nil {
		return manager.TurnSpan{}, fmt.Errorf("turn %q of %s: %w", turnID, t.ID, err)
	}
	return span, nil
}

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

var _ manager.Purger = (*Backend)(nil)

// Purge deletes thread id as Delete does, also when other threads' history
// continues it (reference forks, where Delete fails with ErrReferenced),
// with the local backend's semantics (manager.Manager.Purge): first every
// thread whose history passes through id's bytes is made self-contained,
// deepest first and each in one transaction: it keeps its id, name, parent,
// ancestry and archive state and reads the same lines as before, its own
// meta (without history_base) and its ancestors' metas first (the layout
// of spool transfer's export). Then id's row, bytes and search rows are
// removed, and the objects of its segments, and of the segments the
// rewritten threads no longer use, are deleted.
//
// A failure stops the purge: the threads made self-contained so far stay
// so, the others and id are unchanged. Purge may be called again.
func (b *Backend) Purge(ctx context.Context, id string) error {
	pid, err := rollout.ParseID(id)
	if err != nil {
		return fmt.Errorf("purge %q: %w", id, err)
	}
	for attempt := 0; ; attempt++ {
		dependents, err := b.dependents(ctx, pid)
		if err != nil {
			return fmt.Errorf("purge: %w", err)
		}
		for _, d := range dependents {
			if err := b.makeSelfContained(ctx, d); err != nil {
				return fmt.Errorf("purge %s: make %s self-contained: %w", pid, d, err)
			}
		}
		err = b.store.Purge(ctx, pid)
		// A reference fork made meanwhile refers to id again: once more.
		if errors.Is(err, pgstore.ErrReferenced) && attempt < 3 {
			continue
		}
		return mapErr(err)
	}
}

// dependents returns the threads whose history passes through thread id's
// bytes, each after every thread that refers to it (manager.Dependents).
func (b *Backend) dependents(ctx context.Context, id string) ([]string, error) {
	if _, err := b.store.Get(ctx, id); err != nil {
		return nil, mapErr(err)
	}
	return manager.Dependents(ctx, id, b.store.Referrers)
}

// makeSelfContained rewrites thread id, a reference fork, as a
// self-contained history, reading it again when it changed meanwhile
// (retryChanged). The history is streamed from one read of it into the
// rewrite, never whole in memory.
func (b *Backend) makeSelfContained(ctx context.Context, id string) error {
	_, err := retryChanged(func() (struct{}, error) { return struct{}{}, b.rewriteSelfContained(ctx, id) })
	return err
}

// rewriteSelfContained is one attempt of makeSelfContained: it fails with
// pgstore.ErrChanged when the thread was appended to after it was read.
func (b *Backend) rewriteSelfContained(ctx context.Context, id string) error {
	t, err := b.Get(ctx, id)
	if err != nil || t.BaseID == "" {
		return err
	}
	at, meta, metas, err := manager.SelfContainedMetas(ctx, b, t)
	if err != nil {
		return fmt.Errorf("self-contained history of %s: %w", t.ID, err)
	}
	rc, end, err := b.store.OpenHistory(ctx, id, 0, -1)
	if err != nil {
		return mapErr(err)
	}
	if end < t.BaseSize {
		rc.Close()
		return fmt.Errorf("history of %s: %d bytes, its base keeps %d", id, end, t.BaseSize)
	}
	content := io.Reader(rc)
	if at > 0 { // else its history starts with its own meta already
		content = rollout.SelfContained(rc, at, meta, metas)
	}
	if t.HistoryMode == string(rollout.HistoryPaginated) {
		content = rollout.Renumbered(0, content)
	}
	err = b.store.MakeSelfContained(ctx, id, pgstore.Was{BaseID: t.BaseID, Size: end - t.BaseSize}, content)
	rc.Close()
	return mapErr(err)
}

package pgbackend

import (
	"bufio"
	"bytes"
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
		err := b.purgeOnce(ctx, pid)
		// A reference fork made meanwhile refers to id, or to a thread
		// about to be made self-contained: once more, with it.
		if errors.Is(err, manager.ErrReferenced) && attempt < 3 {
			continue
		}
		return err
	}
}

// purgeOnce is one attempt of Purge; a reference fork made since it found
// the threads to make self-contained fails it with manager.ErrReferenced.
func (b *Backend) purgeOnce(ctx context.Context, pid string) error {
	dependents, err := b.dependents(ctx, pid)
	if err != nil {
		return fmt.Errorf("purge: %w", err)
	}
	if afterDependents != nil {
		afterDependents(pid)
	}
	for _, d := range dependents {
		err := b.makeSelfContained(ctx, d)
		if errors.Is(err, manager.ErrNotFound) {
			// Deleted since it was found: nothing of it to rewrite.
			if _, gerr := b.store.Get(ctx, d); errors.Is(gerr, pgstore.ErrNotFound) {
				continue
			}
		}
		if err != nil {
			return fmt.Errorf("purge %s: make %s self-contained: %w", pid, d, err)
		}
	}
	return b.mapErr(b.store.Purge(ctx, pid))
}

// afterDependents, when set (by tests), is called after Purge found the
// threads that continue id's history.
var afterDependents func(id string)

// dependents returns the threads whose history passes through thread id's
// bytes, each after every thread that refers to it (manager.Dependents).
func (b *Backend) dependents(ctx context.Context, id string) ([]string, error) {
	if _, err := b.store.Get(ctx, id); err != nil {
		return nil, b.mapErr(err)
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
// pgstore.ErrChanged when the thread was appended to or reverted after it
// was read.
func (b *Backend) rewriteSelfContained(ctx context.Context, id string) error {
	row, err := b.row(ctx, id)
	if err != nil || row.BaseID == "" {
		return err
	}
	t, era := threadOf(row), row.Era()
	at, meta, metas, err := manager.SelfContainedMetas(ctx, b, t)
	if err == nil && at > 0 {
		meta, err = b.withCopiedLines(ctx, t.ID, era, at, meta, metas)
	}
	if err != nil {
		return fmt.Errorf("self-contained history of %s: %w", t.ID, err)
	}
	rc, end, err := b.store.OpenHistoryIn(ctx, id, era, 0, -1)
	if err != nil {
		return b.mapErr(err)
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
	return b.mapErr(err)
}

// withCopiedLines returns meta, the own meta line (without history_base)
// that thread id's self-contained history starts with, with its fork
// point's CopiedLines set to how many of the lines after it are copies,
// as a copy fork's meta says (and the local backend's purge writes): the
// ancestors' metas laid out after it, then what the thread's own part,
// at position at of its history in era, continues (a reference fork's
// inheritance), or else the lines that part was made with (a copy fork's,
// counted by line or cut by its parent offset). An export then tells its
// copies from its own user messages, which a target would otherwise find
// again in the threads they copy. A meta without a fork point is returned
// as it is.
func (b *Backend) withCopiedLines(ctx context.Context, id string, era pgstore.Era, at int64, meta, metas []byte) ([]byte, error) {
	if m, err := rollout.ParseSessionMeta(meta); err != nil || m.ForkPoint == nil {
		return meta, err
	}
	rc, _, err := b.store.OpenHistoryIn(ctx, id, era, at, -1)
	if err != nil {
		return nil, b.mapErr(err)
	}
	own, err := rollout.ReadLine(nil, bufio.NewReader(rc))
	rc.Close()
	if err != nil {
		return nil, fmt.Errorf("its own meta: %w", b.mapErr(err))
	}
	old, err := rollout.ParseSessionMeta(own)
	if err != nil || old.ForkPoint == nil {
		return meta, err
	}
	fp := *old.ForkPoint
	switch start := at + int64(len(own)); {
	case old.HistoryBase != nil:
		fp.CopiedLines, err = b.linesIn(ctx, id, era, 0, at, metas)
	case fp.CopiedLines == 0:
		fp.CopiedLines, err = b.linesIn(ctx, id, era, start, start+fp.ParentOffset, metas)
	default:
		var n int64
		n, err = rollout.CountLines(bytes.NewReader(metas))
		fp.CopiedLines += n
	}
	if err != nil {
		return nil, fmt.Errorf("its copied lines: %w", b.mapErr(err))
	}
	// The ancestry as the index has it: the metas laid out after the
	// thread's stop at the first deleted ancestor (as the local purge
	// writes it, rollout.ForkPoint.AncestryOf).
	ancestors, err := b.ancestorIDs(ctx, id)
	if err != nil {
		return nil, err
	}
	if len(ancestors) > 0 {
		fp.Ancestors = ancestors
	}
	return rollout.WithForkPoint(meta, fp)
}

package pgbackend

import (
	"bytes"
	"context"
	"errors"
	"fmt"

	"github.com/spoolhq/spool/manager"
	"github.com/spoolhq/spool/pgstore"
	"github.com/spoolhq/spool/rollout"
	"github.com/spoolhq/spool/store"
)

var _ manager.Importer = (*Backend)(nil)

// Import commits a self-contained rollout (package transfer) as a thread
// with the meta's id; its parent is the meta's forked_from_id when that
// thread is here.
func (b *Backend) Import(ctx context.Context, content []byte) (manager.Thread, error) {
	first, _, ok := bytes.Cut(content, []byte{'\n'})
	if !ok {
		return manager.Thread{}, fmt.Errorf("import: %w: not complete lines", manager.ErrInvalidArgument)
	}
	meta, err := rollout.ParseSessionMeta(first)
	if err != nil {
		return manager.Thread{}, fmt.Errorf("import: %w: first line: %w", manager.ErrInvalidArgument, err)
	}
	if meta.HistoryBase != nil {
		return manager.Thread{}, fmt.Errorf("import %s: %w: its history continues %s", meta.ID, manager.ErrInvalidArgument, meta.HistoryBase.ThreadID)
	}
	nt := pgstore.NewThread{ID: meta.ID, Cwd: meta.Cwd, Facts: factsOf(meta), Lines: content,
		SpawnParentID: rollout.SpawnParent(meta.Source)}
	if p := meta.ForkedFromID; p != "" {
		if _, err := b.store.Get(ctx, p); err == nil {
			nt.ParentID = p
		} else if !errors.Is(err, pgstore.ErrNotFound) {
			return manager.Thread{}, err
		}
	}
	t, err := b.store.Create(ctx, nt)
	if errors.Is(err, pgstore.ErrExists) {
		return manager.Thread{}, fmt.Errorf("import %s: %w", meta.ID, store.ErrExists)
	}
	if err != nil {
		return manager.Thread{}, mapErr(err)
	}
	return threadOf(t), nil
}

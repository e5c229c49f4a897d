package manager

import (
	"bytes"
	"context"
	"fmt"

	"github.com/spoolhq/spool/rollout"
	"github.com/spoolhq/spool/rolloutfs"
	"github.com/spoolhq/spool/store"
)

// Importer creates threads from self-contained rollouts another backend
// exported (package transfer).
type Importer interface {
	// Import creates the thread a self-contained rollout holds: its
	// session_meta first, no history_base. The thread keeps the meta's id;
	// its parent is the meta's forked_from_id when that thread is here. An
	// id already present fails with an error wrapping store.ErrExists.
	Import(ctx context.Context, rollout []byte) (Thread, error)
}

var _ Importer = (*Manager)(nil)

// Import writes a self-contained rollout as a new thread's file, where its
// meta's id and timestamp place it, and indexes it as a rebuild would.
func (m *Manager) Import(ctx context.Context, content []byte) (Thread, error) {
	meta, err := importedMeta(content)
	if err != nil {
		return Thread{}, err
	}
	created, ok := rollout.ParseTimestamp(meta.Timestamp)
	if !ok {
		return Thread{}, fmt.Errorf("import: %w: meta timestamp %q", ErrInvalidArgument, meta.Timestamp)
	}
	rel, err := rollout.SessionPath(rollout.FileName(created, meta.ID))
	if err != nil {
		return Thread{}, fmt.Errorf("import %s: %w", meta.ID, err)
	}
	if err := m.begin(); err != nil {
		return Thread{}, err
	}
	defer m.ops.Done()
	if _, err := m.store.Get(ctx, meta.ID); err == nil {
		return Thread{}, fmt.Errorf("import %s: %w", meta.ID, store.ErrExists)
	}
	indexing := m.indexLock(meta.ID) // no background sync of the file before its row exists
	indexing.Lock()
	defer indexing.Unlock()
	if _, _, err := m.createRollout(ctx, rel, []rolloutfs.Part{rolloutfs.Bytes(content)}); err != nil {
		return Thread{}, fmt.Errorf("import %s: %w", meta.ID, err)
	}
	ctx = context.WithoutCancel(ctx)
	rec, err := m.scanMaterialized(ctx, rel)
	if err == nil {
		if p := rec.Thread.ParentID; p != "" {
			if _, perr := m.store.Get(ctx, p); perr != nil {
				rec.Thread.ParentID = "" // the parent stayed behind: a root here
			}
		}
		// The ancestry is the parent's here, whatever metas the file holds.
		rec.Ancestors = nil
		err = m.store.Insert(ctx, rec)
	}
	if err != nil {
		m.undoCreate(rel)
		return Thread{}, fmt.Errorf("import %s: %w", meta.ID, err)
	}
	return threadOf(rec.Thread), nil
}

// importedMeta returns the meta of a self-contained rollout.
func importedMeta(content []byte) (rollout.SessionMeta, error) {
	first, _, ok := bytes.Cut(content, []byte{'\n'})
	if !ok || len(content) == 0 || content[len(content)-1] != '\n' {
		return rollout.SessionMeta{}, fmt.Errorf("import: %w: not complete lines", ErrInvalidArgument)
	}
	meta, err := rollout.ParseSessionMeta(first)
	if err != nil {
		return rollout.SessionMeta{}, fmt.Errorf("import: %w: first line: %w", ErrInvalidArgument, err)
	}
	if meta.HistoryBase != nil {
		return rollout.SessionMeta{}, fmt.Errorf("import %s: %w: its history continues %s (export makes it self-contained)", meta.ID, ErrInvalidArgument, meta.HistoryBase.ThreadID)
	}
	return meta, nil
}

package manager

import (
	"context"
	"encoding/json"
	"errors"
	"io/fs"
	"sync"
	"time"

	"github.com/spoolhq/spool/rollout"
	"github.com/spoolhq/spool/rolloutfs"
)

// A clean close lets the next open skip the walk when nothing was created,
// removed or renamed under the root meanwhile. Close records the state of
// every directory of the layout as the open's walk found it (sessions/,
// every directory below it, archived_sessions/) and of
// session_index.jsonl, if none changed during the session. Open takes the
// record out of the index first (so a crash leaves none and forces the
// walk), stats those directories and that file only, and skips the walk
// when all are as recorded. A directory's mtime changes when a name in it
// is created, removed or renamed, not when a file in it grows: files that
// grew while spool was down are caught up on first use (load, reads) and
// by the periodic sync of a watching manager, not at open.

// cleanCloseKey is the index state under which Close leaves the layout's
// state for the next open.
const cleanCloseKey = "clean_close"

// dirMargin is how long before a walk a directory must have last changed
// for its state to be trusted: a change in the same tick of the file
// system's clock as the walk's stat, but after it, may leave the mtime as
// it was.
const dirMargin = time.Second

// layoutState is the state of a root's layout, as a walk found it.
type layoutState struct {
	Root string `json:"root"`
	// Dirs maps each directory of the layout to its mtime (Unix ns); a
	// top directory (sessions/, archived_sessions/) that did not exist
	// maps to -1.
	Dirs map[string]int64 `json:"dirs"`
	// Names is session_index.jsonl's size and mtime, or -1 and -1.
	Names [2]int64 `json:"names"`
}

// layoutRecorder gathers a layoutState during a walk (indexer.SyncOptions.Dir).
type layoutRecorder struct {
	start time.Time // before the walk

	mu    sync.Mutex // guards state and bad
	state layoutState
	bad   bool // a directory could not be described, or changed too recently
}

// recordLayout begins recording the layout for a walk that starts now, or
// returns nil when m's FS cannot describe directories.
func (m *Manager) recordLayout(ctx context.Context) *layoutRecorder {
	ds, ok := m.fsys.(rolloutfs.DirStater)
	if !ok {
		return nil
	}
	r := &layoutRecorder{start: time.Now(), state: layoutState{Root: m.opts.Root, Dirs: map[string]int64{}}}
	// The walk reports the top directories it lists; one missing now must
	// still be missing at the next open.
	for _, top := range []string{rollout.SessionsDir, rollout.ArchivedSessionsDir} {
		if _, err := ds.StatDir(ctx, top); errors.Is(err, fs.ErrNotExist) {
			r.state.Dirs[top] = -1
		} else if err != nil {
			r.bad = true
		}
	}
	names, err := m.namesState(ctx)
	r.state.Names, r.bad = names, r.bad || err != nil
	return r
}

// dir is indexer.SyncOptions.Dir.
func (r *layoutRecorder) dir(rel string, st rolloutfs.FileInfo) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if st.ModTime.IsZero() || !st.ModTime.Before(r.start.Add(-dirMargin)) {
		r.bad = true
		return
	}
	r.state.Dirs[rel] = st.ModTime.UnixNano()
}

// done returns the recorded state of a walk that succeeded, or nil when it
// cannot be trusted (a directory changed too recently, or was not
// described, or a top directory appeared during the walk).
func (r *layoutRecorder) done() *layoutState {
	if r == nil {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, top := range []string{rollout.SessionsDir, rollout.ArchivedSessionsDir} {
		if _, ok := r.state.Dirs[top]; !ok {
			r.bad = true
		}
	}
	if r.bad {
		return nil
	}
	return &r.state
}

// namesState returns session_index.jsonl's size and mtime, or -1 and -1.
func (m *Manager) namesState(ctx context.Context) ([2]int64, error) {
	info, err := m.fsys.Stat(ctx, rollout.SessionIndexFile)
	if errors.Is(err, fs.ErrNotExist) {
		return [2]int64{-1, -1}, nil
	}
	if err != nil {
		return [2]int64{}, err
	}
	return [2]int64{info.Size, info.ModTime.UnixNano()}, nil
}

// unchanged reports whether the root is as s records: every directory
// has its recorded mtime (or is still missing), and session_index.jsonl
// its recorded size and mtime. It stats those and nothing else.
func (m *Manager) unchanged(ctx context.Context, s *layoutState) bool {
	ds, ok := m.fsys.(rolloutfs.DirStater)
	if !ok || s.Root != m.opts.Root || len(s.Dirs) == 0 {
		return false
	}
	for rel, mtime := range s.Dirs {
		info, err := ds.StatDir(ctx, rel)
		switch {
		case mtime < 0 && errors.Is(err, fs.ErrNotExist):
		case err != nil || info.ModTime.UnixNano() != mtime:
			return false
		}
	}
	names, err := m.namesState(ctx)
	return err == nil && names == s.Names
}

// skipWalk takes the record of the last clean close out of the index and
// reports whether the root is unchanged since, so the open may skip its
// walk; it then keeps the record for Close. An index that asks for a
// rescan never skips.
func (m *Manager) skipWalk(ctx context.Context) (bool, error) {
	raw, ok, err := m.store.TakeState(ctx, cleanCloseKey)
	if err != nil || !ok {
		return false, err
	}
	if rescan, _, err := m.store.RescanNeeded(ctx); err != nil || rescan {
		return false, err
	}
	var s layoutState
	if err := json.Unmarshal([]byte(raw), &s); err != nil {
		m.log.Warn("ignoring an unreadable clean-close record", "err", err)
		return false, nil
	}
	if !m.unchanged(ctx, &s) {
		return false, nil
	}
	m.layout = &s
	// The line a reconcile logs, so that whoever waits for it (tests
	// and scripts that start spoold) sees the index as current.
	m.log.Info("reconciled store", "root", m.opts.Root, "index", m.opts.IndexPath, "walk", "skipped: clean shutdown, no directory changed", "dirs", len(s.Dirs))
	return true, nil
}

// recordCleanClose leaves the layout's state in the index for the next
// open, if the open's walk (or skip) recorded it and nothing under the
// root was created, removed or renamed since. Close calls it once nothing
// else runs. A failure only costs the next open its walk: it is logged.
func (m *Manager) recordCleanClose(ctx context.Context) {
	if m.layout == nil {
		return
	}
	if !m.unchanged(ctx, m.layout) {
		m.log.Debug("not recording a clean close: the layout changed since the open", "root", m.opts.Root)
		return
	}
	raw, err := json.Marshal(m.layout)
	if err == nil {
		err = m.store.PutState(ctx, cleanCloseKey, string(raw))
	}
	if err != nil {
		m.log.Warn("record a clean close", "root", m.opts.Root, "err", err)
	}
}

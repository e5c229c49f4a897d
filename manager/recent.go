package manager

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"path"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/spoolhq/spool/rollout"
	"github.com/spoolhq/spool/rolloutfs"
)

// recentDirs is what syncRecent last found in the date folders it reads.
type recentDirs struct {
	mu   sync.Mutex
	dirs map[string]recentDir // by folder
}

// A recentDir is a date folder as syncRecent last left it: every rollout
// file named in it indexed, or read by a sync that recorded what it could
// not index.
type recentDir struct {
	mtime int64           // its mtime (Unix ns) before that read; 0 when too recent to trust
	names map[string]bool // the rollout file names it held
}

// get returns what syncRecent last found of dir.
func (r *recentDirs) get(dir string) recentDir {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.dirs[dir]
}

// set records dirs, forgetting other folders.
func (r *recentDirs) set(dirs map[string]recentDir) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.dirs = dirs
}

// forget drops the names of thread id's files: a file written again under
// one of them after the thread's delete is new.
func (r *recentDirs) forget(id string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	of := func(name string, _ bool) bool { return strings.Contains(name, id) }
	for dir, d := range r.dirs {
		for name := range d.names {
			if of(name, true) {
				// A copy: syncRecent reads the names it got without
				// the lock.
				names := maps.Clone(d.names)
				maps.DeleteFunc(names, of)
				r.dirs[dir] = recentDir{mtime: d.mtime, names: names}
				break
			}
		}
	}
}

// lookForForks makes the index hold what a delete must know of the
// reference forks in the root: it waits for the open's walk (a Background
// open returns before it, and until a walk has read the root a fork no
// sync could index is not recorded), then indexes new files Codex may have
// written since (syncRecent). Where that walk failed, a manager without
// the watcher's retries walks again here (walkAgain); with them, the
// delete fails with ErrUnwalked until one succeeds.
func (m *Manager) lookForForks(ctx context.Context) error {
	if deleteStep != nil {
		deleteStep("reconciling")
	}
	select {
	case <-m.reconciled:
	case <-ctx.Done():
		return ctx.Err()
	}
	if err := m.walkAgain(ctx); err != nil {
		return err
	}
	return m.syncRecent(ctx)
}

// walkAgain returns nil once a walk of the whole root has succeeded since
// the open. Otherwise, without the watcher (whose loop retries a failed
// walk), it walks the root itself, one caller at a time; with it, or when
// that walk fails, it returns ErrUnwalked with the last walk's error.
func (m *Manager) walkAgain(ctx context.Context) error {
	walked := func() (bool, bool, error) {
		m.mu.Lock()
		defer m.mu.Unlock()
		return m.walked, m.closed, m.walkErr
	}
	ok, closed, walkErr := walked()
	switch {
	case ok:
		return nil
	case closed:
		return ErrClosed // Close may have cut the walk short
	case !m.opts.Watch:
		m.rewalk.Lock()
		defer m.rewalk.Unlock()
		if ok, _, _ = walked(); ok {
			return nil
		}
		if walkErr = m.rescan(ctx); walkErr == nil {
			return nil
		}
	}
	return fmt.Errorf("%w (%v): the forks the index cannot read are not known; retry once a sync succeeds", ErrUnwalked, walkErr)
}

// noteWalk records the outcome of a walk of the whole root (the open's,
// or a rescan): err nil sets walked for good.
func (m *Manager) noteWalk(err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err == nil {
		m.walked, m.walkErr = true, nil
	} else if !m.walked {
		m.walkErr = err
	}
}

// syncRecent indexes the rollout files of threads the index does not hold
// in the folders Codex writes new files to (sessions/ under yesterday's,
// today's and tomorrow's dates: Codex dates them in its own time zone),
// so that a reference fork Codex wrote that no sync has read yet counts
// for a delete of its base. A folder whose mtime is as syncRecent last
// found it is not read again; in one that changed, only names it did not
// hold then are looked up.
func (m *Manager) syncRecent(ctx context.Context) error {
	ds, _ := m.fsys.(rolloutfs.DirStater)
	news := map[string][]string{} // thread id -> names of its new files
	found := map[string]recentDir{}
	now := time.Now()
	for _, day := range []time.Time{now.AddDate(0, 0, -1), now, now.AddDate(0, 0, 1)} {
		dir := path.Join(rollout.SessionsDir, day.Format("2006/01/02"))
		d, err := m.readRecent(ctx, ds, dir, now, news)
		if err != nil {
			// A folder spool cannot read holds no fork Codex could.
			m.log.Warn("look for new forks before a delete", "dir", dir, "err", err)
			continue
		}
		if d.names != nil {
			found[dir] = d
		}
	}
	if len(news) > 0 {
		if err := m.indexNew(ctx, news, found); err != nil {
			return err
		}
	}
	m.recent.set(found)
	return nil
}

// readRecent returns date folder dir as syncRecent finds it now, adding
// the rollout files it did not hold when last read to news, by thread id.
// A missing folder is a recentDir without names.
func (m *Manager) readRecent(ctx context.Context, ds rolloutfs.DirStater, dir string, now time.Time, news map[string][]string) (recentDir, error) {
	last := m.recent.get(dir)
	var mtime int64
	if ds != nil {
		info, err := ds.StatDir(ctx, dir)
		if errors.Is(err, fs.ErrNotExist) {
			return recentDir{}, nil
		} else if err != nil {
			return recentDir{}, err
		}
		if mtime = info.ModTime.UnixNano(); last.mtime != 0 && last.mtime == mtime {
			return last, nil
		}
		if now.Sub(info.ModTime) <= dirMargin {
			// A name created in the same tick of the file system's
			// clock, after the stat, could leave the mtime as it is.
			mtime = 0
		}
	}
	entries, err := m.fsys.ReadDir(ctx, dir)
	if errors.Is(err, fs.ErrNotExist) {
		return recentDir{}, nil
	} else if err != nil {
		return recentDir{}, err
	}
	d := recentDir{mtime: mtime, names: make(map[string]bool, len(entries))}
	for _, e := range entries {
		if last.names[e.Name] {
			d.names[e.Name] = true
			continue
		}
		id, _, _, err := rollout.ParseRolloutName(rollout.PlainName(e.Name))
		if err == nil && e.IsRegular() {
			news[id] = append(news[id], path.Join(dir, e.Name))
		}
	}
	return d, nil
}

// indexNew syncs the new files of threads the index does not hold, then
// adds to found the names of those whose threads it holds now. A file
// the sync could not read stays new, and its folder's mtime untrusted:
// the next delete reads it again (a file Codex created and has yet to
// write; a fork no index can read is recorded, and read again).
func (m *Manager) indexNew(ctx context.Context, news map[string][]string, found map[string]recentDir) error {
	indexedIDs := func() (map[string]bool, error) {
		rows, err := m.store.IndexedFilesByID(ctx, slices.Collect(maps.Keys(news)))
		held := make(map[string]bool, len(rows))
		for _, r := range rows {
			held[r.ID] = true
		}
		return held, err
	}
	held, err := indexedIDs()
	if err != nil {
		return err
	}
	var unread []string
	for id, rels := range news {
		if !held[id] {
			unread = append(unread, rels...)
		}
	}
	if len(unread) > 0 {
		if err := m.syncPaths(ctx, unread); err != nil {
			return err
		}
		if held, err = indexedIDs(); err != nil {
			return err
		}
	}
	for id, rels := range news {
		for _, rel := range rels {
			dir, name := path.Split(rel)
			d := found[path.Clean(dir)]
			if held[id] {
				d.names[name] = true
			} else {
				d.mtime = 0
				found[path.Clean(dir)] = d
			}
		}
	}
	return nil
}

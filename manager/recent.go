package manager

import (
	"context"
	"errors"
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

// syncRecent indexes the rollout files of threads the index does not hold
// in the folders Codex writes new files to (sessions/ under yesterday's,
// today's and tomorrow's dates: Codex dates them in its own time zone),
// so that a reference fork Codex wrote that no sync has read yet counts
// for a delete of its base. A folder whose mtime is as syncRecent last
// found it is not read again; in one that changed, only names it did not
// hold then are looked up.
func (m *Manager) syncRecent(ctx context.Context) error {
	ds, _ := m.fsys.(rolloutfs.DirStater)
	byID := map[string][]string{} // thread id -> its new files
	found := map[string]recentDir{}
	now := time.Now()
	for _, day := range []time.Time{now.AddDate(0, 0, -1), now, now.AddDate(0, 0, 1)} {
		dir := path.Join(rollout.SessionsDir, day.Format("2006/01/02"))
		last := m.recent.get(dir)
		var mtime int64
		if ds != nil {
			info, err := ds.StatDir(ctx, dir)
			if errors.Is(err, fs.ErrNotExist) {
				continue
			} else if err != nil {
				return err
			}
			if mtime = info.ModTime.UnixNano(); last.mtime != 0 && last.mtime == mtime {
				found[dir] = last
				continue
			}
			if now.Sub(info.ModTime) <= dirMargin {
				// A name created in the same tick of the file system's
				// clock, after the stat, could leave the mtime as it is.
				mtime = 0
			}
		}
		entries, err := m.fsys.ReadDir(ctx, dir)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		} else if err != nil {
			return err
		}
		seen := recentDir{mtime: mtime, names: make(map[string]bool, len(entries))}
		for _, e := range entries {
			if last.names[e.Name] {
				seen.names[e.Name] = true
				continue
			}
			id, _, _, err := rollout.ParseRolloutName(rollout.PlainName(e.Name))
			if err != nil || !e.IsRegular() {
				continue
			}
			seen.names[e.Name] = true
			byID[id] = append(byID[id], path.Join(dir, e.Name))
		}
		found[dir] = seen
	}
	if len(byID) > 0 {
		// Threads the index holds are not new (a new file of one is
		// not a fork).
		indexed, err := m.store.IndexedFilesByID(ctx, slices.Collect(maps.Keys(byID)))
		if err != nil {
			return err
		}
		for _, f := range indexed {
			delete(byID, f.ID)
		}
	}
	if len(byID) > 0 {
		if err := m.syncPaths(ctx, slices.Concat(slices.Collect(maps.Values(byID))...)); err != nil {
			return err
		}
	}
	// Whatever the sync could not index, it recorded if it names a base.
	m.recent.set(found)
	return nil
}

package manager

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/spoolhq/spool/indexer"
	"github.com/spoolhq/spool/rollout"
	"github.com/spoolhq/spool/store"
)

// What the watcher notices, and when:
//
//   - A rollout file created, written, truncated, renamed into place or
//     touched under sessions/ (any date folder, including folders created
//     while running) or archived_sessions/ is synced WatchDebounce after
//     the first event of its burst: a new file is indexed, a grown one
//     caught up, a moved one recorded at its new place, a removed one
//     dropped (or recorded at its other place), a cut or rewritten one
//     read again whole and its thread announced as reverted.
//   - A folder moved away or removed whole (its files send no events of
//     their own) schedules a full incremental sync.
//   - A live thread (in memory) is checked against its file first: if the
//     file is not as the thread last left it (someone else wrote, moved or
//     removed it), the thread is dropped from memory and synced like any
//     other; the manager's own appends leave nothing to do.
//   - Lines appended to session_index.jsonl (a rename by Codex, or by
//     spool itself) sync the threads they name; a file that shrank or was
//     replaced is read again whole, and the threads whose names it changes
//     are synced. A lost event (inotify's queue overflowed) or a failed
//     watch schedules a full incremental sync, as does every
//     Options.RescanInterval.
//   - A background sync that fails (the index's disk is full, a file
//     cannot be read) is tried again as a full incremental sync after
//     syncRetryDelay, then after twice that, up to RescanInterval, until
//     one succeeds: once the disk has room again, the index catches up
//     with what the failed syncs missed (a file a failed delete removed,
//     a rename whose row was not written) without waiting for the timer.
//
// The watcher needs inotify (or the platform's equivalent in fsnotify);
// without it, only the periodic sync runs, every DefaultPollInterval.

// watcher gathers the paths that changed; one goroutine (collect) reads
// fsnotify's events, the background goroutine takes them.
type watcher struct {
	m    *Manager
	fsw  *fsnotify.Watcher
	kick chan struct{} // capacity 1: something is pending

	mu      sync.Mutex          // guards pending, names and rescan
	pending map[string]struct{} // rollout paths (slash, relative to the root)
	names   bool                // session_index.jsonl changed
	rescan  bool                // a full sync is needed

	// namesRead is how much of session_index.jsonl has been synced, and
	// namesFile the file it was read from (nil when there was none): only
	// the background goroutine uses them after startWatcher.
	namesRead int64
	namesFile os.FileInfo
}

// newFSWatcher starts an fsnotify watcher; tests replace it to run
// without one.
var newFSWatcher = func() (*fsnotify.Watcher, error) { return fsnotify.NewBufferedWatcher(1024) }

// syncRetryDelay is how long after a failed background sync the first
// retry runs; a variable for tests.
var syncRetryDelay = time.Second

// tempMargin is how much older than the open a temporary file must be for
// a background reconcile to remove it.
const tempMargin = 2 * time.Second

// startWatching sets up the context of the background goroutines and,
// with Options.Watch, starts watching (events are gathered, not yet
// synced). Close stops them (stopBackground) and waits for them.
func (m *Manager) startWatching() {
	ctx, cancel := context.WithCancel(context.Background())
	m.backgroundCtx, m.stopBackground = ctx, cancel
	if m.opts.Watch {
		m.watch = m.startWatcher(ctx)
	}
}

// startBackground starts the goroutine that runs beside the calls: the
// reconcile of a Background open and, with Options.Watch, the syncs of
// watched changes and the periodic sync. startWatching came first.
func (m *Manager) startBackground() {
	ctx, w := m.backgroundCtx, m.watch
	if !m.opts.Background && !m.opts.Watch {
		return
	}
	// Temporary files from before the open are a crash's leftovers; later
	// ones may be creates under way. A file's mtime comes from the
	// kernel's coarse clock, a few ms behind time.Now, so leave a margin.
	tempsBefore := time.Now().Add(-tempMargin)
	m.background.Go(func() { m.runBackground(ctx, w, tempsBefore) })
}

// runBackground is the one goroutine that runs background syncs, so they
// never overlap.
func (m *Manager) runBackground(ctx context.Context, w *watcher, tempsBefore time.Time) {
	var reconcileErr error
	if m.opts.Background && !m.walkSkipped && !m.walkedAtOpen {
		sum, err := m.reconcile(ctx, tempsBefore, false)
		m.noteWalk(err)
		close(m.reconciled)
		if err != nil && ctx.Err() == nil {
			m.log.Error("reconcile in the background", "root", m.opts.Root, "err", err)
		}
		if ctx.Err() == nil {
			m.report(SyncReport{Cause: SyncOpen, Summary: sum, Err: err})
		}
		reconcileErr = err
	}
	if !m.opts.Watch {
		return
	}
	interval := m.opts.RescanInterval
	if interval <= 0 {
		interval = DefaultRescanInterval
		if w.fsw == nil {
			interval = DefaultPollInterval
		}
	}
	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	var (
		retry   <-chan time.Time // a full sync due because one failed
		backoff time.Duration    // the delay of the last retry scheduled
	)
	synced := func(err error) {
		switch {
		case err == nil || ctx.Err() != nil:
		case retry == nil:
			backoff = min(max(2*backoff, syncRetryDelay), interval)
			retry = time.After(backoff)
		}
	}
	rescan := func() {
		err := m.rescan(ctx)
		if err == nil {
			retry, backoff = nil, 0 // caught up: nothing is missed any more
		}
		synced(err)
	}
	synced(reconcileErr)
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
			rescan()
		case <-retry:
			retry = nil
			rescan()
		case <-w.kick:
			debounce := time.NewTimer(WatchDebounce)
			select {
			case <-ctx.Done():
				debounce.Stop()
				return
			case <-debounce.C:
			}
			paths, names, again := w.take()
			if names {
				renamed, names, more := w.renamed(ctx)
				m.renameLive(ctx, names)
				paths = append(paths, renamed...)
				again = again || more
			}
			if len(paths) > 0 {
				synced(m.syncPaths(ctx, paths))
			}
			if again {
				rescan()
			}
		}
	}
}

// startWatcher watches the root, sessions/ with every folder under it,
// and archived_sessions/, and starts the goroutine that gathers events.
// When fsnotify cannot start, the watcher has no fsw and only the
// periodic sync runs.
func (m *Manager) startWatcher(ctx context.Context) *watcher {
	w := &watcher{m: m, kick: make(chan struct{}, 1), pending: make(map[string]struct{})}
	fsw, err := newFSWatcher()
	if err == nil {
		err = fsw.Add(m.opts.Root)
		if err != nil {
			fsw.Close()
		}
	}
	if err != nil {
		m.log.Warn("cannot watch the root: syncing it periodically instead", "root", m.opts.Root, "err", err)
		return w
	}
	w.fsw = fsw
	w.namesFile, w.namesRead = w.namesState()
	for _, dir := range []string{rollout.SessionsDir, rollout.ArchivedSessionsDir} {
		w.addTree(dir, false)
	}
	m.background.Go(func() {
		defer fsw.Close()
		w.collect(ctx)
	})
	return w
}

// collect reads events until ctx is done.
func (w *watcher) collect(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case ev, ok := <-w.fsw.Events:
			if !ok {
				return
			}
			w.event(ev)
		case err, ok := <-w.fsw.Errors:
			if !ok {
				return
			}
			if !errors.Is(err, fsnotify.ErrEventOverflow) {
				w.m.log.Warn("watching the root", "err", err)
			}
			w.mark(nil, true) // events may be lost either way
		}
	}
}

// event files one fsnotify event.
func (w *watcher) event(ev fsnotify.Event) {
	rel, err := filepath.Rel(w.m.opts.Root, ev.Name)
	if err != nil || strings.HasPrefix(rel, "..") {
		return
	}
	rel = filepath.ToSlash(rel)
	switch {
	case rel == rollout.SessionIndexFile:
		w.mu.Lock()
		w.names = true
		w.mu.Unlock()
		w.mark(nil, false)
		return
	case !inWatchedTree(rel):
		return
	}
	if ev.Has(fsnotify.Create) {
		if fi, err := os.Lstat(ev.Name); err == nil && fi.IsDir() {
			// A new folder (a new day): watch it, and sync the files made
			// in it before the watch began.
			w.mark(w.addTree(rel, true), false)
			return
		}
	}
	if _, _, _, err := rollout.ParseRolloutName(path.Base(rel)); err != nil {
		if (ev.Has(fsnotify.Remove) || ev.Has(fsnotify.Rename)) && !strings.Contains(path.Base(rel), ".") {
			// A folder (the layout's names without a dot: sessions, the
			// date folders) moved or removed whole: its files send no
			// events of their own.
			w.mark(nil, true)
		}
		return // temporary files, side files, locks
	}
	w.mark([]string{rel}, false)
}

// inWatchedTree reports whether rel is sessions/ or archived_sessions/ or
// under them.
func inWatchedTree(rel string) bool {
	for _, dir := range []string{rollout.SessionsDir, rollout.ArchivedSessionsDir} {
		if rel == dir || strings.HasPrefix(rel, dir+"/") {
			return true
		}
	}
	return false
}

// addTree watches dir (slash, relative to the root) and the folders under
// it; with files, it returns the rollout files found in them. A folder that
// cannot be watched schedules a full sync.
//
// Without files, a folder whose link count says it has no subfolders (a
// day folder of sessions/, holding thousands of rollouts) is not listed:
// listing every day folder was most of a clean start of a large root.
func (w *watcher) addTree(dir string, files bool) []string {
	abs := filepath.Join(w.m.opts.Root, filepath.FromSlash(dir))
	if err := w.fsw.Add(abs); err != nil {
		if !errors.Is(err, os.ErrNotExist) {
			w.m.log.Warn("cannot watch a folder: syncing the root instead", "dir", dir, "err", err)
			w.mark(nil, true)
		}
		return nil
	}
	if !files {
		if fi, err := os.Lstat(abs); err == nil && noSubdirs(fi) {
			return nil
		}
	}
	entries, err := os.ReadDir(abs)
	if err != nil {
		w.mark(nil, true)
		return nil
	}
	var found []string
	for _, e := range entries {
		rel := dir + "/" + e.Name()
		switch {
		case e.IsDir():
			found = append(found, w.addTree(rel, files)...)
		case files:
			if _, _, _, err := rollout.ParseRolloutName(e.Name()); err == nil {
				found = append(found, rel)
			}
		}
	}
	return found
}

// mark records paths to sync (and whether a full sync is needed) and
// wakes the background goroutine.
func (w *watcher) mark(paths []string, rescan bool) {
	w.mu.Lock()
	for _, p := range paths {
		w.pending[p] = struct{}{}
	}
	w.rescan = w.rescan || rescan
	w.mu.Unlock()
	select {
	case w.kick <- struct{}{}:
	default:
	}
}

// take returns and clears what is pending, paths sorted.
func (w *watcher) take() (paths []string, names, rescan bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for p := range w.pending {
		paths = append(paths, p)
	}
	clear(w.pending)
	names, w.names = w.names, false
	rescan, w.rescan = w.rescan, false
	slices.Sort(paths)
	return paths, names, rescan
}

// namesState describes session_index.jsonl and returns its size (nil and
// 0 when missing).
func (w *watcher) namesState() (os.FileInfo, int64) {
	fi, err := os.Stat(filepath.Join(w.m.opts.Root, rollout.SessionIndexFile))
	if err != nil {
		return nil, 0
	}
	return fi, fi.Size()
}

// renamed returns the rollout paths of the threads whose names differ
// from their index rows in the complete lines appended to
// session_index.jsonl since the last call, with the names those lines give
// them (by id), and whether only a full sync can follow (the file or the
// index could not be read). A file that shrank, was replaced (another file
// renamed over it: spool's own clear and delete, Codex's delete, an
// editor's save) or no longer ends a line where the last call stopped
// (rewritten in place) is read again whole: read on from where the old
// file ended, it gave the end of a line, skipped as unparsable, and a name
// changed in it was missed. A thread whose lines were dropped keeps its
// name, as it does in a full sync.
func (w *watcher) renamed(ctx context.Context) (paths []string, names map[string]string, rescan bool) {
	f, err := os.Open(filepath.Join(w.m.opts.Root, rollout.SessionIndexFile))
	if err != nil {
		w.namesFile, w.namesRead = nil, 0
		return nil, nil, !errors.Is(err, os.ErrNotExist)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, nil, true
	}
	replaced := w.namesFile != nil && !os.SameFile(w.namesFile, fi)
	w.namesFile = fi
	if replaced || fi.Size() < w.namesRead || !endsLineAt(f, w.namesRead) {
		w.namesRead = 0 // read again whole
	}
	tail := make([]byte, fi.Size()-w.namesRead)
	if _, err := f.ReadAt(tail, w.namesRead); err != nil {
		return nil, nil, true
	}
	end := bytes.LastIndexByte(tail, '\n') + 1 // complete lines only
	w.namesRead += int64(end)
	entries, err := rollout.ReadNames(ctx, bytes.NewReader(tail[:end]))
	if err != nil || len(entries) == 0 {
		return nil, nil, err != nil
	}
	ids := make([]string, 0, len(entries))
	for id := range entries {
		ids = append(ids, id)
	}
	rows, err := w.m.store.IndexedFilesByID(ctx, ids)
	if err != nil {
		return nil, nil, true
	}
	names = make(map[string]string)
	for _, r := range rows {
		if r.Name != entries[r.ID].ThreadName {
			paths = append(paths, r.RolloutPath)
			names[r.ID] = entries[r.ID].ThreadName
		}
	}
	return paths, names, false
}

// endsLineAt reports whether the n bytes of f before offset n end a line
// (or n is 0).
func endsLineAt(f *os.File, n int64) bool {
	if n == 0 {
		return true
	}
	var last [1]byte
	_, err := f.ReadAt(last[:], n-1)
	return err == nil && last[0] == '\n'
}

// renameLive gives live threads the names another process gave them in
// session_index.jsonl (names, by id), in their rows and in memory, under
// each thread's lock: a sync never writes a live thread's row, and its
// file, which checkLive looks at, did not change. Threads not in memory
// are left to the sync of their paths. It reports the names it gave.
func (m *Manager) renameLive(ctx context.Context, names map[string]string) {
	var renamed []string
	defer func() {
		if len(renamed) > 0 {
			m.report(SyncReport{Cause: SyncEvents, Paths: renamed, Summary: indexer.Summary{Renamed: len(renamed)}})
		}
	}()
	for id, name := range names {
		lt := m.peekLive(ctx, id)
		if lt == nil {
			continue
		}
		lt.mu.Lock()
		if !lt.gone && lt.row.Name != name {
			if err := m.store.SetName(ctx, id, name, lt.row.UpdatedAt); err != nil {
				m.log.Warn("name from session_index.jsonl", "id", id, "err", err)
				m.invalidate(lt) // the next use reloads it
			} else {
				lt.row.Name = name
				renamed = append(renamed, lt.row.RolloutPath)
			}
		}
		lt.mu.Unlock()
		m.release(lt)
	}
}

// syncPaths brings the index up to date with the files at paths: live
// threads whose file changed under them are dropped from memory first, and
// live threads whose file is as they left it (the manager's own appends,
// moves and renames) cost no more than that check. It returns the sync's
// error.
func (m *Manager) syncPaths(ctx context.Context, paths []string) error {
	changed := paths[:0:0]
	for _, rel := range paths {
		id, _, _, err := rollout.ParseRolloutName(path.Base(rel))
		if err != nil {
			continue
		}
		if lt := m.peekLive(ctx, id); lt != nil {
			same := m.checkLiveAt(ctx, lt, rel)
			m.release(lt)
			if same {
				continue
			}
		}
		changed = append(changed, rel)
	}
	if len(changed) == 0 {
		return nil
	}
	paths = changed
	before := m.indexedFiles(ctx, paths)
	sum, err := indexer.SyncPaths(ctx, m.store, m.fsys, paths, indexer.SyncOptions{Hold: m.holdSync})
	if err != nil && ctx.Err() == nil {
		m.log.Error("sync changed rollouts", "paths", len(paths), "err", err)
	}
	m.announceRewrites(ctx, sum.Rewritten)
	for _, id := range sum.Rewritten {
		delete(before, id) // announced as reverted, not as grown
	}
	m.announceGrowth(ctx, before)
	m.logProblems(sum)
	m.log.Debug("synced changed rollouts", "paths", len(paths), "scanned", sum.Scanned, "caught_up", sum.CaughtUp,
		"moved", sum.Moved, "deleted", sum.Deleted, "skipped", sum.Skipped, "duration", sum.Duration)
	m.report(SyncReport{Cause: SyncEvents, Paths: paths, Summary: sum, Err: err})
	return err
}

// indexedFiles returns, by id, the index's file state of each indexed
// thread whose file is among paths: one query for all.
func (m *Manager) indexedFiles(ctx context.Context, paths []string) map[string]store.FileState {
	ids := make([]string, 0, len(paths))
	for _, rel := range paths {
		if id, _, _, err := rollout.ParseRolloutName(path.Base(rel)); err == nil {
			ids = append(ids, id)
		}
	}
	files, err := m.store.IndexedFilesByID(ctx, ids)
	if err != nil {
		return nil
	}
	states := make(map[string]store.FileState, len(files))
	for _, f := range files {
		states[f.ID] = f.FileState
	}
	return states
}

// announceGrowth publishes appended for each thread of before whose file
// the sync found longer: lines another program (a running Codex) wrote,
// so that followers read them as they read spool's own. The event carries
// no offsets: the sync does not tell where each line starts. A thread the
// sync dropped is announced deleted.
func (m *Manager) announceGrowth(ctx context.Context, before map[string]store.FileState) {
	after := m.indexedFiles(ctx, pathsOf(before))
	for id, was := range before {
		now, ok := after[id]
		if !ok {
			m.announceIfDeleted(ctx, id)
			continue
		}
		if now.RolloutPath != was.RolloutPath || now.IndexedSize <= was.IndexedSize {
			continue // not grown, or another file (a revert, a move) announced as such
		}
		if row, err := m.store.Get(ctx, id); err == nil {
			m.publishThread(EventAppended, m.unacked.clamp(row))
		}
	}
}

// announceIfDeleted publishes deleted for thread id if the index no longer
// holds it: a sync dropped its row, another program (Codex's thread/delete,
// an rm) having removed its file. A thread the sync found moved is still
// there.
func (m *Manager) announceIfDeleted(ctx context.Context, id string) {
	if _, err := m.store.Get(ctx, id); errors.Is(err, store.ErrNotFound) {
		m.events.Publish(Event{Type: EventDeleted, ThreadID: id})
	}
}

// announceRewrites publishes reverted for each of ids, threads whose file
// a sync found cut or rewritten by another program (indexer's
// Summary.Rewritten): positions a follower found in their history before
// name other bytes, as after a revert.
func (m *Manager) announceRewrites(ctx context.Context, ids []string) {
	for _, id := range ids {
		if row, err := m.store.Get(ctx, id); err == nil {
			m.publishThread(EventReverted, m.unacked.clamp(row))
		}
	}
}

// pathsOf returns the rollout paths of states.
func pathsOf(states map[string]store.FileState) []string {
	out := make([]string, 0, len(states))
	for _, st := range states {
		out = append(out, st.RolloutPath)
	}
	return out
}

// rescan syncs the whole root (incrementally), after checking every live
// thread against its file, and returns the sync's error.
func (m *Manager) rescan(ctx context.Context) error {
	m.mu.Lock()
	ids := make([]string, 0, len(m.live.byID))
	for id := range m.live.byID {
		ids = append(ids, id)
	}
	m.mu.Unlock()
	for _, id := range ids {
		if lt := m.peekLive(ctx, id); lt != nil {
			m.checkLive(ctx, lt)
			m.release(lt)
		}
	}
	sum, err := indexer.Sync(ctx, m.store, m.fsys, indexer.SyncOptions{Hold: m.holdSync})
	m.noteWalk(err)
	if err == nil {
		// List indexes a first index failed to build at its end (a full
		// disk): every rescan tries again, a failed one sooner
		// (runBackground's retry), rather than lists going unindexed
		// until the next start.
		var built bool
		if built, err = m.store.RestoreListIndexes(ctx); built {
			m.log.Info("built the list indexes the first index left unbuilt", "root", m.opts.Root)
		}
	}
	if err != nil && ctx.Err() == nil {
		m.log.Error("rescan the root", "root", m.opts.Root, "err", err)
	}
	m.announceRewrites(ctx, sum.Rewritten)
	m.logProblems(sum)
	m.report(SyncReport{Cause: SyncRescan, Summary: sum, Err: err})
	return err
}

// peekLive returns thread id with a reference taken if it is live and
// loaded, else nil. It never loads a thread.
func (m *Manager) peekLive(ctx context.Context, id string) *liveThread {
	m.mu.Lock()
	lt, ok := m.live.byID[id]
	if !ok || m.closed {
		m.mu.Unlock()
		return nil
	}
	lt.refs++
	m.mu.Unlock()
	select {
	case <-lt.ready:
	case <-ctx.Done():
		m.release(lt)
		return nil
	}
	if lt.loadErr != nil {
		m.release(lt)
		return nil
	}
	return lt
}

// checkLiveAt is checkLive for an event on file rel of lt's thread. A file
// of the thread that is there but is not the one lt holds (a plain file
// Codex decompressed beside lt's .jsonl.zst, a revert segment Codex wrote)
// may change which file the thread is read from and appended to, which
// only a sync of rel can tell: lt is dropped from memory and it reports
// false, however unchanged lt's own file is. An event on a file that is
// gone (the old place of one of the manager's own moves) is checkLive's.
func (m *Manager) checkLiveAt(ctx context.Context, lt *liveThread, rel string) bool {
	lt.mu.Lock()
	if !lt.gone && rel != lt.row.RolloutPath {
		if _, err := m.fsys.Stat(ctx, rel); err == nil {
			m.log.Debug("another file of a live thread appeared", "id", lt.id, "path", rel, "live", lt.row.RolloutPath)
			m.invalidate(lt)
			lt.mu.Unlock()
			return false
		}
	}
	lt.mu.Unlock()
	return m.checkLive(ctx, lt)
}

// checkLive drops lt from memory when its file is not as lt last left it:
// another process wrote, cut, moved or removed it. The next use reloads it
// (catching the index up), and a sync may now write its row.
// It reports whether the file was as lt left it.
func (m *Manager) checkLive(ctx context.Context, lt *liveThread) bool {
	lt.mu.Lock()
	defer lt.mu.Unlock()
	if lt.gone {
		return false
	}
	info, err := m.fsys.Stat(ctx, lt.row.RolloutPath)
	if err == nil && info.Size == lt.row.FileSize && info.ModTime.UnixNano() == lt.row.FileMtime {
		// As lt left it, but for a rewrite within the clock's tick.
		same, err := indexer.FileTailMatches(ctx, m.fsys, lt.row.RolloutPath, lt.row.IndexedSize, lt.row.TailSum)
		if err == nil && same {
			return true
		}
	}
	m.log.Debug("live thread's file changed under it", "id", lt.id, "path", lt.row.RolloutPath)
	m.invalidate(lt)
	return false
}

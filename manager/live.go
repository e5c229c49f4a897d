package manager

import (
	"container/list"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"sync"

	"github.com/spoolhq/spool/codexlock"
	"github.com/spoolhq/spool/indexer"
	"github.com/spoolhq/spool/rollout"
	"github.com/spoolhq/spool/rolloutfs"
	"github.com/spoolhq/spool/store"
)

// liveThread is a thread held in memory: its open appender and a copy of
// its index row. Every change to the thread's file or row goes through mu,
// so one writer per thread is the rule and concurrent callers queue.
type liveThread struct {
	id string

	// ready is closed once loading finished; loadErr then says how it went.
	ready   chan struct{}
	loadErr error

	// refs and elem are guarded by Manager.mu. A thread with refs > 0 is in
	// use and is never evicted from under its caller.
	refs  int
	elem  *list.Element
	evict bool // drop from memory once refs reaches zero (Evict while in use)

	mu       sync.Mutex // guards the fields below
	appender *rolloutfs.Appender
	// lockFile is Codex's writer-lock file of the thread, open between
	// appends (never locked between them); nil until the first append.
	// Its descriptor counts in Manager.handles, as the appender's does.
	lockFile *codexlock.File
	row      store.Thread
	gone     bool // deleted or evicted: a holder must not use it any more
}

// lru is the bounded set of live threads. Its fields are guarded by
// Manager.mu.
type lru struct {
	byID  map[string]*liveThread
	order *list.List // front is the most recently used
}

// acquire returns thread id live, loading it from the index and its file
// on first use (concurrent first uses load it once). The caller must call
// m.release(lt) when done.
func (m *Manager) acquire(ctx context.Context, id string) (*liveThread, error) {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil, ErrClosed
	}
	lt, ok := m.live.byID[id]
	if ok {
		lt.refs++
		m.live.order.MoveToFront(lt.elem)
		m.mu.Unlock()
		select {
		case <-lt.ready:
		case <-ctx.Done():
			m.release(lt)
			return nil, ctx.Err()
		}
		if lt.loadErr != nil {
			m.release(lt)
			return nil, lt.loadErr
		}
		return lt, nil
	}
	lt = &liveThread{id: id, ready: make(chan struct{}), refs: 1}
	lt.elem = m.live.order.PushFront(lt)
	m.live.byID[id] = lt
	m.mu.Unlock()

	// Loading must not be cut short by one caller's context: others wait
	// on the same load.
	lt.loadErr = m.load(context.WithoutCancel(ctx), lt)
	if lt.loadErr != nil {
		m.mu.Lock()
		m.forget(lt)
		m.mu.Unlock()
	}
	close(lt.ready)
	if lt.loadErr != nil {
		m.release(lt)
		return nil, lt.loadErr
	}
	m.evictOverCapacity()
	return lt, nil
}

// load rehydrates lt from its index row and file for writing: it catches
// the index up if the file holds complete lines the index has not seen
// and opens the appender. A torn tail is left alone: only an append, under
// the thread's writer lock, may cut it (settle). A compressed file is never
// caught up: its size on disk is not its indexed size. A file found at its other
// place (an archive or unarchive that failed half way) is taken from
// there; a thread whose file is gone is dropped from the index.
func (m *Manager) load(ctx context.Context, lt *liveThread) error {
	indexing := m.indexLock(lt.id)
	indexing.Lock()
	defer indexing.Unlock()
	row, err := m.store.Get(ctx, lt.id)
	if err != nil {
		return err
	}
	if row, err = m.locate(ctx, row); err != nil {
		return err
	}
	// The file, not the row, says whether it grew: a thread used before a
	// background reconcile reached it has a row older than its file.
	info, err := m.fsys.Stat(ctx, row.RolloutPath)
	if err != nil {
		return err
	}
	// An empty file was emptied by another program, to write it anew
	// (indexer's emptied rule): nothing in it to read yet. The thread
	// loads as the index holds it, so that it can be deleted or moved; an
	// append refuses it (settle), and the file is read whole once written.
	emptied := indexer.Emptied(info.Size, row.IndexedSize)
	if (row.FileSize != row.IndexedSize || info.Size != row.FileSize || info.ModTime.UnixNano() != row.FileMtime) && !rollout.IsCompressed(row.RolloutPath) && !emptied {
		var rewritten bool
		if row, rewritten, err = m.catchUp(ctx, row); err != nil {
			return err
		}
		if rewritten {
			m.publishThread(EventReverted, m.unacked.clamp(row))
		}
	}
	app, err := m.openAppender(ctx, row)
	if err != nil {
		return err
	}
	lt.appender, lt.row = app, row
	return nil
}

func (m *Manager) openAppender(ctx context.Context, row store.Thread) (*rolloutfs.Appender, error) {
	return rolloutfs.OpenAppender(ctx, m.fsys, row.RolloutPath, rolloutfs.AppenderOptions{
		Policy: m.opts.Sync, Group: m.group, OnHandle: func(delta int) { m.handles.Add(int64(delta)) },
	})
}

// settle makes lt's file end where its index row does before an append;
// the caller holds lt.mu and the thread's writer lock. Complete lines
// another writer appended are indexed first, so an append never lands
// after lines the index has not seen. A torn tail older than
// Options.TornGrace is cut into a side file; a younger one fails with a
// *TornTailError, the file untouched. The appender is reopened when
// another file was renamed over its file's name (it would write into the
// replaced one), and with force even when the sizes agree (its file
// changed under it). Lines it indexes
// are announced as appended, as the watcher announces them, whether or not
// the append goes on; a file another writer cut or rewrote is announced as
// reverted instead, its history laid out anew.
func (m *Manager) settle(ctx context.Context, lt *liveThread, force bool) error {
	info, err := m.fsys.Stat(ctx, lt.row.RolloutPath)
	if errors.Is(err, fs.ErrNotExist) && m.exists(ctx, rollout.TwinName(lt.row.RolloutPath)) {
		// Codex compressed the file since lt was loaded (withWritable
		// catches the row up and tries again).
		return fmt.Errorf("%s: %w", lt.row.RolloutPath, ErrCompressed)
	}
	if err != nil {
		return err
	}
	if indexer.Emptied(info.Size, lt.row.IndexedSize) {
		// Another program emptied the file to write it anew (indexer's
		// emptied rule): an append now would start the file without its
		// meta, and before the lines that program writes.
		return errEmptied(lt.row)
	}
	if !force && info.Size == lt.row.IndexedSize && info.ModTime.UnixNano() == lt.row.FileMtime &&
		lt.appender.Size() == info.Size && lt.appender.Holds(info) {
		return nil
	}
	// indexed is the row as the index holds it after each catch-up: a
	// step failing after one has committed leaves lt.row behind, and
	// lines in the index that nothing else would announce.
	before, indexed := lt.row.HistorySize(), lt.row
	rewritten := false
	defer func() {
		if lt.row.HistorySize() == indexed.HistorySize() {
			indexed = lt.row // as settled, its file state included
		}
		switch {
		case rewritten:
			m.publishThread(EventReverted, indexed)
		case indexed.HistorySize() > before:
			m.publishThread(EventAppended, indexed)
		}
	}()
	lt.appender.Close()
	lt.appender = nil
	row, rewritten, err := m.catchUp(ctx, lt.row)
	if err != nil {
		return err
	}
	indexed = row
	if row.IndexedSize < row.FileSize {
		// The caller holds the writer lock: the rule's age is left.
		rule := indexer.TailRule{Grace: m.opts.TornGrace, Now: m.opts.Now}
		if wait := rule.Wait(info.ModTime); wait > 0 {
			lt.row = row
			return &TornTailError{ID: lt.id, RetryAfter: wait}
		}
		cut, err := indexer.CutTornTail(ctx, m.fsys, row.RolloutPath, m.opts.Now())
		if err != nil {
			return err
		}
		switch {
		case cut.Ended:
			// A whole record lacked only its newline: it is a line of the
			// thread now, to index.
			m.log.Warn("ended the last record with its newline", "path", row.RolloutPath, "offset", cut.Offset)
			if row, _, err = m.catchUp(ctx, row); err != nil {
				return err
			}
			indexed = row
		default:
			if cut.Length > 0 {
				m.log.Warn("cut torn tail", "path", row.RolloutPath, "offset", cut.Offset, "bytes", cut.Length, "kept", cut.SideFile)
			}
			// The file shrank to its last complete line: the index must say
			// so, or it disagrees with the file until the next append.
			if row, err = m.recordFileState(ctx, row); err != nil {
				return err
			}
		}
	}
	app, err := m.openAppender(ctx, row)
	if err != nil {
		return err
	}
	lt.appender, lt.row = app, row
	return nil
}

// recordFileState stores the size and mtime of row's file in the index.
func (m *Manager) recordFileState(ctx context.Context, row store.Thread) (store.Thread, error) {
	info, err := m.fsys.Stat(ctx, row.RolloutPath)
	if err != nil {
		return row, err
	}
	if err := m.store.SetFileState(ctx, row.ID, info.Size, info.ModTime.UnixNano()); err != nil {
		return row, err
	}
	row.FileSize, row.FileMtime = info.Size, info.ModTime.UnixNano()
	return row, nil
}

// locate checks that row's file is where the index says. A file found at
// its other place (archived or live) is recorded there; when neither
// exists the thread is gone and its rows are dropped (ErrNotFound).
func (m *Manager) locate(ctx context.Context, row store.Thread) (store.Thread, error) {
	_, err := m.fsys.Stat(ctx, row.RolloutPath)
	if !errors.Is(err, fs.ErrNotExist) {
		return row, err
	}
	place := m.placeLock(row.ID)
	place.Lock()
	defer place.Unlock()
	other, archived := otherPlace(row)
	info, err := m.fsys.Stat(ctx, other)
	if errors.Is(err, fs.ErrNotExist) {
		// Compressed or written plain again by Codex, or gone: the sync
		// moves the row (keeping what only the index holds), or drops it
		// when the file is known absent at every form. Its hold is ours
		// (the indexing lock); the thread is loading.
		sum, err := indexer.SyncPaths(ctx, m.store, m.fsys, []string{row.RolloutPath}, indexer.SyncOptions{})
		m.logProblems(sum)
		if err != nil {
			return row, err
		}
		found, err := m.store.Get(ctx, row.ID)
		if errors.Is(err, store.ErrNotFound) {
			m.log.Warn("rollout file gone: dropped its thread from the index", "id", row.ID, "path", row.RolloutPath)
			return row, ErrNotFound
		}
		return found, err
	}
	if err != nil {
		return row, err
	}
	var archivedAt int64
	if archived {
		archivedAt = info.ModTime.UnixMilli()
	}
	if err := m.store.SetArchived(ctx, row.ID, archived, other, archivedAt); err != nil {
		return row, err
	}
	m.log.Warn("rollout file found at its other place", "id", row.ID, "path", other)
	row.RolloutPath, row.Archived, row.ArchivedAt = other, archived, archivedAt
	return m.recordFileState(ctx, row)
}

// otherPlace returns where row's file is when it is not at RolloutPath:
// archived_sessions/ for a live thread, its date folder for an archived
// one, and whether that place is the archive.
func otherPlace(row store.Thread) (rel string, archived bool) {
	name := path.Base(row.RolloutPath)
	if row.Archived {
		rel, err := rollout.SessionPath(name)
		if err != nil {
			return row.RolloutPath, true
		}
		return rel, false
	}
	return rollout.ArchivedPath(name), true
}

// catchUp brings the index row of a thread up to its file: complete lines
// past the indexed size are folded in; a file that shrank or was rewritten
// is rescanned, and rewritten says so.
func (m *Manager) catchUp(ctx context.Context, row store.Thread) (_ store.Thread, rewritten bool, _ error) {
	progress, _, err := indexer.CatchUp(ctx, m.fsys, row)
	if errors.Is(err, indexer.ErrShrunk) || errors.Is(err, indexer.ErrChanged) {
		rec, _, err := indexer.ScanFileWith(ctx, m.fsys, row.RolloutPath, m.bases())
		if err != nil {
			return row, false, err
		}
		if err := m.store.Replace(ctx, []store.Record{rec}); err != nil {
			return row, false, err
		}
		got, err := m.store.Get(ctx, row.ID)
		if err != nil {
			return row, true, err // rewritten in the index, not read back
		}
		return got, true, nil
	}
	if err != nil {
		return row, false, err
	}
	progress.UpdatedAt = max(row.UpdatedAt, progress.UpdatedAt)
	if err := m.store.Advance(ctx, progress); err != nil {
		return row, false, err
	}
	row, err = m.store.Get(ctx, row.ID)
	return row, false, err
}

// release drops a reference taken by acquire and evicts threads over
// capacity that are no longer in use.
func (m *Manager) release(lt *liveThread) {
	m.mu.Lock()
	lt.refs--
	evictNow := lt.refs == 0 && lt.evict
	if evictNow {
		m.forget(lt)
	}
	m.mu.Unlock()
	if evictNow {
		m.closeLive(lt)
	}
	m.evictOverCapacity()
	m.releaseHandles()
}

// releaseHandles closes the files of idle live threads, least recently
// used first, while more than Options.OpenFiles are open. A thread in use
// (its lock held) keeps its file.
func (m *Manager) releaseHandles() {
	if m.handles.Load() <= int64(m.opts.OpenFiles) {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for e := m.live.order.Back(); e != nil && m.handles.Load() > int64(m.opts.OpenFiles); e = e.Prev() {
		lt := e.Value.(*liveThread)
		if lt.refs > 0 || !lt.mu.TryLock() {
			continue
		}
		if lt.appender != nil {
			lt.appender.Release()
		}
		m.closeLockFile(lt)
		lt.mu.Unlock()
	}
}

// forget removes lt from the LRU. m.mu must be held.
func (m *Manager) forget(lt *liveThread) {
	if cur, ok := m.live.byID[lt.id]; ok && cur == lt {
		delete(m.live.byID, lt.id)
		m.live.order.Remove(lt.elem)
	}
}

// evictOverCapacity closes least recently used threads that are not in use
// until the live set fits the capacity.
func (m *Manager) evictOverCapacity() {
	var victims []*liveThread
	m.mu.Lock()
	for e := m.live.order.Back(); e != nil && m.live.order.Len() > m.opts.Capacity; {
		lt := e.Value.(*liveThread)
		e = e.Prev()
		if lt.refs > 0 {
			continue
		}
		m.forget(lt)
		victims = append(victims, lt)
	}
	m.mu.Unlock()
	for _, lt := range victims {
		m.closeLive(lt)
	}
}

// closeLive flushes and closes lt's file. It waits for a writer that still
// holds lt.mu, so nothing in flight is cut off.
func (m *Manager) closeLive(lt *liveThread) {
	<-lt.ready
	lt.mu.Lock()
	defer lt.mu.Unlock()
	lt.gone = true
	m.closeLockFile(lt)
	if lt.appender == nil {
		return
	}
	if err := lt.appender.Close(); err != nil {
		m.log.Error("close thread", "id", lt.id, "err", err)
	}
	lt.appender = nil
}

// invalidate drops lt from memory after an error that may have left its
// cached row behind its file; the next use reloads and catches up.
// lt.mu must be held.
func (m *Manager) invalidate(lt *liveThread) {
	m.mu.Lock()
	m.forget(lt)
	m.mu.Unlock()
	lt.gone = true
	m.closeLockFile(lt)
	if lt.appender != nil {
		lt.appender.Close()
		lt.appender = nil
	}
}

// lockWriter takes Codex's writer lock of lt for one append (docs/CODEX.md)
// through its lock file, which stays open afterwards so the next append
// takes the lock without opening it again. lt.mu must be held; call
// unlockWriter when done.
func (m *Manager) lockWriter(lt *liveThread) error {
	if lt.lockFile == nil {
		lt.lockFile = codexlock.OpenFile(m.opts.Root, lt.id)
	}
	defer m.countLockFile(lt, lt.lockFile.Open())
	return lt.lockFile.TryLock()
}

// unlockWriter releases the lock lockWriter took. lt.mu must be held.
func (m *Manager) unlockWriter(lt *liveThread) {
	if !lt.lockFile.Open() {
		return // invalidate closed it, and the lock went with it
	}
	defer m.countLockFile(lt, lt.lockFile.Open())
	if err := lt.lockFile.Unlock(); err != nil {
		m.log.Error("release writer lock", "id", lt.id, "err", err)
	}
}

// closeLockFile closes lt's lock file, if open. lt.mu must be held.
func (m *Manager) closeLockFile(lt *liveThread) {
	if lt.lockFile == nil || !lt.lockFile.Open() {
		return
	}
	defer m.countLockFile(lt, true)
	if err := lt.lockFile.Close(); err != nil {
		m.log.Error("close writer lock file", "id", lt.id, "err", err)
	}
}

// countLockFile updates Manager.handles after a call that found lt's lock
// file open (wasOpen) or not.
func (m *Manager) countLockFile(lt *liveThread, wasOpen bool) {
	switch isOpen := lt.lockFile.Open(); {
	case isOpen && !wasOpen:
		m.handles.Add(1)
	case !isOpen && wasOpen:
		m.handles.Add(-1)
	}
}

// withThread runs fn with thread id live and its lock held. It tries again
// when the thread was evicted or invalidated (a revert, an archive that
// failed) between acquire and lock, or when its file is no longer where
// it was loaded from (archived, unarchived or deleted by another process
// before the watcher said so), for as long as ctx lasts: the reload finds
// the file where it is now, and a thread that is really gone fails in
// acquire with ErrNotFound.
func (m *Manager) withThread(ctx context.Context, id string, fn func(lt *liveThread) error) error {
	for {
		// A call cancelled already changes nothing (acquire may find the
		// thread live and not look at ctx).
		if err := ctx.Err(); err != nil {
			return err
		}
		lt, err := m.acquire(ctx, id)
		if err != nil {
			return err
		}
		lt.mu.Lock()
		if !lt.gone && m.movedAway(ctx, lt) {
			m.log.Debug("live thread's file left its place", "id", lt.id, "path", lt.row.RolloutPath)
			m.invalidate(lt)
		}
		if lt.gone {
			lt.mu.Unlock()
			m.release(lt)
			continue
		}
		err = fn(lt)
		lt.mu.Unlock()
		m.release(lt)
		return err
	}
}

// movedAway reports whether lt's file is gone from the place lt holds it
// at. lt.mu must be held.
func (m *Manager) movedAway(ctx context.Context, lt *liveThread) bool {
	_, err := m.fsys.Stat(ctx, lt.row.RolloutPath)
	return errors.Is(err, fs.ErrNotExist)
}

// withWritable is withThread for a call that appends to the thread: when
// it is refused because the thread's file is compressed, the thread is
// caught up with its file (Codex writes a compressed thread again from its
// plain name before it appends to it) and fn is called once more. fn must
// change nothing when it returns ErrCompressed, as appendLocked does.
func (m *Manager) withWritable(ctx context.Context, id string, fn func(lt *liveThread) error) error {
	err := m.withThread(ctx, id, fn)
	if !errors.Is(err, ErrCompressed) {
		return err
	}
	if ferr := m.freshen(ctx, id); ferr != nil {
		return errors.Join(err, ferr)
	}
	return m.withThread(ctx, id, fn)
}

// liveCount returns the number of threads in memory.
func (m *Manager) liveCount() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.live.order.Len()
}

// openRead opens thread id's history for reading and returns its index
// row as of that moment: the thread's own file, preceded, for a thread
// that continues a base (a reference fork), by the base's history up to
// BaseSize, and so on down the chain. The returned file's positions are
// positions in the history, its size the row's HistorySize. It never
// takes a thread's writer: reads do not open appenders, cut tails or
// evict anyone. Bytes below a row's IndexedSize never change, so the
// files and the rows agree up to them.
//
// Before it trusts the index, openRead catches up the row of a file that
// another process appended to since it was indexed (freshen), so offsets
// and sizes cover every complete line written before the call.
func (m *Manager) openRead(ctx context.Context, id string) (store.Thread, rolloutfs.ReadFile, error) {
	row, f, _, err := m.openChain(ctx, id)
	return row, f, err
}

// notEmptied fails with ErrBusy when f, row's own file, is empty while the
// index holds bytes of it: another program emptied it to write it anew
// (indexer.Emptied), so the history is neither what the index holds nor
// there yet.
func notEmptied(row store.Thread, f rolloutfs.ReadFile) error {
	if rollout.IsCompressed(row.RolloutPath) || !indexer.Emptied(f.Size(), row.IndexedSize) {
		return nil
	}
	return errEmptied(row)
}

// errEmptied is the ErrBusy of a use of thread row whose own file another
// program emptied to write it anew (indexer.Emptied).
func errEmptied(row store.Thread) error {
	return fmt.Errorf("%s is empty, %d bytes indexed: another program is writing it anew: %w",
		row.RolloutPath, row.IndexedSize, ErrBusy)
}

// openReadHeld is openRead for a caller that holds thread id's lock and
// has settled its file (a revert, a materialize): the thread's own row is
// read as the index has it, not freshened. A file gone since the settle
// fails the read; freshen would wait for the lock the caller holds
// (syncChanged's checkLiveAt), for good.
func (m *Manager) openReadHeld(ctx context.Context, id string) (store.Thread, rolloutfs.ReadFile, error) {
	row, f, _, err := m.chainFrom(ctx, id, m.openOwn)
	return row, f, err
}

// openChain is openRead that also returns the history chain it read the
// history through (row's link, then its bases', for
// store.ChainUserMessage), or nil when it did not read it in one query.
//
// A file of the chain gone between reading the rows and opening it is a
// rewrite that committed meanwhile (a purge's materialize removes a
// reverted thread's earlier files once its self-contained file is
// indexed): the chain is read again, once.
func (m *Manager) openChain(ctx context.Context, id string) (store.Thread, rolloutfs.ReadFile, []store.ChainLink, error) {
	row, f, chain, err := m.chainFrom(ctx, id, m.openFresh)
	if errors.Is(err, ErrBrokenChain) {
		return m.chainFrom(ctx, id, m.openFresh)
	}
	return row, f, chain, err
}

// chainFrom is openChain with thread id's own file opened by open.
func (m *Manager) chainFrom(ctx context.Context, id string, open func(context.Context, string) (store.Thread, rolloutfs.ReadFile, error)) (store.Thread, rolloutfs.ReadFile, []store.ChainLink, error) {
	row, f, err := open(ctx, id)
	if err != nil {
		return store.Thread{}, nil, nil, err
	}
	if err := notEmptied(row, f); err != nil {
		f.Close()
		return store.Thread{}, nil, nil, err
	}
	chain := []store.ChainLink{row.Link()}
	row = m.unacked.clamp(row)
	segments := []rolloutfs.Segment{{File: f, Length: row.IndexedSize}}
	var bases []store.ChainLink // the chain below row, read in one query
	if row.BaseID != "" && row.BaseID != row.ID {
		if bases, err = m.store.BaseChain(ctx, row.BaseID); err != nil {
			f.Close()
			return store.Thread{}, nil, nil, err
		}
	}
	chain = append(chain, bases...)
	// ownFiles puts before the segments the earlier files of thread base
	// (a reverted thread) below limit, and returns where the history goes
	// on below them.
	ownFiles := func(base string, limit int64) (string, int64, error) {
		links, next, nextLimit, err := m.openLinks(ctx, base, limit)
		if err != nil {
			closeSegments(segments)
			return "", 0, err
		}
		segments = append(links, segments...)
		return next, nextLimit, nil
	}
	for base, limit, depth := row.BaseID, row.BaseSize, 0; base != ""; depth++ {
		if depth > maxChain {
			closeSegments(segments)
			return store.Thread{}, nil, nil, fmt.Errorf("history of %s: %w", id, ErrBrokenChain)
		}
		if base == id {
			// A revert segment: the history continues in the thread's own
			// earlier files.
			next, nextLimit, err := ownFiles(base, limit)
			if err != nil {
				return store.Thread{}, nil, nil, err
			}
			base, limit, id = next, nextLimit, base
			continue
		}
		var known *store.ChainLink
		if depth < len(bases) && bases[depth].ID == base {
			known = &bases[depth]
		}
		brow, bf, err := m.openBase(ctx, base, known)
		if err == nil && limit-brow.BaseSize > brow.IndexedSize {
			// The fork was made from lines of its base that the index has
			// not seen yet (Codex forked a thread it had just written).
			bf.Close()
			known = nil // the link is stale: its row is read again
			if err = m.freshen(ctx, base); err == nil {
				brow, bf, err = m.openOwn(ctx, base)
			}
		}
		if errors.Is(err, ErrNotFound) {
			err = fmt.Errorf("base %s of %s: %w", base, id, ErrBrokenChain)
		}
		if err == nil {
			if err = notEmptied(brow, bf); err != nil {
				bf.Close()
			}
		}
		if err != nil {
			closeSegments(segments)
			return store.Thread{}, nil, nil, err
		}
		if known == nil {
			chain = nil // the query's chain does not describe this link
		}
		own := limit - brow.BaseSize // how much of the base's own file
		if own < 0 && brow.BaseID == brow.ID {
			// The cut lies in an earlier file of a reverted base.
			bf.Close()
			next, nextLimit, err := ownFiles(base, limit)
			if err != nil {
				return store.Thread{}, nil, nil, err
			}
			base, limit, id = next, nextLimit, base
			continue
		}
		if own < 0 || own > brow.IndexedSize {
			bf.Close()
			closeSegments(segments)
			return store.Thread{}, nil, nil, fmt.Errorf("base %s of %s ends at %d, outside its history [%d, %d]: %w",
				base, id, limit, brow.BaseSize, brow.HistorySize(), ErrBrokenChain)
		}
		if err := endsLine(bf, own, brow.RolloutPath); err != nil {
			bf.Close()
			closeSegments(segments)
			return store.Thread{}, nil, nil, fmt.Errorf("base %s of %s at %d: %w", base, id, limit, err)
		}
		segments = append([]rolloutfs.Segment{{File: bf, Length: own}}, segments...)
		base, limit, id = brow.BaseID, brow.BaseSize, base
	}
	if len(segments) == 1 {
		return row, f, chain, nil
	}
	return row, rolloutfs.Concat(segments...), chain, nil
}

// openLinks opens the files of thread id, a thread in several files (a
// reverted thread), that hold its history below limit: its chain links
// (store.Segments) that start below limit, the last one cut at limit. It
// returns them with the base of the first link, where the history goes on.
func (m *Manager) openLinks(ctx context.Context, id string, limit int64) (links []rolloutfs.Segment, base string, baseLimit int64, err error) {
	segs, err := m.store.Segments(ctx, id)
	if err != nil {
		return nil, "", 0, err
	}
	var chain []store.Segment
	for _, s := range segs {
		if s.InChain() && s.BaseSize < limit {
			chain = append(chain, s)
		}
	}
	if len(chain) == 0 || chain[len(chain)-1].BaseSize+chain[len(chain)-1].Length < limit {
		return nil, "", 0, fmt.Errorf("history of %s below %d: no file of the thread holds it: %w", id, limit, ErrBrokenChain)
	}
	for i, s := range chain {
		end := s.BaseSize + s.Length
		if i == len(chain)-1 {
			end = limit
		}
		f, err := m.openSegment(ctx, s.RolloutPath)
		if errors.Is(err, fs.ErrNotExist) {
			err = fmt.Errorf("segment %s of %s: %w", s.RolloutPath, id, ErrBrokenChain)
		}
		if err == nil && i == len(chain)-1 {
			if err = endsLine(f, end-s.BaseSize, s.RolloutPath); err != nil {
				f.Close()
				err = fmt.Errorf("history of %s below %d: %w", id, limit, err)
			}
		}
		if err != nil {
			closeSegments(links)
			return nil, "", 0, err
		}
		links = append(links, rolloutfs.Segment{File: f, Length: end - s.BaseSize})
	}
	return links, chain[0].BaseID, chain[0].BaseSize, nil
}

// endsLine fails with ErrBrokenChain when the first n bytes of f, a base's
// own file, do not end a line: a fork is cut between lines, so its base's
// bytes below the cut end in a newline unless the base's history changed
// under the fork. Codex reverts a thread whatever forks continue it past
// the cut (spool refuses to), and its forks go on naming the first file,
// which spool's rows read through the new segment (docs/SCHEMA.md, "Not
// covered"): without this check a read streamed a line cut in the middle,
// the segment's meta, as part of the fork's history. A compressed file is
// not checked (a read at its end decodes all of it).
func endsLine(f io.ReaderAt, n int64, rel string) error {
	if n <= 0 || rollout.IsCompressed(rel) {
		return nil
	}
	var b [1]byte
	if _, err := f.ReadAt(b[:], n-1); err != nil {
		return err
	}
	if b[0] != '\n' {
		return fmt.Errorf("its history no longer has a line end there (reverted under the fork?): %w", ErrBrokenChain)
	}
	return nil
}

// maxChain bounds how many bases a history may have: a longer chain is
// taken for a cycle.
const maxChain = 10000

func closeSegments(segments []rolloutfs.Segment) {
	for _, s := range segments {
		s.File.Close()
	}
}

// openBase is openOwn for a base whose chain link the caller read already
// (known, nil for none): the file is opened at the link's path under the
// place lock, and only when it is no longer there (an archive or
// unarchive moved it since the link was read) is the row read. The row
// returned for a known link holds the link's fields alone.
func (m *Manager) openBase(ctx context.Context, id string, known *store.ChainLink) (store.Thread, rolloutfs.ReadFile, error) {
	if known == nil {
		return m.openOwn(ctx, id)
	}
	place := m.placeLock(id)
	place.RLock()
	f, err := indexer.OpenRollout(ctx, m.fsys, known.RolloutPath)
	place.RUnlock()
	if err == nil {
		row := store.Thread{ID: known.ID, RolloutPath: known.RolloutPath, Archived: known.Archived,
			BaseID: known.BaseID, BaseSize: known.BaseSize, IndexedSize: known.IndexedSize}
		return row, f, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return store.Thread{}, nil, err
	}
	return m.openOwn(ctx, id)
}

// openFresh is freshen followed by openOwn, with the row read once when
// the file is as the index last saw it (the common case): under the place
// lock, the row is read, the file stated and opened. A file that changed
// is caught up first, then opened by openOwn.
func (m *Manager) openFresh(ctx context.Context, id string) (store.Thread, rolloutfs.ReadFile, error) {
	place := m.placeLock(id)
	place.RLock()
	row, err := m.store.Get(ctx, id)
	if err != nil {
		place.RUnlock()
		return store.Thread{}, nil, err
	}
	changed, err := m.fileChanged(ctx, row)
	if err != nil || changed {
		place.RUnlock()
		if err == nil {
			err = m.syncChanged(ctx, row)
		}
		if err != nil {
			return store.Thread{}, nil, err
		}
		return m.openOwn(ctx, id)
	}
	defer place.RUnlock()
	f, err := m.openRowFile(ctx, row)
	return row, f, err
}

// openOwn opens thread id's own file for reading, under its place lock: an
// archive or unarchive cannot move the file between reading the row and
// opening it. A file left at its other place by a move that failed half
// way is read from there. A compressed rollout is opened decompressed
// (indexer.OpenRollout): reads decode from the start and skip.
func (m *Manager) openOwn(ctx context.Context, id string) (store.Thread, rolloutfs.ReadFile, error) {
	place := m.placeLock(id)
	place.RLock()
	defer place.RUnlock()
	row, err := m.store.Get(ctx, id)
	if err != nil {
		return store.Thread{}, nil, err
	}
	f, err := m.openRowFile(ctx, row)
	if err != nil {
		return store.Thread{}, nil, err
	}
	return row, f, nil
}

// openRowFile opens row's file, at its other place when a move that
// failed half way left it there. The caller holds the place lock.
func (m *Manager) openRowFile(ctx context.Context, row store.Thread) (rolloutfs.ReadFile, error) {
	f, err := indexer.OpenRollout(ctx, m.fsys, row.RolloutPath)
	if !errors.Is(err, fs.ErrNotExist) {
		return f, err
	}
	other, _ := otherPlace(row)
	if f, err := indexer.OpenRollout(ctx, m.fsys, other); err == nil {
		return f, nil
	}
	return nil, fmt.Errorf("%s: %w", row.RolloutPath, ErrNotFound)
}

// freshen brings thread id's index row up to its own file when the file is
// not as the index last saw it: another process appended, cut or rewrote
// it. It only stats the file when nothing changed. It is a read: it never
// writes the file (a torn tail stays, not part of the thread), opens no
// appender and takes no writer lock; a live thread whose file changed
// under it is dropped from memory (its next use reloads it) so that the
// sync may write its row. A thread held by a load or another sync at that
// moment is left to them.
func (m *Manager) freshen(ctx context.Context, id string) error {
	row, err := m.store.Get(ctx, id)
	if err != nil {
		return err
	}
	changed, err := m.fileChanged(ctx, row)
	if err != nil || !changed {
		return err
	}
	return m.syncChanged(ctx, row)
}

// fileChanged reports whether row's file is not as the index last saw it:
// it changed, or it is gone from row's path, moved (indexer.OtherForms:
// Codex archived or unarchived it, compressed it, or writes a compressed
// one again from its plain name) or deleted (by Codex's thread/delete).
// A compressed file is otherwise never caught up.
func (m *Manager) fileChanged(ctx context.Context, row store.Thread) (bool, error) {
	info, err := m.fsys.Stat(ctx, row.RolloutPath)
	if errors.Is(err, fs.ErrNotExist) {
		return true, nil
	}
	if err != nil {
		return false, err
	}
	if rollout.IsCompressed(row.RolloutPath) {
		return m.exists(ctx, rollout.PlainName(row.RolloutPath)), nil
	}
	return info.Size != row.FileSize || info.ModTime.UnixNano() != row.FileMtime, nil
}

// syncChanged catches up the row of a file fileChanged found changed.
func (m *Manager) syncChanged(ctx context.Context, row store.Thread) error {
	if lt := m.peekLive(ctx, row.ID); lt != nil {
		// A plain form beside a compressed file wins, however unchanged
		// the compressed one is: Codex publishes it before it removes the
		// .zst, and a Codex stopped in between leaves both.
		rel := row.RolloutPath
		if rollout.IsCompressed(rel) {
			rel = rollout.PlainName(rel)
		}
		same := m.checkLiveAt(ctx, lt, rel)
		m.release(lt)
		if same {
			return nil
		}
	}
	// A file gone from its path is looked for at its other forms by the
	// sync itself (indexer.OtherForms); a compressed one's plain form
	// beside it is not gone, and wins.
	paths := []string{row.RolloutPath}
	if rollout.IsCompressed(row.RolloutPath) {
		paths = append(paths, rollout.PlainName(row.RolloutPath))
	}
	sum, err := indexer.SyncPaths(ctx, m.store, m.fsys, paths, indexer.SyncOptions{Hold: m.holdSync})
	m.logProblems(sum)
	m.announceRewrites(ctx, sum.Rewritten)
	return err
}

// exists reports whether the rollout file rel exists.
func (m *Manager) exists(ctx context.Context, rel string) bool {
	_, err := m.fsys.Stat(ctx, rel)
	return err == nil
}

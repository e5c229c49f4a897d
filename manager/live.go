package manager

import (
	"container/list"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	"github.com/spoolhq/spool/indexer"
	"github.com/spoolhq/spool/rollout"
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
	appender *rollout.Appender
	row      Thread
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

// load rehydrates lt from its index row and file: it opens the appender
// (cutting a torn tail) and catches the index up if the file holds
// complete lines the index has not seen.
func (m *Manager) load(ctx context.Context, lt *liveThread) error {
	row, err := m.store.Get(ctx, lt.id)
	if err != nil {
		return fmt.Errorf("load thread %s: %w", lt.id, err)
	}
	path := m.abs(row.RolloutPath)
	app, torn, err := rollout.OpenAppender(ctx, path, rollout.AppenderOptions{Policy: m.opts.Sync, Group: m.group})
	if err != nil {
		return fmt.Errorf("load thread %s: %w", lt.id, err)
	}
	if torn != nil {
		m.keepTorn(path, torn)
		// The file shrank to its last complete line: the index must say so,
		// or it disagrees with the file until the next append.
		info, err := os.Stat(path)
		if err == nil {
			err = m.store.SetFileState(ctx, lt.id, info.Size(), info.ModTime().UnixNano())
		}
		if err != nil {
			app.Close()
			return fmt.Errorf("load thread %s: record cut tail: %w", lt.id, err)
		}
		row.FileSize, row.FileMtime = info.Size(), info.ModTime().UnixNano()
	}
	if app.Size() != row.IndexedSize {
		row, err = m.catchUp(ctx, row)
		if err != nil {
			app.Close()
			return fmt.Errorf("load thread %s: %w", lt.id, err)
		}
	}
	lt.appender = app
	lt.row = row
	return nil
}

// catchUp brings the index row of a thread up to its file: complete lines
// past the indexed size are folded in; a file that shrank or was rewritten
// is rescanned.
func (m *Manager) catchUp(ctx context.Context, row Thread) (Thread, error) {
	progress, _, err := indexer.CatchUp(ctx, m.opts.Root, row)
	if errors.Is(err, indexer.ErrShrunk) || errors.Is(err, indexer.ErrChanged) {
		rec, _, err := indexer.ScanFile(ctx, m.opts.Root, row.RolloutPath)
		if err != nil {
			return row, err
		}
		if err := m.store.Replace(ctx, []store.Record{rec}); err != nil {
			return row, err
		}
		return m.store.Get(ctx, row.ID)
	}
	if err != nil {
		return row, err
	}
	progress.UpdatedAt = max(row.UpdatedAt, progress.UpdatedAt)
	if err := m.store.Advance(ctx, progress); err != nil {
		return row, err
	}
	return m.store.Get(ctx, row.ID)
}

// keepTorn saves bytes cut from a torn tail beside the rollout, so nothing
// a crashed writer left behind is destroyed. The side file's name does not
// look like a rollout, so it is never indexed.
func (m *Manager) keepTorn(path string, torn *rollout.TornTail) {
	side := fmt.Sprintf("%s.torn-%d", path, m.opts.Now().UnixNano())
	if err := os.WriteFile(side, torn.Data, 0o600); err != nil {
		m.log.Error("keep torn tail", "path", path, "offset", torn.Offset, "err", err)
		return
	}
	m.log.Warn("cut torn tail", "path", path, "offset", torn.Offset, "bytes", len(torn.Data), "kept", filepath.Base(side))
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
	if lt.appender != nil {
		lt.appender.Close()
		lt.appender = nil
	}
}

// withThread runs fn with thread id live and its lock held. It retries
// once when the thread was evicted or invalidated between acquire and lock.
func (m *Manager) withThread(ctx context.Context, id string, fn func(lt *liveThread) error) error {
	for attempt := 0; ; attempt++ {
		lt, err := m.acquire(ctx, id)
		if err != nil {
			return err
		}
		lt.mu.Lock()
		if lt.gone {
			lt.mu.Unlock()
			m.release(lt)
			if attempt < 3 {
				continue
			}
			return fmt.Errorf("thread %s: %w", id, ErrNotFound)
		}
		err = fn(lt)
		lt.mu.Unlock()
		m.release(lt)
		return err
	}
}

// liveCount returns the number of threads in memory.
func (m *Manager) liveCount() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.live.order.Len()
}

// openFile opens thread id's rollout for reading under the thread's lock
// and returns the row as of that moment. Archive and unarchive move files
// under the same lock, and an open file survives a later move, so the file
// and the row always agree.
func (m *Manager) openFile(ctx context.Context, id string) (Thread, *os.File, error) {
	var (
		row Thread
		f   *os.File
	)
	err := m.withThread(ctx, id, func(lt *liveThread) error {
		var err error
		row = lt.row
		f, err = os.Open(m.abs(row.RolloutPath))
		return err
	})
	return row, f, err
}

package manager

import (
	"context"
	"hash/fnv"
	"slices"
	"sync"
	"time"

	"github.com/spoolhq/spool/indexer"
)

// reconcile syncs the index with the whole root, as Open promises, and
// records the layout it found for a clean close (m.layout). It removes the
// temporary files of creates a crash cut short: those no writer holds
// (another process sharing the root may have creates under way; they are
// left), and only those older than tempsBefore when it is set (a writer
// older than the flocks on temporary files holds none).
//
// An index that asks for a full rescan (a migration left rows only a
// rescan completes) gets one, and the request is cleared.
//
// inOpen is true when Open runs it before it returns: no thread is live
// and nothing else of the manager writes yet, so the sync takes no holds
// and writes its rows in batches. Beside live threads it takes each
// thread's hold, and a rescanned row is written in a transaction of its
// own before the hold is released.
func (m *Manager) reconcile(ctx context.Context, tempsBefore time.Time, inOpen bool) (indexer.Summary, error) {
	rescan, why, err := m.store.RescanNeeded(ctx)
	if err != nil {
		return indexer.Summary{}, err
	}
	if rescan {
		m.log.Info("rescanning every rollout once", "why", why)
	}
	layout := m.recordLayout(ctx)
	opts := indexer.SyncOptions{
		RemoveTemps: true,
		TempsBefore: tempsBefore,
		Full:        rescan,
		FirstIndex:  true,
	}
	if !inOpen {
		opts.Hold = m.holdSync
	}
	if layout != nil {
		opts.Dir = layout.dir
	}
	sum, err := indexer.Sync(ctx, m.store, m.fsys, opts)
	if err == nil && rescan {
		err = m.store.RescanDone(ctx)
	}
	if err != nil {
		return sum, err
	}
	m.layout = layout.done()
	m.logProblems(sum)
	m.log.Info("reconciled store", "root", m.opts.Root, "index", m.opts.IndexPath, "files", sum.Files, "caught_up", sum.CaughtUp,
		"scanned", sum.Scanned, "moved", sum.Moved, "deleted", sum.Deleted, "temps_removed", sum.TempsRemoved, "duration", sum.Duration)
	return sum, nil
}

func (m *Manager) logProblems(sum indexer.Summary) {
	for _, p := range sum.Problems {
		m.log.Warn("rollout problem", "path", p.Path, "offset", p.Offset, "kind", p.Kind, "detail", p.Detail)
	}
}

// indexLock returns the lock that serializes writers of thread id's row
// who read its file without holding the thread (see Manager.indexing).
func (m *Manager) indexLock(id string) *sync.Mutex {
	return &m.indexing[m.indexStripe(id)]
}

// indexStripe returns the index in m.indexing of thread id's lock.
func (m *Manager) indexStripe(id string) int {
	h := fnv.New32a()
	h.Write([]byte(id))
	return int(h.Sum32() % uint32(len(m.indexing)))
}

// lockIndexes takes the indexing locks of the threads ids ("" names none)
// and returns their unlock. Threads may share a lock: each is taken once,
// and in order, so two callers of several cannot deadlock.
func (m *Manager) lockIndexes(ids ...string) (unlock func()) {
	var stripes []int
	for _, id := range ids {
		if id != "" {
			stripes = append(stripes, m.indexStripe(id))
		}
	}
	slices.Sort(stripes)
	stripes = slices.Compact(stripes)
	for _, s := range stripes {
		m.indexing[s].Lock()
	}
	return func() {
		for _, s := range slices.Backward(stripes) {
			m.indexing[s].Unlock()
		}
	}
}

// holdSync is indexer.SyncOptions.Hold for background syncs: a live
// thread is its own (its load caught it up; its appends settle what
// others wrote before writing), any other is held by its indexing lock,
// which load and creates take too.
func (m *Manager) holdSync(id string) (release func(), skip bool) {
	if m.isLive(id) {
		return nil, true
	}
	mu := m.indexLock(id)
	mu.Lock()
	if m.isLive(id) { // loaded while we waited: its load read the row
		mu.Unlock()
		return nil, true
	}
	return mu.Unlock, false
}

// isLive reports whether thread id is in memory (loaded or loading).
func (m *Manager) isLive(id string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	_, ok := m.live.byID[id]
	return ok
}

// report calls Options.OnSync, if set.
func (m *Manager) report(r SyncReport) {
	if m.opts.OnSync != nil {
		m.opts.OnSync(r)
	}
}

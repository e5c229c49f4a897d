package manager

import (
	"sync"

	"github.com/spoolhq/spool/store"
)

// unackedSizes holds, per thread, the indexed size of its file before an
// append whose index update may commit before its sync is done (SyncBatch
// overlaps the two). Readers clamp the rows they read to it, so that no
// read returns lines that are not acknowledged yet: lines a failed sync
// then cuts were never seen. It is safe for concurrent use.
type unackedSizes struct {
	mu    sync.Mutex              // guards sizes
	sizes map[string]unackedEntry // by thread id
}

type unackedEntry struct {
	indexedSize int64 // the smallest held
	holds       int   // appends holding it (a reloaded thread may overlap the old)
}

// hold records that an append to thread id beyond indexedSize is not
// acknowledged yet. Each hold is undone by one release.
func (u *unackedSizes) hold(id string, indexedSize int64) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.sizes == nil {
		u.sizes = make(map[string]unackedEntry)
	}
	e, ok := u.sizes[id]
	if !ok || indexedSize < e.indexedSize {
		e.indexedSize = indexedSize
	}
	e.holds++
	u.sizes[id] = e
}

// release undoes one hold of thread id.
func (u *unackedSizes) release(id string) {
	u.mu.Lock()
	defer u.mu.Unlock()
	e := u.sizes[id]
	if e.holds <= 1 {
		delete(u.sizes, id)
		return
	}
	e.holds--
	u.sizes[id] = e
}

// clamp returns row without the lines of appends to it that are not
// acknowledged. Call it after reading row from the index: an append holds
// before its index update commits and releases after it is acknowledged.
func (u *unackedSizes) clamp(row store.Thread) store.Thread {
	u.mu.Lock()
	e, ok := u.sizes[row.ID]
	u.mu.Unlock()
	if ok && e.indexedSize < row.IndexedSize {
		row.IndexedSize = e.indexedSize
	}
	return row
}

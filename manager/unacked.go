package manager

import (
	"slices"
	"sync"

	"github.com/spoolhq/spool/store"
)

// unackedSizes holds, per thread, its row before an append whose index
// update may commit before its sync is done (SyncBatch overlaps the two).
// Readers clamp the rows they read to it, so that no read returns lines
// that are not acknowledged yet, nor counts them: lines a failed sync then
// cuts were never seen. It is safe for concurrent use.
type unackedSizes struct {
	mu    sync.Mutex              // guards sizes
	sizes map[string]unackedEntry // by thread id
}

type unackedEntry struct {
	acked store.Thread // the held row with the smallest IndexedSize
	holds int          // appends holding it (a reloaded thread may overlap the old)
}

// hold records that an append to thread row.ID beyond row, its row as
// acknowledged, is not acknowledged yet. Each hold is undone by one
// release.
func (u *unackedSizes) hold(row store.Thread) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.sizes == nil {
		u.sizes = make(map[string]unackedEntry)
	}
	e, ok := u.sizes[row.ID]
	if !ok || row.IndexedSize < e.acked.IndexedSize {
		e.acked = row
	}
	e.holds++
	u.sizes[row.ID] = e
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

// acked returns the row of thread id as acknowledged while an append to
// it is not, and whether one is not.
func (u *unackedSizes) acked(id string) (store.Thread, bool) {
	u.mu.Lock()
	defer u.mu.Unlock()
	e, ok := u.sizes[id]
	return e.acked, ok
}

// clampMessages returns msgs, user messages of thread id read from the
// index, without those of an append not acknowledged yet: past the
// acknowledged count or history. Call it after reading msgs.
func (u *unackedSizes) clampMessages(id string, msgs []store.UserMessage) []store.UserMessage {
	acked, ok := u.acked(id)
	if !ok {
		return msgs
	}
	return slices.DeleteFunc(msgs, func(m store.UserMessage) bool {
		return m.Ordinal >= acked.UserMessageCount || m.Offset >= acked.HistorySize()
	})
}

// clampHits returns hits, read from the index, without those in messages
// of appends not acknowledged yet. Call it after reading hits.
func (u *unackedSizes) clampHits(hits []store.SearchHit) []store.SearchHit {
	return slices.DeleteFunc(hits, func(h store.SearchHit) bool {
		acked, ok := u.acked(h.ThreadID)
		return ok && h.Ordinal >= acked.UserMessageCount
	})
}

// clampRelatives clamps the rows of rels (clamp), read from the index.
func (u *unackedSizes) clampRelatives(rels []store.Relative) []store.Relative {
	for i, r := range rels {
		if r.Thread != nil {
			t := u.clamp(*r.Thread)
			rels[i].Thread = &t
		}
	}
	return rels
}

// clamp returns row without the lines of appends to it that are not
// acknowledged: its extent (size, line and message counts, and the rest
// an append moves) as acknowledged. Call it after reading row from the
// index: an append holds before its index update commits and releases
// after it is acknowledged.
func (u *unackedSizes) clamp(row store.Thread) store.Thread {
	u.mu.Lock()
	e, ok := u.sizes[row.ID]
	u.mu.Unlock()
	if ok && e.acked.IndexedSize < row.IndexedSize {
		row = withProgressOf(row, e.acked)
	}
	return row
}

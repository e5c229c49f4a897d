package store

import (
	"slices"
	"sync"
	"sync/atomic"
)

// pageCache keeps the pages List read since the index last changed: the
// newest page of a busy listing is asked for far more often than anything
// is written, and reading it again costs a query of fifty rows.
//
// Every write of the store's writer connection calls changed after it
// commits. A page is kept under the generation read before its query ran
// and served only while the generation is unchanged, so a page read
// concurrently with a commit is never served once the commit is visible.
// This holds because a writable Store is the index's only writer: its
// callers hold the index lock (manager.Open, reindex). A read-only Store,
// whose index another process writes, does not cache.
type pageCache struct {
	gen atomic.Uint64

	mu    sync.Mutex
	at    uint64           // guarded by mu: the generation pages were read at
	pages map[pageKey]Page // guarded by mu

	// afterRead, when set (by tests), runs between a page's query and
	// its put.
	afterRead func()
}

// maxCachedPages bounds the cache: past it, the pages are dropped and the
// cache fills again.
const maxCachedPages = 64

// pageKey is a normalized ListOptions, comparable by value.
type pageKey struct {
	opts              ListOptions // Archived and Spawned nil
	archived, spawned int8        // -1 false, 1 true, 0 either
}

func keyOf(o ListOptions) pageKey {
	k := pageKey{opts: o, archived: tristate(o.Archived), spawned: tristate(o.Spawned)}
	k.opts.Archived, k.opts.Spawned = nil, nil
	return k
}

// tristate is b as -1 (false), 1 (true) or 0 (nil).
func tristate(b *bool) int8 {
	switch {
	case b == nil:
		return 0
	case *b:
		return 1
	}
	return -1
}

// changed records that the index changed: every page read before is stale.
func (c *pageCache) changed() { c.gen.Add(1) }

// generation returns the generation a page read from now on belongs to.
func (c *pageCache) generation() uint64 { return c.gen.Load() }

// get returns a copy of the page cached under k at generation gen.
func (c *pageCache) get(k pageKey, gen uint64) (Page, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	p, ok := c.pages[k]
	if !ok || c.at != gen {
		return Page{}, false
	}
	return Page{Threads: slices.Clone(p.Threads), NextCursor: p.NextCursor}, true
}

// put caches a copy of page, read under k at generation gen, unless the
// index changed since.
func (c *pageCache) put(k pageKey, gen uint64, page Page) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if gen != c.gen.Load() {
		return
	}
	if c.pages == nil || c.at != gen || len(c.pages) >= maxCachedPages {
		c.pages, c.at = make(map[pageKey]Page), gen
	}
	c.pages[k] = Page{Threads: slices.Clone(page.Threads), NextCursor: page.NextCursor}
}

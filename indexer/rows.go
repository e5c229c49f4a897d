package indexer

import (
	"context"
	"sort"

	"github.com/spoolhq/spool/store"
)

// rowPageSize is how many index rows a rowCursor reads per query.
const rowPageSize = 512

// keyRange is the rollout paths p with lo <= p < hi, in byte order; hi ""
// means no upper bound.
type keyRange struct{ lo, hi string }

// ownedRanges returns, in order, the ranges of rollout paths that the
// listing of directory d accounts for: everything under d/ except what is
// under a subdirectory the walk visits on its own (for the root: every path
// outside those subdirectories). Over a whole walk these ranges partition
// the key space, so every index row is met exactly once: as the row of a
// rollout file, or as an orphan (its file, or its whole directory, is gone,
// or it lies outside the layout).
//
// '0' is the byte after '/', so [dir+"/", dir+"0") is everything under dir.
func ownedRanges(d layoutDir) []keyRange {
	lo, hi, prefix := "", "", ""
	if d.rel != "" {
		prefix = d.rel + "/"
		lo, hi = prefix, d.rel+"0"
	}
	subs := make([]string, len(d.walked))
	for i, name := range d.walked {
		subs[i] = prefix + name + "/"
	}
	// By the prefixes, not the names: "a-b/" sorts before "a/".
	sort.Strings(subs)
	var ranges []keyRange
	for _, sub := range subs {
		if sub > lo {
			ranges = append(ranges, keyRange{lo, sub})
		}
		lo = sub[:len(sub)-1] + "0"
	}
	if hi == "" || lo < hi {
		ranges = append(ranges, keyRange{lo, hi})
	}
	return ranges
}

// rowCursor streams the index rows in a list of ordered, disjoint key
// ranges, one page at a time.
type rowCursor struct {
	st     *store.Store
	ranges []keyRange // still to read; ranges[0].lo advances as pages are read
	page   []store.IndexedFile
	next   int // index in page of the row peek returns
}

func newRowCursor(st *store.Store, ranges []keyRange) *rowCursor {
	return &rowCursor{st: st, ranges: ranges}
}

// peek returns the next row without consuming it, or nil at the end. The
// row is valid until the next call of pop.
func (c *rowCursor) peek(ctx context.Context) (*store.IndexedFile, error) {
	for c.next >= len(c.page) {
		if len(c.ranges) == 0 {
			return nil, nil
		}
		r := &c.ranges[0]
		page, err := c.st.IndexedFiles(ctx, r.lo, r.hi, rowPageSize)
		if err != nil {
			return nil, err
		}
		c.page, c.next = page, 0
		if len(page) < rowPageSize {
			c.ranges = c.ranges[1:]
		} else {
			r.lo = page[len(page)-1].RolloutPath + "\x00" // the smallest path after it
		}
	}
	return &c.page[c.next], nil
}

// pop consumes the row peek returned.
func (c *rowCursor) pop() { c.next++ }

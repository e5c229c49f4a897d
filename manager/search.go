package manager

import (
	"context"
)

// SearchPage runs a search (the query language of store.ParseQuery) and
// returns one page of hits, each with its thread's name; o.Cursor is the
// previous page's NextCursor. A query that does not parse fails with an
// error wrapping ErrBadQuery, an empty one ErrEmptyQuery, a cursor not
// from a previous page ErrBadCursor; each also wraps ErrInvalidArgument.
func (m *Manager) SearchPage(ctx context.Context, o SearchOptions) (SearchPage, error) {
	if err := m.begin(); err != nil {
		return SearchPage{}, err
	}
	defer m.ops.Done()
	if o.ThreadID != "" {
		id, err := parseID("search in", o.ThreadID)
		if err != nil {
			return SearchPage{}, err
		}
		o.ThreadID = id
	}
	page, err := m.store.SearchPage(ctx, o) // its errors name the query
	if err != nil {
		return SearchPage{}, markInvalid(err)
	}
	return SearchPage{Hits: searchHitsOf(m.unacked.clampHits(page.Hits)), NextCursor: page.NextCursor}, nil
}

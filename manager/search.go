package manager

import (
	"context"

	"github.com/spoolhq/spool/store"
)

// SearchPage runs a search (the query language of store.ParseQuery) and
// returns one page of hits, each with its thread's name; o.Cursor is the
// previous page's NextCursor. A query that does not parse fails with an
// error wrapping store.ErrBadQuery.
func (m *Manager) SearchPage(ctx context.Context, o store.SearchOptions) (store.SearchPage, error) {
	if o.ThreadID != "" {
		id, err := parseID("search in", o.ThreadID)
		if err != nil {
			return store.SearchPage{}, err
		}
		o.ThreadID = id
	}
	return m.store.SearchPage(ctx, o) // its errors name the query
}

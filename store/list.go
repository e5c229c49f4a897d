package store

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
)

// Page size limits of List.
const (
	DefaultListLimit = 50
	MaxListLimit     = 1000
)

// cursor is the decoded form of Page.NextCursor: the sort order it was made
// for and the (sort value, id) of the last thread of the page.
type cursor struct {
	Sort      SortField `json:"s"`
	Ascending bool      `json:"a"`
	Value     int64     `json:"v"`
	ID        string    `json:"id"`
}

func (c cursor) encode() string {
	b, err := json.Marshal(c)
	if err != nil {
		panic(fmt.Sprintf("encode cursor: %v", err)) // a struct of plain fields always marshals
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// errNotACursor says what to do with a cursor this store did not make:
// its bytes are opaque, so how they fail to decode says nothing useful.
var errNotACursor = fmt.Errorf("%w: not a next_cursor of a page (pass it as it came)", ErrBadCursor)

func decodeCursor(s string) (cursor, error) {
	var c cursor
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return cursor{}, errNotACursor
	}
	if err := json.Unmarshal(b, &c); err != nil || c.ID == "" {
		return cursor{}, errNotACursor
	}
	return c, nil
}

// likeEscaper escapes LIKE wildcards and the escape character itself.
var likeEscaper = strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)

// List returns one page of threads by keyset pagination (never OFFSET).
// Pages are stable when many threads share a timestamp (ties break by id).
// A cursor made for another sort field or direction fails with ErrBadCursor.
func (s *Store) List(ctx context.Context, o ListOptions) (Page, error) {
	o, err := normalizeList(o)
	if err != nil {
		return Page{}, fmt.Errorf("list threads: %w", err)
	}
	if s.writer == nil {
		return s.list(ctx, o)
	}
	// A cached page answers without a query, so without the query's
	// check of ctx: a call already canceled fails as it would uncached.
	if err := ctx.Err(); err != nil {
		return Page{}, fmt.Errorf("list threads: %w", err)
	}
	k, gen := keyOf(o), s.pages.generation()
	if page, ok := s.pages.get(k, gen); ok {
		return page, nil
	}
	page, err := s.list(ctx, o)
	if s.pages.afterRead != nil {
		s.pages.afterRead()
	}
	if err == nil {
		s.pages.put(k, gen, page)
	}
	return page, err
}

// list reads List's page from the index, o normalized.
func (s *Store) list(ctx context.Context, o ListOptions) (Page, error) {
	q, args, err := listQuery(o)
	if err != nil {
		return Page{}, fmt.Errorf("list threads: %w", err)
	}
	threads, err := s.queryThreads(ctx, make([]Thread, 0, o.Limit+1), q, args...)
	if err != nil {
		return Page{}, fmt.Errorf("list threads: %w", err)
	}
	page := Page{Threads: threads}
	if len(threads) > o.Limit {
		page.Threads = threads[:o.Limit]
		last := page.Threads[o.Limit-1]
		value := last.UpdatedAt
		if o.SortBy == SortCreated {
			value = last.CreatedAt
		}
		page.NextCursor = cursor{Sort: o.SortBy, Ascending: o.Ascending, Value: value, ID: last.ID}.encode()
	}
	return page, nil
}

// normalizeList applies the defaults of o's zero fields and checks SortBy.
func normalizeList(o ListOptions) (ListOptions, error) {
	if o.SortBy == "" {
		o.SortBy = SortUpdated
	}
	if o.SortBy != SortUpdated && o.SortBy != SortCreated {
		return o, fmt.Errorf("unknown sort field %q", o.SortBy)
	}
	if o.Limit <= 0 {
		o.Limit = DefaultListLimit
	}
	o.Limit = min(o.Limit, MaxListLimit)
	return o, nil
}

// ownOrder reports whether normalized options filter by a column with an
// index in their sort order: cwd (threads_cwd_updated, threads_cwd_created),
// or source or model_provider sorted by creation (migration 00018).
func ownOrder(o ListOptions) bool {
	return o.Cwd != "" || (o.SortBy == SortCreated && (o.Source != "" || o.ModelProvider != ""))
}

// listQuery returns the SQL and arguments of a page for normalized options.
// It fetches one row more than the limit to tell whether a next page exists.
func listQuery(o ListOptions) (string, []any, error) {
	o, err := normalizeList(o)
	if err != nil {
		return "", nil, err
	}
	// SortBy is one of two constants, so it is safe to splice in.
	col := string(o.SortBy)
	dir, cmp := "DESC", "<"
	if o.Ascending {
		dir, cmp = "ASC", ">"
	}

	var where []string
	var args []any
	if o.Archived != nil {
		// A literal, not a bound value: SQLite re-plans a statement whose
		// bound value meets an analyzed index column on every run, and
		// the two values make only two statements to cache.
		archived := "archived"
		if ownOrder(o) {
			// A filter with an index in the list's order makes that
			// index the one to walk (a value few threads have would
			// otherwise read the whole home); without statistics
			// SQLite would walk threads_archived_* and test every
			// thread. The unary + keeps archived out of index choice.
			archived = "+archived"
		}
		if *o.Archived {
			where = append(where, archived+" = 1")
		} else {
			where = append(where, archived+" = 0")
		}
	}
	if o.Spawned != nil {
		spawned := "EXISTS (SELECT 1 FROM thread_spawns s WHERE s.thread_id = threads.id)"
		if !*o.Spawned {
			spawned = "NOT " + spawned
		}
		where = append(where, spawned)
	}
	// source and model_provider have indexes in created order only: in
	// updated order the unary + keeps them out of index choice, or SQLite
	// might search one and sort every match (nearly the whole home for a
	// common source), where walking threads_updated stops at the page.
	source, provider := "source", "model_provider"
	if o.SortBy == SortUpdated {
		source, provider = "+source", "+model_provider"
	}
	for _, f := range []struct{ col, value string }{
		{"cwd", o.Cwd}, {source, o.Source}, {provider, o.ModelProvider}, {"parent_id", o.ParentID},
	} {
		if f.value != "" {
			where = append(where, f.col+" = ?")
			args = append(args, f.value)
		}
	}
	if o.Text != "" {
		cond, condArgs := textFilter(o.Text)
		where = append(where, cond)
		args = append(args, condArgs...)
	}
	if o.Cursor != "" {
		c, err := decodeCursor(o.Cursor)
		if err != nil {
			return "", nil, err
		}
		if c.Sort != o.SortBy || c.Ascending != o.Ascending {
			return "", nil, fmt.Errorf("%w: made for sort %s ascending=%t, not %s ascending=%t",
				ErrBadCursor, c.Sort, c.Ascending, o.SortBy, o.Ascending)
		}
		where = append(where, fmt.Sprintf("(%s, id) %s (?, ?)", col, cmp))
		args = append(args, c.Value, c.ID)
	}

	var q strings.Builder
	q.WriteString("SELECT " + threadColumns + " FROM threads")
	if o.ParentID != "" {
		// A parent's forks are few next to the home: SQLite's planner,
		// with statistics or without, would rather walk the order's index
		// and test every thread, which reads the whole home for a parent
		// with few forks or none.
		q.WriteString(" INDEXED BY threads_parent")
	}
	if len(where) > 0 {
		q.WriteString(" WHERE " + strings.Join(where, " AND "))
	}
	fmt.Fprintf(&q, " ORDER BY %s %s, id %s LIMIT ?", col, dir, dir)
	args = append(args, o.Limit+1)
	return q.String(), args, nil
}

package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
)

// Search limits and the markers around matched terms in SearchHit.Snippet.
const (
	DefaultSearchLimit = 20
	MaxSearchLimit     = 200
	HighlightStart     = "«"
	HighlightEnd       = "»"
)

// ErrEmptyQuery reports a search without any term.
var ErrEmptyQuery = errors.New("empty search query")

// ftsQuery turns user input into a safe FTS5 query: every whitespace
// separated term becomes a quoted FTS string (so punctuation, quotes and
// operators are matched as text), and all terms must match. A term ending
// in * stays a prefix query.
func ftsQuery(input string) (string, error) {
	var terms []string
	for _, f := range strings.Fields(input) {
		prefix := strings.HasSuffix(f, "*")
		f = strings.TrimRight(f, "*")
		if f == "" {
			continue
		}
		term := `"` + strings.ReplaceAll(f, `"`, `""`) + `"`
		if prefix {
			term += "*"
		}
		terms = append(terms, term)
	}
	if len(terms) == 0 {
		return "", ErrEmptyQuery
	}
	return strings.Join(terms, " "), nil
}

// Search runs an FTS5 query over user message text, best matches first.
// Every word of the query must match (a trailing * matches a prefix); FTS
// operators in the input are matched as plain text. Snippets mark matched
// terms with HighlightStart and HighlightEnd. An empty query fails with
// ErrEmptyQuery.
func (s *Store) Search(ctx context.Context, o SearchOptions) ([]SearchHit, error) {
	match, err := ftsQuery(o.Query)
	if err != nil {
		return nil, fmt.Errorf("search %q: %w", o.Query, err)
	}
	limit := o.Limit
	if limit <= 0 {
		limit = DefaultSearchLimit
	}
	limit = min(limit, MaxSearchLimit)

	q := `SELECT m.thread_id, m.ordinal,
			snippet(user_message_fts, 0, ?, ?, '…', 16) AS snippet,
			bm25(user_message_fts) AS score
		FROM user_message_fts
		JOIN user_messages m ON m.id = user_message_fts.rowid
		JOIN threads t ON t.id = m.thread_id
		WHERE user_message_fts MATCH ?`
	args := []any{HighlightStart, HighlightEnd, match}
	if o.Archived != nil {
		q += ` AND t.archived = ?`
		args = append(args, *o.Archived)
	}
	q += ` ORDER BY score, m.thread_id, m.ordinal LIMIT ?`
	args = append(args, limit)

	var rows []struct {
		ThreadID string  `db:"thread_id"`
		Ordinal  int     `db:"ordinal"`
		Snippet  string  `db:"snippet"`
		Score    float64 `db:"score"`
	}
	if err := s.reader.SelectContext(ctx, &rows, q, args...); err != nil {
		return nil, fmt.Errorf("search %q: %w", o.Query, err)
	}
	hits := make([]SearchHit, len(rows))
	for i, r := range rows {
		hits[i] = SearchHit{ThreadID: r.ThreadID, Ordinal: r.Ordinal, Snippet: r.Snippet, Rank: r.Score}
	}
	return hits, nil
}

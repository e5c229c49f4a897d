package pgstore

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"unicode"

	"github.com/jackc/pgx/v5"
)

// ErrBadQuery: a query Search cannot translate.
var ErrBadQuery = errors.New("bad search query")

// SearchOptions select a page of Search.
type SearchOptions struct {
	// Query is in the form store.ParseQuery returns: quoted terms (a
	// trailing * makes the last word a prefix), AND, OR, NOT, parentheses.
	Query    string
	Limit    int   // 1..200; 0 means 20
	Offset   int   // hits to skip (the page's position)
	Archived *bool // nil: both
	Cwd      string
	Source   string
	ThreadID string
}

// SearchHit is a user message that matched.
type SearchHit struct {
	ThreadID string
	Ordinal  int
	Snippet  string // the text around the match, matches between « and »
	Rank     float64
	Name     string
}

// Search finds user messages whose text matches, best first (ts_rank),
// on the generated tsvector and its GIN index. A prompt is stored once, in
// the thread that was asked it: hits name that thread.
func (s *Store) Search(ctx context.Context, o SearchOptions) ([]SearchHit, error) {
	tsq, err := TSQuery(o.Query)
	if err != nil {
		return nil, err
	}
	limit := o.Limit
	if limit <= 0 {
		limit = 20
	}
	limit = min(limit, 200)
	var where []string
	args := []any{tsq}
	arg := func(v any) string {
		args = append(args, v)
		return fmt.Sprintf("$%d", len(args))
	}
	if o.Archived != nil {
		where = append(where, "t.archived = "+arg(*o.Archived))
	}
	for _, f := range []struct{ col, v string }{{"t.cwd", o.Cwd}, {"t.source", o.Source}, {"t.id", o.ThreadID}} {
		if f.v != "" {
			where = append(where, f.col+" = "+arg(f.v))
		}
	}
	filter := ""
	if len(where) > 0 {
		filter = " AND " + strings.Join(where, " AND ")
	}
	q := `WITH q AS (SELECT to_tsquery('simple', $1) AS q),
		page AS (
			SELECT m.thread_id, m.ordinal, m.text, ts_rank(m.tsv, q.q) AS rank, t.name
			FROM user_messages m JOIN threads t ON t.id = m.thread_id, q
			WHERE m.tsv @@ q.q` + filter + `
			ORDER BY rank DESC, m.thread_id, m.ordinal
			LIMIT ` + arg(limit) + ` OFFSET ` + arg(max(o.Offset, 0)) + `)
		SELECT thread_id, ordinal,
			ts_headline('simple', text, q.q, 'StartSel=«, StopSel=», MaxWords=24, MinWords=8, MaxFragments=1'),
			rank, name
		FROM page, q ORDER BY rank DESC, thread_id, ordinal`
	rows, err := s.pool.Query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("search: %w", err)
	}
	hits, err := pgx.CollectRows(rows, pgx.RowToStructByPos[SearchHit])
	if err != nil {
		return nil, fmt.Errorf("search: %w", err)
	}
	return hits, nil
}

// TSQuery translates a query in store.ParseQuery's output form into a
// PostgreSQL tsquery: a quoted term becomes its words joined by <->
// (a phrase), a trailing * makes its last word a prefix (:*), AND is &, OR
// is |, NOT is & !, parentheses stay.
func TSQuery(fts string) (string, error) {
	var b strings.Builder
	for i := 0; i < len(fts); {
		switch c := fts[i]; {
		case c == ' ':
			i++
		case c == '(' || c == ')':
			b.WriteByte(c)
			i++
		case c == '"':
			term, n, err := quoted(fts[i:])
			if err != nil {
				return "", err
			}
			i += n
			prefix := i < len(fts) && fts[i] == '*'
			if prefix {
				i++
			}
			words := strings.FieldsFunc(strings.ToLower(term), func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) })
			if len(words) == 0 {
				return "", fmt.Errorf("%w: term %q holds no word", ErrBadQuery, term)
			}
			for j, w := range words {
				if j > 0 {
					b.WriteString(" <-> ")
				}
				b.WriteString("'" + strings.ReplaceAll(w, "'", "''") + "'")
			}
			if prefix {
				b.WriteString(":*")
			}
		case strings.HasPrefix(fts[i:], "AND"):
			b.WriteString(" & ")
			i += 3
		case strings.HasPrefix(fts[i:], "OR"):
			b.WriteString(" | ")
			i += 2
		case strings.HasPrefix(fts[i:], "NOT"):
			b.WriteString(" & !")
			i += 3
		default:
			return "", fmt.Errorf("%w: unexpected %q at byte %d", ErrBadQuery, fts[i:], i)
		}
	}
	if b.Len() == 0 {
		return "", fmt.Errorf("%w: empty", ErrBadQuery)
	}
	return b.String(), nil
}

// quoted reads the FTS5 string at the start of s ("" inside doubles a
// quote) and returns its text and its length in s.
func quoted(s string) (string, int, error) {
	var b strings.Builder
	for i := 1; i < len(s); i++ {
		if s[i] != '"' {
			b.WriteByte(s[i])
			continue
		}
		if i+1 < len(s) && s[i+1] == '"' {
			b.WriteByte('"')
			i++
			continue
		}
		return b.String(), i + 1, nil
	}
	return "", 0, fmt.Errorf("%w: unclosed quote", ErrBadQuery)
}

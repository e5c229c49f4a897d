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
	Query string
	Limit int // 1..MaxSearchRows; 0 means 20
	// After, when set, is the last hit of the previous page: the page
	// holds the hits that follow it in the order of Search (keyset
	// paging, as the local backend pages), so hits that others' writes
	// add or remove before it neither repeat nor push one off the page.
	After    *SearchHit
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

// MaxSearchRows bounds the hits Search returns: a page of the API's
// largest size (store.MaxSearchLimit, 200) and one more, which tells its
// caller that another page follows.
const MaxSearchRows = 201

// SearchedChars is how many characters of a user message's text search
// indexes: its first ones (migration 00011 generates user_messages.tsv
// from them). PostgreSQL refuses a tsvector past 1 MiB, which a longer
// text of distinct words makes; the message itself is kept whole.
const SearchedChars = 100000

// searchSQL finds the matching messages, then reports each in the thread
// that owns its text when that thread passes the filters (%[1]s), or else
// in the oldest thread that inherits the message and passes them, as the
// local index does (store.searchSQL): an inherited prompt is found through
// a fork whose base is archived or filtered out, and found once. A thread
// inherits message k of thread p when it is a reference fork based on p
// with more than k inherited messages, or a copy fork of p that copied
// more than k (whose own copies of them are not matched while p holds
// them, the same text at the same ordinal: a prompt p rolled back is the
// copy's;
// once p is gone, a copy of a prompt an ancestor further up still holds,
// the same text at the same ordinal, counts as the heir of the nearest
// ancestor that asked it, as in the local index; a reverted ancestor's
// earlier prompts are its links', those its revert took back (a link
// holds them past what any thread based on it inherits) no one's, so
// each copy of one is its own, and a reverted copy fork's copies, in its
// links, look for theirs among the fork's ancestors);
// heirs walks those edges down from the owner (threads_base and
// threads_copies index them). 1000 bounds the depth, as the
// local backend's chains. ts_headline runs on the page's hits only.
const searchSQL = `WITH RECURSIVE q AS (SELECT to_tsquery('simple', $1) AS q),
	matched AS (
		SELECT m.thread_id AS owner, m.ordinal, m.text, ts_rank(m.tsv, q.q) AS rank,
			COALESCE((SELECT a.thread_id FROM thread_lineage l
				JOIN threads holder ON holder.id = l.ancestor_id OR holder.link_of = l.ancestor_id
				JOIN user_messages a ON a.thread_id = holder.id AND a.ordinal = m.ordinal
				WHERE m.ordinal < o.copied_messages AND l.thread_id = COALESCE(o.link_of, m.thread_id) AND a.text = m.text
					AND (holder.link_of IS NULL OR EXISTS (SELECT 1 FROM threads b
						WHERE b.base_id = holder.id AND b.inherited_messages > a.ordinal))
				ORDER BY a.ordinal < holder.copied_messages,
					CASE WHEN a.ordinal < holder.copied_messages THEN -l.depth ELSE l.depth END
				LIMIT 1), m.thread_id) AS origin
		FROM user_messages m JOIN threads o ON o.id = m.thread_id, q
		WHERE m.tsv @@ q.q AND NOT (m.ordinal < o.copied_messages
			AND EXISTS (SELECT 1 FROM user_messages p WHERE p.thread_id = o.parent_id
				AND p.ordinal = m.ordinal AND p.text = m.text))),
	heirs (origin, ordinal, text, rank, hit, inherited, depth) AS (
		SELECT origin, ordinal, text, rank, owner, CASE WHEN origin = owner THEN 0 ELSE 1 END, 0 FROM matched
		UNION ALL
		SELECT h.origin, h.ordinal, h.text, h.rank, t.id, 1, h.depth + 1
		FROM heirs h JOIN threads t ON (t.base_id = h.hit AND t.inherited_messages > h.ordinal)
			OR (t.parent_id = h.hit AND t.copied_messages > 0 AND t.copied_messages > h.ordinal)
		WHERE h.depth < 1000),
	ranked AS (
		SELECT h.hit, h.ordinal, h.text, h.rank, t.name,
			row_number() OVER (PARTITION BY h.origin, h.ordinal ORDER BY h.inherited, t.created_at, t.id) AS rn
		FROM heirs h JOIN threads t ON t.id = h.hit
		WHERE t.link_of IS NULL AND %[1]s),
	page AS (
		SELECT hit, ordinal, text, rank, name FROM ranked WHERE rn = 1 %[3]s
		ORDER BY rank DESC, hit, ordinal
		LIMIT %[2]s)
	SELECT hit, ordinal,
		ts_headline('simple', left(text, %[4]d), q.q, 'StartSel=«, StopSel=», MaxWords=24, MinWords=8, MaxFragments=1'),
		rank, name
	FROM page, q ORDER BY rank DESC, hit, ordinal`

// Search finds user messages whose text matches, best first (ts_rank),
// on the generated tsvector of their first SearchedChars characters and
// its GIN index. A prompt is stored once, in
// the thread that was asked it; a hit names that thread, or the oldest
// reference fork inheriting it that passes the filters (see searchSQL).
func (s *Store) Search(ctx context.Context, o SearchOptions) ([]SearchHit, error) {
	tsq, err := TSQuery(o.Query)
	if err != nil {
		return nil, err
	}
	limit := o.Limit
	if limit <= 0 {
		limit = 20
	}
	limit = min(limit, MaxSearchRows)
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
	filter := "true"
	if len(where) > 0 {
		filter = strings.Join(where, " AND ")
	}
	after := ""
	if a := o.After; a != nil {
		r, id, k := arg(a.Rank), arg(a.ThreadID), arg(a.Ordinal)
		after = fmt.Sprintf("AND (rank < %[1]s::float8 OR rank = %[1]s::float8 AND (hit, ordinal) > (%[2]s::text, %[3]s::int))", r, id, k)
	}
	q := fmt.Sprintf(searchSQL, filter, arg(limit), after, SearchedChars)
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

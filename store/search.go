package store

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"unicode"

	"github.com/jmoiron/sqlx"
)

// Search limits and the markers around matched terms in SearchHit.Snippet.
const (
	DefaultSearchLimit = 20
	MaxSearchLimit     = 200
	HighlightStart     = "«"
	HighlightEnd       = "»"
)

// Errors of Search.
var (
	ErrEmptyQuery = errors.New("empty search query")
	// ErrBadQuery reports a query that does not parse (a *QueryError).
	ErrBadQuery = errors.New("bad search query")
)

// QueryError says where a query fails to parse; it wraps ErrBadQuery.
type QueryError struct {
	Query  string
	Offset int // byte offset in Query
	Reason string
}

func (e *QueryError) Error() string {
	return fmt.Sprintf("%s at byte %d: %s", ErrBadQuery, e.Offset, e.Reason)
}

func (e *QueryError) Unwrap() error { return ErrBadQuery }

// ParseQuery turns the search query language into an FTS5 query:
//
//	hidden files       both words (AND is implied; "AND" may be written)
//	"hidden files"     the phrase
//	hid*               a word starting with hid (also "hidden fil"*)
//	ls OR dir          either
//	ls -dir, ls NOT dir  ls but not dir
//	(ls OR dir) -tmp   grouping
//
// OR binds tighter than the implied AND, as in FTS5. Words are matched as
// text: punctuation and FTS5's own syntax (column filters, NEAR, ^) have
// no meaning. A query with only negated terms, an unclosed quote or
// parenthesis, groups nested deeper than MaxQueryDepth, more than
// MaxQueryWords words, or an operator without an operand fails with a
// *QueryError; a query without any term
// fails with ErrEmptyQuery.
func ParseQuery(input string) (string, error) {
	p := &queryParser{input: input}
	p.lex()
	if p.err != nil {
		return "", p.err
	}
	if len(p.toks) == 0 {
		return "", ErrEmptyQuery
	}
	out, err := p.and()
	if err != nil {
		return "", err
	}
	if p.pos < len(p.toks) {
		return "", p.fail(p.toks[p.pos].offset, "unexpected %q", p.toks[p.pos].text)
	}
	return out, nil
}

type tokenKind int

const (
	tokTerm tokenKind = iota // a word or phrase, already an FTS5 string
	tokOr
	tokAnd
	tokNot
	tokOpen
	tokClose
)

type token struct {
	kind   tokenKind
	text   string // the FTS5 text of a term; the input of an operator
	offset int
}

// MaxQueryDepth is how deep a query's parenthesised groups may nest:
// FTS5's own parser overflows its stack a few dozen levels down, and every
// level here may take three there (a group, its ORs, its NOTs), which
// overflow it at 14 levels (TestSearchBadSyntax runs the deepest).
const MaxQueryDepth = 12

// MaxNegatedTerms is how many negated terms a group may hold: FTS5 nests
// its expression a level per NOT and fails past 256 levels.
const MaxNegatedTerms = 200

// MaxQueryWords is how many words a query may hold, in its terms and
// phrases together: FTS5's time grows faster than their number (most of a
// minute for the 30,000 a URL can hold, in a review's hand-run attack),
// during which the query holds one of the index's readers.
const MaxQueryWords = 256

type queryParser struct {
	input string
	toks  []token
	pos   int
	depth int // of the group being parsed
	words int // in the terms lexed so far
	err   error
}

// term adds a term token at offset, its FTS5 text made of the query's
// text, failing once the query holds more than MaxQueryWords words. A
// word is a run of letters and digits, as FTS5's tokenizer reads text.
func (p *queryParser) term(fts, text string, offset int) bool {
	inWord := false
	for _, r := range text {
		letter := unicode.IsLetter(r) || unicode.IsNumber(r)
		if letter && !inWord {
			p.words++
		}
		inWord = letter
	}
	if p.words > MaxQueryWords {
		p.err = p.fail(offset, "more than %d words", MaxQueryWords)
		return false
	}
	p.toks = append(p.toks, token{tokTerm, fts, offset})
	return true
}

func (p *queryParser) fail(offset int, format string, args ...any) error {
	return &QueryError{Query: p.input, Offset: offset, Reason: fmt.Sprintf(format, args...)}
}

// quote makes s an FTS5 string, matched as text.
func quote(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }

func (p *queryParser) lex() {
	in := p.input
	for i := 0; i < len(in); {
		c := in[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
		case c == '(':
			p.toks = append(p.toks, token{tokOpen, "(", i})
			i++
		case c == ')':
			p.toks = append(p.toks, token{tokClose, ")", i})
			i++
		case c == '-':
			p.toks = append(p.toks, token{tokNot, "-", i})
			i++
		case c == '"':
			end := strings.IndexByte(in[i+1:], '"')
			if end < 0 {
				p.err = p.fail(i, "unclosed quote")
				return
			}
			phrase := in[i+1 : i+1+end]
			next := i + 2 + end
			term := quote(phrase)
			if next < len(in) && in[next] == '*' {
				term += "*"
				next++
			}
			if strings.IndexFunc(phrase, func(r rune) bool { return unicode.IsLetter(r) || unicode.IsNumber(r) }) < 0 {
				p.err = p.fail(i, "a phrase needs a word")
				return
			}
			if !p.term(term, phrase, i) {
				return
			}
			i = next
		default:
			start := i
			for i < len(in) && !strings.ContainsRune(" \t\n\r()\"", rune(in[i])) {
				i++
			}
			word := in[start:i]
			switch word {
			case "OR":
				p.toks = append(p.toks, token{tokOr, word, start})
				continue
			case "AND":
				p.toks = append(p.toks, token{tokAnd, word, start})
				continue
			case "NOT":
				p.toks = append(p.toks, token{tokNot, word, start})
				continue
			}
			prefix := strings.HasSuffix(word, "*")
			word = strings.TrimRight(word, "*")
			if strings.IndexFunc(word, func(r rune) bool { return unicode.IsLetter(r) || unicode.IsNumber(r) }) < 0 {
				// Punctuation alone matches nothing: FTS5 would find no
				// token in it. Skip it rather than fail.
				continue
			}
			term := quote(word)
			if prefix {
				term += "*"
			}
			if !p.term(term, word, start) {
				return
			}
		}
	}
}

func (p *queryParser) peek() (token, bool) {
	if p.pos < len(p.toks) {
		return p.toks[p.pos], true
	}
	return token{}, false
}

// and parses a sequence of (possibly negated) or-groups up to a closing
// parenthesis or the end: "a b -c" is (a AND b) NOT (c).
func (p *queryParser) and() (string, error) {
	var pos, neg []string
	start := len(p.input)
	if t, ok := p.peek(); ok {
		start = t.offset
	}
	for {
		t, ok := p.peek()
		if !ok || t.kind == tokClose {
			break
		}
		if t.kind == tokAnd {
			p.pos++
			if n, ok := p.peek(); !ok || n.kind == tokClose || n.kind == tokOr || n.kind == tokAnd {
				return "", p.fail(t.offset, "AND needs a term after it")
			}
			continue
		}
		negated := false
		if t.kind == tokNot {
			negated = true
			p.pos++
		}
		expr, err := p.or()
		if err != nil {
			return "", err
		}
		if negated {
			neg = append(neg, expr)
		} else {
			pos = append(pos, expr)
		}
	}
	if len(pos) == 0 {
		if len(neg) == 0 {
			return "", p.fail(start, "empty group")
		}
		return "", p.fail(start, "a query needs a term that is not negated")
	}
	if len(neg) > MaxNegatedTerms {
		// Each NOT nests FTS5's expression a level deeper, to 256 at most.
		return "", p.fail(start, "more than %d negated terms in a group", MaxNegatedTerms)
	}
	out := strings.Join(pos, " AND ")
	if len(pos) > 1 && len(neg) > 0 {
		out = "(" + out + ")"
	}
	for _, n := range neg {
		out += " NOT " + n
	}
	return out, nil
}

// or parses primaries joined by OR.
func (p *queryParser) or() (string, error) {
	first, err := p.primary()
	if err != nil {
		return "", err
	}
	parts := []string{first}
	for {
		t, ok := p.peek()
		if !ok || t.kind != tokOr {
			break
		}
		p.pos++
		next, err := p.primary()
		if err != nil {
			return "", err
		}
		parts = append(parts, next)
	}
	if len(parts) == 1 {
		return first, nil
	}
	return "(" + strings.Join(parts, " OR ") + ")", nil
}

func (p *queryParser) primary() (string, error) {
	t, ok := p.peek()
	if !ok {
		return "", p.fail(len(p.input), "a term is missing at the end")
	}
	switch t.kind {
	case tokTerm:
		p.pos++
		return t.text, nil
	case tokOpen:
		if p.depth == MaxQueryDepth {
			return "", p.fail(t.offset, "groups nested deeper than %d", MaxQueryDepth)
		}
		p.pos++
		p.depth++
		inner, err := p.and()
		p.depth--
		if err != nil {
			return "", err
		}
		if c, ok := p.peek(); !ok || c.kind != tokClose {
			return "", p.fail(t.offset, "unclosed parenthesis")
		}
		p.pos++
		return "(" + inner + ")", nil
	default:
		return "", p.fail(t.offset, "%q needs a term", t.text)
	}
}

// SearchCursor is the position after the last hit of a page, among the
// hits of the query QueryTag names: the hit's rank as the backend ranks
// (bm25 here, ts_rank in the distributed backend), thread and ordinal.
type SearchCursor struct {
	Rank     float64 `json:"r"`
	ThreadID string  `json:"t"`
	Ordinal  int     `json:"o"`
	Query    string  `json:"q,omitempty"` // absent in the cursors of older versions
}

// QueryTag names a query in the form ParseQuery returns, for the cursors
// of its pages: a position among one query's hits means nothing among
// another's, so a cursor made for another query is refused.
func QueryTag(fts string) string {
	sum := sha256.Sum256([]byte(fts))
	return base64.RawURLEncoding.EncodeToString(sum[:9])
}

// DecodeSearchCursor decodes s, a cursor of a page of the query tag
// names (ErrBadCursor otherwise).
func DecodeSearchCursor(s, tag string) (SearchCursor, error) {
	var c SearchCursor
	data, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || json.Unmarshal(data, &c) != nil || c.ThreadID == "" {
		return c, fmt.Errorf("%w: search cursor %q", ErrBadCursor, s)
	}
	if c.Query != "" && c.Query != tag {
		return c, fmt.Errorf("%w: search cursor of another query", ErrBadCursor)
	}
	return c, nil
}

// Encode returns the opaque form of c.
func (c SearchCursor) Encode() string {
	data, _ := json.Marshal(c)
	return base64.RawURLEncoding.EncodeToString(data)
}

// searchSQL finds the matching messages, then reports each in the thread
// that owns its text when that thread passes the filters, or else in the
// oldest thread that inherits the message and passes them: an inherited
// prompt is found through a fork whose first thread is archived or
// filtered out, and found once. A thread inherits message k of thread p
// when it is a reference fork based on p (a reverted one through its
// first file, whose thread_segments link names p) or a copy fork of p
// with more than k inherited messages, or a copy fork of p reverted since
// (its base_id its own id) that holds a blank copy of message k (one with
// the preview and turn id of the prompt's origin: copies hold no text
// while an ancestor does); heirs walks those edges down from
// the owner (threads_base, thread_segments_base and threads_parent index
// them; a reverted thread, whose base_id is its own id, is not its own
// heir), so a fork's inherited prompts are found without a search row of
// their own. A copy fork's copy of a prompt holds its text once the
// fork's parent is deleted; while an ancestor further up holds the same
// prompt (the same text at the same ordinal), the copy counts as that
// prompt's heir, so the prompt is found once, in the ancestor when it
// passes the filters and else in the copy. So does a copy in a copy fork
// reverted since, a row of its first file (its thread_segments link seq
// 0, with no base) with the preview and turn id of that ancestor's row:
// its rows there past the copies are prompts asked in the fork, which may
// repeat an ancestor's at the same ordinal. Its origin is the nearest
// ancestor that asked the prompt (a row that is no copy: the same text
// may have been asked again, in a retry, below the first asking), or,
// when only copies hold it, the topmost of them.
//
// Each join from a hit reaches the next table through its index (CROSS
// JOIN fixes the order, INDEXED BY the index): SQLite's planner, without
// statistics or with those of a smaller home, would rather read every
// thread, or every fork, of the home once per hit.
// 1000 is maxChainDepth.
const searchSQL = `
WITH RECURSIVE matched AS (
	SELECT m.id AS mid, m.thread_id AS owner, m.ordinal,
		m.id AS sid,
		bm25(user_message_fts) AS score,
		IFNULL((SELECT a.id FROM thread_lineage l
			JOIN user_messages a ON a.thread_id = l.ancestor_id AND a.ordinal = m.ordinal
			JOIN threads holder ON holder.id = a.thread_id
			WHERE (o.base_id IS NULL AND m.ordinal < o.inherited_messages
				OR o.base_id = o.id AND o.fork_offset >= 0 AND a.preview = m.preview AND a.turn_id = m.turn_id
				AND m.byte_offset < (SELECT s.base_size + s.length FROM thread_segments s
					WHERE s.thread_id = o.id AND s.seq = 0 AND s.base_id = ''))
			AND l.thread_id = m.thread_id AND a.text = m.text
			ORDER BY holder.base_id IS NULL AND a.ordinal < holder.inherited_messages,
				CASE WHEN holder.base_id IS NULL AND a.ordinal < holder.inherited_messages THEN -l.depth ELSE l.depth END
			LIMIT 1), m.id) AS origin
	FROM user_message_fts
	JOIN user_messages m ON m.id = user_message_fts.rowid
	JOIN threads o ON o.id = m.thread_id
	WHERE user_message_fts MATCH ?
), heirs(origin, ordinal, sid, score, hit, inherited, depth) AS (
	SELECT origin, ordinal, sid, score, owner, origin <> mid, 0 FROM matched
	UNION ALL
	SELECT h.origin, h.ordinal, h.sid, h.score, t.id, 1, h.depth + 1
	FROM heirs h CROSS JOIN threads t INDEXED BY threads_base ON t.base_id = h.hit AND t.id <> t.base_id AND t.inherited_messages > h.ordinal
	WHERE h.depth < 1000
	UNION ALL
	SELECT h.origin, h.ordinal, h.sid, h.score, t.id, 1, h.depth + 1
	FROM heirs h CROSS JOIN thread_segments s INDEXED BY thread_segments_base ON s.base_id = h.hit AND s.seq = 0
	CROSS JOIN threads t ON t.id = s.thread_id AND t.base_id = t.id AND t.inherited_messages > h.ordinal
	WHERE h.depth < 1000
	UNION ALL
	SELECT h.origin, h.ordinal, h.sid, h.score, t.id, 1, h.depth + 1
	FROM heirs h CROSS JOIN threads t INDEXED BY threads_parent ON t.parent_id = h.hit AND t.base_id IS NULL AND t.inherited_messages > h.ordinal
	WHERE h.depth < 1000
	UNION ALL
	SELECT h.origin, h.ordinal, h.sid, h.score, t.id, 1, h.depth + 1
	FROM heirs h CROSS JOIN threads t INDEXED BY threads_parent ON t.parent_id = h.hit AND t.base_id = t.id
	CROSS JOIN user_messages x ON x.thread_id = t.id AND x.ordinal = h.ordinal AND x.text = ''
	CROSS JOIN user_messages om ON om.id = h.origin AND om.preview = x.preview AND om.turn_id = x.turn_id
	WHERE h.depth < 1000
), ranked AS (
	SELECT c.hit, c.ordinal, c.sid, c.score, t.name,
		row_number() OVER (PARTITION BY c.origin ORDER BY c.inherited, t.created_at, t.id) AS rn
	FROM heirs c
	CROSS JOIN threads t ON t.id = c.hit
	WHERE %s
)
SELECT hit, ordinal, sid, score, name FROM ranked
WHERE rn = 1 %s
ORDER BY score, hit, ordinal
LIMIT ?`

// Search runs a query (see ParseQuery) over user message text, best
// matches first, and returns one page of hits; see SearchOptions for the
// filters. Snippets mark matched terms with HighlightStart and
// HighlightEnd. A query that does not parse fails with a *QueryError, an
// empty one with ErrEmptyQuery, a bad cursor with ErrBadCursor.
func (s *Store) SearchPage(ctx context.Context, o SearchOptions) (SearchPage, error) {
	q, args, limit, tag, match, err := searchQuery(o)
	if err != nil {
		return SearchPage{}, fmt.Errorf("search %q: %w", o.Query, err)
	}
	var rows []struct {
		ThreadID  string  `db:"hit"`
		Ordinal   int     `db:"ordinal"`
		MessageID int64   `db:"sid"`
		Score     float64 `db:"score"`
		Name      string  `db:"name"`
	}
	// The query is one of 32 texts (searchQuery), so it is parsed once.
	if err := sqlx.SelectContext(ctx, s.cached(), &rows, q, args...); err != nil {
		return SearchPage{}, fmt.Errorf("search %q: %w", o.Query, err)
	}
	var page SearchPage
	for i, r := range rows {
		if i == limit {
			last := page.Hits[limit-1]
			page.NextCursor = SearchCursor{Rank: last.Rank, ThreadID: last.ThreadID, Ordinal: last.Ordinal, Query: tag}.Encode()
			break
		}
		snippet, err := s.snippet(ctx, match, r.MessageID)
		if err != nil {
			return SearchPage{}, fmt.Errorf("search %q: %w", o.Query, err)
		}
		page.Hits = append(page.Hits, SearchHit{ThreadID: r.ThreadID, Ordinal: r.Ordinal, Snippet: snippet, Rank: r.Score, Name: r.Name})
	}
	return page, nil
}

// searchQuery returns the SQL and arguments of SearchPage's page for o,
// the page's size, the query's QueryTag and its FTS5 form. It fetches one hit more than
// the size to tell whether a next page exists.
func searchQuery(o SearchOptions) (q string, args []any, limit int, tag, match string, err error) {
	match, err = ParseQuery(o.Query)
	if err != nil {
		return "", nil, 0, "", "", err
	}
	tag = QueryTag(match)
	limit = o.Limit
	if limit <= 0 {
		limit = DefaultSearchLimit
	}
	limit = min(limit, MaxSearchLimit)

	filters := []string{"1"}
	args = []any{match}
	if o.Archived != nil {
		filters = append(filters, "t.archived = ?")
		args = append(args, *o.Archived)
	}
	if o.Cwd != "" {
		filters = append(filters, "t.cwd = ?")
		args = append(args, o.Cwd)
	}
	if o.Source != "" {
		filters = append(filters, "t.source = ?")
		args = append(args, o.Source)
	}
	if o.ThreadID != "" {
		filters = append(filters, "t.id = ?")
		args = append(args, o.ThreadID)
	}
	after := ""
	if o.Cursor != "" {
		c, err := DecodeSearchCursor(o.Cursor, tag)
		if err != nil {
			return "", nil, 0, "", "", err
		}
		after = "AND (score, hit, ordinal) > (?, ?, ?)"
		args = append(args, c.Rank, c.ThreadID, c.Ordinal)
	}
	args = append(args, limit+1)
	return fmt.Sprintf(searchSQL, strings.Join(filters, " AND "), after), args, limit, tag, match, nil
}

// Search returns the first page of SearchPage's hits.
func (s *Store) Search(ctx context.Context, o SearchOptions) ([]SearchHit, error) {
	page, err := s.SearchPage(ctx, o)
	return page.Hits, err
}

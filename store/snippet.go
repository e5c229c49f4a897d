package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// FTS5's snippet() scores a window at every hit of the query in the text,
// each against every other hit: its time grows with the square of the
// hits, a minute and a half for one message of 40,000 copies of the word
// searched for, which no interrupt stops. So it is asked only for the hits
// of the page returned, and only of a message short enough that its hits
// are few whatever they are; a longer message's snippet is made here, in
// one pass.
const (
	// maxFTSSnippetTokens is the most tokens a message may hold for FTS5
	// to make its snippet: at most this many hits, each scored against
	// each, is some tens of milliseconds.
	maxFTSSnippetTokens = 512
	// snippetTokens is how many tokens a snippet shows, as SearchPage has
	// always asked FTS5 for.
	snippetTokens = 16
	// maxSnippetScan bounds how much of a long message is read for its
	// snippet, in characters: a hit past it gives a snippet of the
	// message's start.
	maxSnippetScan = 64 << 10
)

// snippet returns the snippet of user message id for the FTS5 query
// match: its text around the query's hits, matched terms marked with
// HighlightStart and HighlightEnd, "…" where text is left out. A message
// gone since the search has none.
func (s *Store) snippet(ctx context.Context, match string, id int64) (string, error) {
	// One character more than is read tells whether there is more.
	const head = `SELECT substr(text, 1, ?) FROM user_messages WHERE id = ?`
	var text string
	err := s.cached().QueryRowxContext(ctx, head, maxSnippetScan+1, id).Scan(&text)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("snippet of message %d: %w", id, err)
	}
	whole := true
	if n := utf8.RuneCountInString(text); n > maxSnippetScan {
		text, whole = text[:runeOffset(text, maxSnippetScan)], false
	}
	tokens := tokenize(text, -1)
	if whole && len(tokens) <= maxFTSSnippetTokens {
		const fts = `SELECT snippet(user_message_fts, 0, ?, ?, '…', ?) FROM user_message_fts WHERE user_message_fts MATCH ? AND rowid = ?`
		var snippet string
		err := s.cached().QueryRowxContext(ctx, fts, HighlightStart, HighlightEnd, snippetTokens, match, id).Scan(&snippet)
		if errors.Is(err, sql.ErrNoRows) {
			return "", nil
		}
		if err != nil {
			return "", fmt.Errorf("snippet of message %d: %w", id, err)
		}
		return snippet, nil
	}
	return longSnippet(text, tokens, queryTerms(match), !whole), nil
}

// runeOffset returns the byte offset of text's nth character.
func runeOffset(text string, n int) int {
	for i := range text {
		if n == 0 {
			return i
		}
		n--
	}
	return len(text)
}

// span is a token's place in a text, in bytes.
type span struct{ start, end int }

// tokenize returns the tokens of text as FTS5's unicode61 tokenizer cuts
// it, or more: runs of letters, numbers and private-use characters; it
// stops after max tokens when max is not negative. A character FTS5 takes
// into a token and this does not (a combining mark) cuts one token in two,
// so a count of these tokens never falls short of FTS5's.
func tokenize(text string, max int) []span {
	var tokens []span
	start := -1
	for i, r := range text {
		if isTokenChar(r) {
			if start < 0 {
				start = i
			}
			continue
		}
		if start >= 0 {
			tokens = append(tokens, span{start, i})
			start = -1
			if max >= 0 && len(tokens) >= max {
				return tokens
			}
		}
	}
	if start >= 0 {
		tokens = append(tokens, span{start, len(text)})
	}
	return tokens
}

func isTokenChar(r rune) bool {
	return unicode.IsLetter(r) || unicode.IsNumber(r) || unicode.Is(unicode.Co, r)
}

// queryTerm is a token of a query's phrase, folded, and whether it is a
// prefix (a phrase followed by *: its last token).
type queryTerm struct {
	folded string
	prefix bool
}

// queryTerms returns the tokens of the phrases of match, a query in the
// form ParseQuery returns: FTS5 strings ("…", with "" for a quote), a *
// after one, and operators. A phrase under NOT is among them: the messages
// it finds do not hold it.
func queryTerms(match string) []queryTerm {
	var terms []queryTerm
	for i := 0; i < len(match); i++ {
		if match[i] != '"' {
			continue
		}
		var phrase strings.Builder
		for i++; i < len(match); i++ {
			if match[i] == '"' {
				if i+1 < len(match) && match[i+1] == '"' {
					phrase.WriteByte('"')
					i++
					continue
				}
				break
			}
			phrase.WriteByte(match[i])
		}
		prefix := i+1 < len(match) && match[i+1] == '*'
		text := phrase.String()
		tokens := tokenize(text, -1)
		for k, t := range tokens {
			terms = append(terms, queryTerm{folded: strings.ToLower(text[t.start:t.end]), prefix: prefix && k == len(tokens)-1})
		}
	}
	return terms
}

// matches reports whether token is one of terms, folded as FTS5 folds
// case (not its diacritics: a term written without the accents of the
// text it found is not marked).
func matches(token string, terms []queryTerm) bool {
	folded := strings.ToLower(token)
	for _, t := range terms {
		if folded == t.folded || t.prefix && strings.HasPrefix(folded, t.folded) {
			return true
		}
	}
	return false
}

// longSnippet returns the snippet of a message too long for FTS5's, from
// text (its first maxSnippetScan bytes; cut says there is more) and its
// tokens: snippetTokens tokens from a few before the first that a term
// names (or from the start; fewer before it near the end), the tokens
// terms name marked.
func longSnippet(text string, tokens []span, terms []queryTerm, cut bool) string {
	first := 0
	for i, t := range tokens {
		if matches(text[t.start:t.end], terms) {
			// A few tokens before it, and as many after as there are.
			first = max(0, min(i-snippetTokens/4, len(tokens)-snippetTokens))
			break
		}
	}
	last := min(len(tokens), first+snippetTokens) // exclusive
	var b strings.Builder
	from := 0
	if first > 0 {
		b.WriteString("…")
		from = tokens[first].start
	}
	for _, t := range tokens[first:last] {
		b.WriteString(text[from:t.start])
		if token := text[t.start:t.end]; matches(token, terms) {
			b.WriteString(HighlightStart + token + HighlightEnd)
		} else {
			b.WriteString(token)
		}
		from = t.end
	}
	if last < len(tokens) || cut {
		b.WriteString("…")
	} else {
		b.WriteString(text[from:])
	}
	return b.String()
}

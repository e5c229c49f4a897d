package store

import (
	"fmt"
	"strings"
	"testing"
)

// TestSnippets: a message short enough gets FTS5's own snippet; a longer
// one, whose FTS5 snippet would cost the square of its hits (a minute and a
// half for 40,000 copies of the word searched for, which nothing could
// interrupt), gets one made in a pass over its text: the tokens around the
// first hit, the terms of the query marked, "…" where text is left out.
func TestSnippets(t *testing.T) {
	words := func(n int, word string) string { return strings.TrimSpace(strings.Repeat(word+" ", n)) }
	long := words(300, "filler") + " the Needle, found " + words(300, "filler")
	tests := []struct {
		name, text, query, want string
	}{
		{"short: FTS5's", "a short prompt with a needle in it", "needle",
			"a short prompt with a «needle» in it"},
		{"long: around the first hit", long, "needle",
			"…filler filler filler the «Needle», found filler filler filler filler filler filler filler filler filler filler…"},
		{"long: a prefix", long, "need*", "…filler filler filler the «Needle», found filler filler filler filler filler filler filler filler filler filler…"},
		{"long: a phrase's words", long, `"needle found"`, "…filler filler filler the «Needle», «found» filler filler filler filler filler filler filler filler filler filler…"},
		{"long: every hit marked", words(600, "echo"), "echo", strings.TrimSpace(strings.Repeat("«echo» ", 16)) + "…"},
		{"long: the end", words(600, "filler") + " last needle", "needle", "…" + words(14, "filler") + " last «needle»"},
		{"long, hit past what is read: the start", words(maxSnippetScan/7+1, "filler") + " needle", "needle", words(16, "filler") + "…"},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := openTest(t)
			id := fmt.Sprintf("t%03d", i)
			mustInsert(t, s, Record{Thread: newThread(id, 1), Messages: []UserMessage{{Ordinal: 0, Offset: 10, Line: 1, Preview: "p", Text: tc.text}}})
			hits, err := s.Search(t.Context(), SearchOptions{Query: tc.query})
			if err != nil {
				t.Fatal(err)
			}
			if len(hits) != 1 {
				t.Fatalf("%d hits, want 1", len(hits))
			}
			if hits[0].Snippet != tc.want {
				t.Fatalf("snippet\n%q\nwant\n%q", hits[0].Snippet, tc.want)
			}
		})
	}
}

// TestQueryTerms reads the phrases back out of ParseQuery's form.
func TestQueryTerms(t *testing.T) {
	for _, tc := range []struct {
		query string
		want  string
	}{
		{"needle", "needle"},
		{"Needle* hay", "needle* hay"},
		{`"a ""quoted"" phrase" OR x`, "a quoted phrase x"},
		{"(a OR b) -c", "a b c"},
	} {
		match, err := ParseQuery(tc.query)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, term := range queryTerms(match) {
			w := term.folded
			if term.prefix {
				w += "*"
			}
			got = append(got, w)
		}
		if strings.Join(got, " ") != tc.want {
			t.Errorf("queryTerms(%q) (from %q) = %q, want %q", match, tc.query, strings.Join(got, " "), tc.want)
		}
	}
}

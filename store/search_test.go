package store

import (
	"context"
	"errors"
	"strings"
	"testing"
)

func TestSearch(t *testing.T) {
	ctx := context.Background()
	s := openTest(t)
	texts := map[string][]string{
		"focused":  {"database migration"},
		"repeated": {"migration migration migration plan for the database layer"},
		"diluted":  {"we talked about many things today such as lunch, weather, the build, and one migration of sorts, plus more words to dilute it"},
		"archived": {"migration of the archived thread"},
		"punct":    {`quote " and foo-bar and C++ and 100% done`},
		"accents":  {"Café crème résumé"},
	}
	for id, msgs := range texts {
		th := newThread(id, 1)
		th.Archived = id == "archived"
		var um []UserMessage
		for i, text := range msgs {
			um = append(um, UserMessage{Ordinal: i, Offset: 10, Line: 1, Preview: text, Text: text})
		}
		mustInsert(t, s, Record{Thread: th, Messages: um})
	}
	yes, no := true, false
	for _, tc := range []struct {
		name     string
		opts     SearchOptions
		want     []string // thread ids in rank order; nil means "any order of these"
		wantSet  []string
		wantSnip string
	}{
		{name: "ranking", opts: SearchOptions{Query: "migration", Archived: &no},
			want: []string{"repeated", "focused", "diluted"}, wantSnip: HighlightStart + "migration" + HighlightEnd},
		{name: "all terms must match", opts: SearchOptions{Query: "database migration"},
			wantSet: []string{"focused", "repeated"}},
		{name: "archived only", opts: SearchOptions{Query: "migration", Archived: &yes}, want: []string{"archived"}},
		{name: "both", opts: SearchOptions{Query: "migration"}, wantSet: []string{"repeated", "focused", "diluted", "archived"}},
		{name: "case insensitive", opts: SearchOptions{Query: "MIGRATION", Archived: &yes}, want: []string{"archived"}},
		{name: "hyphen", opts: SearchOptions{Query: "foo-bar"}, want: []string{"punct"}},
		{name: "lone quote", opts: SearchOptions{Query: `"`}, want: []string{}},
		{name: "operators as text", opts: SearchOptions{Query: "foo AND NOT bar OR"}, want: []string{}},
		{name: "plus signs", opts: SearchOptions{Query: "C++"}, want: []string{"punct"}},
		{name: "percent", opts: SearchOptions{Query: "100%"}, want: []string{"punct"}},
		{name: "prefix", opts: SearchOptions{Query: "migra*", Archived: &yes}, want: []string{"archived"}},
		{name: "diacritics", opts: SearchOptions{Query: "cafe resume"}, want: []string{"accents"}},
		{name: "limit", opts: SearchOptions{Query: "migration", Limit: 1}, want: []string{"repeated"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hits, err := s.Search(ctx, tc.opts)
			if err != nil {
				t.Fatalf("Search: %v", err)
			}
			var got []string
			for _, h := range hits {
				got = append(got, h.ThreadID)
			}
			if tc.want != nil && strings.Join(got, ",") != strings.Join(tc.want, ",") {
				t.Fatalf("hits = %v, want %v", got, tc.want)
			}
			if tc.wantSet != nil {
				if len(got) != len(tc.wantSet) {
					t.Fatalf("hits = %v, want %v in any order", got, tc.wantSet)
				}
				for _, id := range tc.wantSet {
					if !strings.Contains(","+strings.Join(got, ",")+",", ","+id+",") {
						t.Fatalf("hits = %v, missing %s", got, id)
					}
				}
			}
			for i := 1; i < len(hits); i++ {
				if hits[i].Rank < hits[i-1].Rank {
					t.Fatalf("hit %d rank %f better than hit %d rank %f", i, hits[i].Rank, i-1, hits[i-1].Rank)
				}
			}
			if tc.wantSnip != "" && (len(hits) == 0 || !strings.Contains(hits[0].Snippet, tc.wantSnip)) {
				t.Fatalf("snippet of first hit = %+v, want it to contain %q", hits, tc.wantSnip)
			}
		})
	}
	for _, q := range []string{"", "   ", "*"} {
		if _, err := s.Search(ctx, SearchOptions{Query: q}); !errors.Is(err, ErrEmptyQuery) {
			t.Errorf("Search(%q): err = %v, want ErrEmptyQuery", q, err)
		}
	}
}

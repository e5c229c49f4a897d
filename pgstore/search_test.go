package pgstore

import (
	"errors"
	"testing"

	"github.com/spoolhq/spool/store"
)

// TestTSQuery translates the query language (through store.ParseQuery)
// into tsquery syntax.
func TestTSQuery(t *testing.T) {
	cases := []struct{ query, want string }{
		{"hidden files", "'hidden' & 'files'"},
		{`"hidden files"`, "'hidden' <-> 'files'"},
		{"hid*", "'hid':*"},
		{`"hidden fil"*`, "'hidden' <-> 'fil':*"},
		{"ls OR dir", "('ls' | 'dir')"},
		{"ls -dir", "'ls' & !'dir'"},
		{"(ls OR dir) -tmp", "(('ls' | 'dir')) & !'tmp'"},
		{"Café", "'café'"},
		{`"it's"`, "'it' <-> 's'"},
	}
	for _, tc := range cases {
		fts, err := store.ParseQuery(tc.query)
		if err != nil {
			t.Fatalf("%q: %v", tc.query, err)
		}
		got, err := TSQuery(fts)
		if err != nil || got != tc.want {
			t.Errorf("%q (%s): %q, %v; want %q", tc.query, fts, got, err, tc.want)
		}
	}
	for _, bad := range []string{`"unclosed`, `"--"`, `weird`, ``} {
		if _, err := TSQuery(bad); !errors.Is(err, ErrBadQuery) {
			t.Errorf("%q: %v, want ErrBadQuery", bad, err)
		}
	}
}

package rolloutfs

import (
	"slices"
	"testing"
)

func TestDirsToSync(t *testing.T) {
	for _, tc := range []struct {
		name             string
		created, changed []string
		want             []string
	}{
		{"a new file in an old directory: that directory alone", nil, []string{"sessions/2026/11/26"},
			[]string{"sessions/2026/11/26"}},
		{"a new directory: it and its parent", []string{"sessions/2026/11/26"}, []string{"sessions/2026/11/26"},
			[]string{"sessions/2026/11/26", "sessions/2026/11"}},
		{"new directories down from the root", []string{"sessions", "sessions/2026"}, []string{"sessions/2026"},
			[]string{"sessions/2026", "sessions", "."}},
		{"a move between old directories: both", nil, []string{"sessions/2026/11/26", "archived_sessions"},
			[]string{"sessions/2026/11/26", "archived_sessions"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := dirsToSync(tc.created, tc.changed); !slices.Equal(got, tc.want) {
				t.Fatalf("dirsToSync(%q, %q) = %q, want %q", tc.created, tc.changed, got, tc.want)
			}
		})
	}
}

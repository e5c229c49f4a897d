package main

import (
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/spoolhq/spool/internal/fixtures"
)

// TestRootNamedByMistakeIsRefused: a -root that names an existing
// directory which is neither empty, nor a spool root, nor a Codex home
// (~/Documents typed for ~/.codex) is refused with why and what to do,
// and nothing is written into it, nor beside an -index elsewhere. A new
// or empty directory, a Codex home and a spool root open.
func TestRootNamedByMistakeIsRefused(t *testing.T) {
	tests := []struct {
		name           string
		files          []string // made in the root before the start; a trailing / makes a directory
		missing        bool     // the root does not exist
		indexElsewhere bool
		wantErr        string // "" when the root opens
	}{
		{name: "new directory", missing: true},
		{name: "empty directory"},
		{name: "codex home with sessions", files: []string{"sessions/"}},
		{name: "codex home with archived sessions only", files: []string{"archived_sessions/"}},
		{name: "codex home never used", files: []string{"config.toml", "auth.json"}},
		{name: "codex home with its session index", files: []string{"session_index.jsonl"}},
		{name: "spool root", files: []string{"spool.db"}},
		{name: "codex home, index elsewhere", files: []string{"config.toml"}, indexElsewhere: true},
		{name: "other files", files: []string{"notes.txt", "photos/"}, wantErr: "neither a spool root nor a Codex home"},
		{name: "other files, index elsewhere", files: []string{"notes.txt"}, indexElsewhere: true, wantErr: "neither a spool root nor a Codex home"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			root := filepath.Join(t.TempDir(), "root")
			if !tc.missing {
				fixtures.MakeTree(t, root, tc.files...)
			}
			args := []string{"-root", root, "-watch=false"}
			indexDir := filepath.Join(t.TempDir(), "state")
			if tc.indexElsewhere {
				args = append(args, "-index", filepath.Join(indexDir, "codex.db"))
			}
			cfg, err := parseConfig(args, func(string) string { return "" }, io.Discard)
			if err != nil {
				t.Fatal(err)
			}
			before := dirNames(t, root)
			m, _, err := openBackend(t.Context(), cfg, cfg.logger)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("open %v: %v", tc.files, err)
				}
				if err := m.Close(); err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil {
				m.Close()
				t.Fatalf("open of a root holding %v: no error, want %q", tc.files, tc.wantErr)
			}
			for _, want := range []string{tc.wantErr, root, "-root", "mkdir"} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not say %q", err, want)
				}
			}
			if after := dirNames(t, root); !slices.Equal(after, before) {
				t.Errorf("the refused root holds %v, before %v", after, before)
			}
			if _, err := os.Stat(indexDir); !os.IsNotExist(err) {
				t.Errorf("the index directory of a refused root was made: %v", err)
			}
		})
	}
}

// dirNames lists the names in dir.
func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

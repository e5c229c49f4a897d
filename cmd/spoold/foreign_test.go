package main

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/spoolhq/spool/internal/storetest"
	"github.com/spoolhq/spool/store"
)

// TestAnotherProgramsDatabaseLeavesNothing: spoold given another
// program's SQLite database as -index, with a root that does not exist
// yet, refuses it and leaves nothing it created: no root directory and no
// spool.lock beside the database. Before, it created the root first.
func TestAnotherProgramsDatabaseLeavesNothing(t *testing.T) {
	dir := t.TempDir()
	index := filepath.Join(dir, "state_5.sqlite")
	storetest.WriteForeign(t, index)
	root := filepath.Join(dir, "root")
	err := run(t.Context(), []string{"-root", root, "-index", index, "-addr", "127.0.0.1:0"}, func(string) string { return "" }, io.Discard)
	if !errors.Is(err, store.ErrNotIndex) {
		t.Fatalf("run: %v, want ErrNotIndex", err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if want := []string{"state_5.sqlite"}; !slices.Equal(names, want) {
		t.Fatalf("after the refusal %s holds %q, want %q", dir, names, want)
	}
}

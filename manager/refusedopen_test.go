package manager

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/spoolhq/spool/internal/storetest"
	"github.com/spoolhq/spool/store"
)

// TestRefusedOpenLeavesNothing: an Open refused because its index path
// names another program's SQLite database (ErrNotIndex) leaves nothing it
// created: no spool.lock beside the database and no root directory. Before,
// the lock file it had created stayed beside the other program's file. A
// lock file that was there before stays.
func TestRefusedOpenLeavesNothing(t *testing.T) {
	for _, c := range []struct {
		name       string
		lockBefore bool
	}{
		{"no lock file before", false},
		{"a lock file before", true},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			index := filepath.Join(dir, "state_5.sqlite")
			storetest.WriteForeign(t, index)
			if c.lockBefore {
				if err := os.WriteFile(filepath.Join(dir, LockFile), nil, 0o600); err != nil {
					t.Fatal(err)
				}
			}
			before := names(t, dir)
			root := filepath.Join(dir, "new", "root")
			m, err := Open(t.Context(), Options{Root: root, IndexPath: index, Logger: quiet})
			if err == nil {
				m.Close()
				t.Fatal("Open of another program's database succeeded")
			}
			if !errors.Is(err, store.ErrNotIndex) {
				t.Fatalf("Open: %v, want ErrNotIndex", err)
			}
			if after := names(t, dir); !slices.Equal(after, before) {
				t.Fatalf("after a refused Open %s holds %q, want %q as before", dir, after, before)
			}
		})
	}
}

// names returns the names in dir.
func names(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

package manager_test

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"testing"

	"github.com/spoolhq/spool/backendtest"
	"github.com/spoolhq/spool/indexer"
	"github.com/spoolhq/spool/internal/indextest"
	"github.com/spoolhq/spool/manager"
	"github.com/spoolhq/spool/rolloutfs"
	"github.com/spoolhq/spool/store"
)

// TestBackendConformance runs the suite every backend passes on the local
// one. After each case the index must agree with the files the case left:
// indexer.Verify finds no drift, and an index rebuilt from the files
// equals it, the hits of the suite's searches included.
func TestBackendConformance(t *testing.T) {
	backendtest.Run(t, func(t *testing.T) manager.Backend {
		root := t.TempDir()
		m, err := manager.Open(t.Context(), manager.Options{Root: root, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if err := m.Close(); err != nil {
				t.Fatal(err)
			}
			verifyClean(t, root)
		})
		return m
	})
}

// verifyClean fails t unless the index of the closed manager root agrees
// with its files.
func verifyClean(t *testing.T, root string) {
	t.Helper()
	ctx := context.Background() // t.Context is done in a cleanup
	st, err := store.OpenReadOnly(ctx, filepath.Join(root, manager.IndexFile))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	rep, err := indexer.Verify(ctx, st, rolloutfs.Local{Root: root})
	if err != nil {
		t.Fatal(err)
	}
	if !rep.Clean() {
		t.Fatalf("the index disagrees with the files the case left: %+v", rep.Drifts)
	}
	indextest.CompareRebuilds(t, st, root, searchedWords...)
}

// searchedWords are the words the suite's cases search for.
var searchedWords = []string{"beluga", "manatee", "narwhal", "orca", "own", "porpoise", "seal", "stripes", "walrus", "zebra", "zyxqq"}

package indexer

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/spoolhq/spool/rollout"
	"github.com/spoolhq/spool/rolloutfs"
	"github.com/spoolhq/spool/store"
)

// TestSyncKeepsUnindexedForks: a reference fork a sync cannot index is
// recorded with the base its history_base names (a delete of that base
// reads the record: the file still holds it as Codex counts it), by an
// incremental sync and by a sync of paths alike; the record goes when the
// file is indexed at last or is gone.
func TestSyncKeepsUnindexedForks(t *testing.T) {
	const (
		ts      = "2026-11-20T10:00:00.000Z"
		missing = "019dab90-0000-7000-8000-00000000dead"
		x       = "019dab90-0000-7000-8000-0000000000c1" // base: missing
		y       = "019dab90-0000-7000-8000-0000000000c2" // base: x
	)
	root := t.TempDir()
	fsys := rolloutfs.Local{Root: root}
	created := time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)
	rels := map[string]string{}
	for id, base := range map[string]string{x: missing, y: x} {
		rel, err := rollout.SessionPath(rollout.FileName(created, id))
		if err != nil {
			t.Fatal(err)
		}
		rels[id] = rel
		writeRollout(t, root, rel, referenceFork(t, ts, id, base, 100))
	}
	st := openStore(t)
	recorded := func(t *testing.T, want ...store.UnindexedFork) {
		t.Helper()
		got, err := st.UnindexedForks(t.Context(), nil)
		if err != nil {
			t.Fatal(err)
		}
		slices.SortFunc(want, func(a, b store.UnindexedFork) int { return strings.Compare(a.RolloutPath, b.RolloutPath) })
		if !slices.Equal(got, want) {
			t.Fatalf("unindexed forks = %+v, want %+v", got, want)
		}
	}
	fx := store.UnindexedFork{RolloutPath: rels[x], ThreadID: x, Base: missing}
	fy := store.UnindexedFork{RolloutPath: rels[y], ThreadID: y, Base: x}

	if sum := mustSync(t, st, root, SyncOptions{}); sum.Failed != 2 {
		t.Fatalf("sync failed %d files, want 2", sum.Failed)
	}
	recorded(t, fx, fy)
	bases, err := st.UnindexedForks(t.Context(), []string{x})
	if err != nil || !slices.Equal(bases, []store.UnindexedFork{fy}) {
		t.Fatalf("unindexed forks of %s = %+v (%v), want %+v", x, bases, err, fy)
	}
	mustSync(t, st, root, SyncOptions{Full: true})
	recorded(t, fx, fy)

	// x rewritten as a thread of its own: indexed, its record goes.
	writeRollout(t, root, rels[x], metaLine(ts, x, ""), userLine(ts, "hello"))
	if _, err := SyncPaths(t.Context(), st, fsys, []string{rels[x]}, SyncOptions{}); err != nil {
		t.Fatal(err)
	}
	recorded(t, fy)

	// y's file gone: a sync of other paths leaves its record, the
	// sync of its path and the walk drop it.
	if err := os.Remove(filepath.Join(root, filepath.FromSlash(rels[y]))); err != nil {
		t.Fatal(err)
	}
	if _, err := SyncPaths(t.Context(), st, fsys, []string{rels[x]}, SyncOptions{}); err != nil {
		t.Fatal(err)
	}
	recorded(t, fy)
	if _, err := SyncPaths(t.Context(), st, fsys, []string{rels[y]}, SyncOptions{}); err != nil {
		t.Fatal(err)
	}
	recorded(t)

	writeRollout(t, root, rels[y], referenceFork(t, ts, y, missing, 100))
	mustSync(t, st, root, SyncOptions{})
	recorded(t, store.UnindexedFork{RolloutPath: rels[y], ThreadID: y, Base: missing})
	if err := os.Remove(filepath.Join(root, filepath.FromSlash(rels[y]))); err != nil {
		t.Fatal(err)
	}
	mustSync(t, st, root, SyncOptions{})
	recorded(t)
}

package indexer

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/spoolhq/spool/rolloutfs"
)

// TestSyncFollowsACompressedEarlierFile: Codex compresses cold rollouts
// (rel.zst written, then rel removed), and the first file of a reverted
// thread is cold: nothing is appended to it again. The index must follow
// the earlier file to its compressed name (and back when it is
// decompressed), whichever order a sync meets the two names in. It kept
// the plain name as the thread's chain link (and added the .zst as a file
// out of the history), so every read of the thread answered broken_chain
// and Verify reported "earlier file ... is gone", even after a full
// rescan; only a fresh index read it again.
func TestSyncFollowsACompressedEarlierFile(t *testing.T) {
	ctx := t.Context()
	root := t.TempDir()
	st := openStore(t)
	fsys := rolloutfs.Local{Root: root}
	rt := newRevertedThread(t, root, 3)
	seg, _ := rt.revert(t, root, rt.data, rt.hist.Turns[1].Offset, "019dab90-9999-7000-8000-000000000001", rt.created.Add(24*time.Hour))
	mustSync(t, st, root, SyncOptions{})
	mustVerifyClean(t, st, root)
	zrel := rt.first + ".zst"
	abs := filepath.Join(root, filepath.FromSlash(rt.first))
	enc, err := zstd.NewWriter(nil)
	if err != nil {
		t.Fatal(err)
	}
	z := enc.EncodeAll(rt.data, nil)

	check := func(when, want string) {
		t.Helper()
		segs, err := st.Segments(ctx, rt.id)
		if err != nil {
			t.Fatal(err)
		}
		if len(segs) != 1 || segs[0].RolloutPath != want || !segs[0].InChain() {
			t.Fatalf("%s: segments %+v, want one chain link at %s", when, segs, want)
		}
		if th, err := st.Get(ctx, rt.id); err != nil || th.RolloutPath != seg || th.UserMessageCount != 1 {
			t.Fatalf("%s: row %+v, %v", when, th, err)
		}
		mustVerifyClean(t, st, root)
	}

	// As the watcher meets Codex's compression: the .zst appears beside
	// the plain file (which still wins), then the plain file goes.
	if err := os.WriteFile(abs+".zst", z, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := SyncPaths(ctx, st, fsys, []string{zrel}, SyncOptions{}); err != nil {
		t.Fatal(err)
	}
	check("both forms there", rt.first)
	if err := os.Remove(abs); err != nil {
		t.Fatal(err)
	}
	if _, err := SyncPaths(ctx, st, fsys, []string{rt.first}, SyncOptions{}); err != nil {
		t.Fatal(err)
	}
	check("compressed, watcher", zrel)

	// Decompressed again, met by a walk (a restart, reindex).
	if err := os.WriteFile(abs, rt.data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(abs + ".zst"); err != nil {
		t.Fatal(err)
	}
	mustSync(t, st, root, SyncOptions{})
	check("decompressed, walk", rt.first)

	// Compressed while no sync ran, met by a walk.
	if err := os.WriteFile(abs+".zst", z, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(abs); err != nil {
		t.Fatal(err)
	}
	mustSync(t, st, root, SyncOptions{})
	check("compressed, walk", zrel)
}

package manager

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/spoolhq/spool/internal/fixtures"
	"github.com/spoolhq/spool/rollout"
)

// mustBeLive fails the test unless thread id is live in m (the state the
// tests below are about: the watcher's check of a live thread).
func mustBeLive(t *testing.T, m *Manager, id string) {
	t.Helper()
	lt := m.peekLive(t.Context(), id)
	if lt == nil {
		t.Fatalf("thread %s is not live", id)
	}
	m.release(lt)
}

// TestWatchLiveThreadDecompressedByAnother: Codex decompresses a cold
// rollout to its plain name before it appends (plain file written beside
// the .jsonl.zst, then the .zst removed). When the thread is live in the
// manager (a refused append loads it), the watcher must move the row to
// the plain file. It looked only at the live thread's own file (the .zst,
// unchanged), skipped the plain file, then dropped the thread from the
// index when the .zst went: the thread answered ErrNotFound until the
// next full rescan.
func TestWatchLiveThreadDecompressedByAnother(t *testing.T) {
	ctx := t.Context()
	root := t.TempDir()
	m := openTest(t, func(o *Options) { o.Root = root })
	th := start(t, m, user("one"), assistant("1"), user("two"), assistant("2"))
	plainRel := th.RolloutPath
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	zrel := fixtures.CompressRollout(t, root, plainRel)
	m, reports := openWatching(t, func(o *Options) { o.Root = root })
	if _, err := m.Append(ctx, th.ID, []rollout.Item{user("refused")}); err == nil {
		t.Fatal("append to a compressed thread succeeded")
	}
	mustBeLive(t, m, th.ID)

	// Codex's materialize_rollout_for_append: decompress, rename into
	// place, remove the compressed file.
	zabs := filepath.Join(root, filepath.FromSlash(zrel))
	z, err := os.ReadFile(zabs)
	if err != nil {
		t.Fatal(err)
	}
	dec, err := zstd.NewReader(bytes.NewReader(z))
	if err != nil {
		t.Fatal(err)
	}
	var plain bytes.Buffer
	if _, err := plain.ReadFrom(dec); err != nil {
		t.Fatal(err)
	}
	dec.Close()
	pabs := filepath.Join(root, filepath.FromSlash(plainRel))
	if err := os.WriteFile(pabs+".tmp", plain.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(pabs+".tmp", pabs); err != nil {
		t.Fatal(err)
	}
	// Both files there (Codex between its rename and its remove, or a
	// user's zstd -d -k): the plain file wins, as for Codex and Walk.
	plainWins := func() bool {
		got, err := m.Get(ctx, th.ID)
		return err == nil && got.RolloutPath == plainRel && got.UserMessageCount == 2
	}
	waitFor(t, reports, "the thread indexed from its plain file beside the .zst", plainWins)
	if err := os.Remove(zabs); err != nil {
		t.Fatal(err)
	}
	waitFor(t, reports, "the thread indexed from its plain file", plainWins)
	if _, err := m.Append(ctx, th.ID, []rollout.Item{user("three")}); err != nil {
		t.Fatalf("append after the decompression: %v", err)
	}
	verifyClean(t, m)
}

// TestWatchLiveThreadRevertedByAnother: Codex reverts a thread that is
// live in the manager (Codex's thread/revert writes a segment; spool's
// writer lock is per append, so Codex may load and revert a thread spool
// holds in memory). The watcher must index the segment as the thread's
// head. It looked only at the live thread's own file, unchanged, so the
// segment was ignored and the next append went to the first file past
// the cut: acknowledged, then gone from the thread's history once the
// index was rebuilt (reindex --verify reported drift meanwhile).
func TestWatchLiveThreadRevertedByAnother(t *testing.T) {
	ctx := t.Context()
	m, reports := openWatching(t)
	th := threeTurns(t, m, "paginated")
	mustBeLive(t, m, th.ID)
	rel, _ := writeCodexSegment(t, m, th.ID, time.Now().UTC().Add(time.Minute))
	waitFor(t, reports, "the segment indexed", func() bool {
		got, err := m.Get(ctx, th.ID)
		return err == nil && got.RolloutPath == rel
	})
	res, err := m.Append(ctx, th.ID, []rollout.Item{user("after codex's revert")})
	if err != nil {
		t.Fatal(err)
	}
	if res.Thread.RolloutPath != rel || res.Thread.UserMessageCount != 2 {
		t.Fatalf("append after the revert went to %s (%d user messages), want %s with 2", res.Thread.RolloutPath, res.Thread.UserMessageCount, rel)
	}
	verifyClean(t, m)
}

// TestDeleteRemovesTheCompressedForm: a thread whose plain file has its
// compressed form beside it (Codex between writing rel.zst and removing
// rel; a user's zstd -k) is read from the plain file. Delete removed only
// that, so the next sync (a restart, the periodic rescan) indexed the
// thread again from the .zst: a deleted thread came back, text and all.
// The same for a reverted thread's earlier file.
func TestDeleteRemovesTheCompressedForm(t *testing.T) {
	ctx := t.Context()
	root := t.TempDir()
	m := openTest(t, func(o *Options) { o.Root = root })
	plainTh := start(t, m, user("one"), assistant("1"))
	reverted := threeTurns(t, m, "paginated")
	first := reverted.RolloutPath
	if _, err := m.Revert(ctx, reverted.ID, RevertOptions{BeforeUserMessage: intp(1)}); err != nil {
		t.Fatal(err)
	}
	for _, rel := range []string{plainTh.RolloutPath, first} {
		compressBeside(t, root, rel)
	}
	for _, id := range []string{plainTh.ID, reverted.ID} {
		if err := m.Delete(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	m = openTest(t, func(o *Options) { o.Root = root })
	for _, id := range []string{plainTh.ID, reverted.ID} {
		if got, err := m.Get(ctx, id); err == nil {
			t.Errorf("deleted thread %s is back after a reopen, from %s", id, got.RolloutPath)
		}
	}
	verifyClean(t, m)
}

// TestArchiveMovesTheCompressedForm: archive of a thread whose plain file
// has its compressed form beside it moves both; left in sessions/, the
// .zst would be the live copy the next sync prefers, and the thread would
// come back unarchived. Unarchive moves both back.
func TestArchiveMovesTheCompressedForm(t *testing.T) {
	ctx := t.Context()
	root := t.TempDir()
	m := openTest(t, func(o *Options) { o.Root = root })
	th := start(t, m, user("one"), assistant("1"))
	abs := compressBeside(t, root, th.RolloutPath)
	archived, err := m.Archive(ctx, th.ID)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, filepath.FromSlash(archived.RolloutPath)) + ".zst"); err != nil {
		t.Fatalf("the compressed form after the archive: %v, want it beside the archived file", err)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	m = openTest(t, func(o *Options) { o.Root = root })
	got, err := m.Get(ctx, th.ID)
	if err != nil || !got.Archived {
		t.Fatalf("after archive and reopen: %+v, %v; want archived", got, err)
	}
	verifyClean(t, m)
	if _, err := m.Unarchive(ctx, th.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(abs + ".zst"); err != nil {
		t.Fatalf("the compressed form after the unarchive: %v, want it back beside the file", err)
	}
	verifyClean(t, m)
}

// compressBeside writes the compressed form of rollout file rel next to
// it (a user's zstd -k) and returns rel's absolute path.
func compressBeside(t *testing.T, root, rel string) string {
	t.Helper()
	abs := filepath.Join(root, filepath.FromSlash(rel))
	data, err := os.ReadFile(abs)
	if err != nil {
		t.Fatal(err)
	}
	enc, err := zstd.NewWriter(nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(abs+".zst", enc.EncodeAll(data, nil), 0o600); err != nil {
		t.Fatal(err)
	}
	return abs
}

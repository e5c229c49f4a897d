package indexer

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/spoolhq/spool/internal/fixtures"
	"github.com/spoolhq/spool/rolloutfs"
	"github.com/spoolhq/spool/store"
)

func compressedFixture(t *testing.T) (root, rel string, plain store.Record) {
	t.Helper()
	const ts = "2026-06-01T08:00:00.000Z"
	root = t.TempDir()
	lines := []string{metaLine(ts, idX, ""), userLine(ts, "first"), assistantLine(ts, "a")}
	for i := range 200 { // more than one zstd block
		lines = append(lines, userLine("2026-06-01T08:00:01.000Z", strings.Repeat("prompt ", 50)+string(rune('a'+i%26))))
	}
	lines = append(lines, nameLine("2026-06-01T08:00:02.000Z", idX, "cold"))
	writeRollout(t, root, relFor(idX), lines...)
	plain, _, err := ScanFile(t.Context(), rolloutfs.Local{Root: root}, relFor(idX))
	if err != nil {
		t.Fatal(err)
	}
	return root, fixtures.CompressRollout(t, root, relFor(idX)), plain
}

func TestScanFileCompressed(t *testing.T) {
	root, rel, plain := compressedFixture(t)
	fsys := rolloutfs.Local{Root: root}
	rec, problems, err := ScanFile(t.Context(), fsys, rel)
	if err != nil {
		t.Fatalf("ScanFile(%s): %v", rel, err)
	}
	if len(problems) != 0 {
		t.Fatalf("problems = %v", problems)
	}
	if got, want := rec.Thread.RolloutPath, rel; got != want {
		t.Fatalf("rollout_path = %s, want %s", got, want)
	}
	if got, want := rec.Thread.FileSize, fileSize(t, root, rel); got != want {
		t.Fatalf("file_size = %d, want the compressed size %d", got, want)
	}
	// Everything else is the plain file's: offsets of decompressed lines,
	// but the tail sum, which a file never caught up needs not.
	want := plain
	want.Thread.RolloutPath, want.Thread.FileSize, want.Thread.FileMtime = rec.Thread.RolloutPath, rec.Thread.FileSize, rec.Thread.FileMtime
	want.Thread.TailSum = 0
	if rec.Thread != want.Thread {
		t.Fatalf("thread = %+v\nwant %+v", rec.Thread, want.Thread)
	}
	if !slices.Equal(rec.Messages, plain.Messages) {
		t.Fatalf("messages differ from the plain file's: %d vs %d", len(rec.Messages), len(plain.Messages))
	}
}

func TestScanFileCompressedTruncated(t *testing.T) {
	root, rel, _ := compressedFixture(t)
	abs := filepath.Join(root, filepath.FromSlash(rel))
	b, err := os.ReadFile(abs)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(abs, b[:len(b)/2], 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := ScanFile(t.Context(), rolloutfs.Local{Root: root}, rel); err == nil {
		t.Fatal("ScanFile of a truncated .zst succeeded, want a decoding error")
	}
}

func TestWalkCompressed(t *testing.T) {
	root, rel, _ := compressedFixture(t)
	fsys := rolloutfs.Local{Root: root}
	paths, err := Walk(t.Context(), fsys)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{rel}; !slices.Equal(paths, want) {
		t.Fatalf("Walk = %v, want %v", paths, want)
	}
	// Codex prefers the plain file when both exist (it decompresses to
	// append): the compressed sibling is not listed, not even as a duplicate.
	writeRollout(t, root, relFor(idX), metaLine("2026-06-01T08:00:00.000Z", idX, ""))
	paths, err = Walk(t.Context(), fsys)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{relFor(idX)}; !slices.Equal(paths, want) {
		t.Fatalf("Walk with a plain sibling = %v, want %v", paths, want)
	}
}

func TestSyncCompressed(t *testing.T) {
	root, rel, plain := compressedFixture(t)
	st := openStore(t)
	sum := mustSync(t, st, root, SyncOptions{})
	if len(sum.Problems) != 0 {
		t.Fatalf("problems = %v", sum.Problems)
	}
	got, err := st.Get(t.Context(), idX)
	if err != nil {
		t.Fatal(err)
	}
	if got.RolloutPath != rel || got.UserMessageCount != plain.Thread.UserMessageCount || got.Name != "cold" {
		t.Fatalf("indexed %+v, want path %s, %d user messages, name cold", got, rel, plain.Thread.UserMessageCount)
	}
	// Unchanged: skipped. Rebuilt from the files: the same row.
	if sum := mustSync(t, st, root, SyncOptions{}); sum.Scanned != 0 || sum.CaughtUp != 0 {
		t.Fatalf("second sync scanned %d, caught up %d; want 0, 0", sum.Scanned, sum.CaughtUp)
	}
	mustSync(t, st, root, SyncOptions{Full: true})
	again, err := st.Get(t.Context(), idX)
	if err != nil {
		t.Fatal(err)
	}
	if again != got {
		t.Fatalf("rebuild = %+v\nwant %+v", again, got)
	}
	mustVerifyClean(t, st, root)
}

func TestCompressedNeverCutOrCaughtUp(t *testing.T) {
	root, rel, _ := compressedFixture(t)
	fsys := rolloutfs.Local{Root: root}
	before, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(rel)))
	if err != nil {
		t.Fatal(err)
	}
	// The compressed bytes do not end in a newline: a cut would destroy them.
	cut, err := CutTornTail(t.Context(), fsys, rel, time.Now())
	if err != nil || cut.Length != 0 {
		t.Fatalf("CutTornTail = %+v, %v; want nothing cut", cut, err)
	}
	after, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(rel)))
	if err != nil || !bytes.Equal(before, after) {
		t.Fatalf("the compressed file changed (%v)", err)
	}
	_, _, err = CatchUp(context.Background(), fsys, store.Thread{ID: idX, RolloutPath: rel, IndexedSize: 10})
	if !errors.Is(err, ErrChanged) {
		t.Fatalf("CatchUp of a compressed file: err = %v, want ErrChanged", err)
	}
}

// TestSyncDecompressedBeside: a thread indexed from its .jsonl.zst whose
// plain file then appears beside it (zstd -d -k, or Codex decompressing it
// before it writes again) is indexed from the plain file, with no problem
// reported, and verifies clean; and again once the .zst is removed.
func TestSyncDecompressedBeside(t *testing.T) {
	root, zrel, plain := compressedFixture(t)
	st := openStore(t)
	mustSync(t, st, root, SyncOptions{})
	writeRollout(t, root, plain.Thread.RolloutPath, string(plainBytes(t, root, zrel)))
	for _, step := range []string{"both forms", "plain alone"} {
		if step == "plain alone" {
			if err := os.Remove(filepath.Join(root, filepath.FromSlash(zrel))); err != nil {
				t.Fatal(err)
			}
		}
		sum := mustSync(t, st, root, SyncOptions{})
		if len(sum.Problems) != 0 {
			t.Errorf("%s: problems %v, want none", step, sum.Problems)
		}
		got, err := st.Get(t.Context(), idX)
		if err != nil || got.RolloutPath != plain.Thread.RolloutPath {
			t.Fatalf("%s: row at %q (%v), want the plain file %s", step, got.RolloutPath, err, plain.Thread.RolloutPath)
		}
		mustVerifyClean(t, st, root)
	}
}

// plainBytes returns the decompressed content of root/rel, a .jsonl.zst.
func plainBytes(t *testing.T, root, rel string) []byte {
	t.Helper()
	z, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(rel)))
	if err != nil {
		t.Fatal(err)
	}
	dec, err := zstd.NewReader(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer dec.Close()
	data, err := dec.DecodeAll(z, nil)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

package manager

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/klauspost/compress/zstd"

	"github.com/spoolhq/spool/indexer"
	"github.com/spoolhq/spool/internal/fixtures"
	"github.com/spoolhq/spool/rollout"
	"github.com/spoolhq/spool/rolloutfs"
)

// compressedThread starts a thread with three turns, closes the manager,
// compresses the rollout as Codex does (rel.zst beside it, the plain file
// removed) and reopens the root. It returns the plain bytes too.
func compressedThread(t *testing.T) (*Manager, Thread, []byte) {
	t.Helper()
	return compressedThreadOf(t, start)
}

// compressedThreadOf is compressedThread of a thread started by startFn.
func compressedThreadOf(t *testing.T, startFn func(testing.TB, *Manager, ...rollout.Item) Thread) (*Manager, Thread, []byte) {
	t.Helper()
	root := t.TempDir()
	o := Options{Root: root, Sync: rolloutfs.SyncNone, Logger: quiet}
	m, err := Open(t.Context(), o)
	if err != nil {
		t.Fatal(err)
	}
	th := startFn(t, m, user("one"), assistant("1"), user("two"), assistant("2"), user("three"), assistant("3"))
	plain := readFile(t, m, th)
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	fixtures.CompressRollout(t, root, th.RolloutPath)
	m = openTest(t, func(o *Options) { o.Root = root })
	th, err = m.Get(t.Context(), th.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !rollout.IsCompressed(th.RolloutPath) || th.UserMessageCount != 3 {
		t.Fatalf("reopened thread: path %s, %d user messages; want a .zst with 3", th.RolloutPath, th.UserMessageCount)
	}
	return m, th, plain
}

// read returns what a read call gave, failing the test on error.
func read(t *testing.T) func(rc io.ReadCloser, err error) []byte {
	return func(rc io.ReadCloser, err error) []byte { t.Helper(); return readAll(t, rc, err) }
}

func TestCompressedRead(t *testing.T) {
	m, th, plain := compressedThread(t)
	ctx := t.Context()
	msgs, err := m.UserMessages(ctx, th.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got := read(t)(m.ReadFrom(ctx, th.ID, -1)); !bytes.Equal(got, plain) {
		t.Fatalf("ReadFrom(-1) = %d bytes, want the %d plain bytes", len(got), len(plain))
	}
	if got, want := read(t)(m.ReadFrom(ctx, th.ID, 1)), plain[msgs[1].Offset:]; !bytes.Equal(got, want) {
		t.Fatalf("ReadFrom(1) = %q\nwant %q", got, want)
	}
	// Backwards after forwards: each read decodes from the start again.
	for _, k := range []int{2, 0, 1} {
		end := int64(len(plain))
		if k+1 < len(msgs) {
			end = msgs[k+1].Offset
		}
		if got, want := read(t)(m.ReadTurn(ctx, th.ID, k)), plain[msgs[k].Offset:end]; !bytes.Equal(got, want) {
			t.Fatalf("ReadTurn(%d) = %q\nwant %q", k, got, want)
		}
	}
}

func TestCompressedAppendRefused(t *testing.T) {
	m, th, _ := compressedThread(t)
	ctx := t.Context()
	abs := filepath.Join(m.Root(), filepath.FromSlash(th.RolloutPath))
	before, err := os.ReadFile(abs)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Append(ctx, th.ID, []rollout.Item{user("four")}); !errors.Is(err, ErrCompressed) {
		t.Fatalf("Append to a compressed thread: err = %v, want ErrCompressed", err)
	}
	if _, err := m.Rename(ctx, th.ID, "warm"); !errors.Is(err, ErrCompressed) {
		t.Fatalf("Rename of a compressed thread: err = %v, want ErrCompressed", err)
	}
	after, err := os.ReadFile(abs)
	if err != nil || !bytes.Equal(before, after) {
		t.Fatalf("the compressed file changed (%v)", err)
	}
	if got, err := m.Get(ctx, th.ID); err != nil || got.UserMessageCount != 3 || got.Name != "" {
		t.Fatalf("row after refusals = %+v, %v", got, err)
	}
	// Archive and unarchive move the file as it is.
	if got, err := m.Archive(ctx, th.ID); err != nil || got.RolloutPath != rollout.ArchivedPath(filepath.Base(abs)) {
		t.Fatalf("Archive = %+v, %v", got, err)
	}
	if _, err := m.Unarchive(ctx, th.ID); err != nil {
		t.Fatalf("Unarchive: %v", err)
	}
	if after, err := os.ReadFile(abs); err != nil || !bytes.Equal(before, after) {
		t.Fatalf("the compressed file changed by archive and unarchive (%v)", err)
	}
}

func TestCompressedFork(t *testing.T) {
	m, th, plain := compressedThread(t)
	ctx := t.Context()
	msgs, err := m.UserMessages(ctx, th.ID)
	if err != nil {
		t.Fatal(err)
	}
	child, err := m.Fork(ctx, th.ID, ForkOptions{BeforeUserMessage: intp(2)})
	if err != nil {
		t.Fatalf("Fork of a compressed thread: %v", err)
	}
	if rollout.IsCompressed(child.RolloutPath) || child.UserMessageCount != 2 || child.ParentID != th.ID {
		t.Fatalf("fork = %+v; want a plain file with 2 user messages, parent %s", child, th.ID)
	}
	// A new plain file: its meta line, then the parent's decompressed
	// bytes before user message 2.
	got := readFile(t, m, child)
	meta, rest, _ := bytes.Cut(got, []byte("\n"))
	if !bytes.Contains(meta, []byte(`"forked_from_id":"`+th.ID+`"`)) {
		t.Fatalf("fork meta = %s", meta)
	}
	if want := plain[:msgs[2].Offset]; !bytes.Equal(rest, want) {
		t.Fatalf("fork body = %q\nwant %q", rest, want)
	}
	if got := read(t)(m.ReadTurn(ctx, child.ID, 1)); !bytes.Equal(got, plain[msgs[1].Offset:msgs[2].Offset]) {
		t.Fatalf("fork's turn 1 = %q", got)
	}
	if _, err := m.Append(ctx, child.ID, []rollout.Item{user("three again")}); err != nil {
		t.Fatalf("Append to the fork: %v", err)
	}
}

// TestCompressedPaginatedForkCopies: a paginated thread whose rollout Codex
// compressed is forked by copy, not by reference, and is not reverted
// (ErrCompressed): Codex decompresses the file to its plain name before it
// writes to the thread again, which would leave a reference or a revert
// segment pointing at a path that is gone.
func TestCompressedPaginatedForkCopies(t *testing.T) {
	m, th, _ := compressedThreadOf(t, func(t testing.TB, m *Manager, items ...rollout.Item) Thread {
		return startPaginated(t.(*testing.T), m, items...)
	})
	ctx := t.Context()
	child, err := m.Fork(ctx, th.ID, ForkOptions{BeforeUserMessage: intp(2)})
	if err != nil {
		t.Fatal(err)
	}
	if child.BaseID != "" || child.UserMessageCount != 2 || rollout.IsCompressed(child.RolloutPath) {
		t.Fatalf("fork of a compressed paginated thread: base %q, %d messages, %s; want a plain copy of 2", child.BaseID, child.UserMessageCount, child.RolloutPath)
	}
	if _, err := m.Fork(ctx, th.ID, ForkOptions{Mode: ForkReference}); !errors.Is(err, ErrCompressed) {
		t.Fatalf("a reference fork of a compressed thread: %v, want ErrCompressed", err)
	}
	if _, err := m.Revert(ctx, th.ID, RevertOptions{BeforeUserMessage: intp(1)}); !errors.Is(err, ErrCompressed) {
		t.Fatalf("a revert of a compressed thread: %v, want ErrCompressed", err)
	}
}

// TestCompressedWhileOpen: Codex compresses a cold rollout while spool has
// the root open (a plain thread's file, or the newest file of a reverted
// one), then writes it again from its plain name. A read follows each
// move: the row names the compressed file (appends refused with
// ErrCompressed), then the plain one again (appends go on), and the index
// agrees with Verify and with a rebuild from the files at each step.
func TestCompressedWhileOpen(t *testing.T) {
	for _, tc := range []struct {
		name   string
		revert bool
	}{{"a thread in one file", false}, {"the newest file of a reverted thread", true}} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := t.Context()
			m := openTest(t)
			th := threeTurns(t, m, "paginated")
			if tc.revert {
				res, err := m.Revert(ctx, th.ID, RevertOptions{BeforeTurnID: "turn-c"})
				if err != nil {
					t.Fatal(err)
				}
				th = res
			}
			agree := func(step string) {
				t.Helper()
				rep, err := indexer.Verify(ctx, m.store, m.fsys)
				if err != nil || !rep.Clean() {
					t.Fatalf("%s: verify: %+v %+v, %v", step, rep.Drifts, rep.Problems, err)
				}
				compareRebuilds(t, m, "alpha", "beta", "archived")
			}
			keyed := AppendOptions{IdempotencyKey: "before-the-compression"}
			first, err := m.AppendWith(ctx, th.ID, []rollout.Item{assistant("keyed")}, keyed)
			if err != nil {
				t.Fatal(err)
			}
			zrel := fixtures.CompressRollout(t, m.Root(), th.RolloutPath)
			if _, err := m.UserMessages(ctx, th.ID); err != nil {
				t.Fatal(err)
			}
			if got, err := m.Get(ctx, th.ID); err != nil || got.RolloutPath != zrel {
				t.Fatalf("after Codex compressed it: %s, %v; want the row at %s", got.RolloutPath, err, zrel)
			}
			if _, err := m.Append(ctx, th.ID, []rollout.Item{user("four")}); !errors.Is(err, ErrCompressed) {
				t.Fatalf("append to the compressed thread: %v, want ErrCompressed", err)
			}
			agree("compressed")
			decompressRollout(t, m.Root(), zrel)
			if _, err := m.Append(ctx, th.ID, []rollout.Item{user("four")}); err != nil {
				t.Fatalf("append once Codex wrote it plain again: %v", err)
			}
			// The row was followed, not dropped and made again: what the
			// index alone keeps, an idempotency key, is still there.
			again, err := m.AppendWith(ctx, th.ID, []rollout.Item{assistant("keyed")}, keyed)
			if err != nil || !slices.Equal(again.Offsets, first.Offsets) {
				t.Fatalf("the keyed append sent again: offsets %v, %v; want %v replayed", again.Offsets, err, first.Offsets)
			}
			agree("plain again")
		})
	}
}

// TestCompressedBeforeAnAppend: Codex compresses a thread's file and the
// next call through spool is an append, with no read before it to catch
// the row up: the thread is live in memory (its writer held the plain
// file), or not (its load finds the plain file gone). Either way the
// append is refused with ErrCompressed and the row follows the file.
// Before, the live thread's append failed with a bare lstat error, and the
// load took the missing file for a deleted thread and dropped it from the
// index (ErrNotFound from then on, its idempotency keys lost).
func TestCompressedBeforeAnAppend(t *testing.T) {
	for _, tc := range []struct {
		name  string
		evict bool
	}{{"live", false}, {"not in memory", true}} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := t.Context()
			m := openTest(t, func(o *Options) { o.Capacity = 1 })
			th := threeTurns(t, m, "paginated")
			if _, err := m.Append(ctx, th.ID, []rollout.Item{user("four")}); err != nil {
				t.Fatal(err)
			}
			if tc.evict {
				threeTurns(t, m, "paginated") // the only live thread now
			}
			zrel := fixtures.CompressRollout(t, m.Root(), th.RolloutPath)
			if _, err := m.Append(ctx, th.ID, []rollout.Item{user("five")}); !errors.Is(err, ErrCompressed) {
				t.Fatalf("append right after Codex compressed the thread: %v, want ErrCompressed", err)
			}
			if got, err := m.Get(ctx, th.ID); err != nil || got.RolloutPath != zrel {
				t.Fatalf("row at %s, %v; want %s", got.RolloutPath, err, zrel)
			}
			rep, err := indexer.Verify(ctx, m.store, m.fsys)
			if err != nil || !rep.Clean() {
				t.Fatalf("verify: %+v %+v, %v", rep.Drifts, rep.Problems, err)
			}
			compareRebuilds(t, m, "alpha", "beta", "archived")
		})
	}
}

// TestCompressedPlainFormBesideIt: Codex writes a compressed thread plain
// again by publishing the plain file and only then removing the .zst (a
// Codex stopped in between leaves both). The plain file wins, for Codex
// and for Walk, so an append through spool goes to it even while the .zst
// is still there and the thread is live in spool's memory. Before, the
// live thread's unchanged .zst made the catch-up a no-op: every append
// was refused with ErrCompressed, and reads served the .zst, for as long
// as the thread stayed in memory.
func TestCompressedPlainFormBesideIt(t *testing.T) {
	ctx := t.Context()
	m := openTest(t)
	th := threeTurns(t, m, "paginated")
	zrel := fixtures.CompressRollout(t, m.Root(), th.RolloutPath)
	if _, err := m.UserMessages(ctx, th.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Append(ctx, th.ID, []rollout.Item{user("four")}); !errors.Is(err, ErrCompressed) {
		t.Fatalf("append to the compressed thread: %v, want ErrCompressed", err)
	}
	writePlainForm(t, m.Root(), zrel)
	if _, err := m.Append(ctx, th.ID, []rollout.Item{user("four")}); err != nil {
		t.Fatalf("append with the plain form beside the .zst: %v, want it appended to the plain file", err)
	}
	if got, err := m.Get(ctx, th.ID); err != nil || got.RolloutPath != th.RolloutPath {
		t.Fatalf("row at %s, %v; want %s", got.RolloutPath, err, th.RolloutPath)
	}
	rep, err := indexer.Verify(ctx, m.store, m.fsys)
	if err != nil || !rep.Clean() {
		t.Fatalf("verify: %+v %+v, %v", rep.Drifts, rep.Problems, err)
	}
	compareRebuilds(t, m, "alpha", "beta", "archived")
}

// decompressRollout writes compressed rollout rel back to its plain name
// and removes it, as Codex does before it appends to a compressed thread.
func decompressRollout(t *testing.T, root, rel string) {
	t.Helper()
	writePlainForm(t, root, rel)
	if err := os.Remove(filepath.Join(root, filepath.FromSlash(rel))); err != nil {
		t.Fatal(err)
	}
}

// writePlainForm writes compressed rollout rel's plain form beside it and
// keeps it, as Codex does before it removes the compressed one.
func writePlainForm(t *testing.T, root, rel string) {
	t.Helper()
	abs := filepath.Join(root, filepath.FromSlash(rel))
	packed, err := os.ReadFile(abs)
	if err != nil {
		t.Fatal(err)
	}
	dec, err := zstd.NewReader(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer dec.Close()
	data, err := dec.DecodeAll(packed, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, filepath.FromSlash(rollout.PlainName(rel))), data, 0o600); err != nil {
		t.Fatal(err)
	}
}

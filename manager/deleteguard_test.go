package manager

import (
	"context"
	"database/sql"
	"errors"
	"os"
	"path"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/spoolhq/spool/indexer"
	"github.com/spoolhq/spool/rollout"
	"github.com/spoolhq/spool/rolloutfs"
	"github.com/spoolhq/spool/store"
)

// The holes a review found in the delete's guard against orphaning forks
// the index does not hold (TestDeleteRefusesForksTheIndexCannotRead):
// each test failed before its mend.

// unreadableFork makes, in a new root, a thread that Codex forked through
// a turn of its revert segment and then reverted before that turn, so
// that no index can read the fork (see TestDeleteRefusesForksTheIndexCannotRead).
// It returns the root, the base, and the fork's path and bytes; the
// manager that made them is closed.
func unreadableFork(t *testing.T) (root string, base Thread, forkRel string, forkData []byte) {
	t.Helper()
	ctx := t.Context()
	m := openTest(t)
	base = threeTurns(t, m, "paginated")
	if _, err := m.Revert(ctx, base.ID, RevertOptions{BeforeTurnID: "turn-c"}); err != nil {
		t.Fatal(err)
	}
	for _, turn := range []string{"turn-q0", "turn-q1"} {
		if _, err := m.AppendTurn(ctx, base.ID, TurnOptions{TurnID: turn, Prompt: "p " + turn, Answer: "a " + turn}); err != nil {
			t.Fatal(err)
		}
	}
	fork, err := m.Fork(ctx, base.ID, ForkOptions{LastTurnID: "turn-q0"})
	if err != nil {
		t.Fatal(err)
	}
	forkData = readFile(t, m, fork)
	if err := m.Delete(ctx, fork.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Revert(ctx, base.ID, RevertOptions{BeforeTurnID: "turn-b"}); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(m.Root(), filepath.FromSlash(fork.RolloutPath)), forkData, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	return m.Root(), base, fork.RolloutPath, forkData
}

// rebuiltInOrder returns a new index of root's files, built by one sync
// reading them one at a time in the walk's order. A rebuild that reads them
// at once may index an unreadableFork, read through its base's revert
// segment before the base's newest file takes that segment out of its
// history (an indexer's order dependence in that uncovered case, open).
func rebuiltInOrder(t *testing.T, root string) string {
	t.Helper()
	index := filepath.Join(t.TempDir(), "rebuilt.db")
	st, err := store.Open(t.Context(), index)
	if err != nil {
		t.Fatal(err)
	}
	_, err = indexer.Sync(t.Context(), st, rolloutfs.Local{Root: root}, indexer.SyncOptions{Workers: 1})
	if cerr := st.Close(); err != nil || cerr != nil {
		t.Fatal(err, cerr)
	}
	return index
}

// forgottenFork forks thread id with o through m, then deletes the fork
// through m, and returns it and its bytes: written back by the test, it
// is a fork Codex has just written that no sync has read.
func forgottenFork(t *testing.T, m *Manager, id string, o ForkOptions) (Thread, []byte) {
	t.Helper()
	fork, err := m.Fork(t.Context(), id, o)
	if err != nil {
		t.Fatal(err)
	}
	data := readFile(t, m, fork)
	if err := m.Delete(t.Context(), fork.ID); err != nil {
		t.Fatal(err)
	}
	return fork, data
}

// openAt opens a manager on root with the index at index, closed with t.
func openAt(t *testing.T, root, index string, opts ...func(*Options)) *Manager {
	t.Helper()
	o := Options{Root: root, IndexPath: index, Sync: rolloutfs.SyncNone, Logger: quiet}
	for _, f := range opts {
		f(&o)
	}
	m, err := Open(t.Context(), o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

// TestDeleteFindsAnUnreadableForkThatMoved: the record names the fork's
// path when the sync met it; Codex may archive or compress the fork
// since. The delete looks at every place the fork's file may be.
func TestDeleteFindsAnUnreadableForkThatMoved(t *testing.T) {
	for _, move := range []string{"archived", "compressed"} {
		t.Run(move, func(t *testing.T) {
			root, base, forkRel, _ := unreadableFork(t)
			m := openAt(t, root, rebuiltInOrder(t, root))
			forkPath := filepath.Join(root, filepath.FromSlash(forkRel))
			switch move {
			case "archived":
				to := filepath.Join(root, filepath.FromSlash(rollout.ArchivedPath(path.Base(forkRel))))
				if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.Rename(forkPath, to); err != nil {
					t.Fatal(err)
				}
			case "compressed":
				compressBeside(t, root, forkRel)
				if err := os.Remove(forkPath); err != nil {
					t.Fatal(err)
				}
			}
			if err := m.Delete(t.Context(), base.ID); !errors.Is(err, ErrReferenced) {
				t.Fatalf("delete after Codex %s the unreadable fork: %v, want ErrReferenced", move, err)
			}
		})
	}
}

// TestDeleteOfAThreadWhoseOwnSegmentIsUnreadable: a revert segment that
// cannot be indexed names an earlier segment of its own thread by its
// uuid. It is no fork of the thread: the thread's delete goes ahead.
func TestDeleteOfAThreadWhoseOwnSegmentIsUnreadable(t *testing.T) {
	ctx := t.Context()
	m := openTest(t)
	th := threeTurns(t, m, "paginated")
	if _, err := m.Revert(ctx, th.ID, RevertOptions{BeforeTurnID: "turn-c"}); err != nil {
		t.Fatal(err)
	}
	for _, turn := range []string{"turn-q0", "turn-q1"} {
		if _, err := m.AppendTurn(ctx, th.ID, TurnOptions{TurnID: turn, Prompt: "p " + turn, Answer: "a " + turn}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := m.Revert(ctx, th.ID, RevertOptions{BeforeTurnID: "turn-q1"}); err != nil {
		t.Fatal(err)
	}
	root := m.Root()
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	// The older segment cut short by half its lines: the newer one,
	// cut in it, cannot be read.
	var segs []string
	err := filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if _, sid, _, err := rollout.ParseRolloutName(d.Name()); err == nil && sid != "" {
				segs = append(segs, p)
			}
		}
		return err
	})
	if err != nil || len(segs) != 2 {
		t.Fatalf("segments %v (%v), want 2", segs, err)
	}
	older := segs[0]
	if rollout.NewerFile(filepath.Base(segs[0]), filepath.Base(segs[1])) {
		older = segs[1]
	}
	b, err := os.ReadFile(older)
	if err != nil {
		t.Fatal(err)
	}
	ls := lines(b)
	var keep []byte
	for _, l := range ls[:len(ls)/2] {
		keep = append(keep, l...)
	}
	if err := os.WriteFile(older, keep, 0o644); err != nil {
		t.Fatal(err)
	}
	m = openAt(t, root, filepath.Join(t.TempDir(), "rebuilt.db"))
	if err := m.Delete(ctx, th.ID); err != nil {
		t.Fatalf("delete of a thread whose own segment cannot be indexed: %v", err)
	}
}

// TestDeleteReadsAForkWrittenAfterItsFileWasSeen: Codex creates a fork's
// file, then writes its meta. A delete that saw the file empty must read
// it again at the next delete, once written (writing into a file does not
// change its folder's mtime).
func TestDeleteReadsAForkWrittenAfterItsFileWasSeen(t *testing.T) {
	ctx := t.Context()
	m := openTest(t)
	base := threeTurns(t, m, "paginated")
	fork, data := forgottenFork(t, m, base.ID, ForkOptions{LastTurnID: "turn-b"})
	other := threeTurns(t, m, "paginated")
	forkPath := filepath.Join(m.Root(), filepath.FromSlash(fork.RolloutPath))
	if err := os.WriteFile(forkPath, nil, 0o644); err != nil { // created, not yet written
		t.Fatal(err)
	}
	if err := m.Delete(ctx, other.ID); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(forkPath, data, 0o644); err != nil { // Codex writes it
		t.Fatal(err)
	}
	if err := m.Delete(ctx, base.ID); !errors.Is(err, ErrReferenced) {
		t.Fatalf("delete of a base whose fork was written after a delete saw its empty file: %v, want ErrReferenced", err)
	}
}

// TestPurgeLeavesAForkOfADependentWhole: a purge makes the base's
// reference forks self-contained before it deletes the base. A fork of one
// of them that Codex has just written (no sync has read it) must be among
// them, or it loses the bytes its history_base names.
func TestPurgeLeavesAForkOfADependentWhole(t *testing.T) {
	ctx := t.Context()
	m := openTest(t)
	base := threeTurns(t, m, "paginated")
	f1, err := m.Fork(ctx, base.ID, ForkOptions{LastTurnID: "turn-b"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.AppendTurn(ctx, f1.ID, TurnOptions{TurnID: "turn-f", Prompt: "p f", Answer: "a f"}); err != nil {
		t.Fatal(err)
	}
	u2, err := m.Fork(ctx, f1.ID, ForkOptions{LastTurnID: "turn-f"})
	if err != nil {
		t.Fatal(err)
	}
	want := previews(t, m, u2.ID)
	data := readFile(t, m, u2)
	if err := m.Delete(ctx, u2.ID); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(m.Root(), filepath.FromSlash(u2.RolloutPath)), data, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := m.Purge(ctx, base.ID); err != nil {
		t.Fatal(err)
	}
	// Made self-contained itself (its lines laid out anew), it reads the
	// same prompts.
	if got := previews(t, m, u2.ID); !slices.Equal(got, want) {
		t.Fatalf("the fork of a dependent after the purge reads %q, want %q", got, want)
	}
}

// previews returns the previews of thread id's user messages, as read
// through the manager.
func previews(t *testing.T, m *Manager, id string) []string {
	t.Helper()
	msgs, err := m.UserMessages(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, msg := range msgs {
		out = append(out, msg.Preview)
	}
	return out
}

// TestPurgeRefusesAnUnreadableForkOfADependent: a purge cannot make a fork
// the index cannot read self-contained: it refuses before it rewrites
// anything.
func TestPurgeRefusesAnUnreadableForkOfADependent(t *testing.T) {
	root, base, forkRel, forkData := unreadableFork(t)
	m := openAt(t, root, rebuiltInOrder(t, root))
	if err := m.Purge(t.Context(), base.ID); !errors.Is(err, ErrReferenced) {
		t.Fatalf("purge: %v, want ErrReferenced", err)
	}
	if got, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(forkRel))); err != nil || string(got) != string(forkData) {
		t.Fatalf("the fork's file after the refused purge changed (%v)", err)
	}
}

// gateFS holds each walk of the root (its ReadDir of ".") until gate is
// closed; the first fails of them then fail.
type gateFS struct {
	rolloutfs.Local
	gate  chan struct{}
	fails *atomic.Int32
}

func (g gateFS) ReadDir(ctx context.Context, dir string) ([]rolloutfs.DirEntry, error) {
	if dir == "." {
		<-g.gate
		if g.fails.Add(-1) >= 0 {
			return nil, syscall.EIO
		}
	}
	return g.Local.ReadDir(ctx, dir)
}

// TestDeleteWaitsForTheOpensWalk: a Background open (spoold's) returns
// before its walk; an index upgraded from migration 00020 holds no record
// of the forks earlier syncs could not read until that walk has read the
// root. A delete waits for it. When the walk fails, a manager without
// the watcher (nothing retries) walks again in the delete; a delete that
// finds no walk succeeded is refused (ErrUnwalked), and nothing is
// removed.
func TestDeleteWaitsForTheOpensWalk(t *testing.T) {
	for _, tc := range []struct {
		name  string
		fails int32 // walks of the root that fail
		want  error
	}{
		{"walk succeeds", 0, ErrReferenced},
		{"walk fails, the delete walks again", 1, ErrReferenced},
		{"every walk fails", 100, ErrUnwalked},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root, base, forkRel, forkData := unreadableFork(t)
			// The fork in an older date folder, as one made weeks ago.
			id, _, _, err := rollout.ParseRolloutName(path.Base(forkRel))
			if err != nil {
				t.Fatal(err)
			}
			old, err := rollout.SessionPath(rollout.FileName(time.Date(2026, 10, 1, 9, 0, 0, 0, time.UTC), id))
			if err != nil {
				t.Fatal(err)
			}
			if err := os.Remove(filepath.Join(root, filepath.FromSlash(forkRel))); err != nil {
				t.Fatal(err)
			}
			writeAt(t, root, old, forkData)
			index := rebuiltInOrder(t, root)
			if err := openAt(t, root, index).Close(); err != nil {
				t.Fatal(err)
			}
			// As an index at migration 00020 upgraded: no records.
			db, err := sql.Open("sqlite", index)
			if err != nil {
				t.Fatal(err)
			}
			_, err = db.Exec(`DELETE FROM unindexed_forks; DELETE FROM index_state WHERE key = 'clean_close'`)
			if cerr := db.Close(); err != nil || cerr != nil {
				t.Fatal(err, cerr)
			}
			files := baseFiles(t, root, base.ID)
			gate := make(chan struct{})
			var release sync.Once
			open := func() { release.Do(func() { close(gate) }) }
			defer open()
			m := openAt(t, root, index, func(o *Options) {
				o.Background = true
				fails := new(atomic.Int32)
				fails.Store(tc.fails)
				o.FS = gateFS{Local: rolloutfs.Local{Root: root}, gate: gate, fails: fails}
			})
			t.Cleanup(func() { deleteStep = nil })
			deleteStep = func(step string) {
				if step == "reconciling" {
					open() // the walk goes on once the delete waits for it
				}
			}
			if err := m.Delete(t.Context(), base.ID); !errors.Is(err, tc.want) {
				t.Fatalf("delete during the open's walk: %v, want %v", err, tc.want)
			}
			if got := baseFiles(t, root, base.ID); !slices.Equal(got, files) {
				t.Fatalf("the base's files after the refused delete: %v, want %v", got, files)
			}
		})
	}
}

// TestDeleteFindsAnUnreadableForkOutOfPlace: the walk reads rollout files
// in any folder under sessions/, not only the one their name's date
// gives; a record names the file where the walk met it.
func TestDeleteFindsAnUnreadableForkOutOfPlace(t *testing.T) {
	for _, where := range []string{"sessions/2026/10/02", "sessions/imported"} {
		t.Run(where, func(t *testing.T) {
			root, base, forkRel, forkData := unreadableFork(t)
			if err := os.Remove(filepath.Join(root, filepath.FromSlash(forkRel))); err != nil {
				t.Fatal(err)
			}
			writeAt(t, root, path.Join(where, path.Base(forkRel)), forkData)
			m := openAt(t, root, rebuiltInOrder(t, root))
			if err := m.Delete(t.Context(), base.ID); !errors.Is(err, ErrReferenced) {
				t.Fatalf("delete with the fork in %s: %v, want ErrReferenced", where, err)
			}
		})
	}
}

// writeAt writes data to root/rel, making its folders.
func writeAt(t *testing.T, root, rel string, data []byte) {
	t.Helper()
	p := filepath.Join(root, filepath.FromSlash(rel))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

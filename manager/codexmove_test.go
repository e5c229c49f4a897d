package manager

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/spoolhq/spool/indexer"
	"github.com/spoolhq/spool/rollout"
	"github.com/spoolhq/spool/rolloutfs"
)

// TestCodexArchiveWhileOpen: Codex archives a thread spool has open (its
// thread/archive moves every file of the thread to archived_sessions/),
// then unarchives it. The next read through spool follows each move: the
// row is archived (appends refused with ErrArchived), then live again
// (appends go on), the earlier files of a reverted thread move with the
// newest, and the index agrees with Verify and a rebuild at each step.
func TestCodexArchiveWhileOpen(t *testing.T) {
	for _, tc := range []struct {
		name   string
		revert bool
	}{{"a thread in one file", false}, {"a reverted thread", true}} {
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
			step := func(name string, archive bool) {
				t.Helper()
				codexMove(t, m.Root(), th.ID, archive)
				if _, err := m.UserMessages(ctx, th.ID); err != nil {
					t.Fatal(err)
				}
				got, err := m.Get(ctx, th.ID)
				if err != nil || got.Archived != archive || indexer.IsArchivedPath(got.RolloutPath) != archive {
					t.Fatalf("%s: archived %v at %s, %v; want archived %v", name, got.Archived, got.RolloutPath, err, archive)
				}
				rep, err := indexer.Verify(ctx, m.store, m.fsys)
				if err != nil || !rep.Clean() {
					t.Fatalf("%s: verify: %+v %+v, %v", name, rep.Drifts, rep.Problems, err)
				}
				compareRebuilds(t, m, "alpha", "beta", "archived")
			}
			step("archived by Codex", true)
			if _, err := m.Append(ctx, th.ID, []rollout.Item{user("four")}); !errors.Is(err, ErrArchived) {
				t.Fatalf("append to the thread Codex archived: %v, want ErrArchived", err)
			}
			step("unarchived by Codex", false)
			if _, err := m.Append(ctx, th.ID, []rollout.Item{user("four")}); err != nil {
				t.Fatalf("append once Codex unarchived it: %v", err)
			}
		})
	}
}

// codexMove moves every file of thread id to archived_sessions/ (or back
// to its day's directory), as Codex's thread/archive and thread/unarchive
// do.
func codexMove(t *testing.T, root, id string, archive bool) {
	t.Helper()
	from := filepath.Join(root, rollout.ArchivedSessionsDir)
	if archive {
		from = filepath.Join(root, rollout.SessionsDir)
	}
	err := filepath.WalkDir(from, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		if tid, _, _, perr := rollout.ParseRolloutName(d.Name()); perr != nil || tid != id {
			return nil
		}
		to := rollout.ArchivedPath(d.Name())
		if !archive {
			if to, err = rollout.SessionPath(d.Name()); err != nil {
				return err
			}
		}
		to = filepath.Join(root, filepath.FromSlash(to))
		if err := os.MkdirAll(filepath.Dir(to), 0o700); err != nil {
			return err
		}
		return os.Rename(p, to)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestCodexDeleteWhileOpen: Codex deletes a thread (its thread/delete
// removes the file) that has a copy fork, while spool has the root open
// or while it is closed. The next read through spool, or the next open,
// drops the thread's row, and the copy fork keeps its copied prompts
// findable: the index agrees with Verify and with a rebuild from the files
// (before, a read kept the row of the deleted thread, and a sync that
// dropped it left the fork's copies without search text).
func TestCodexDeleteWhileOpen(t *testing.T) {
	for _, reopen := range []bool{false, true} {
		t.Run(fmt.Sprintf("reopen=%v", reopen), func(t *testing.T) {
			ctx := t.Context()
			root := t.TempDir()
			m := openTest(t, func(o *Options) { o.Root = root })
			parent := start(t, m, user("alpha prompt"), assistant("answer"), user("beta prompt"))
			fork, err := m.Fork(ctx, parent.ID, ForkOptions{Mode: ForkCopy})
			if err != nil {
				t.Fatal(err)
			}
			if reopen {
				if err := m.Close(); err != nil {
					t.Fatal(err)
				}
			}
			if err := os.Remove(filepath.Join(root, filepath.FromSlash(parent.RolloutPath))); err != nil {
				t.Fatal(err)
			}
			if reopen {
				m = openTest(t, func(o *Options) { o.Root = root })
			} else if _, err := m.UserMessages(ctx, parent.ID); !errors.Is(err, ErrNotFound) {
				t.Fatalf("read of the thread Codex deleted: %v, want ErrNotFound", err)
			}
			if _, err := m.Get(ctx, parent.ID); !errors.Is(err, ErrNotFound) {
				t.Fatalf("get of the thread Codex deleted: %v, want ErrNotFound", err)
			}
			hits, err := m.SearchPage(ctx, SearchOptions{Query: "alpha"})
			if err != nil || len(hits.Hits) != 1 || hits.Hits[0].ThreadID != fork.ID {
				t.Fatalf("search for the deleted thread's prompt: %+v, %v; want one hit in the fork %s", hits.Hits, err, fork.ID)
			}
			rep, err := indexer.Verify(ctx, m.store, m.fsys)
			if err != nil || !rep.Clean() {
				t.Fatalf("verify: %+v %+v, %v", rep.Drifts, rep.Problems, err)
			}
			compareRebuilds(t, m, "alpha", "beta", "archived")
		})
	}
}

// statFailFS is a local root whose Stat of one path fails with EIO while
// armed.
type statFailFS struct {
	rolloutfs.Local
	failing atomic.Pointer[string]
}

func (f *statFailFS) Stat(ctx context.Context, name string) (rolloutfs.FileInfo, error) {
	if p := f.failing.Load(); p != nil && *p == name {
		return rolloutfs.FileInfo{}, &fs.PathError{Op: "stat", Path: name, Err: syscall.EIO}
	}
	return f.Local.Stat(ctx, name)
}

// TestMovedFileThatCannotBeStatedKeepsItsRow: Codex archived a thread, and
// the stat of its archived file fails (EIO) when a read looks for it. The
// thread's row stays (the read answers from it); once the file can be
// stated, a read follows the archive. Before, the sync the read made took a file it
// could not stat for one not there, and dropped the row with its search
// text.
func TestMovedFileThatCannotBeStatedKeepsItsRow(t *testing.T) {
	ctx := t.Context()
	root := t.TempDir()
	fsys := &statFailFS{Local: rolloutfs.Local{Root: root}}
	m, err := Open(ctx, Options{Root: root, Sync: rolloutfs.SyncNone, Logger: quiet, FS: fsys})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	th := threeTurns(t, m, "paginated")
	if err := m.Evict(ctx, th.ID); err != nil {
		t.Fatal(err)
	}
	codexMove(t, root, th.ID, true)
	archived := rollout.ArchivedPath(path.Base(th.RolloutPath))
	fsys.failing.Store(&archived)
	if _, err := m.UserMessages(ctx, th.ID); errors.Is(err, ErrNotFound) {
		t.Fatalf("read while the archived file cannot be stated: %v, want the thread found", err)
	}
	if _, err := m.Get(ctx, th.ID); err != nil {
		t.Fatalf("the thread's row after that read: %v, want it kept", err)
	}
	fsys.failing.Store(nil)
	if _, err := m.UserMessages(ctx, th.ID); err != nil {
		t.Fatal(err)
	}
	if got, err := m.Get(ctx, th.ID); err != nil || !got.Archived {
		t.Fatalf("once the file can be stated: %+v, %v; want the thread archived", got, err)
	}
}

// TestUnarchiveAfterCodexMovedTheFilesOneByOne: Codex archives a reverted
// thread a file at a time, and a read lands between its moves: the index
// records the newest file archived, the earlier one still live. Codex then
// moves the earlier one too, and nothing reads the thread. spool's
// unarchive brings every file back, the earlier one from where it is, and
// the index agrees with Verify and a rebuild (before, the unarchive took
// the earlier file's row for where the file was, and left it archived).
func TestUnarchiveAfterCodexMovedTheFilesOneByOne(t *testing.T) {
	ctx := t.Context()
	m := openTest(t)
	th := threeTurns(t, m, "paginated")
	th, err := m.Revert(ctx, th.ID, RevertOptions{BeforeTurnID: "turn-c"})
	if err != nil {
		t.Fatal(err)
	}
	segs, err := m.store.Segments(ctx, th.ID)
	if err != nil || len(segs) != 1 {
		t.Fatalf("segments of the reverted thread: %+v, %v; want one", segs, err)
	}
	archive := func(rel string) {
		t.Helper()
		to := filepath.Join(m.Root(), filepath.FromSlash(rollout.ArchivedPath(path.Base(rel))))
		if err := os.MkdirAll(filepath.Dir(to), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(filepath.Join(m.Root(), filepath.FromSlash(rel)), to); err != nil {
			t.Fatal(err)
		}
	}
	archive(th.RolloutPath)
	if _, err := m.UserMessages(ctx, th.ID); err != nil {
		t.Fatal(err)
	}
	archive(segs[0].RolloutPath)
	if _, err := m.Unarchive(ctx, th.ID); err != nil {
		t.Fatal(err)
	}
	for _, rel := range []string{th.RolloutPath, segs[0].RolloutPath} {
		if _, err := os.Stat(filepath.Join(m.Root(), filepath.FromSlash(rel))); err != nil {
			t.Fatalf("after the unarchive: %v, want every file of the thread live", err)
		}
	}
	rep, err := indexer.Verify(ctx, m.store, m.fsys)
	if err != nil || !rep.Clean() {
		t.Fatalf("verify: %+v %+v, %v", rep.Drifts, rep.Problems, err)
	}
	compareRebuilds(t, m, "alpha", "beta", "archived")
}

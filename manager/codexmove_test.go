package manager

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/spoolhq/spool/indexer"
	"github.com/spoolhq/spool/rollout"
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
				compareIndexes(t, m.store, rebuildIndex(t, m))
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

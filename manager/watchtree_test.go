package manager

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/spoolhq/spool/rollout"
)

// TestWatchFoldersMovedIn: a day folder, or a whole year of them, moved
// into sessions/ with its rollouts already in it (mv of a tree written
// elsewhere; its files send no events of their own), and a day folder
// renamed inside sessions/, are indexed without waiting for the periodic
// sync (five minutes), and a rollout written into them afterwards is
// listed too: the folders are watched under their new names.
func TestWatchFoldersMovedIn(t *testing.T) {
	day := time.Date(2031, 2, 3, 4, 5, 6, 0, time.UTC)
	cases := []struct {
		name string
		// move puts the folder holding a thread written at day into
		// root's sessions/; it returns the folder's new path (absolute).
		move func(t *testing.T, root string) string
	}{
		{"a day folder moved in", func(t *testing.T, root string) string {
			scratch := t.TempDir()
			codexThread(t, scratch, day, "written elsewhere")
			to := filepath.Join(root, rollout.SessionsDir, "2031", "02", "03")
			mustMkdir(t, filepath.Dir(to))
			mustRename(t, filepath.Join(scratch, rollout.SessionsDir, "2031", "02", "03"), to)
			return to
		}},
		{"a year moved in", func(t *testing.T, root string) string {
			scratch := t.TempDir()
			codexThread(t, scratch, day, "written elsewhere")
			mustMkdir(t, filepath.Join(root, rollout.SessionsDir))
			mustRename(t, filepath.Join(scratch, rollout.SessionsDir, "2031"), filepath.Join(root, rollout.SessionsDir, "2031"))
			return filepath.Join(root, rollout.SessionsDir, "2031", "02", "03")
		}},
		{"a day folder renamed inside sessions", func(t *testing.T, root string) string {
			other := time.Date(2031, 2, 4, 4, 5, 6, 0, time.UTC)
			codexThread(t, root, other, "written here")
			to := filepath.Join(root, rollout.SessionsDir, "2031", "02", "03")
			mustRename(t, filepath.Join(root, rollout.SessionsDir, "2031", "02", "04"), to)
			return to
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m, reports := openWatching(t)
			root := m.Root()
			dir := tc.move(t, root)
			entries, err := os.ReadDir(dir)
			if err != nil || len(entries) != 1 {
				t.Fatalf("moved folder holds %v, %v; want one rollout", entries, err)
			}
			id, _, _, err := rollout.ParseRolloutName(entries[0].Name())
			if err != nil {
				t.Fatal(err)
			}
			rel, err := filepath.Rel(root, filepath.Join(dir, entries[0].Name()))
			if err != nil {
				t.Fatal(err)
			}
			waitFor(t, reports, "thread of the moved folder listed at its new place", func() bool {
				th, ok := listed(t, m, id)
				return ok && th.RolloutPath == filepath.ToSlash(rel)
			})

			// Written into the moved folder later: its folder is watched.
			later, _ := codexThreadIn(t, dir, day.Add(time.Hour), "written after the move")
			codexAppend(t, root, filepath.ToSlash(rel), "appended after the move")
			waitFor(t, reports, "threads written into the moved folder later listed", func() bool {
				th, ok := listed(t, m, id)
				_, again := listed(t, m, later)
				return again && ok && th.UserMessageCount == 2
			})
		})
	}
}

// codexThreadIn writes a rollout created at created into dir (absolute),
// as Codex would, and returns its id and file name.
func codexThreadIn(t *testing.T, dir string, created time.Time, prompts ...string) (id, name string) {
	t.Helper()
	scratch := t.TempDir()
	id, rel := codexThread(t, scratch, created, prompts...)
	name = filepath.Base(rel)
	mustRename(t, filepath.Join(scratch, filepath.FromSlash(rel)), filepath.Join(dir, name))
	return id, name
}

func mustMkdir(t *testing.T, dir string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
}

func mustRename(t *testing.T, from, to string) {
	t.Helper()
	if err := os.Rename(from, to); err != nil {
		t.Fatal(err)
	}
}

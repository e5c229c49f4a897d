package indexer

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/spoolhq/spool/rolloutfs"
	"github.com/spoolhq/spool/store"
)

// TestSyncPaths: syncing only the paths a watcher saw change indexes a new
// file, catches a grown one up, records a moved one and drops a deleted
// one, each as a whole Sync would, and touches no other thread.
func TestSyncPaths(t *testing.T) {
	const (
		id    = "019a0000-0000-7000-8000-0000000000a1"
		other = "019a0000-0000-7000-8000-0000000000b2"
		ts    = "2026-05-01T10:00:00.000Z"
	)
	rel := "sessions/2026/05/01/rollout-2026-05-01T10-00-00-" + id + ".jsonl"
	otherRel := "sessions/2026/05/01/rollout-2026-05-01T10-00-00-" + other + ".jsonl"
	archived := "archived_sessions/rollout-2026-05-01T10-00-00-" + id + ".jsonl"
	ctx := context.Background()
	root := t.TempDir()
	st := openStore(t)
	fsys := rolloutfs.Local{Root: root}
	writeRollout(t, root, otherRel, metaLine(ts, other, ""), userLine(ts, "untouched"))

	steps := []struct {
		name   string
		change func()
		paths  []string
		check  func(th store.Thread, err error) string
	}{
		{"new", func() { writeRollout(t, root, rel, metaLine(ts, id, ""), userLine(ts, "one")) }, []string{rel},
			func(th store.Thread, err error) string {
				if err != nil || th.UserMessageCount != 1 {
					return "new file not indexed with its user message"
				}
				return ""
			}},
		{"grown", func() { appendTo(t, root, rel, userLine(ts, "two")) }, []string{rel},
			func(th store.Thread, err error) string {
				if err != nil || th.UserMessageCount != 2 {
					return "grown file not caught up"
				}
				return ""
			}},
		{"moved", func() {
			if err := os.MkdirAll(filepath.Join(root, "archived_sessions"), 0o700); err != nil {
				t.Fatal(err)
			}
			if err := os.Rename(filepath.Join(root, rel), filepath.Join(root, archived)); err != nil {
				t.Fatal(err)
			}
		}, []string{rel, archived}, func(th store.Thread, err error) string {
			if err != nil || !th.Archived || th.RolloutPath != archived {
				return "moved file not recorded at its new place"
			}
			return ""
		}},
		{"deleted", func() {
			if err := os.Remove(filepath.Join(root, archived)); err != nil {
				t.Fatal(err)
			}
		}, []string{archived}, func(_ store.Thread, err error) string {
			if !errors.Is(err, store.ErrNotFound) {
				return "deleted file's row not dropped"
			}
			return ""
		}},
	}
	for _, step := range steps {
		step.change()
		if _, err := SyncPaths(ctx, st, fsys, step.paths, SyncOptions{}); err != nil {
			t.Fatalf("%s: %v", step.name, err)
		}
		th, err := st.Get(ctx, id)
		if msg := step.check(th, err); msg != "" {
			t.Fatalf("%s: %s (row %+v, err %v)", step.name, msg, th, err)
		}
		if _, err := st.Get(ctx, other); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("%s: a thread not among the paths was indexed (err %v)", step.name, err)
		}
	}
}

// TestSyncHold: a thread its Hold skips is left as it is; a thread whose
// row changed between the decision and the hold is decided again, so a
// sync never writes a row from a stale reading.
func TestSyncHold(t *testing.T) {
	const (
		id = "019a0000-0000-7000-8000-0000000000c3"
		ts = "2026-05-01T10:00:00.000Z"
	)
	rel := "sessions/2026/05/01/rollout-2026-05-01T10-00-00-" + id + ".jsonl"
	ctx := context.Background()

	t.Run("skip", func(t *testing.T) {
		root := t.TempDir()
		st := openStore(t)
		writeRollout(t, root, rel, metaLine(ts, id, ""), userLine(ts, "one"))
		mustSync(t, st, root, SyncOptions{})
		appendTo(t, root, rel, userLine(ts, "two"))
		sum, err := Sync(ctx, st, rolloutfs.Local{Root: root}, SyncOptions{Hold: func(string) (func(), bool) { return nil, true }})
		if err != nil {
			t.Fatal(err)
		}
		th, err := st.Get(ctx, id)
		if err != nil || th.UserMessageCount != 1 || sum.CaughtUp != 0 {
			t.Fatalf("held thread: %d user messages, %d caught up, err %v; want it untouched", th.UserMessageCount, sum.CaughtUp, err)
		}
	})
	t.Run("decide again", func(t *testing.T) {
		root := t.TempDir()
		st := openStore(t)
		fsys := rolloutfs.Local{Root: root}
		writeRollout(t, root, rel, metaLine(ts, id, ""), userLine(ts, "one"))
		mustSync(t, st, root, SyncOptions{})
		appendTo(t, root, rel, userLine(ts, "two"))
		// Between the decision (catch up from one message) and the write,
		// another writer catches the row up and the file grows again.
		held := false
		hold := func(string) (func(), bool) {
			if !held {
				held = true
				row, err := st.Get(ctx, id)
				if err != nil {
					t.Fatal(err)
				}
				p, _, err := CatchUp(ctx, fsys, row)
				if err != nil {
					t.Fatal(err)
				}
				if err := st.Advance(ctx, p); err != nil {
					t.Fatal(err)
				}
				appendTo(t, root, rel, userLine(ts, "three"))
			}
			return func() {}, false
		}
		if _, err := Sync(ctx, st, fsys, SyncOptions{Hold: hold}); err != nil {
			t.Fatal(err)
		}
		if !held {
			t.Fatal("Hold never called")
		}
		mustVerifyClean(t, st, root)
	})
	t.Run("new thread indexed before its batch is written", func(t *testing.T) {
		const second = "019a0000-0000-7000-8000-0000000000c4"
		secondRel := "sessions/2026/05/01/rollout-2026-05-01T10-00-00-" + second + ".jsonl"
		root := t.TempDir()
		st := openStore(t)
		fsys := rolloutfs.Local{Root: root}
		writeRollout(t, root, rel, metaLine(ts, id, ""), userLine(ts, "one"))
		writeRollout(t, root, secondRel, metaLine(ts, second, ""), userLine(ts, "one"))
		// Both files are new and go into one batch. When the second is
		// held, another writer indexes the first (already batched) and
		// its file grows: the batch must not write the first's stale
		// reading over that row.
		var heldIDs []string
		hold := func(heldID string) (func(), bool) {
			heldIDs = append(heldIDs, heldID)
			if len(heldIDs) == 2 {
				first := map[string]string{id: rel, second: secondRel}[heldIDs[0]]
				rec, _, err := ScanFile(ctx, fsys, first)
				if err != nil {
					t.Fatal(err)
				}
				if err := st.Replace(ctx, []store.Record{rec}); err != nil {
					t.Fatal(err)
				}
				appendTo(t, root, first, userLine(ts, "two"))
			}
			return func() {}, false
		}
		sum, err := Sync(ctx, st, fsys, SyncOptions{Hold: hold})
		if err != nil {
			t.Fatal(err)
		}
		if len(heldIDs) < 2 {
			t.Fatalf("Hold called for %v, want both threads", heldIDs)
		}
		if sum.Files != 2 || sum.Scanned != 1 || sum.CaughtUp != 1 {
			t.Errorf("files %d, scanned %d, caught up %d; want 2, 1 (the second), 1 (the first)", sum.Files, sum.Scanned, sum.CaughtUp)
		}
		mustVerifyClean(t, st, root)
	})
}

// TestSyncKeepsRowsCreatedDuringIt: a thread created while a Sync runs,
// its file written after the walk listed its directory and its row before
// the rows were read (a manager's Start beside its background sync), is
// kept: its row has a file, though the walk did not see it.
func TestSyncKeepsRowsCreatedDuringIt(t *testing.T) {
	const (
		listed  = "019a0000-0000-7000-8000-0000000000e1"
		created = "019a0000-0000-7000-8000-0000000000e2"
		ts      = "2026-05-01T10:00:00.000Z"
		dir     = "sessions/2026/05/01"
	)
	createdRel := dir + "/rollout-2026-05-01T10-00-00-" + created + ".jsonl"
	ctx := t.Context()
	root := t.TempDir()
	st := openStore(t)
	fsys := rolloutfs.Local{Root: root}
	writeRollout(t, root, dir+"/rollout-2026-05-01T10-00-00-"+listed+".jsonl", metaLine(ts, listed, ""))
	var mu sync.Mutex // the creator's hold on the new thread
	hold := func(string) (func(), bool) {
		mu.Lock()
		return mu.Unlock, false
	}
	done := false
	listedDir := func(rel string, _ rolloutfs.FileInfo) {
		if rel != dir || done {
			return
		}
		done = true
		mu.Lock()
		defer mu.Unlock()
		writeRollout(t, root, createdRel, metaLine(ts, created, ""))
		rec, _, err := ScanFile(ctx, fsys, createdRel)
		if err != nil {
			t.Error(err)
			return
		}
		if err := st.Replace(ctx, []store.Record{rec}); err != nil {
			t.Error(err)
		}
	}
	sum, err := Sync(ctx, st, fsys, SyncOptions{Hold: hold, Dir: listedDir})
	if err != nil {
		t.Fatal(err)
	}
	if !done {
		t.Fatalf("Dir never called for %s", dir)
	}
	if _, err := st.Get(ctx, created); err != nil || sum.Deleted != 0 {
		t.Fatalf("thread created during the sync: err %v, %d deleted; want it kept", err, sum.Deleted)
	}
	mustVerifyClean(t, st, root)
}

// TestSyncPathsWaitsForCreator: a file whose thread its Hold's owner is
// creating (its row written while the owner holds it, as a fork is) is
// decided after the hold, from that row: not read whole only to be
// skipped, as a watcher's sync of a 1 GiB copy fork was.
func TestSyncPathsWaitsForCreator(t *testing.T) {
	const (
		id = "019a0000-0000-7000-8000-0000000000d5"
		ts = "2026-05-01T10:00:00.000Z"
	)
	rel := "sessions/2026/05/01/rollout-2026-05-01T10-00-00-" + id + ".jsonl"
	ctx := context.Background()
	root := t.TempDir()
	st := openStore(t)
	fsys := rolloutfs.Local{Root: root}
	writeRollout(t, root, rel, metaLine(ts, id, ""), userLine(ts, "one"), userLine(ts, "two"))
	created := false
	hold := func(heldID string) (func(), bool) {
		if heldID == id && !created { // the creator writes the row, then lets go
			created = true
			rec, _, err := ScanFile(ctx, fsys, rel)
			if err != nil {
				t.Fatal(err)
			}
			if err := st.Replace(ctx, []store.Record{rec}); err != nil {
				t.Fatal(err)
			}
		}
		return func() {}, false
	}
	counted := &openCounter{Local: fsys, name: rel}
	sum, err := SyncPaths(ctx, st, counted, []string{rel}, SyncOptions{Hold: hold})
	if err != nil {
		t.Fatal(err)
	}
	if !created {
		t.Fatal("Hold never called")
	}
	if counted.opens != 0 || sum.Scanned != 0 || sum.Skipped != 1 {
		t.Errorf("opened the file %d times, scanned %d, skipped %d; want the creator's row taken as it is: 0, 0, 1", counted.opens, sum.Scanned, sum.Skipped)
	}
	mustVerifyClean(t, st, root)
}

// openCounter is a local FS that counts how often one file is opened for
// reading.
type openCounter struct {
	rolloutfs.Local
	name  string
	opens int
}

func (c *openCounter) Open(ctx context.Context, name string) (rolloutfs.ReadFile, error) {
	if name == c.name {
		c.opens++
	}
	return c.Local.Open(ctx, name)
}

// TestSyncOfAFileDeletedMeanwhile: a thread deleted (file and row) after a
// sync decided on its file and before the writer holds it is no failure:
// the sync finds it gone, reports no problem, and leaves no row.
func TestSyncOfAFileDeletedMeanwhile(t *testing.T) {
	const (
		id = "019a0000-0000-7000-8000-0000000000f1"
		ts = "2026-05-01T10:00:00.000Z"
	)
	rel := "sessions/2026/05/01/rollout-2026-05-01T10-00-00-" + id + ".jsonl"
	for _, indexed := range []bool{false, true} {
		t.Run(fmt.Sprintf("indexed=%t", indexed), func(t *testing.T) {
			ctx := t.Context()
			root := t.TempDir()
			st := openStore(t)
			fsys := rolloutfs.Local{Root: root}
			writeRollout(t, root, rel, metaLine(ts, id, ""), userLine(ts, "one"))
			if indexed {
				mustSync(t, st, root, SyncOptions{})
				appendTo(t, root, rel, userLine(ts, "two")) // decided as a catch-up
			}
			deleted := false
			hold := func(heldID string) (func(), bool) {
				if heldID == id && !deleted { // the manager's Delete, just before
					deleted = true
					if err := os.Remove(filepath.Join(root, filepath.FromSlash(rel))); err != nil {
						t.Fatal(err)
					}
					if err := st.Delete(ctx, id); err != nil && !errors.Is(err, store.ErrNotFound) {
						t.Fatal(err)
					}
				}
				return func() {}, false
			}
			sum, err := Sync(ctx, st, fsys, SyncOptions{Hold: hold})
			if err != nil {
				t.Fatal(err)
			}
			if !deleted {
				t.Fatal("Hold never called for the thread")
			}
			if sum.Failed != 0 || len(sum.Problems) != 0 {
				t.Errorf("sync of a file deleted meanwhile: %d failed, problems %v; want none", sum.Failed, sum.Problems)
			}
			if _, err := st.Get(ctx, id); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("the deleted thread after the sync: %v, want ErrNotFound", err)
			}
		})
	}
}

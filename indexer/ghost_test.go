package indexer

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/spoolhq/spool/rolloutfs"
	"github.com/spoolhq/spool/store"
)

// TestSyncDoesNotResurrectDeletedThread: a new file's scan is batched under
// its hold and written later. A thread indexed and then deleted (file and
// row) by the hold's owner between that hold and the batch's write (a
// manager's Start, then Delete) must not come back as a row without a
// file.
func TestSyncDoesNotResurrectDeletedThread(t *testing.T) {
	const (
		id = "019a0000-0000-7000-8000-0000000000f1"
		ts = "2026-05-01T10:00:00.000Z"
	)
	rel := "sessions/2026/05/01/rollout-2026-05-01T10-00-00-" + id + ".jsonl"
	for _, tc := range []struct {
		name string
		// holds is how many times the sync holds the thread before the
		// writer batches its scan: the delete runs after that release.
		holds int
		run   func(ctx context.Context, st *store.Store, fsys rolloutfs.FS, hold func(string) (func(), bool)) error
	}{
		{"Sync", 1, func(ctx context.Context, st *store.Store, fsys rolloutfs.FS, hold func(string) (func(), bool)) error {
			_, err := Sync(ctx, st, fsys, SyncOptions{Hold: hold})
			return err
		}},
		{"SyncPaths", 2, func(ctx context.Context, st *store.Store, fsys rolloutfs.FS, hold func(string) (func(), bool)) error {
			_, err := SyncPaths(ctx, st, fsys, []string{rel}, SyncOptions{Hold: hold})
			return err
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			root := t.TempDir()
			st := openStore(t)
			fsys := rolloutfs.Local{Root: root}
			writeRollout(t, root, rel, metaLine(ts, id, ""), userLine(ts, "one"))
			held, deleted := 0, false
			hold := func(heldID string) (func(), bool) {
				if heldID != id {
					return func() {}, false
				}
				held++
				if held != tc.holds {
					return func() {}, false
				}
				return func() {
					// The owner indexes the thread, then deletes it.
					rec, _, err := ScanFile(ctx, fsys, rel)
					if err != nil {
						t.Error(err)
						return
					}
					if err := st.Replace(ctx, []store.Record{rec}); err != nil {
						t.Error(err)
						return
					}
					if err := os.Remove(filepath.Join(root, filepath.FromSlash(rel))); err != nil {
						t.Error(err)
						return
					}
					if err := st.Delete(ctx, id); err != nil {
						t.Error(err)
						return
					}
					deleted = true
				}, false
			}
			if err := tc.run(ctx, st, fsys, hold); err != nil {
				t.Fatal(err)
			}
			if !deleted {
				t.Fatalf("the thread was held %d times, never deleted", held)
			}
			if th, err := st.Get(ctx, id); !errors.Is(err, store.ErrNotFound) {
				t.Fatalf("deleted thread is indexed again at %s (err %v); want no row", th.RolloutPath, err)
			}
			mustVerifyClean(t, st, root)
		})
	}
}

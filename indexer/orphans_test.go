package indexer

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"testing"

	_ "modernc.org/sqlite"

	"github.com/spoolhq/spool/rolloutfs"
	"github.com/spoolhq/spool/store"
)

// TestRebuildAfterAThreadRowDeletedByHand: the sqlite3 shell enforces no
// foreign keys unless told to, so a user who deletes a thread's row there
// leaves its user messages, lineage and other rows behind. Every sync
// then failed to index the thread again (UNIQUE constraint failed:
// user_messages.thread_id, user_messages.ordinal): reindex --full and
// --repair exited 2 and spoold's reconcile logged the error on every
// rescan, the thread answering 404 for good. A full sync and a repair
// drop the orphaned rows first and index the thread from its file.
func TestRebuildAfterAThreadRowDeletedByHand(t *testing.T) {
	for _, tc := range []struct {
		name string
		run  func(ctx context.Context, st *store.Store, fsys rolloutfs.FS) error
	}{
		{"full sync", func(ctx context.Context, st *store.Store, fsys rolloutfs.FS) error {
			_, err := Sync(ctx, st, fsys, SyncOptions{Full: true})
			return err
		}},
		{"repair", func(ctx context.Context, st *store.Store, fsys rolloutfs.FS) error {
			_, err := Repair(ctx, st, fsys, TailRule{}, SyncOptions{})
			return err
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := t.Context()
			root := testHome(t)
			fsys := rolloutfs.Local{Root: root}
			index := filepath.Join(t.TempDir(), "spool.db")
			st, err := store.Open(ctx, index)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { st.Close() })
			if _, err := Sync(ctx, st, fsys, SyncOptions{}); err != nil {
				t.Fatal(err)
			}
			want, err := st.UserMessages(ctx, idB)
			if err != nil || len(want) == 0 {
				t.Fatalf("user messages of %s before = %v, %v; want some", idB, want, err)
			}
			wantAncestors, err := st.Ancestors(ctx, idB)
			if err != nil {
				t.Fatal(err)
			}

			db, err := sql.Open("sqlite", index+"?_pragma=busy_timeout(5000)") // foreign keys off, as in the sqlite3 shell
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			if _, err := db.ExecContext(ctx, `DELETE FROM threads WHERE id = ?`, idB); err != nil {
				t.Fatal(err)
			}
			var orphans int
			if err := db.QueryRowContext(ctx, `SELECT COUNT(*) FROM user_messages WHERE thread_id = ?`, idB).Scan(&orphans); err != nil || orphans == 0 {
				t.Fatalf("orphaned user messages = %d, %v; the test wants some", orphans, err)
			}

			if err := tc.run(ctx, st, fsys); err != nil {
				t.Fatalf("%s: %v", tc.name, err)
			}
			got, err := st.UserMessages(ctx, idB)
			if err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("user messages of %s after = %v, want %v", idB, got, want)
			}
			gotAncestors, err := st.Ancestors(ctx, idB)
			if err != nil {
				t.Fatal(err)
			}
			if len(gotAncestors) != len(wantAncestors) {
				t.Errorf("ancestors of %s after = %v, want %v", idB, gotAncestors, wantAncestors)
			}
		})
	}
}

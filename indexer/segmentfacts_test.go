package indexer

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/spoolhq/spool/rolloutfs"
	"github.com/spoolhq/spool/store"
)

// TestVerifyChecksARevertedThreadsFirstFileFacts: a reverted thread's row
// takes its start, parent and fork point from its first file, and a scan of
// its newest file (a revert segment) takes them from the thread's row. So
// verify compared the row with itself: a parent_id or created_at edited by
// hand in spool.db went unreported, and reindex --full kept the edit (or,
// for a parent that its lineage rows contradict, failed). Verify, and a
// full sync, read them from the first file.
func TestVerifyChecksARevertedThreadsFirstFileFacts(t *testing.T) {
	tests := []struct {
		name  string
		edit  string
		field string
	}{
		{"parent", `UPDATE threads SET parent_id = '019dab90-0000-7000-8000-0000000000ff' WHERE id = ?`, "parent_id"},
		{"start", `UPDATE threads SET created_at = 1 WHERE id = ?`, "created_at"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := t.TempDir()
			dbPath := filepath.Join(t.TempDir(), "spool.db")
			st, err := store.Open(t.Context(), dbPath)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { st.Close() })
			rt := newRevertedThread(t, root, 3)
			rt.revert(t, root, rt.data, rt.hist.Turns[1].Offset, "019dab90-9999-7000-8000-000000000001", rt.created.Add(24*time.Hour))
			mustSync(t, st, root, SyncOptions{})
			mustVerifyClean(t, st, root)

			db, err := sqlx.Open("sqlite", "file:"+dbPath)
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			if _, err := db.ExecContext(t.Context(), tt.edit, rt.id); err != nil {
				t.Fatal(err)
			}
			rep, err := Verify(t.Context(), st, rolloutfs.Local{Root: root})
			if err != nil {
				t.Fatal(err)
			}
			if len(rep.Drifts) != 1 || rep.Drifts[0].Kind != DriftField || !strings.Contains(rep.Drifts[0].Detail, tt.field) {
				t.Fatalf("drifts = %v, want one %s drift naming %s", rep.Drifts, DriftField, tt.field)
			}
			// A full rescan puts the first file's facts back.
			mustSync(t, st, root, SyncOptions{Full: true})
			mustVerifyClean(t, st, root)
		})
	}
}

package indexer

import (
	"strings"
	"testing"

	"github.com/spoolhq/spool/rolloutfs"
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
			root, st, rt, db := indexedRevertedThread(t)
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

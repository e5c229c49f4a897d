package indexer

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/spoolhq/spool/rolloutfs"
	"github.com/spoolhq/spool/store"
)

// TestRepairMendsLostSegments: thread_segments rows of a reverted thread
// deleted by hand (the sqlite3 shell) were mended by reindex --full only.
// reindex --repair and an incremental sync (spoold's start) left the
// thread broken: with all of them gone its newest file failed ("the index
// records none of the thread's earlier files"), and they recorded its
// earlier files as out of its history; with the first file's row gone
// they recorded that file out of the history, the history starting at a
// segment, which Verify, reading through the same rows, took for right;
// with a later link's row gone Verify reported drift they did not mend.
// Any Sync now finds such a thread (store.LostChains) and reads it again
// from its first file, as a full rescan does: the index is as it was
// before the rows went.
func TestRepairMendsLostSegments(t *testing.T) {
	ctx := t.Context()
	type thread struct {
		files  int    // 2: the first file and seg1; 3: and seg2, cut in seg1
		delete string // which thread_segments rows go, a WHERE clause after thread_id = ?
	}
	mend := map[string]func(t *testing.T, st *store.Store, root string, workers int){
		"repair": func(t *testing.T, st *store.Store, root string, workers int) {
			if _, err := Repair(t.Context(), st, rolloutfs.Local{Root: root}, TailRule{}, SyncOptions{Workers: workers}); err != nil {
				t.Fatal(err)
			}
		},
		"sync": func(t *testing.T, st *store.Store, root string, workers int) {
			mustSync(t, st, root, SyncOptions{Workers: workers})
		},
		"full": func(t *testing.T, st *store.Store, root string, workers int) {
			mustSync(t, st, root, SyncOptions{Full: true, Workers: workers})
		},
	}
	for _, th := range []thread{
		{2, ""},
		{3, ""},
		{3, "AND seq = 0"},
		{3, "AND seq = 1"},
	} {
		for how, run := range mend {
			for _, workers := range []int{1, 4} {
				t.Run(fmt.Sprintf("%d files, delete %q, %s, %d workers", th.files, th.delete, how, workers), func(t *testing.T) {
					root, st, rt, db := indexedRevertedThread(t)
					if th.files == 3 {
						threeFileThread(t, root, st, rt)
					}
					wantRow, err := st.Get(ctx, rt.id)
					if err != nil {
						t.Fatal(err)
					}
					wantSegs, wantMsgs := historyRows(t, st, rt.id)
					deleteSegments(t, db, rt.id, th.delete)
					rep, err := Verify(ctx, st, rolloutfs.Local{Root: root})
					if err != nil {
						t.Fatal(err)
					}
					if !slices.ContainsFunc(rep.Drifts, func(d Drift) bool { return d.Kind == DriftSegments && d.ThreadID == rt.id }) {
						t.Errorf("verify before %s: drifts %v, want a %s drift of %s", how, rep.Drifts, DriftSegments, rt.id)
					}

					run(t, st, root, workers)
					rep = mustVerifyClean(t, st, root)
					for _, p := range rep.Problems {
						t.Errorf("verify after %s: problem %s", how, p)
					}
					gotSegs, gotMsgs := historyRows(t, st, rt.id)
					if segmentFacts(gotSegs) != segmentFacts(wantSegs) {
						t.Errorf("segments after %s = %v, want %v", how, gotSegs, wantSegs)
					}
					if fmt.Sprint(gotMsgs) != fmt.Sprint(wantMsgs) {
						t.Errorf("user messages after %s = %v, want %v", how, gotMsgs, wantMsgs)
					}
					gotRow, err := st.Get(ctx, rt.id)
					if err != nil {
						t.Fatal(err)
					}
					if gotRow.RolloutPath != wantRow.RolloutPath || gotRow.BaseSize != wantRow.BaseSize || gotRow.UserMessageCount != wantRow.UserMessageCount {
						t.Errorf("row after %s: at %s, base size %d, %d messages; want %s, %d, %d", how,
							gotRow.RolloutPath, gotRow.BaseSize, gotRow.UserMessageCount, wantRow.RolloutPath, wantRow.BaseSize, wantRow.UserMessageCount)
					}
				})
			}
		}
	}
}

// deleteSegments deletes, as the sqlite3 shell would, the thread_segments
// rows of thread id that where (after thread_id = ?) selects.
func deleteSegments(t *testing.T, db *sqlx.DB, id, where string) {
	t.Helper()
	res, err := db.ExecContext(t.Context(), `DELETE FROM thread_segments WHERE thread_id = ? `+where, id)
	if err != nil {
		t.Fatal(err)
	}
	if n, err := res.RowsAffected(); err != nil || n == 0 {
		t.Fatalf("deleted %d segment rows (%v), want some", n, err)
	}
}

// TestSyncMendsLostSegmentsWithANewRevert: a revert segment that appears
// after a reverted thread's thread_segments rows went (a revert while
// spoold was stopped) is indexed by the next sync, which reads the thread
// again from its first file: the index is the one a rebuild makes.
func TestSyncMendsLostSegmentsWithANewRevert(t *testing.T) {
	for _, workers := range []int{1, 4} {
		t.Run(fmt.Sprintf("%d workers", workers), func(t *testing.T) {
			ctx := t.Context()
			root, st, rt, db := indexedRevertedThread(t)
			deleteSegments(t, db, rt.id, "")
			rt.revert(t, root, rt.data, rt.hist.Turns[0].Offset, "019dab90-9999-7000-8000-000000000003", rt.created.Add(72*time.Hour))
			if sum := mustSync(t, st, root, SyncOptions{Workers: workers}); len(sum.Problems) != 0 {
				t.Errorf("sync problems: %v", sum.Problems)
			}
			if rep := mustVerifyClean(t, st, root); len(rep.Problems) != 0 {
				t.Errorf("verify problems: %v", rep.Problems)
			}

			rebuilt := openStore(t)
			mustSync(t, rebuilt, root, SyncOptions{})
			for _, get := range []func(*store.Store) (any, error){
				func(s *store.Store) (any, error) { segs, err := s.Segments(ctx, rt.id); return segmentFacts(segs), err },
				func(s *store.Store) (any, error) { return s.UserMessages(ctx, rt.id) },
			} {
				got, err := get(st)
				if err != nil {
					t.Fatal(err)
				}
				want, err := get(rebuilt)
				if err != nil {
					t.Fatal(err)
				}
				if fmt.Sprint(got) != fmt.Sprint(want) {
					t.Errorf("after the sync: %v, a rebuild has %v", got, want)
				}
			}
		})
	}
}

// segmentFacts formats what a thread's segments say: its history's links
// whole, the files out of it only by path (what else such a row holds
// depends on how the file left the history).
func segmentFacts(segs []store.Segment) string {
	var b strings.Builder
	for _, sg := range segs {
		if sg.InChain() {
			fmt.Fprintf(&b, "%s: base %q at %d, %d bytes, first ordinal %d; ", sg.RolloutPath, sg.BaseID, sg.BaseSize, sg.Length, sg.FirstOrdinal)
			continue
		}
		fmt.Fprintf(&b, "%s out of the history; ", sg.RolloutPath)
	}
	return b.String()
}

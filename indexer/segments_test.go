package indexer

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"path"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/spoolhq/spool/rollout"
	"github.com/spoolhq/spool/rolloutfs"
	"github.com/spoolhq/spool/store"
)

// revertedThread is a paginated thread of complete turns in its first file,
// to which revert segments are added as Codex 0.169's thread/revert writes
// them.
type revertedThread struct {
	id      string
	created time.Time
	first   string // rel path of the first file
	data    []byte // the first file's bytes
	hist    rollout.History
}

func newRevertedThread(t *testing.T, root string, turns int) *revertedThread {
	t.Helper()
	rt := &revertedThread{id: "019dab90-0000-7000-8000-00000000a001", created: time.Date(2026, 11, 20, 9, 0, 0, 0, time.UTC)}
	data, next := pagedMeta(t, rt.id, rt.created), int64(1)
	for i := range turns {
		start := rt.created.Add(time.Duration(i+1) * time.Minute)
		lines, n, err := rollout.RenderTurn(rollout.HistoryPaginated, next, rollout.TurnSpec{
			ThreadID: rt.id, TurnID: fmt.Sprintf("turn-%d", i), UserText: fmt.Sprintf("prompt %d", i), AgentText: "answer",
			Cwd: "/src", Model: "gpt-5", Started: start, Completed: start.Add(time.Second),
			UserItemID: fmt.Sprintf("019dab90-2222-7000-8000-%012d", i), AgentItemID: fmt.Sprintf("019dab90-3333-7000-8000-%012d", i),
		})
		if err != nil {
			t.Fatal(err)
		}
		data, next = append(data, lines...), n
	}
	rt.data = data
	var err error
	if rt.hist, err = rollout.ScanTurns(bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	rt.first, _ = rollout.SessionPath(rollout.FileName(rt.created, rt.id))
	writeRollout(t, root, rt.first, string(data))
	return rt
}

// pagedMeta returns the meta line, ordinal 0, that starts a paginated
// history of thread id written at: a thread's first file, or the segment
// Codex's revert before the first turn writes (no history_base).
func pagedMeta(t *testing.T, id string, at time.Time) []byte {
	t.Helper()
	ts := rollout.FormatTimestamp(at)
	meta, err := rollout.NewSessionMetaLine(ts, rollout.MetaPayload{SessionMeta: rollout.SessionMeta{
		ID: id, Timestamp: ts, Cwd: "/src", Originator: "test", CLIVersion: "0.169.0", Source: "cli", HistoryMode: rollout.HistoryPaginated,
	}})
	if err == nil {
		meta, err = rollout.WithOrdinal(meta, 0)
	}
	if err != nil {
		t.Fatal(err)
	}
	return meta
}

// revert writes a segment whose history_base is at offset cut of the file
// holding it (data) with the ordinal there, created at, and returns its
// path and bytes: the meta and one thread_settings_applied line.
func (rt *revertedThread) revert(t *testing.T, root string, data []byte, cut int64, segmentID string, at time.Time) (string, []byte) {
	t.Helper()
	ordinal := ordinalOf(t, data, cut)
	ts := rollout.FormatTimestamp(at)
	meta, err := rollout.SegmentMetaLine(ts, rollout.MetaPayload{SessionMeta: rollout.SessionMeta{
		ID: rt.id, Cwd: "/src", Originator: "test", CLIVersion: "0.169.0", Source: "cli",
	}}, rollout.HistoryBase{EndByteOffset: cut, EndOrdinalExclusive: ordinal})
	if err != nil {
		t.Fatal(err)
	}
	settings, err := rollout.WithOrdinal([]byte(line(ts, "event_msg", map[string]any{"type": "thread_settings_applied", "thread_id": rt.id})), ordinal+1)
	if err != nil {
		t.Fatal(err)
	}
	name, err := rollout.SegmentFileName(at, rt.id, segmentID)
	if err != nil {
		t.Fatal(err)
	}
	rel, _ := rollout.SessionPath(rollout.FileName(at, rt.id))
	rel = filepath.ToSlash(filepath.Join(filepath.Dir(rel), name))
	seg := append(meta, settings...)
	writeRollout(t, root, rel, string(seg))
	return rel, seg
}

// ordinalOf returns the ordinal of the line at offset of data.
func ordinalOf(t *testing.T, data []byte, offset int64) int64 {
	t.Helper()
	end := bytes.IndexByte(data[offset:], '\n')
	n, ok, err := rollout.LineOrdinal(data[offset : offset+int64(end)])
	if err != nil || !ok {
		t.Fatalf("no ordinal at %d: %v", offset, err)
	}
	return n
}

// TestSyncIndexesRevertSegments: a revert segment is indexed as part of
// its thread, as Codex shows it: the turns before the cut, the segment as
// the thread's file, the first file a link of its history; a second revert
// further back leaves the first segment out of the history. Verify is
// clean and a second Sync changes nothing.
func TestSyncIndexesRevertSegments(t *testing.T) {
	root := t.TempDir()
	st := openStore(t)
	rt := newRevertedThread(t, root, 3)
	cut := rt.hist.Turns[1].Offset
	seg1, seg1Data := rt.revert(t, root, rt.data, cut, "019dab90-9999-7000-8000-000000000001", rt.created.Add(24*time.Hour))

	sum := mustSync(t, st, root, SyncOptions{})
	if len(sum.Problems) != 0 {
		t.Fatalf("problems: %v", sum.Problems)
	}
	th, err := st.Get(t.Context(), rt.id)
	if err != nil {
		t.Fatal(err)
	}
	if th.UserMessageCount != 1 || th.Preview != "prompt 0" || th.RolloutPath != seg1 || th.BaseID != rt.id || th.BaseSize != cut {
		t.Fatalf("after a revert before turn 1: %d messages, preview %q, path %s, base %s at %d; want 1, prompt 0, %s, itself at %d",
			th.UserMessageCount, th.Preview, th.RolloutPath, th.BaseID, th.BaseSize, seg1, cut)
	}
	if th.IndexedSize != int64(len(seg1Data)) || th.NextOrdinal != ordinalOf(t, rt.data, cut)+2 {
		t.Fatalf("own size %d, next ordinal %d; want %d, %d", th.IndexedSize, th.NextOrdinal, len(seg1Data), ordinalOf(t, rt.data, cut)+2)
	}
	segs, err := st.Segments(t.Context(), rt.id)
	if err != nil {
		t.Fatal(err)
	}
	if len(segs) != 1 || segs[0].RolloutPath != rt.first || segs[0].Length != cut || segs[0].BaseSize != 0 {
		t.Fatalf("segments = %+v, want the first file, its first %d bytes", segs, cut)
	}
	mustVerifyClean(t, st, root)
	if sum := mustSync(t, st, root, SyncOptions{}); sum.Scanned != 0 || len(sum.Problems) != 0 {
		t.Fatalf("second Sync scanned %d, problems %v; want nothing", sum.Scanned, sum.Problems)
	}

	// An append to the segment lands after the cut, at history positions.
	appendTo(t, root, seg1, string(mustOrdinal(t, userLine(rollout.FormatTimestamp(rt.created.Add(25*time.Hour)), "after the revert"), ordinalOf(t, rt.data, cut)+2)))
	mustSync(t, st, root, SyncOptions{})
	msgs, err := st.UserMessages(t.Context(), rt.id)
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 2 || msgs[1].Offset != cut+int64(len(seg1Data)) {
		t.Fatalf("messages after an append = %+v, want 2, the new one at %d", msgs, cut+int64(len(seg1Data)))
	}

	// A second revert, before turn 0, points into the first file again.
	cut0 := rt.hist.Turns[0].Offset
	seg2, _ := rt.revert(t, root, rt.data, cut0, "019dab90-9999-7000-8000-000000000002", rt.created.Add(48*time.Hour))
	mustSync(t, st, root, SyncOptions{})
	th, err = st.Get(t.Context(), rt.id)
	if err != nil {
		t.Fatal(err)
	}
	if th.UserMessageCount != 0 || th.RolloutPath != seg2 || th.BaseSize != cut0 {
		t.Fatalf("after a revert before turn 0: %d messages, path %s, base at %d; want 0, %s, %d", th.UserMessageCount, th.RolloutPath, th.BaseSize, seg2, cut0)
	}
	segs, err = st.Segments(t.Context(), rt.id)
	if err != nil {
		t.Fatal(err)
	}
	if len(segs) != 2 || segs[0].RolloutPath != rt.first || segs[0].Length != cut0 || segs[1].RolloutPath != seg1 || segs[1].InChain() {
		t.Fatalf("segments = %+v, want the first file cut at %d, then %s out of the history", segs, cut0, seg1)
	}
	mustVerifyClean(t, st, root)

	// A fresh index reads the same.
	fresh := openStore(t)
	if sum := mustSync(t, fresh, root, SyncOptions{}); len(sum.Problems) != 0 {
		t.Fatalf("fresh Sync problems: %v", sum.Problems)
	}
	again, err := fresh.Get(t.Context(), rt.id)
	if err != nil {
		t.Fatal(err)
	}
	if again.RolloutPath != seg2 || again.BaseSize != cut0 || again.UserMessageCount != 0 {
		t.Fatalf("fresh index: path %s, base at %d, %d messages; want %s, %d, 0", again.RolloutPath, again.BaseSize, again.UserMessageCount, seg2, cut0)
	}
	mustVerifyClean(t, fresh, root)

	// Codex archives a reverted thread by moving every file of it: the
	// thread is indexed from its archived newest file, its earlier files
	// from the archive too.
	for _, rel := range []string{rt.first, seg1, seg2} {
		from := filepath.Join(root, filepath.FromSlash(rel))
		if err := os.Rename(from, filepath.Join(root, rollout.ArchivedSessionsDir, filepath.Base(from))); err != nil {
			if err := os.MkdirAll(filepath.Join(root, rollout.ArchivedSessionsDir), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.Rename(from, filepath.Join(root, rollout.ArchivedSessionsDir, filepath.Base(from))); err != nil {
				t.Fatal(err)
			}
		}
	}
	for i, s := range []*store.Store{st, openStore(t)} {
		if sum := mustSync(t, s, root, SyncOptions{Full: true}); len(sum.Problems) != 0 {
			t.Fatalf("Sync after archive: problems %v", sum.Problems)
		}
		th, err := s.Get(t.Context(), rt.id)
		if err != nil {
			t.Fatal(err)
		}
		segs, err := s.Segments(t.Context(), rt.id)
		if err != nil {
			t.Fatal(err)
		}
		if !th.Archived || path.Dir(th.RolloutPath) != rollout.ArchivedSessionsDir || len(segs) != 2 ||
			path.Dir(segs[0].RolloutPath) != rollout.ArchivedSessionsDir || path.Dir(segs[1].RolloutPath) != rollout.ArchivedSessionsDir {
			t.Fatalf("index %d after archive: row at %s (archived %v), segments %+v; want all under %s", i, th.RolloutPath, th.Archived, segs, rollout.ArchivedSessionsDir)
		}
		mustVerifyClean(t, s, root)
	}
}

// mustOrdinal gives line (with its newline) a top-level ordinal.
func mustOrdinal(t *testing.T, line string, n int64) []byte {
	t.Helper()
	b, err := rollout.WithOrdinal([]byte(line), n)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestSyncWaitsForASegmentsMeta: a revert segment that another process
// has created but not yet written (empty) leaves its thread indexed from
// its earlier file, row and all; once the meta is written, the next sync
// indexes the thread from the segment.
func TestSyncWaitsForASegmentsMeta(t *testing.T) {
	root := t.TempDir()
	st := openStore(t)
	rt := newRevertedThread(t, root, 3)
	mustSync(t, st, root, SyncOptions{})
	seg, segData := rt.revert(t, root, rt.data, rt.hist.Turns[1].Offset, "019dab90-9999-7000-8000-000000000002", rt.created.Add(24*time.Hour))
	abs := filepath.Join(root, filepath.FromSlash(seg))
	if err := os.WriteFile(abs, nil, 0o600); err != nil { // created, not written yet
		t.Fatal(err)
	}
	fsys := rolloutfs.Local{Root: root}
	sum, err := SyncPaths(t.Context(), st, fsys, []string{seg, rt.first}, SyncOptions{})
	if err != nil || sum.Deleted != 0 {
		t.Fatalf("sync with an empty segment: %+v, %v; want no row deleted", sum, err)
	}
	if th, err := st.Get(t.Context(), rt.id); err != nil || th.RolloutPath != rt.first || th.UserMessageCount != 3 {
		t.Fatalf("thread with an empty segment: %+v, %v; want it still indexed from %s", th, err, rt.first)
	}
	if err := os.WriteFile(abs, segData, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := SyncPaths(t.Context(), st, fsys, []string{seg}, SyncOptions{}); err != nil {
		t.Fatal(err)
	}
	if th, err := st.Get(t.Context(), rt.id); err != nil || th.RolloutPath != seg || th.UserMessageCount != 1 {
		t.Fatalf("after the meta: %+v, %v; want the thread indexed from %s with 1 message", th, err, seg)
	}
	mustVerifyClean(t, st, root)
}

// TestSyncFallsBackToAnEarlierSegment: when the file a reverted thread's row
// names is gone (removed by hand, or lost before the revert that made it
// was acknowledged), the thread is indexed from the newest file of it that
// is left, in one Sync (full or not), or in a SyncPaths of the gone file as
// a watcher makes, not hidden until the next.
func TestSyncFallsBackToAnEarlierSegment(t *testing.T) {
	for _, how := range []string{"sync", "full", "paths"} {
		t.Run(how, func(t *testing.T) {
			root := t.TempDir()
			st := openStore(t)
			// syncGone syncs the root after file rel went.
			syncGone := func(rel string) {
				t.Helper()
				switch how {
				case "paths": // as a watcher does when it sees the file go
					if _, err := SyncPaths(t.Context(), st, rolloutfs.Local{Root: root}, []string{rel}, SyncOptions{}); err != nil {
						t.Fatal(err)
					}
				default:
					mustSync(t, st, root, SyncOptions{Full: how == "full"})
				}
			}
			rt := newRevertedThread(t, root, 3)
			seg1, _ := rt.revert(t, root, rt.data, rt.hist.Turns[1].Offset, "019dab90-9999-7000-8000-000000000001", rt.created.Add(24*time.Hour))
			seg2, _ := rt.revert(t, root, rt.data, rt.hist.Turns[0].Offset, "019dab90-9999-7000-8000-000000000002", rt.created.Add(48*time.Hour))
			mustSync(t, st, root, SyncOptions{})
			if th, err := st.Get(t.Context(), rt.id); err != nil || th.RolloutPath != seg2 {
				t.Fatalf("before: %+v, %v; want the thread at %s", th, err, seg2)
			}

			if err := os.Remove(filepath.Join(root, filepath.FromSlash(seg2))); err != nil {
				t.Fatal(err)
			}
			syncGone(seg2)
			th, err := st.Get(t.Context(), rt.id)
			if err != nil || th.RolloutPath != seg1 || th.UserMessageCount != 1 {
				t.Fatalf("after the newest file went: %+v, %v; want the thread at %s with 1 message", th, err, seg1)
			}
			mustVerifyClean(t, st, root)

			if err := os.Remove(filepath.Join(root, filepath.FromSlash(seg1))); err != nil {
				t.Fatal(err)
			}
			syncGone(seg1)
			th, err = st.Get(t.Context(), rt.id)
			if err != nil || th.RolloutPath != rt.first || th.UserMessageCount != 3 {
				t.Fatalf("after both segments went: %+v, %v; want the thread at %s with 3 messages", th, err, rt.first)
			}
			mustVerifyClean(t, st, root)
		})
	}
}

// TestVerifyChecksSegments: Verify compares a reverted thread's earlier
// files as the index records them with the root: a recorded file that is
// gone, and a recorded cut the newest file does not say, are drift.
// indexedRevertedThread indexes, in a new root and index, a thread of 3
// user messages reverted before its second, checks that Verify finds
// nothing, and returns the root, the index, the thread and a second
// connection to the index (foreign keys off, as in the sqlite3 shell) for
// the test to edit it by hand.
func indexedRevertedThread(t *testing.T) (string, *store.Store, *revertedThread, *sqlx.DB) {
	t.Helper()
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
	db, err := sqlx.Open("sqlite", "file:"+dbPath+"?_pragma=busy_timeout(10000)") // waits, as the sqlite3 shell does with .timeout, while the store checkpoints
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return root, st, rt, db
}

// threeFileThread adds to the thread of indexedRevertedThread (its first
// file cut before its second user message by seg1) a user message in
// seg1 and a second revert, cut in seg1 after that message: the thread's
// history runs through its first file and seg1 into seg2. It syncs and
// checks that Verify is clean.
func threeFileThread(t *testing.T, root string, st *store.Store, rt *revertedThread) {
	t.Helper()
	at := rt.created.Add(24 * time.Hour)
	name, err := rollout.SegmentFileName(at, rt.id, "019dab90-9999-7000-8000-000000000001")
	if err != nil {
		t.Fatal(err)
	}
	first, _ := rollout.SessionPath(rollout.FileName(at, rt.id))
	seg1 := path.Join(path.Dir(first), name)
	ordinal := ordinalOf(t, rt.data, rt.hist.Turns[1].Offset)
	ts := rollout.FormatTimestamp(at.Add(time.Hour))
	user := mustOrdinal(t, userLine(ts, "after the first revert"), ordinal+2)
	settings := mustOrdinal(t, line(ts, "event_msg", map[string]any{"type": "thread_settings_applied", "thread_id": rt.id}), ordinal+3)
	appendTo(t, root, seg1, string(user)+string(settings))
	mustSync(t, st, root, SyncOptions{}) // Codex wrote them long before its next revert
	seg1Data, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(seg1)))
	if err != nil {
		t.Fatal(err)
	}
	rt.revert(t, root, seg1Data, int64(len(seg1Data)-len(settings)), "019dab90-9999-7000-8000-000000000002", rt.created.Add(48*time.Hour))
	mustSync(t, st, root, SyncOptions{})
	mustVerifyClean(t, st, root)
}

// TestFullRescanReadsSegmentsInOrder: a full rescan reads a reverted
// thread again from its first file, then its revert segments. Two of them
// read in the same round of waiting files, with more than one worker, were
// read through the rows as the round found them: a second revert cut in
// the first segment, read before that segment was written, found its cut's
// ordinal in the first file, cut the first file there and left the first
// segment out of the history. The thread lost the user message of that
// segment, and Verify, which reads through the same rows, found nothing.
// The segments are read one a round.
func TestFullRescanReadsSegmentsInOrder(t *testing.T) {
	for seed := range uint64(8) {
		t.Run(fmt.Sprintf("seed %d", seed), func(t *testing.T) {
			ctx := t.Context()
			root, st, rt, _ := indexedRevertedThread(t)
			threeFileThread(t, root, st, rt)
			wantSegs, wantMsgs := historyRows(t, st, rt.id)
			if len(wantMsgs) != 2 || len(chainLinks(wantSegs)) != 2 {
				t.Fatalf("before: messages %v, segments %v; want 2 messages, a history through 2 earlier files", wantMsgs, wantSegs)
			}
			mustSync(t, st, root, SyncOptions{Full: true, Workers: 2, Shuffle: rand.New(rand.NewPCG(seed, 1))})
			if got, err := st.Segments(ctx, rt.id); err != nil || fmt.Sprint(got) != fmt.Sprint(wantSegs) {
				t.Errorf("segments after the rescan = %v (%v), want %v", got, err, wantSegs)
			}
			if got, err := st.UserMessages(ctx, rt.id); err != nil || fmt.Sprint(got) != fmt.Sprint(wantMsgs) {
				t.Errorf("user messages after the rescan = %v (%v), want %v", got, err, wantMsgs)
			}
			mustVerifyClean(t, st, root)
		})
	}
}

func TestVerifyChecksSegments(t *testing.T) {
	tests := []struct {
		name   string
		damage func(t *testing.T, root string, db *sqlx.DB, rt *revertedThread)
		want   string
	}{
		{"earlier file gone", func(t *testing.T, root string, _ *sqlx.DB, rt *revertedThread) {
			if err := os.Remove(filepath.Join(root, filepath.FromSlash(rt.first))); err != nil {
				t.Fatal(err)
			}
		}, "is gone"},
		{"cut recorded wrong", func(t *testing.T, _ string, db *sqlx.DB, rt *revertedThread) {
			if _, err := db.ExecContext(t.Context(), `UPDATE thread_segments SET length = length + 1 WHERE thread_id = ?`, rt.id); err != nil {
				t.Fatal(err)
			}
		}, "segment 0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root, st, rt, db := indexedRevertedThread(t)
			tt.damage(t, root, db, rt)
			rep, err := Verify(t.Context(), st, rolloutfs.Local{Root: root})
			if err != nil {
				t.Fatal(err)
			}
			if len(rep.Drifts) != 1 || rep.Drifts[0].Kind != DriftSegments || !strings.Contains(rep.Drifts[0].Detail, tt.want) {
				t.Fatalf("drifts = %v, want one %s drift saying %q", rep.Drifts, DriftSegments, tt.want)
			}
		})
	}
}

// TestBackupOfAnEarlierFileIsNoSegment: a copy of a reverted thread's first
// file away from its place (a backup in a folder of its own) is reported
// as a duplicate, not recorded as a file of the thread, which a delete
// would remove with the thread.
func TestBackupOfAnEarlierFileIsNoSegment(t *testing.T) {
	root := t.TempDir()
	st := openStore(t)
	rt := newRevertedThread(t, root, 3)
	seg, _ := rt.revert(t, root, rt.data, rt.hist.Turns[1].Offset, "019dab90-9999-7000-8000-000000000001", rt.created.Add(24*time.Hour))
	backup := path.Dir(rt.first) + "/bak/" + path.Base(rt.first)
	writeRollout(t, root, backup, string(rt.data))
	for _, full := range []bool{false, true} {
		sum := mustSync(t, st, root, SyncOptions{Full: full})
		segs, err := st.Segments(t.Context(), rt.id)
		if err != nil {
			t.Fatal(err)
		}
		if len(segs) != 1 || segs[0].RolloutPath != rt.first {
			t.Fatalf("full=%v: segments %+v, want the first file alone", full, segs)
		}
		if th, err := st.Get(t.Context(), rt.id); err != nil || th.RolloutPath != seg {
			t.Fatalf("full=%v: thread %+v, %v; want it at %s", full, th, err, seg)
		}
		dup := false
		for _, p := range sum.Problems {
			dup = dup || p.Kind == ProblemDuplicate && p.Path == backup
		}
		if !dup {
			t.Fatalf("full=%v: problems %v, want the backup reported as a duplicate", full, sum.Problems)
		}
	}
	mustVerifyClean(t, st, root)
}

// TestFullRescanMendsLostSegments: the thread_segments rows of a reverted
// thread deleted by hand (the sqlite3 shell) left its row naming its
// newest file, whose history reads through its earlier files, with no
// record of them: reindex --full failed the file ("its base ... is in no
// indexed file of the thread") and exited 1, and only a rebuild from
// nothing mended it, which forgets the append idempotency keys. A full
// rescan reads such a thread again from its first file on, as a rebuild
// does, in whatever order its workers read the files, and keeps the keys.
//
// An incremental sync before it (spoold's reconcile) mends it too
// (TestRepairMendsLostSegments), and the full rescan keeps what it made.
func TestFullRescanMendsLostSegments(t *testing.T) {
	for _, tc := range []struct {
		workers     int
		incremental bool // an incremental sync runs first
	}{{1, false}, {2, false}, {4, false}, {1, true}, {4, true}} {
		t.Run(fmt.Sprintf("%d workers, incremental first %t", tc.workers, tc.incremental), func(t *testing.T) {
			workers := tc.workers
			ctx := t.Context()
			root, st, rt, db := indexedRevertedThread(t)
			wantSegs, err := st.Segments(ctx, rt.id)
			if err != nil {
				t.Fatal(err)
			}
			wantMsgs, err := st.UserMessages(ctx, rt.id)
			if err != nil {
				t.Fatal(err)
			}
			const key = `INSERT INTO idempotency_keys (thread_id, key, request_hash, result, created_at, expires_at) VALUES (?, 'k1', x'00', x'7b7d', 1, 9223372036854775807)`
			if _, err := db.ExecContext(ctx, key, rt.id); err != nil {
				t.Fatal(err)
			}
			if _, err := db.ExecContext(ctx, `DELETE FROM thread_segments WHERE thread_id = ?`, rt.id); err != nil {
				t.Fatal(err)
			}

			rep, err := Verify(ctx, st, rolloutfs.Local{Root: root})
			if err != nil {
				t.Fatal(err)
			}
			if len(rep.Problems) != 1 || !strings.Contains(rep.Problems[0].Detail, "reindex --repair reads them again") {
				t.Errorf("verify: problems %v, want one saying what to do", rep.Problems)
			}
			if tc.incremental {
				mustSync(t, st, root, SyncOptions{})
				if segs, err := st.Segments(ctx, rt.id); err != nil || fmt.Sprint(segs) != fmt.Sprint(wantSegs) {
					t.Fatalf("segments after an incremental sync = %v (%v), want %v", segs, err, wantSegs)
				}
			}
			sum := mustSync(t, st, root, SyncOptions{Full: true, Workers: workers})
			if sum.Failed != 0 {
				t.Fatalf("full rescan failed %d files: %v", sum.Failed, sum.Problems)
			}
			gotSegs, err := st.Segments(ctx, rt.id)
			if err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(gotSegs) != fmt.Sprint(wantSegs) {
				t.Errorf("segments after the rescan = %v, want %v", gotSegs, wantSegs)
			}
			gotMsgs, err := st.UserMessages(ctx, rt.id)
			if err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(gotMsgs) != fmt.Sprint(wantMsgs) {
				t.Errorf("user messages after the rescan = %v, want %v", gotMsgs, wantMsgs)
			}
			if _, err := st.IdempotencyKey(ctx, rt.id, "k1", 2); err != nil {
				t.Errorf("idempotency key after the rescan: %v, want it kept", err)
			}
			mustVerifyClean(t, st, root)
		})
	}
}

// TestRevertSegmentWithoutItsFirstFile: a reindex of a revert segment
// whose thread's first file is not in the root reported "history base
// chain X -> X is a cycle": the segment's meta names its own thread. It
// reports the scan's error, which says the earlier file is missing.
func TestRevertSegmentWithoutItsFirstFile(t *testing.T) {
	root := t.TempDir()
	rt := newRevertedThread(t, root, 3)
	seg, _ := rt.revert(t, root, rt.data, rt.hist.Turns[1].Offset, "019dab90-9999-7000-8000-000000000001", rt.created.Add(24*time.Hour))
	if err := os.Remove(filepath.Join(root, filepath.FromSlash(rt.first))); err != nil {
		t.Fatal(err)
	}
	sum := mustSync(t, openStore(t), root, SyncOptions{Full: true})
	if len(sum.Problems) != 1 || sum.Problems[0].Path != seg || sum.Problems[0].Kind == ProblemCyclicBase ||
		!strings.Contains(sum.Problems[0].Detail, "earlier file of thread "+rt.id) {
		t.Fatalf("problems = %v, want one of %s saying its earlier file is missing", sum.Problems, seg)
	}
}

// TestSyncReadsANewRevertThroughTheGrownSegment: a revert segment that
// cuts in lines its thread's newest file gained since the last sync (Codex
// appended and reverted while spoold was stopped) was read, in the sync
// that finds both, through the row as it was before that file's catch-up:
// the cut lay past the bytes indexed, and the scan took the first file,
// whose ordinals also lie below the cut's, for the file cut, and cut it
// there. The thread lost the messages of the grown file, and Verify, which
// reads through the same rows, found nothing. The new segment waits until
// the file it continues is caught up.
func TestSyncReadsANewRevertThroughTheGrownSegment(t *testing.T) {
	for seed := range uint64(8) {
		t.Run(fmt.Sprintf("seed %d", seed), func(t *testing.T) {
			ctx := t.Context()
			root, st, rt, _ := indexedRevertedThread(t)
			grown := openStore(t) // indexed before seg1 grew and seg2 came
			mustSync(t, grown, root, SyncOptions{})
			threeFileThread(t, root, st, rt)
			wantSegs, want := historyRows(t, st, rt.id)
			sum := mustSync(t, grown, root, SyncOptions{Workers: 2, Shuffle: rand.New(rand.NewPCG(seed, 2))})
			if len(sum.Problems) != 0 {
				t.Errorf("sync problems: %v", sum.Problems)
			}
			if got, err := grown.UserMessages(ctx, rt.id); err != nil || fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("user messages = %v (%v), want %v", got, err, want)
			}
			if got, err := grown.Segments(ctx, rt.id); err != nil || fmt.Sprint(chainLinks(got)) != fmt.Sprint(chainLinks(wantSegs)) {
				t.Errorf("history links = %v (%v), want %v", chainLinks(got), err, chainLinks(wantSegs))
			}
			mustVerifyClean(t, grown, root)
		})
	}
}

// historyRows returns thread id's segment rows and user messages as st
// holds them.
func historyRows(t *testing.T, st *store.Store, id string) ([]store.Segment, []store.UserMessage) {
	t.Helper()
	segs, err := st.Segments(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	msgs, err := st.UserMessages(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	return segs, msgs
}

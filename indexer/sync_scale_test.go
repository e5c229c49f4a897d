package indexer

import (
	"context"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/spoolhq/spool/rollout"
	"github.com/spoolhq/spool/store"
)

// genThread is one generated thread of genRoot.
type genThread struct {
	id, rel string
	ts      string // envelope timestamp of its lines
}

// genRoot writes n small threads under root/sessions, perDay per day
// folder, each a session_meta and one user message (plus an answer), and
// returns them in path order. Thread i is created on day i/perDay.
func genRoot(tb testing.TB, root string, n, perDay int) []genThread {
	tb.Helper()
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	threads := make([]genThread, n)
	for i := range n {
		created := start.AddDate(0, 0, i/perDay).Add(time.Duration(i%perDay) * time.Second)
		id := fmt.Sprintf("%08x-0000-7000-8000-%012x", i, i)
		rel, err := rollout.SessionPath(rollout.FileName(created, id))
		if err != nil {
			tb.Fatal(err)
		}
		ts := created.Format(rollout.TimestampLayout)
		threads[i] = genThread{id: id, rel: rel, ts: ts}
		abs := filepath.Join(root, filepath.FromSlash(rel))
		if i%perDay == 0 {
			if err := os.MkdirAll(filepath.Dir(abs), 0o755); err != nil {
				tb.Fatal(err)
			}
		}
		body := metaLine(ts, id, "") + userLine(ts, "question "+strconv.Itoa(i)) + assistantLine(ts, "answer")
		if err := os.WriteFile(abs, []byte(body), 0o644); err != nil {
			tb.Fatal(err)
		}
	}
	return threads
}

// dumpIndex returns every thread row of st with its user messages and
// ancestors, one string per thread, ordered by id.
func dumpIndex(tb testing.TB, st *store.Store) []string {
	tb.Helper()
	ctx := context.Background()
	ids, err := st.IDs(ctx)
	if err != nil {
		tb.Fatal(err)
	}
	out := make([]string, 0, len(ids))
	for _, id := range ids {
		th, err := st.Get(ctx, id)
		if err != nil {
			tb.Fatal(err)
		}
		msgs, err := st.UserMessages(ctx, id)
		if err != nil {
			tb.Fatal(err)
		}
		anc, err := st.Ancestors(ctx, id)
		if err != nil {
			tb.Fatal(err)
		}
		ancestors := make([]string, len(anc))
		for i, a := range anc {
			ancestors[i] = fmt.Sprintf("%s@%d", a.ID, a.Depth)
		}
		out = append(out, fmt.Sprintf("%+v %+v %v", th, msgs, ancestors))
	}
	return out
}

// TestSyncIncrementalEqualsFull changes a root of a few thousand threads
// in every way Sync must notice, then checks that an incremental Sync
// leaves the index equal, row for row, to a full Sync into a fresh store.
func TestSyncIncrementalEqualsFull(t *testing.T) {
	const n, perDay = 2000, 400 // five day folders
	root := t.TempDir()
	threads := genRoot(t, root, n, perDay)
	st := openStore(t)
	if sum := mustSync(t, st, root, SyncOptions{BatchSize: 64}); sum.Scanned != n {
		t.Fatalf("first sync = %+v, want %d scanned", sum, n)
	}

	// Grow every 7th thread, delete every 11th, remove day 3 whole,
	// archive one, rewrite one, add a few, rename one in session_index.jsonl.
	var grown, deleted int
	for i, th := range threads {
		switch {
		case i/perDay == 3:
		case i%11 == 0:
			if err := os.Remove(filepath.Join(root, filepath.FromSlash(th.rel))); err != nil {
				t.Fatal(err)
			}
			deleted++
		case i%7 == 0:
			appendTo(t, root, th.rel, userLine(th.ts, "more "+th.id)+assistantLine(th.ts, "ok"))
			grown++
		}
	}
	day3 := path.Dir(threads[3*perDay].rel)
	if err := os.RemoveAll(filepath.Join(root, filepath.FromSlash(day3))); err != nil {
		t.Fatal(err)
	}
	moved := threads[4*perDay+1]
	archivedRel := rollout.ArchivedPath(path.Base(moved.rel))
	moveRollout(t, root, moved.rel, archivedRel)
	rewritten := threads[2*perDay+1]
	writeRollout(t, root, rewritten.rel, metaLine(rewritten.ts, rewritten.id, ""), userLine(rewritten.ts, "rewritten"))
	for i := range 5 {
		created := time.Date(2026, 3, 1, 0, 0, i, 0, time.UTC)
		id := fmt.Sprintf("%08x-1111-7000-8000-%012x", i, i)
		rel, err := rollout.SessionPath(rollout.FileName(created, id))
		if err != nil {
			t.Fatal(err)
		}
		ts := created.Format(rollout.TimestampLayout)
		writeRollout(t, root, rel, metaLine(ts, id, threads[1].id), userLine(ts, "new"))
	}
	renamed := threads[2]
	names := `{"id":"` + renamed.id + `","thread_name":"renamed","updated_at":"2026-03-01T00:00:00Z"}` + "\n"
	if err := os.WriteFile(filepath.Join(root, rollout.SessionIndexFile), []byte(names), 0o644); err != nil {
		t.Fatal(err)
	}

	sum := mustSync(t, st, root, SyncOptions{BatchSize: 64})
	wantDeleted := deleted + perDay // every 11th outside day 3, and day 3 whole
	if sum.Moved != 1 || sum.Scanned != 6 || sum.CaughtUp != grown || sum.Deleted != wantDeleted || sum.Renamed != 1 || sum.Failed != 0 {
		t.Errorf("incremental sync = %+v, want 1 moved, 6 scanned, %d caught up, %d deleted, 1 renamed",
			sum, grown, wantDeleted)
	}
	if len(sum.Problems) != 0 {
		t.Errorf("problems = %v, want none", sum.Problems)
	}

	fresh := openStore(t)
	mustSync(t, fresh, root, SyncOptions{Full: true})
	got, want := dumpIndex(t, st), dumpIndex(t, fresh)
	if len(got) != len(want) {
		t.Fatalf("incremental index has %d threads, full has %d", len(got), len(want))
	}
	for i := range got {
		if got[i] != want[i] {
			t.Fatalf("thread %d differs:\nincremental %s\nfull        %s", i, got[i], want[i])
		}
	}
	if th, err := st.Get(context.Background(), moved.id); err != nil || th.RolloutPath != archivedRel || !th.Archived {
		t.Fatalf("moved thread = %+v, %v, want archived at %s", th, err, archivedRel)
	}
	mustVerifyClean(t, st, root)
}

// TestSyncDuplicateAcrossFolders gives one thread five files (live copies
// in other day folders, before and after its own, and in a folder of its
// own beside it, and an archived one) and checks that every kind of sync,
// in any order of completion, indexes the one at the layout's place.
func TestSyncDuplicateAcrossFolders(t *testing.T) {
	const ts = "2026-06-01T08:00:00.000Z"
	name := "rollout-2026-06-01T08-00-00-" + idX + ".jsonl"
	files := []string{
		"sessions/2026/06/01/" + name,     // the layout's place: preferred
		"sessions/2026/06/02/" + name,     // a misplaced live copy
		rollout.ArchivedPath(name),        // an interrupted archive
		"sessions/2026/05/31/" + name,     // an old copy, in a path that sorts first
		"sessions/2026/06/01/bak/" + name, // a backup beside it
	}
	for workers := 1; workers <= 4; workers *= 2 {
		t.Run(fmt.Sprintf("workers=%d", workers), func(t *testing.T) {
			root := t.TempDir()
			for i, rel := range files {
				writeRollout(t, root, rel, metaLine(ts, idX, ""), userLine(ts, "copy "+strconv.Itoa(i)), echoLine(ts, "copy "+strconv.Itoa(i)))
			}
			writeRollout(t, root, "sessions/2026/06/02/rollout-2026-06-02T08-00-00-"+idY+".jsonl", metaLine(ts, idY, ""))
			st := openStore(t)
			for _, opts := range []SyncOptions{{Workers: workers, BatchSize: 1}, {Workers: workers}, {Workers: workers, Full: true}} {
				sum := mustSync(t, st, root, opts)
				var dups []string
				for _, p := range sum.Problems {
					if p.Kind != ProblemDuplicate || !strings.HasSuffix(p.Detail, files[0]) {
						t.Errorf("problem %v, want duplicates indexed from %s", p, files[0])
					}
					dups = append(dups, p.Path)
				}
				slices.Sort(dups)
				want := slices.Clone(files[1:])
				slices.Sort(want)
				if !slices.Equal(dups, want) {
					t.Errorf("%+v: duplicates %v, want %v", opts, dups, want)
				}
				if sum.Files != len(files)+1 {
					t.Errorf("%+v: files = %d, want %d", opts, sum.Files, len(files)+1)
				}
				th, err := st.Get(context.Background(), idX)
				if err != nil || th.RolloutPath != files[0] || th.Preview != "copy 0" {
					t.Fatalf("%+v: thread = %+v, %v, want indexed from %s", opts, th, err, files[0])
				}
			}
			mustVerifyClean(t, st, root)
		})
	}
}

// heapSampler records the peak HeapInuse while it runs.
type heapSampler struct {
	peak atomic.Uint64
	stop chan struct{}
	wg   sync.WaitGroup
}

func startHeapSampler() *heapSampler {
	h := &heapSampler{stop: make(chan struct{})}
	h.wg.Go(func() {
		var ms runtime.MemStats
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		for {
			runtime.ReadMemStats(&ms)
			if ms.HeapInuse > h.peak.Load() {
				h.peak.Store(ms.HeapInuse)
			}
			select {
			case <-h.stop:
				return
			case <-tick.C:
			}
		}
	})
	return h
}

func (h *heapSampler) done() uint64 {
	close(h.stop)
	h.wg.Wait()
	return h.peak.Load()
}

// measureSync runs an incremental Sync of root into st (already synced)
// and returns the peak heap in use above what was in use before, and the
// time it took. The collector runs often meanwhile, so the peak follows
// the live heap.
func measureSync(tb testing.TB, st *store.Store, root string) (uint64, time.Duration) {
	tb.Helper()
	old := debug.SetGCPercent(5)
	defer debug.SetGCPercent(old)
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	base := ms.HeapInuse
	h := startHeapSampler()
	start := time.Now()
	sum := mustSync(tb, st, root, SyncOptions{})
	elapsed := time.Since(start)
	peak := h.done()
	if sum.Skipped != sum.Files || sum.Scanned != 0 {
		tb.Fatalf("sync = %+v, want everything skipped", sum)
	}
	if peak < base {
		return 0, elapsed
	}
	return peak - base, elapsed
}

// TestSyncMemoryFlat checks that an incremental Sync over unchanged
// threads needs no more memory for ten times the threads (same folder
// size, ten times the folders). Sync used to hold every path and every
// index row at once, a heap that grew linearly.
func TestSyncMemoryFlat(t *testing.T) {
	if testing.Short() || raceEnabled {
		t.Skip("generates 22,000 threads; measures nothing useful under the race detector")
	}
	const perDay = 500
	var peaks [2]uint64
	for i, n := range []int{2000, 20000} {
		root := t.TempDir()
		genRoot(t, root, n, perDay)
		st := openStore(t)
		mustSync(t, st, root, SyncOptions{})
		peak, elapsed := measureSync(t, st, root)
		peaks[i] = peak
		t.Logf("incremental sync of %d unchanged threads: peak heap +%.2f MB, %v (%.1f µs/thread)",
			n, float64(peak)/1e6, elapsed, float64(elapsed.Microseconds())/float64(n))
	}
	// Linear growth would be 10x; allow noise of a few MB on top of 2x.
	if limit := 2*peaks[0] + 4<<20; peaks[1] > limit {
		t.Errorf("peak heap %d bytes for 20,000 threads, %d for 2,000: grows with the thread count", peaks[1], peaks[0])
	}
}

// BenchmarkSyncUnchanged times an incremental Sync over unchanged threads
// (500 per day folder), and reports the peak heap above the baseline of
// one more run under a collector running often. SPOOL_SYNC_THREADS sets
// the count (default 20000).
func BenchmarkSyncUnchanged(b *testing.B) {
	n := 20000
	if s := os.Getenv("SPOOL_SYNC_THREADS"); s != "" {
		var err error
		if n, err = strconv.Atoi(s); err != nil {
			b.Fatal(err)
		}
	}
	root := b.TempDir()
	genRoot(b, root, n, 500)
	st := openStore(b)
	start := time.Now()
	mustSync(b, st, root, SyncOptions{})
	b.Logf("full sync of %d threads: %v", n, time.Since(start))
	b.ResetTimer()
	for b.Loop() {
		mustSync(b, st, root, SyncOptions{})
	}
	b.StopTimer()
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/thread")
	peak, _ := measureSync(b, st, root)
	b.ReportMetric(float64(peak)/1e6, "peak-heap-MB")
}

// TestSyncPathsAgree: a first index takes the fast paths (batches of new
// threads written without a lookup per record, fresh scans under Hold
// checked once per batch); a full rescan of a built index takes the slow
// ones (each record finds and replaces its row). Every way must give the
// same rows, search text included.
func TestSyncPathsAgree(t *testing.T) {
	root := testHome(t)
	genRoot(t, root, 300, 100)
	noHold := func(string) (func(), bool) { return func() {}, false }
	tests := []struct {
		name  string
		build func(t *testing.T, st *store.Store)
	}{
		{"first index", func(t *testing.T, st *store.Store) { mustSync(t, st, root, SyncOptions{}) }},
		{"first index, one record per batch", func(t *testing.T, st *store.Store) { mustSync(t, st, root, SyncOptions{BatchSize: 1}) }},
		{"first index under Hold", func(t *testing.T, st *store.Store) { mustSync(t, st, root, SyncOptions{Hold: noHold, BatchSize: 64}) }},
		{"full rescan of a built index", func(t *testing.T, st *store.Store) {
			mustSync(t, st, root, SyncOptions{})
			mustSync(t, st, root, SyncOptions{Full: true, BatchSize: 7})
		}},
		{"full rescan under Hold", func(t *testing.T, st *store.Store) {
			mustSync(t, st, root, SyncOptions{})
			mustSync(t, st, root, SyncOptions{Full: true, Hold: noHold})
		}},
	}
	var want []string
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := openStore(t)
			tt.build(t, st)
			got := dumpIndex(t, st)
			for _, q := range []string{"question", "fork"} {
				hits, err := st.Search(t.Context(), store.SearchOptions{Query: q, Limit: 1000})
				if err != nil {
					t.Fatal(err)
				}
				got = append(got, fmt.Sprintf("search %q: %d hits", q, len(hits)))
				for _, h := range hits {
					got = append(got, fmt.Sprintf("%s/%d", h.ThreadID, h.Ordinal))
				}
			}
			if want == nil {
				want = got
				return
			}
			if !slices.Equal(got, want) {
				for i := range min(len(got), len(want)) {
					if got[i] != want[i] {
						t.Fatalf("row %d:\n got %s\nwant %s", i, got[i], want[i])
					}
				}
				t.Fatalf("%d rows, want %d", len(got), len(want))
			}
		})
	}
}

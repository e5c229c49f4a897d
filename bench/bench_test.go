package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/spoolhq/spool/bench/corpus"
	"github.com/spoolhq/spool/indexer"
	"github.com/spoolhq/spool/manager"
	"github.com/spoolhq/spool/rollout"
	"github.com/spoolhq/spool/rolloutfs"
	"github.com/spoolhq/spool/store"
)

// The figures of BENCHMARKS.md. Each benchmark has its baseline as a
// sibling sub-benchmark so that both run in the same process, on the same
// data, one after the other. Environment variables (set by
// scripts/bench.sh from BENCH_SCALE; defaults are BENCH_SCALE=1):
//
//	BENCH_BIG_MB         size of the rollout forked and resumed (100; full 1024)
//	BENCH_LIST_FILES     rollout files listed and incrementally reindexed (10000; full 100000)
//	BENCH_LIST_ROWS      index rows for the in-process page time (100000; full 1000000)
//	BENCH_REINDEX_FILES  ~100 KiB files of the full rebuild (1000; full 10000), a quarter of them
//	                     reference forks in the -forks corpus
//	BENCH_MEM_THREADS    index sizes of the memory figure (10000,25000,50000; full 250000,500000,1000000)
//	BENCH_MEM_TOUCH      threads made live in the memory figure (10000; full 100000)

// bigFixture is the big rollout shared by the fork and resume figures:
// two linked copies of the cached corpus, each with a manager open on it,
// one per sync policy the figures report (always, the default, and none).
var bigFixture struct {
	once   sync.Once
	mb     int
	roots  []string
	m      map[rolloutfs.SyncPolicy]*manager.Manager
	thread manager.Thread
	path   string // the rollout in the sync=always root
	err    error
}

func TestMain(m *testing.M) {
	code := m.Run()
	for _, mgr := range bigFixture.m {
		mgr.Close()
	}
	for _, root := range bigFixture.roots {
		os.RemoveAll(root)
	}
	closeRefFixtures()
	os.Exit(code)
}

// big returns the manager with the given sync policy holding the big
// rollout, its thread and its file.
func big(b *testing.B, policy rolloutfs.SyncPolicy) (*manager.Manager, manager.Thread, string) {
	b.Helper()
	mb := envInt(b, "BENCH_BIG_MB", 100)
	src := cachedCorpus(b, fmt.Sprintf("big-%dmb", mb), 1, bigThread(int64(mb)<<20), false)
	bigFixture.once.Do(func() {
		bigFixture.mb = mb
		bigFixture.m = map[rolloutfs.SyncPolicy]*manager.Manager{}
		bigFixture.err = openBig(b, src, rolloutfs.SyncAlways, rolloutfs.SyncNone)
	})
	if bigFixture.err != nil {
		b.Fatal(bigFixture.err)
	}
	if bigFixture.mb != mb {
		b.Fatalf("BENCH_BIG_MB changed within one run")
	}
	m := bigFixture.m[policy]
	if m == nil {
		b.Fatalf("no big fixture with sync=%s", policy)
	}
	return m, bigFixture.thread, bigFixture.path
}

// openBig links the rollouts of src into a new root per policy and opens
// a manager with that policy on each.
func openBig(b *testing.B, src string, policies ...rolloutfs.SyncPolicy) error {
	for _, policy := range policies {
		root, err := os.MkdirTemp("", "spool-bench-big-")
		if err != nil {
			return err
		}
		bigFixture.roots = append(bigFixture.roots, root)
		for _, p := range rolloutPaths(b, src) {
			rel, _ := filepath.Rel(src, p)
			target := filepath.Join(root, rel)
			if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
				return err
			}
			if err := os.Link(p, target); err != nil {
				return err
			}
		}
		start := time.Now()
		m, err := manager.Open(context.Background(), manager.Options{Root: root, Sync: policy, Logger: quiet})
		if err != nil {
			return err
		}
		bigFixture.m[policy] = m
		b.Logf("indexed the %d MB rollout in %s", bigFixture.mb, time.Since(start).Round(time.Millisecond))
		page, err := m.List(context.Background(), store.ListOptions{Limit: 1})
		if err != nil || len(page.Threads) != 1 {
			return fmt.Errorf("list the big thread: %v (%d threads)", err, len(page.Threads))
		}
		if bigFixture.path == "" {
			bigFixture.thread = page.Threads[0]
			bigFixture.path = filepath.Join(root, filepath.FromSlash(page.Threads[0].RolloutPath))
		}
	}
	return nil
}

// BenchmarkFork is figure 1: fork before a user message near the end of a
// big rollout. spool copies a byte range, at the default sync policy
// (always: the fork is fsynced before it is acknowledged) and at none;
// codex decodes every line into typed structs and re-encodes the kept
// ones (it does not fsync); copy is io.Copy of the same prefix bytes
// between two files (copy_file_range), the floor.
func BenchmarkFork(b *testing.B) {
	ctx := context.Background()
	_, parent, parentPath := big(b, rolloutfs.SyncAlways)
	cutBefore := parent.UserMessageCount - 2
	msgs, err := bigFixture.m[rolloutfs.SyncAlways].UserMessages(ctx, parent.ID)
	if err != nil {
		b.Fatal(err)
	}
	cut := msgs[cutBefore].Offset
	report := func(b *testing.B) {
		b.ReportMetric(float64(cut)/1e6/(b.Elapsed().Seconds()/float64(b.N)), "MB/s")
	}

	for _, policy := range []rolloutfs.SyncPolicy{rolloutfs.SyncAlways, rolloutfs.SyncNone} {
		b.Run("spool/sync="+policy.String(), func(b *testing.B) {
			m, _, _ := big(b, policy)
			forkEach(b, m, parent.ID, manager.ForkOptions{BeforeUserMessage: &cutBefore}, nil)
			report(b)
		})
	}
	b.Run("copy", func(b *testing.B) {
		writeEach(b, func(dst string) error { return CopyPrefix(parentPath, dst, cut) })
		report(b)
	})
	b.Run("copy-after-meta", func(b *testing.B) {
		meta := forkMeta(b, parent)
		writeEach(b, func(dst string) error { return CopyPrefixAfter(parentPath, dst, meta, cut) })
		report(b)
	})
	b.Run("codex", func(b *testing.B) {
		meta := forkMeta(b, parent)
		writeEach(b, func(dst string) error {
			_, err := CodexFork(parentPath, dst, meta, cutBefore)
			return err
		})
		report(b)
	})
}

// forkMeta returns a session_meta line for a fork of parent, as the Codex
// way writes first.
func forkMeta(tb testing.TB, parent manager.Thread) []byte {
	tb.Helper()
	now := rollout.FormatTimestamp(time.Now())
	line, err := rollout.NewSessionMetaLine(now, rollout.MetaPayload{SessionMeta: rollout.SessionMeta{
		ID: "019b0000-0000-7000-8000-000000000001", ForkedFromID: parent.ID, Timestamp: now,
		Cwd: parent.Cwd, Originator: parent.Originator, CLIVersion: parent.CLIVersion, Source: parent.Source,
	}})
	if err != nil {
		tb.Fatal(err)
	}
	return line
}

// BenchmarkResume is figure 3: open a big thread and read its last turn,
// at the default sync policy (always; reading does not sync). spool
// resumes the thread (after evicting it, so it is loaded again) and reads
// the turn by seeking to its indexed offset (spool/sync=none: the same
// with the none policy); spool-open also opens the
// manager on the root first (cold start of a process) and closes it;
// codex reads the file backwards, decoding lines into typed structs,
// until the last user message.
func BenchmarkResume(b *testing.B) {
	ctx := context.Background()
	m, thread, path := big(b, rolloutfs.SyncAlways)
	last := thread.UserMessageCount - 1
	readTurn := func(b *testing.B, m *manager.Manager) {
		if _, err := m.Resume(ctx, thread.ID); err != nil {
			b.Fatal(err)
		}
		rc, err := m.ReadTurn(ctx, thread.ID, last)
		if err != nil {
			b.Fatal(err)
		}
		n, err := io.Copy(io.Discard, rc)
		rc.Close()
		if err != nil || n == 0 {
			b.Fatalf("read last turn: %d bytes, %v", n, err)
		}
	}
	b.Run("spool", func(b *testing.B) {
		for b.Loop() {
			if err := m.Evict(ctx, thread.ID); err != nil {
				b.Fatal(err)
			}
			readTurn(b, m)
		}
	})
	b.Run("spool/sync=none", func(b *testing.B) {
		m, _, _ := big(b, rolloutfs.SyncNone)
		for b.Loop() {
			if err := m.Evict(ctx, thread.ID); err != nil {
				b.Fatal(err)
			}
			readTurn(b, m)
		}
	})
	b.Run("spool-open", func(b *testing.B) {
		// The shared manager holds the root's lock: open a second root
		// that links the same file and its own copy of the index.
		root := linkedRoot(b, bigFixture.roots[0])
		warm := openManager(b, root, rolloutfs.SyncAlways)
		if err := warm.Close(); err != nil {
			b.Fatal(err)
		}
		for b.Loop() {
			m2, err := manager.Open(ctx, manager.Options{Root: root, Sync: rolloutfs.SyncAlways, Logger: quiet})
			if err != nil {
				b.Fatal(err)
			}
			readTurn(b, m2)
			if err := m2.Close(); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("codex", func(b *testing.B) {
		for b.Loop() {
			turn, _, err := ParseLastTurn(path)
			if err != nil || len(turn) == 0 {
				b.Fatalf("parse last turn: %d lines, %v", len(turn), err)
			}
		}
	})
}

// listFixture returns the cached, indexed home of BENCH_LIST_FILES small
// threads.
func listFixture(b *testing.B) (string, int) {
	n := envInt(b, "BENCH_LIST_FILES", 10_000)
	return cachedCorpus(b, "small", n, smallThreads, true), n
}

// BenchmarkList is figure 2: the newest page of 50 threads. spool reads it
// from the index; scan walks the date folders of sessions/ newest first,
// reading heads, and stops at 50, as Codex's file listing does.
func BenchmarkList(b *testing.B) {
	ctx := context.Background()
	root, n := listFixture(b)
	b.Run(fmt.Sprintf("spool/files=%d", n), func(b *testing.B) {
		m := openManager(b, root, rolloutfs.SyncNone)
		for b.Loop() {
			page, err := m.List(ctx, store.ListOptions{Limit: 50})
			if err != nil || len(page.Threads) != 50 {
				b.Fatalf("list: %d threads, %v", len(page.Threads), err)
			}
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "pages/s")
	})
	b.Run(fmt.Sprintf("scan/files=%d", n), func(b *testing.B) {
		for b.Loop() {
			page, err := ScanNewest(root, 50)
			if err != nil || len(page) != 50 {
				b.Fatalf("scan: %d threads, %v", len(page), err)
			}
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "pages/s")
	})
}

// BenchmarkListIndex is the second half of figure 2: the time of one page
// (first page and a page deep inside through a cursor) on an index of
// BENCH_LIST_ROWS threads, in process through the store.
func BenchmarkListIndex(b *testing.B) {
	ctx := context.Background()
	n := envInt(b, "BENCH_LIST_ROWS", 100_000)
	st := rowsIndex(b, n)
	// The store keeps the pages it read until the next write: "first"
	// writes (untimed) before each page, so every page is read from the
	// index; "first-cached" does not.
	for _, cached := range []bool{false, true} {
		name := "first"
		if cached {
			name = "first-cached"
		}
		b.Run(fmt.Sprintf("%s/rows=%d", name, n), func(b *testing.B) {
			for b.Loop() {
				if !cached {
					b.StopTimer()
					if err := st.PutState(ctx, "bench", "written"); err != nil {
						b.Fatal(err)
					}
					b.StartTimer()
				}
				page, err := st.List(ctx, store.ListOptions{Limit: 50})
				if err != nil || len(page.Threads) != 50 {
					b.Fatalf("list: %d threads, %v", len(page.Threads), err)
				}
			}
		})
	}
	b.Run(fmt.Sprintf("deep/rows=%d", n), func(b *testing.B) {
		opts := store.ListOptions{Limit: 1000}
		for range n / 2000 { // a cursor halfway down
			page, err := st.List(ctx, opts)
			if err != nil {
				b.Fatal(err)
			}
			opts.Cursor = page.NextCursor
		}
		opts.Limit = 50
		for b.Loop() {
			b.StopTimer()
			if err := st.PutState(ctx, "bench", "written"); err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
			page, err := st.List(ctx, opts)
			if err != nil || len(page.Threads) != 50 {
				b.Fatalf("list: %d threads, %v", len(page.Threads), err)
			}
		}
	})
}

// rowsIndex opens the cached index of n thread rows (one user message
// each), generating it with store.Replace batches on first use.
func rowsIndex(b *testing.B, n int) *store.Store {
	b.Helper()
	ctx := context.Background()
	path := filepath.Join(os.TempDir(), fmt.Sprintf("spool-bench-v%d-rows-n%d.db", corpusVersion, n))
	if _, err := os.Stat(path + ".complete"); err != nil {
		start := time.Now()
		os.Remove(path)
		os.Remove(path + "-wal")
		os.Remove(path + "-shm")
		st, err := store.Open(ctx, path)
		if err != nil {
			b.Fatal(err)
		}
		o := smallThreads
		batch := make([]store.Record, 0, 5000)
		for i := range n {
			created := corpus.DefaultStart.Add(time.Duration(i) * 37 * time.Second).UnixMilli()
			id := o.ID(i)
			preview := fmt.Sprintf("Step 0: task %d about module %d", i, i%113)
			batch = append(batch, store.Record{
				Thread: store.Thread{
					ID: id, RolloutPath: o.Path(i), CreatedAt: created, UpdatedAt: created + int64(i%97)*60_000,
					Cwd: fmt.Sprintf("/home/dev/src/project%02d", i%64), Source: "cli", Originator: "codex_cli_rs",
					CLIVersion: "0.120.0", ModelProvider: "openai", Preview: preview, Archived: i%10 == 0,
					ForkUserMessage: -1, ForkOffset: -1, LineCount: 12, UserMessageCount: 1,
					IndexedSize: 4000, FileSize: 4000, FileMtime: created * 1e6,
				},
				Messages: []store.UserMessage{{Ordinal: 0, Offset: 1500, Line: 3, Preview: preview, Text: preview}},
			})
			if len(batch) == cap(batch) || i == n-1 {
				if err := st.Replace(ctx, batch); err != nil {
					b.Fatal(err)
				}
				batch = batch[:0]
			}
		}
		if err := st.Close(); err != nil {
			b.Fatal(err)
		}
		if err := os.WriteFile(path+".complete", nil, 0o644); err != nil {
			b.Fatal(err)
		}
		b.Logf("generated an index of %d rows in %s", n, time.Since(start).Round(time.Millisecond))
	}
	st, err := store.Open(ctx, path)
	if err != nil {
		b.Fatalf("open cached index %s (delete it to regenerate): %v", path, err)
	}
	b.Cleanup(func() { st.Close() })
	return st
}

// BenchmarkAppend is figure 4: acknowledged appends through the manager,
// one item per call, for each sync policy (the default, always, first).
// writers=1 is one goroutine appending to one thread; writers=64 is 64
// goroutines, each appending to its own thread, b.N calls in all. Each
// call's latency is recorded: p50, p99 and p99.9 in µs, besides the
// throughput.
func BenchmarkAppend(b *testing.B) {
	ctx := context.Background()
	payload := []byte(`{"type":"message","role":"assistant","content":[{"type":"output_text","text":"` +
		string(bytes.Repeat([]byte("appended text "), 24)) + `"}]}`)
	items := []rollout.Item{{Type: rollout.TypeResponseItem, Payload: payload}}
	for _, policy := range []rolloutfs.SyncPolicy{rolloutfs.SyncAlways, rolloutfs.SyncBatch, rolloutfs.SyncNone} {
		for _, writers := range []int{1, 64} {
			b.Run(fmt.Sprintf("sync=%s/writers=%d", policy, writers), func(b *testing.B) {
				m := openManager(b, b.TempDir(), policy)
				ids := startThreads(b, m, writers)
				latencies := make([]time.Duration, b.N)
				var next atomic.Int64 // index of the next call among b.N
				var wg sync.WaitGroup
				before := m.Stats()
				b.ResetTimer()
				for w := range writers {
					wg.Go(func() {
						for {
							i := next.Add(1) - 1
							if i >= int64(b.N) {
								return
							}
							start := time.Now()
							if _, err := m.Append(ctx, ids[w], items); err != nil {
								b.Error(err)
								return
							}
							latencies[i] = time.Since(start)
						}
					})
				}
				wg.Wait()
				b.StopTimer()
				reportWaits(b, before, m.Stats())
				b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "appends/s")
				slices.Sort(latencies)
				for _, q := range []struct {
					unit string
					at   float64
				}{{"p50-µs", 0.50}, {"p99-µs", 0.99}, {"p99.9-µs", 0.999}} {
					k := min(int(q.at*float64(len(latencies))), len(latencies)-1)
					b.ReportMetric(float64(latencies[k].Nanoseconds())/1e3, q.unit)
				}
			})
		}
	}
}

// reportWaits reports where the appends between two Stats waited: the
// appends per group sync and the share of the run a sync was running
// (SyncBatch), and the updates per index commit with the share of the run
// spent committing and, by a batch's leader, waiting for its sync to begin.
func reportWaits(b *testing.B, before, after manager.Stats) {
	run := b.Elapsed().Seconds()
	if syncs := after.Syncs.Syncs - before.Syncs.Syncs; syncs > 0 {
		b.ReportMetric(float64(after.Syncs.Requests-before.Syncs.Requests)/float64(syncs), "appends/sync")
		b.ReportMetric(100*(after.Syncs.Busy-before.Syncs.Busy).Seconds()/run, "sync-busy-%")
	}
	if commits := after.Commits.Commits - before.Commits.Commits; commits > 0 {
		b.ReportMetric(float64(after.Commits.Updates-before.Commits.Updates)/float64(commits), "updates/commit")
		b.ReportMetric(100*(after.Commits.Busy-before.Commits.Busy).Seconds()/run, "commit-busy-%")
		b.ReportMetric(100*(after.Commits.Gathering-before.Commits.Gathering).Seconds()/run, "gather-%")
	}
}

// BenchmarkReindex is figure 5, full rebuild: indexer.Sync with Full on a
// fresh index over BENCH_REINDEX_FILES files of ~100 KiB, against reading
// the same bytes with a plain read loop. Both read from the page cache
// (the files were just generated or read). The same is measured on two
// more corpora of as many files: -paginated, the threads in Codex 0.169's
// paginated mode, and -forks, a quarter of those files replaced by
// reference forks in chains forkDepth deep, each with ~100 KiB of its own
// turns (a full rebuild indexes a fork once its base is in).
func BenchmarkReindex(b *testing.B) {
	n := envInt(b, "BENCH_REINDEX_FILES", 1000)
	reindexFull(b, "", fmt.Sprintf("files=%d", n), n, cachedCorpus(b, "medium", n, mediumThreads, false))
	reindexFull(b, "-paginated", fmt.Sprintf("files=%d", n), n, cachedCorpus(b, "medium-paginated", n, pagedThreads, false))
	root, forks := cachedForkCorpus(b, n)
	reindexFull(b, "-forks", fmt.Sprintf("files=%d/forks=%d/depth=%d", n, forks, forkDepth), n, root)
}

// reindexFull runs BenchmarkReindex's pair on the n files of root:
// spool-full<suffix>/<params> and read<suffix>/<params>.
func reindexFull(b *testing.B, suffix, params string, n int, root string) {
	ctx := context.Background()
	paths := rolloutPaths(b, root)
	if len(paths) != n {
		b.Fatalf("%s holds %d rollouts, want %d", root, len(paths), n)
	}
	var total int64
	for _, p := range paths {
		info, err := os.Stat(p)
		if err != nil {
			b.Fatal(err)
		}
		total += info.Size()
	}
	mbps := func(b *testing.B) {
		b.ReportMetric(float64(total)/1e6/(b.Elapsed().Seconds()/float64(b.N)), "MB/s")
	}
	b.Run("spool-full"+suffix+"/"+params, func(b *testing.B) {
		dir := b.TempDir()
		i := 0
		for b.Loop() {
			b.StopTimer()
			st, err := store.Open(ctx, filepath.Join(dir, fmt.Sprintf("index-%d.db", i)))
			if err != nil {
				b.Fatal(err)
			}
			i++
			b.StartTimer()
			sum, err := indexer.Sync(ctx, st, rolloutfs.Local{Root: root}, indexer.SyncOptions{Full: true})
			if err != nil || sum.Scanned != n || sum.Failed != 0 {
				b.Fatalf("sync: scanned %d of %d, %d failed, %v", sum.Scanned, n, sum.Failed, err)
			}
			b.StopTimer()
			st.Close()
			b.StartTimer()
		}
		mbps(b)
	})
	b.Run("read"+suffix+"/"+params, func(b *testing.B) {
		for b.Loop() {
			got, err := ReadFiles(paths)
			if err != nil || got != total {
				b.Fatalf("read %d of %d bytes: %v", got, total, err)
			}
		}
		mbps(b)
	})
}

// BenchmarkReindexIncremental is figure 5, incremental pass: indexer.Sync
// (default options) over BENCH_LIST_FILES threads none of which changed.
func BenchmarkReindexIncremental(b *testing.B) {
	ctx := context.Background()
	root, n := listFixture(b)
	st, err := store.Open(ctx, filepath.Join(root, manager.IndexFile))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	b.Run(fmt.Sprintf("unchanged/threads=%d", n), func(b *testing.B) {
		for b.Loop() {
			sum, err := indexer.Sync(ctx, st, rolloutfs.Local{Root: root}, indexer.SyncOptions{})
			if err != nil || sum.Skipped != n {
				b.Fatalf("sync: skipped %d of %d (scanned %d, caught up %d), %v", sum.Skipped, n, sum.Scanned, sum.CaughtUp, err)
			}
		}
		b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "threads/s")
	})
}

// BenchmarkMemory is figure 6: the peak RSS of a process (bench/memprobe)
// that opens a manager (capacity 1000) on an index of N threads and makes
// BENCH_MEM_TOUCH of them live in turn, at several N to show whether it
// stays flat. ns/op is the probe's whole run; the metrics are its own
// /proc/self/status figures.
func BenchmarkMemory(b *testing.B) {
	sizes := envInts(b, "BENCH_MEM_THREADS", []int{10_000, 25_000, 50_000})
	touch := envInt(b, "BENCH_MEM_TOUCH", 10_000)
	probe := filepath.Join(b.TempDir(), "memprobe")
	build := exec.Command("go", "build", "-o", probe, "github.com/spoolhq/spool/bench/memprobe")
	if out, err := build.CombinedOutput(); err != nil {
		b.Fatalf("build memprobe: %v\n%s", err, out)
	}
	for _, n := range sizes {
		root := cachedCorpus(b, "small", n, smallThreads, true)
		b.Run(fmt.Sprintf("threads=%d/touch=%d", n, min(touch, n)), func(b *testing.B) {
			var rep struct {
				Threads   int64 `json:"threads"`
				Touched   int   `json:"touched"`
				Live      int   `json:"live"`
				OpenHWMKB int64 `json:"open_hwm_kb"`
				HWMKB     int64 `json:"hwm_kb"`
				RSSKB     int64 `json:"rss_kb"`
			}
			for b.Loop() {
				cmd := exec.Command(probe, "-root", root, "-touch", fmt.Sprint(touch), "-capacity", "1000")
				cmd.Stderr = os.Stderr
				out, err := cmd.Output()
				if err != nil {
					b.Fatalf("memprobe: %v", err)
				}
				if err := json.Unmarshal(out, &rep); err != nil {
					b.Fatalf("memprobe output %q: %v", out, err)
				}
				if rep.Threads != int64(n) {
					b.Fatalf("memprobe saw %d threads, want %d", rep.Threads, n)
				}
			}
			b.ReportMetric(float64(rep.HWMKB)/1024, "peak-MB")
			b.ReportMetric(float64(rep.OpenHWMKB)/1024, "open-peak-MB")
			b.ReportMetric(float64(rep.RSSKB)/1024, "end-rss-MB")
			b.ReportMetric(float64(rep.Live), "live")
		})
	}
}

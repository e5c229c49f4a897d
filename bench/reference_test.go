package bench

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/spoolhq/spool/manager"
	"github.com/spoolhq/spool/rolloutfs"
	"github.com/spoolhq/spool/store"
)

// Figure 8 of BENCHMARKS.md: reference forks (issue #12). Sizes:
//
//	BENCH_REF_MB  sizes of the paginated thread forked (100; BENCH_SCALE=10: 100,1024)

// refRoot is a root holding one big paginated thread, with a manager per
// sync policy, built once per size and shared by the runs of a process.
type refRoot struct {
	m      map[rolloutfs.SyncPolicy]*manager.Manager
	thread manager.Thread
	err    error
}

var refFixtures struct {
	mu    sync.Mutex
	roots map[int]*refRoot
	dirs  []string
}

// closeRefFixtures closes the managers and removes the roots of figure 8.
func closeRefFixtures() {
	for _, r := range refFixtures.roots {
		for _, m := range r.m {
			m.Close()
		}
	}
	for _, d := range refFixtures.dirs {
		os.RemoveAll(d)
	}
}

// referenceBig returns the root holding the paginated thread of mb MB:
// the big thread of figure 1, written in Codex's paginated mode.
func referenceBig(b *testing.B, mb int) *refRoot {
	b.Helper()
	o := bigThread(int64(mb) << 20)
	o.Paginated = true
	src := cachedCorpus(b, fmt.Sprintf("big-paginated-%dmb", mb), 1, o, false)
	refFixtures.mu.Lock()
	defer refFixtures.mu.Unlock()
	if refFixtures.roots == nil {
		refFixtures.roots = map[int]*refRoot{}
	}
	if r := refFixtures.roots[mb]; r != nil {
		if r.err != nil {
			b.Fatal(r.err)
		}
		return r
	}
	r := &refRoot{m: map[rolloutfs.SyncPolicy]*manager.Manager{}}
	refFixtures.roots[mb] = r
	for _, policy := range []rolloutfs.SyncPolicy{rolloutfs.SyncAlways, rolloutfs.SyncNone} {
		root, err := linkFixedRoot(b, src)
		if err != nil {
			r.err = err
			b.Fatal(err)
		}
		refFixtures.dirs = append(refFixtures.dirs, root)
		m, err := manager.Open(context.Background(), manager.Options{Root: root, Sync: policy, Logger: quiet})
		if err != nil {
			r.err = err
			b.Fatal(err)
		}
		r.m[policy] = m
		page, err := m.List(context.Background(), store.ListOptions{Limit: 1})
		if err != nil || len(page.Threads) != 1 {
			r.err = fmt.Errorf("list the paginated thread: %v (%d threads)", err, len(page.Threads))
			b.Fatal(r.err)
		}
		r.thread = page.Threads[0]
	}
	return r
}

// linkFixedRoot is linkedRoot for a root that outlives the benchmark
// that makes it (closeRefFixtures removes it).
func linkFixedRoot(b *testing.B, src string) (string, error) {
	root, err := os.MkdirTemp("", "spool-bench-ref-")
	if err != nil {
		return "", err
	}
	for _, p := range rolloutPaths(b, src) {
		rel, _ := filepath.Rel(src, p)
		target := filepath.Join(root, rel)
		if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
			return "", err
		}
		if err := os.Link(p, target); err != nil {
			return "", err
		}
	}
	return root, nil
}

// reportP50 reports the median of the timed iterations as p50-ms.
func reportP50(b *testing.B, times []time.Duration) {
	if len(times) == 0 {
		return
	}
	slices.Sort(times)
	b.ReportMetric(float64(times[len(times)/2])/1e6, "p50-ms")
}

// BenchmarkReferenceFork is figure 8a: a reference fork of the big
// paginated thread before a late user message, at each size: the child's
// file is its meta line alone, and its index row points at the base
// (no user-message rows copied), so its cost does not grow with the
// parent. The fork is removed again between iterations, untimed.
func BenchmarkReferenceFork(b *testing.B) {
	for _, mb := range envInts(b, "BENCH_REF_MB", []int{100}) {
		for _, policy := range []rolloutfs.SyncPolicy{rolloutfs.SyncAlways, rolloutfs.SyncNone} {
			b.Run(fmt.Sprintf("sync=%s/%dMiB", policy, mb), func(b *testing.B) {
				r := referenceBig(b, mb)
				m, parent := r.m[policy], r.thread
				cutBefore := parent.UserMessageCount - 2
				times := forkEach(b, m, parent.ID, manager.ForkOptions{BeforeUserMessage: &cutBefore}, func(child manager.Thread) error {
					if child.BaseID == "" {
						return fmt.Errorf("fork %s is a copy, want a reference fork", child.ID)
					}
					return nil
				})
				reportP50(b, times)
				b.ReportMetric(float64(parent.UserMessageCount), "inherited-msgs")
			})
		}
	}
	// The floor of a durable fork: a new file holding a meta line, the
	// file and its directory fsynced (what sync=always adds to a fork).
	b.Run("floor/create-synced", func(b *testing.B) {
		dir := b.TempDir()
		meta := forkMeta(b, manager.Thread{ID: "019b0000-0000-7000-8000-000000000002"})
		var times []time.Duration
		for i := 0; b.Loop(); i++ {
			start := time.Now()
			if err := createSynced(dir, fmt.Sprintf("fork-%d.jsonl", i), meta); err != nil {
				b.Fatal(err)
			}
			times = append(times, time.Since(start))
		}
		reportP50(b, times)
	})
}

// BenchmarkForkAfterPause is what limits the fork goal against Codex
// (BENCHMARKS.md): BenchmarkReferenceFork's fork, each one timed after the
// process sat idle for BENCH_PAUSE_S seconds (untimed), beside the same
// forks back to back in the same run; and the floor of a durable fork,
// a new fsynced one-line file, after the same pause and without one. In
// bench-codex every spool sample follows seconds of Codex's work. It runs
// only when BENCH_PAUSE_S is set (each iteration waits that long).
func BenchmarkForkAfterPause(b *testing.B) {
	if os.Getenv("BENCH_PAUSE_S") == "" {
		b.Skip("set BENCH_PAUSE_S to the idle seconds before each fork (each iteration waits them)")
	}
	pause := time.Duration(envInt(b, "BENCH_PAUSE_S", 3)) * time.Second
	mb := envInts(b, "BENCH_REF_MB", []int{100})[0]
	for _, wait := range []time.Duration{0, pause} {
		for _, policy := range []rolloutfs.SyncPolicy{rolloutfs.SyncAlways, rolloutfs.SyncNone} {
			b.Run(fmt.Sprintf("sync=%s/%dMiB/pause=%s", policy, mb, wait), func(b *testing.B) {
				r := referenceBig(b, mb)
				m, parent := r.m[policy], r.thread
				cutBefore := parent.UserMessageCount - 2
				var times []time.Duration
				for b.Loop() {
					b.StopTimer()
					time.Sleep(wait)
					b.StartTimer()
					start := time.Now()
					child, err := m.Fork(b.Context(), parent.ID, manager.ForkOptions{BeforeUserMessage: &cutBefore})
					times = append(times, time.Since(start))
					if err != nil {
						b.Fatal(err)
					}
					b.StopTimer()
					if err := m.Delete(b.Context(), child.ID); err != nil {
						b.Fatal(err)
					}
					b.StartTimer()
				}
				reportP50(b, times)
			})
		}
		b.Run(fmt.Sprintf("floor/create-synced/pause=%s", wait), func(b *testing.B) {
			dir := b.TempDir()
			meta := forkMeta(b, manager.Thread{ID: "019b0000-0000-7000-8000-000000000002"})
			var times []time.Duration
			for i := 0; b.Loop(); i++ {
				b.StopTimer()
				time.Sleep(wait)
				b.StartTimer()
				start := time.Now()
				if err := createSynced(dir, fmt.Sprintf("fork-%d.jsonl", i), meta); err != nil {
					b.Fatal(err)
				}
				times = append(times, time.Since(start))
			}
			reportP50(b, times)
		})
	}
}

// createSynced writes data to a new file dir/name and fsyncs the file
// and dir.
func createSynced(dir, name string, data []byte) error {
	f, err := os.OpenFile(filepath.Join(dir, name), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// BenchmarkReferenceChain is figure 8b: read the last turn of a thread 10
// reference forks deep (each a whole fork of the one before, so the turn
// is the first thread's, found through the chain) against reading the
// same turn from the first thread's plain file.
func BenchmarkReferenceChain(b *testing.B) {
	ctx := context.Background()
	mb := envInts(b, "BENCH_REF_MB", []int{100})[0]
	r := referenceBig(b, mb)
	m, parent := r.m[rolloutfs.SyncNone], r.thread
	deepest := parent.ID
	var chain []string
	for range 10 {
		child, err := m.Fork(ctx, deepest, manager.ForkOptions{})
		if err != nil {
			b.Fatal(err)
		}
		chain = append(chain, child.ID)
		deepest = child.ID
	}
	b.Cleanup(func() {
		for _, id := range slices.Backward(chain) {
			m.Delete(context.Background(), id)
		}
	})
	last := parent.UserMessageCount - 1
	read := func(b *testing.B, id string) {
		rc, err := m.ReadTurn(ctx, id, last)
		if err != nil {
			b.Fatal(err)
		}
		n, err := io.Copy(io.Discard, rc)
		rc.Close()
		if err != nil || n == 0 {
			b.Fatalf("read the last turn of %s: %d bytes, %v", id, n, err)
		}
		b.SetBytes(n)
	}
	b.Run("plain", func(b *testing.B) {
		for b.Loop() {
			read(b, parent.ID)
		}
	})
	b.Run("depth=10", func(b *testing.B) {
		for b.Loop() {
			read(b, deepest)
		}
	})
}

package bench

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/spoolhq/spool/manager"
	"github.com/spoolhq/spool/rollout"
	"github.com/spoolhq/spool/rolloutfs"
	"github.com/spoolhq/spool/store"
)

// gatedFS is a local root whose directory listings wait until ctx ends:
// a background reconcile never gets past its first directory, so a cold
// start measures only what serving needs (the lock, the index, one page).
type gatedFS struct{ rolloutfs.Local }

func (g gatedFS) ReadDir(ctx context.Context, dir string) ([]rolloutfs.DirEntry, error) {
	<-ctx.Done()
	return nil, ctx.Err()
}

// BenchmarkColdStart is issue #13's start-up figure: from nothing open to
// the first listed page of 50 threads, spoold's way (manager.Open with
// Background, then List), and on to the index being current (the open's
// reconcile ended, or was skipped).
//
// files=N opens a root of real files (hard links to the cached list
// corpus of BENCH_LIST_FILES threads, with a copy of its index; the
// folders aged an hour, as a home written earlier) with its reconcile
// really running beside the page: the walk stats every file. clean/files=N
// opens the same root after a clean close, when nothing changed: the
// open stats the folders only and skips the walk. rows=N opens the cached
// index of BENCH_LIST_ROWS rows with the reconcile held at its first
// directory (no files), so it measures the lock, the index open and one
// page. Each run closes the manager again (not timed); ms/current is
// from the start to the index being current.
func BenchmarkColdStart(b *testing.B) {
	ctx := context.Background()
	src, n := listFixture(b)
	root := agedCopy(b, src)
	o := manager.Options{Root: root, Sync: rolloutfs.SyncNone, Logger: quiet, Background: true}
	b.Run(fmt.Sprintf("files=%d", n), func(b *testing.B) {
		coldStarts(b, ctx, o, func() { dropCleanClose(b, root) })
	})
	b.Run(fmt.Sprintf("clean/files=%d", n), func(b *testing.B) {
		// The close after a reconcile that ended records a clean close.
		m, err := manager.Open(ctx, o)
		if err != nil {
			b.Fatal(err)
		}
		<-m.Reconciled()
		if err := m.Close(); err != nil {
			b.Fatal(err)
		}
		coldStarts(b, ctx, o, nil)
	})
	rows := envInt(b, "BENCH_LIST_ROWS", 100_000)
	b.Run(fmt.Sprintf("rows=%d", rows), func(b *testing.B) {
		st := rowsIndex(b, rows) // generated and migrated on first use
		cached := st.Path()
		st.Close()
		dir := b.TempDir()
		index := filepath.Join(dir, "spool.db")
		if err := os.Link(cached, index); err != nil {
			b.Skipf("hard link the cached index: %v", err)
		}
		empty := b.TempDir()
		coldStarts(b, ctx, manager.Options{Root: empty, IndexPath: index, Sync: rolloutfs.SyncNone, Logger: quiet,
			Background: true, FS: gatedFS{rolloutfs.Local{Root: empty}}}, nil)
	})
}

// coldStarts times Open and the first page (ms/start) and, unless the
// reconcile is gated, the wait for the index to be current (ms/current).
// before, when set, runs untimed before each start.
func coldStarts(b *testing.B, ctx context.Context, o manager.Options, before func()) {
	_, gated := o.FS.(gatedFS)
	var toPage, toCurrent time.Duration
	for b.Loop() {
		if before != nil {
			b.StopTimer()
			before()
			b.StartTimer()
		}
		start := time.Now()
		m, err := manager.Open(ctx, o)
		if err != nil {
			b.Fatal(err)
		}
		page, err := m.List(ctx, store.ListOptions{Limit: 50})
		if err != nil || len(page.Threads) != 50 {
			b.Fatalf("first page: %d threads, %v", len(page.Threads), err)
		}
		toPage += time.Since(start)
		if !gated {
			<-m.Reconciled()
			toCurrent += time.Since(start)
		}
		b.StopTimer()
		if err := m.Close(); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
	b.ReportMetric(float64(toPage.Microseconds())/1e3/float64(b.N), "ms/start")
	if !gated {
		b.ReportMetric(float64(toCurrent.Microseconds())/1e3/float64(b.N), "ms/current")
	}
}

// agedCopy returns a root of hard links to src's rollouts with a copy of
// src's index, opened once, its folders' mtimes an hour back: the cache is never
// written, and a clean close may be recorded (a folder changed within a
// second of a walk is not trusted).
func agedCopy(b *testing.B, src string) string {
	root := linkedRoot(b, src)
	data, err := os.ReadFile(filepath.Join(src, manager.IndexFile))
	if err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, manager.IndexFile), data, 0o600); err != nil {
		b.Fatal(err)
	}
	old := time.Now().Add(-time.Hour)
	err = filepath.WalkDir(filepath.Join(root, rollout.SessionsDir), func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.IsDir() {
			return err
		}
		return os.Chtimes(p, old, old)
	})
	if err != nil {
		b.Fatal(err)
	}
	// Bring the copied index up to this build's schema untimed: a
	// migration may ask for one full rescan.
	m, err := manager.Open(context.Background(), manager.Options{Root: root, Sync: rolloutfs.SyncNone, Logger: quiet})
	if err != nil {
		b.Fatal(err)
	}
	if err := m.Close(); err != nil {
		b.Fatal(err)
	}
	return root
}

// dropCleanClose removes the record of a clean close from root's index
// (index_state key clean_close, docs/SCHEMA.md), so the next open walks.
func dropCleanClose(b *testing.B, root string) {
	st, err := store.Open(context.Background(), filepath.Join(root, manager.IndexFile))
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	if _, _, err := st.TakeState(context.Background(), "clean_close"); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkWatchLatency is issue #13's watch figure: the delay from
// another process writing a new rollout into the root of a running,
// watching manager (as Codex creates a thread) to the manager listing it,
// observed through Options.OnSync. The root is a fresh link of the list
// corpus, so the index holds BENCH_LIST_FILES threads.
func BenchmarkWatchLatency(b *testing.B) {
	ctx := context.Background()
	src, n := listFixture(b)
	b.Run(fmt.Sprintf("files=%d", n), func(b *testing.B) {
		root := linkedRoot(b, src)
		synced := make(chan struct{}, 1)
		m, err := manager.Open(ctx, manager.Options{Root: root, Sync: rolloutfs.SyncNone, Logger: quiet, Watch: true,
			OnSync: func(manager.SyncReport) {
				select {
				case synced <- struct{}{}:
				default:
				}
			}})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { m.Close() })
		var latencies []time.Duration
		for b.Loop() {
			id, rel := newRollout(b)
			if err := os.MkdirAll(filepath.Join(root, filepath.Dir(filepath.FromSlash(rel))), 0o700); err != nil {
				b.Fatal(err)
			}
			start := time.Now()
			if err := os.WriteFile(filepath.Join(root, filepath.FromSlash(rel)), rolloutBytes(b, id), 0o600); err != nil {
				b.Fatal(err)
			}
			for {
				if _, err := m.Get(ctx, id); err == nil {
					break
				}
				select {
				case <-synced:
				case <-time.After(30 * time.Second):
					b.Fatalf("thread %s not listed 30 s after its file was written", id)
				}
			}
			latencies = append(latencies, time.Since(start))
		}
		slices.Sort(latencies)
		for _, q := range []struct {
			unit string
			p    float64
		}{{"p50-ms", 0.50}, {"p99-ms", 0.99}, {"max-ms", 1}} {
			k := min(int(q.p*float64(len(latencies))), len(latencies)-1)
			b.ReportMetric(float64(latencies[k].Microseconds())/1e3, q.unit)
		}
	})
}

// newRollout returns a new thread id and the path of its rollout, with its
// date folder created (Codex creates the folder, then the file).
func newRollout(b *testing.B) (id, rel string) {
	uid, err := uuid.NewV7()
	if err != nil {
		b.Fatal(err)
	}
	now := time.Now()
	rel, err = rollout.SessionPath(rollout.FileName(now, uid.String()))
	if err != nil {
		b.Fatal(err)
	}
	return uid.String(), rel
}

// rolloutBytes is a one-prompt rollout of thread id.
func rolloutBytes(b *testing.B, id string) []byte {
	ts := rollout.FormatTimestamp(time.Now())
	meta, err := rollout.NewSessionMetaLine(ts, rollout.MetaPayload{SessionMeta: rollout.SessionMeta{
		ID: id, Timestamp: ts, Cwd: "/bench", Originator: "codex_cli_rs", Source: "cli", ModelProvider: "openai"}})
	if err != nil {
		b.Fatal(err)
	}
	prompt, err := rollout.EncodeItem(rollout.Item{Type: rollout.TypeResponseItem,
		Payload: []byte(`{"type":"message","role":"user","content":[{"type":"input_text","text":"benchmark prompt"}]}`)}, time.Now())
	if err != nil {
		b.Fatal(err)
	}
	return append(meta, prompt...)
}

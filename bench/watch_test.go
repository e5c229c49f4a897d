package bench

import (
	"context"
	"fmt"
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
// Background, then List). files=N opens the cached, indexed corpus of the
// list figure with its reconcile really running beside the page; rows=N
// opens the cached index of BENCH_LIST_ROWS rows with the reconcile held
// at its first directory (no corpus of that many files is generated), so
// it measures the lock, the index open and one page. Each run closes the
// manager again (not timed).
func BenchmarkColdStart(b *testing.B) {
	ctx := context.Background()
	root, n := listFixture(b)
	b.Run(fmt.Sprintf("files=%d", n), func(b *testing.B) {
		coldStarts(b, ctx, manager.Options{Root: root, Sync: rolloutfs.SyncNone, Logger: quiet, Background: true})
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
			Background: true, FS: gatedFS{rolloutfs.Local{Root: empty}}})
	})
}

func coldStarts(b *testing.B, ctx context.Context, o manager.Options) {
	var total time.Duration
	for b.Loop() {
		start := time.Now()
		m, err := manager.Open(ctx, o)
		if err != nil {
			b.Fatal(err)
		}
		page, err := m.List(ctx, store.ListOptions{Limit: 50})
		if err != nil || len(page.Threads) != 50 {
			b.Fatalf("first page: %d threads, %v", len(page.Threads), err)
		}
		total += time.Since(start)
		b.StopTimer()
		if err := m.Close(); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
	b.ReportMetric(float64(total.Microseconds())/1e3/float64(b.N), "ms/start")
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

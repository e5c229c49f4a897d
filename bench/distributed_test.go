//go:build distributed

package bench

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/spoolhq/spool/internal/disttest"
	"github.com/spoolhq/spool/manager"
	"github.com/spoolhq/spool/pgstore"
	"github.com/spoolhq/spool/rollout"
	"github.com/spoolhq/spool/rolloutfs"
)

// BenchmarkDistributedAppend compares, in one run, 64 writers appending
// one item per call (each to its own thread) through the local backend at
// sync=batch and through PostgreSQL as three nodes (three pgstore.Stores,
// each with its own pool and batcher, 64 writers spread over them). Every
// node, PostgreSQL and the load share this machine's cores. Reports
// appends/s; the ratio is distributed/local (goal ≥ 0.5, #17).
func BenchmarkDistributedAppend(b *testing.B) {
	ctx := context.Background()
	payload := []byte(`{"type":"message","role":"assistant","content":[{"type":"output_text","text":"` +
		string(bytes.Repeat([]byte("appended text "), 24)) + `"}]}`)
	item := rollout.Item{Type: rollout.TypeResponseItem, Payload: payload}
	const writers = 64
	run := func(b *testing.B, appendOne func(w int) error) {
		var next atomic.Int64
		var wg sync.WaitGroup
		b.ResetTimer()
		for w := range writers {
			wg.Go(func() {
				for next.Add(1) <= int64(b.N) {
					if err := appendOne(w); err != nil {
						b.Error(err)
						return
					}
				}
			})
		}
		wg.Wait()
		b.StopTimer()
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "appends/s")
	}
	b.Run("backend=local-sync-batch", func(b *testing.B) {
		m := openManager(b, b.TempDir(), rolloutfs.SyncBatch)
		ids := make([]string, writers)
		for i := range ids {
			t, err := m.Start(ctx, manager.StartOptions{Cwd: "/bench", Source: "cli"})
			if err != nil {
				b.Fatal(err)
			}
			ids[i] = t.ID
		}
		items := []rollout.Item{item}
		run(b, func(w int) error {
			_, err := m.Append(ctx, ids[w], items)
			return err
		})
	})
	b.Run("backend=postgres-3-nodes", func(b *testing.B) {
		dsn := disttest.DSN(b)
		nodes := make([]*pgstore.Store, 3)
		for i := range nodes {
			s, err := pgstore.Open(ctx, dsn, pgstore.Options{})
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(s.Close)
			nodes[i] = s
		}
		ids := make([]string, writers)
		for i := range ids {
			ids[i] = uuid.Must(uuid.NewV7()).String()
			meta := fmt.Appendf(nil, `{"timestamp":"2026-11-25T00:00:00.000Z","type":"session_meta","payload":{"id":%q}}`+"\n", ids[i])
			if _, err := nodes[0].Create(ctx, pgstore.NewThread{ID: ids[i], Lines: meta}); err != nil {
				b.Fatal(err)
			}
		}
		run(b, func(w int) error {
			line, err := rollout.EncodeItem(item, time.Now())
			if err != nil {
				return err
			}
			_, err = nodes[w%len(nodes)].Append(ctx, ids[w], line, -1)
			return err
		})
	})
}

// BenchmarkDistributedList is a list page of the newest 50 threads through
// pgstore at BENCH_PG_THREADS threads (default 1,000,000; goal p50 ≤ 2 ms,
// #17). The rows are generated inside PostgreSQL.
func BenchmarkDistributedList(b *testing.B) {
	ctx := context.Background()
	n := envInt(b, "BENCH_PG_THREADS", 1_000_000)
	dsn := disttest.DSN(b)
	s, err := pgstore.Open(ctx, dsn, pgstore.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(s.Close)
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, `INSERT INTO threads (id, created_at, updated_at, size, preview)
		SELECT 'bench-' || i, 1700000000000 + i, 1700000000000 + i * 7 % 1000003, 100, 'prompt ' || i
		FROM generate_series(1, $1) AS i`, n); err != nil {
		b.Fatal(err)
	}
	if _, err := conn.Exec(ctx, `ANALYZE threads`); err != nil {
		b.Fatal(err)
	}
	b.Run(fmt.Sprintf("threads=%d", n), func(b *testing.B) {
		latencies := make([]time.Duration, 0, b.N)
		var after *pgstore.Thread
		for b.Loop() {
			start := time.Now()
			page, err := s.List(ctx, pgstore.ListOptions{Limit: 50, After: after, Archived: new(false)})
			if err != nil {
				b.Fatal(err)
			}
			latencies = append(latencies, time.Since(start))
			if len(page) != 50 {
				b.Fatalf("page of %d", len(page))
			}
			after = &page[len(page)-1]
			if len(latencies)%100 == 0 {
				after = nil // back to the first page now and then
			}
		}
		reportQuantiles(b, latencies)
	})
}

// BenchmarkDistributedFork forks before the last user message of parents
// of 1 MB and BENCH_PG_FORK_MB (default 100) MB: the cost must not grow
// with the parent (a reference fork, #17).
func BenchmarkDistributedFork(b *testing.B) {
	ctx := context.Background()
	dsn := disttest.DSN(b)
	s, err := pgstore.Open(ctx, dsn, pgstore.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(s.Close)
	for _, mb := range []int{1, envInt(b, "BENCH_PG_FORK_MB", 100)} {
		parent := uuid.Must(uuid.NewV7()).String()
		meta := fmt.Appendf(nil, `{"timestamp":"2026-11-25T00:00:00.000Z","type":"session_meta","payload":{"id":%q}}`+"\n", parent)
		if _, err := s.Create(ctx, pgstore.NewThread{ID: parent, Lines: meta}); err != nil {
			b.Fatal(err)
		}
		// 1 MB appends of one user message and filler answers each.
		filler := bytes.Repeat(fmt.Appendf(nil, `{"timestamp":"2026-11-25T00:00:02.000Z","type":"event_msg","payload":{"type":"agent_message","message":"%s"}}`+"\n", bytes.Repeat([]byte("x"), 1000)), 1000)
		for i := range mb {
			user := fmt.Appendf(nil, `{"timestamp":"2026-11-25T00:00:01.000Z","type":"response_item","payload":{"type":"message","role":"user","content":[{"type":"input_text","text":"prompt %d"}]}}`+"\n", i)
			if _, err := s.Append(ctx, parent, append(user, filler...), -1); err != nil {
				b.Fatal(err)
			}
		}
		b.Run(fmt.Sprintf("parent=%dMB", mb), func(b *testing.B) {
			latencies := make([]time.Duration, 0, b.N)
			for b.Loop() {
				child := uuid.Must(uuid.NewV7()).String()
				meta := fmt.Appendf(nil, `{"timestamp":"2026-11-25T00:00:00.000Z","type":"session_meta","payload":{"id":%q}}`+"\n", child)
				start := time.Now()
				if _, err := s.Fork(ctx, pgstore.Fork{ParentID: parent, ChildID: child, BeforeUserMessage: mb - 1, Lines: meta}); err != nil {
					b.Fatal(err)
				}
				latencies = append(latencies, time.Since(start))
			}
			reportQuantiles(b, latencies)
		})
	}
}

// reportQuantiles reports p50 and p99 of latencies in µs.
func reportQuantiles(b *testing.B, latencies []time.Duration) {
	slices.Sort(latencies)
	for _, q := range []struct {
		unit string
		at   float64
	}{{"p50-µs", 0.50}, {"p99-µs", 0.99}} {
		k := min(int(q.at*float64(len(latencies))), len(latencies)-1)
		b.ReportMetric(float64(latencies[k].Nanoseconds())/1e3, q.unit)
	}
}

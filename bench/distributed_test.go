//go:build distributed

package bench

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/spoolhq/spool/client"
	"github.com/spoolhq/spool/internal/disttest"
	"github.com/spoolhq/spool/migrations"
	"github.com/spoolhq/spool/pgstore"
	"github.com/spoolhq/spool/rollout"
	"github.com/spoolhq/spool/rolloutfs"
)

// BenchmarkDistributedAppend measures, in one run, 64 writers appending
// one item per call (each to its own thread) through four targets, in
// interleaved repetitions (BENCH_PG_APPEND_REPS, default 5; b.N appends
// each; the order reversed every other repetition):
//
//   - local: the local backend in process (manager.Append) at sync=batch;
//   - local-http: one spoold -root -sync batch over loopback HTTP;
//   - pg3: three pgstore.Stores in process, each with its own pool and
//     batcher, the writers spread over them;
//   - pg3-http: three real spoold -pg -s3 processes over loopback HTTP on
//     one database and bucket, the writers spread over them (#17 "across
//     3 nodes").
//
// Every node, PostgreSQL, the object store and the writers share this
// machine's cores. It reports each target's median appends/s, the ratios
// of the distributed targets to the local ones (goal ≥ 0.5, #17; the
// median of the ratios within each repetition, which the load's drift
// from one repetition to the next disturbs least), the median 1-minute
// load average, where the CPU went per 1000 appends (this process: the
// writers, and the stores of the in-process targets; the spoold nodes;
// PostgreSQL's processes) and, for the PostgreSQL targets, the
// transactions per 1000 appends and the WAL bytes per append. Each
// repetition is logged. BENCH_PG_APPEND_TARGETS (names, comma-separated)
// runs only some targets, to profile one.
func BenchmarkDistributedAppend(b *testing.B) {
	ctx := context.Background()
	payload := []byte(`{"type":"message","role":"assistant","content":[{"type":"output_text","text":"` +
		string(bytes.Repeat([]byte("appended text "), 24)) + `"}]}`)
	item := rollout.Item{Type: rollout.TypeResponseItem, Payload: payload}
	httpItem := client.Item{Type: rollout.TypeResponseItem, Payload: payload}
	const writers = 64
	reps := envInt(b, "BENCH_PG_APPEND_REPS", 5)
	meter := newPGMeter(b)
	bin := buildSpoold(b)

	var targets []appendTarget
	{ // local
		m := openManager(b, b.TempDir(), rolloutfs.SyncBatch)
		ids := startThreads(b, m, writers)
		items := []rollout.Item{item}
		targets = append(targets, appendTarget{name: "local", appendOne: func(w int) error {
			_, err := m.Append(ctx, ids[w], items)
			return err
		}})
	}
	{ // local-http
		n := startSpoold(b, bin, nil, "-root", b.TempDir(), "-sync", "batch", "-watch=false")
		ids := createHTTP(b, []*spooldNode{n}, writers)
		targets = append(targets, appendTarget{name: "local-http", nodes: []int{n.pid}, appendOne: func(w int) error {
			_, err := n.client.Append(ctx, ids[w], httpItem)
			return err
		}})
	}
	{ // pg3
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
		targets = append(targets, appendTarget{name: "pg3", pg: true, appendOne: func(w int) error {
			line, err := rollout.EncodeItem(item, time.Now())
			if err != nil {
				return err
			}
			_, err = nodes[w%len(nodes)].Append(ctx, ids[w], line, -1)
			return err
		}})
	}
	{ // pg3-http
		dsn, s3 := disttest.DSN(b), disttest.S3Config(b)
		env := []string{"SPOOL_S3_ACCESS_KEY=" + s3.AccessKey, "SPOOL_S3_SECRET_KEY=" + s3.SecretKey}
		nodes := make([]*spooldNode, 3)
		pids := make([]int, len(nodes))
		for i := range nodes {
			nodes[i] = startSpoold(b, bin, env, "-pg", dsn, "-s3", s3.Endpoint, "-s3-bucket", s3.Bucket,
				"-segment-cache", filepath.Join(b.TempDir(), "segments"))
			pids[i] = nodes[i].pid
		}
		ids := createHTTP(b, nodes, writers)
		targets = append(targets, appendTarget{name: "pg3-http", pg: true, nodes: pids, appendOne: func(w int) error {
			_, err := nodes[w%len(nodes)].client.Append(ctx, ids[w], httpItem)
			return err
		}})
	}

	if only := os.Getenv("BENCH_PG_APPEND_TARGETS"); only != "" {
		targets = slices.DeleteFunc(targets, func(t appendTarget) bool { return !slices.Contains(strings.Split(only, ","), t.name) })
	}
	b.Run("interleaved", func(b *testing.B) {
		phases := make(map[string][]appendPhase)
		var loads []float64
		for rep := range reps {
			order := slices.Clone(targets)
			if rep%2 == 1 {
				slices.Reverse(order)
			}
			var line strings.Builder
			for _, t := range order {
				p := meter.measure(ctx, b, t, writers, b.N)
				phases[t.name] = append(phases[t.name], p)
				loads = append(loads, p.load)
				fmt.Fprintf(&line, "%s %.0f, ", t.name, p.rate)
			}
			if b.N > 1 {
				b.Logf("rep %d: %sappends/s; load %.2f", rep, line.String(), loads[len(loads)-1])
			}
		}
		rate := func(name string) float64 {
			return medianOf(phases[name], func(p appendPhase) float64 { return p.rate })
		}
		for _, t := range targets {
			b.ReportMetric(rate(t.name), t.name+"-appends/s")
		}
		for _, r := range [][2]string{{"pg3", "local"}, {"pg3-http", "local"}, {"pg3-http", "local-http"}} {
			if len(phases[r[0]]) == 0 || len(phases[r[1]]) == 0 {
				continue
			}
			ratios := make([]float64, reps)
			for i := range ratios {
				ratios[i] = phases[r[0]][i].rate / phases[r[1]][i].rate
			}
			b.ReportMetric(median(ratios), r[0]+"/"+r[1])
		}
		b.ReportMetric(median(loads), "load1")
		for _, t := range targets {
			ps := phases[t.name]
			if len(ps) == 0 {
				continue
			}
			b.ReportMetric(medianOf(ps, func(p appendPhase) float64 { return p.selfCPU }), t.name+"-this-cpu-ms/kapp")
			if len(t.nodes) > 0 {
				b.ReportMetric(medianOf(ps, func(p appendPhase) float64 { return p.nodeCPU }), t.name+"-node-cpu-ms/kapp")
			}
			if t.pg {
				b.ReportMetric(medianOf(ps, func(p appendPhase) float64 { return p.pgCPU }), t.name+"-pg-cpu-ms/kapp")
				b.ReportMetric(medianOf(ps, func(p appendPhase) float64 { return p.xacts }), t.name+"-xacts/kapp")
				b.ReportMetric(medianOf(ps, func(p appendPhase) float64 { return p.walBytes }), t.name+"-WAL-B/app")
			}
		}
		b.ReportMetric(0, "ns/op") // the interleaved phases' total says nothing
	})
}

// appendTarget is one way of appending in BenchmarkDistributedAppend.
type appendTarget struct {
	name      string
	appendOne func(w int) error // writer w appends one item to its thread
	nodes     []int             // server processes (none: in this process)
	pg        bool              // commits in PostgreSQL
}

// appendPhase is one timed phase of one target: its rate, the load
// average at its end, CPU milliseconds per 1000 appends (this process,
// the target's nodes, PostgreSQL's processes), PostgreSQL transactions
// per 1000 appends and WAL bytes per append.
type appendPhase struct {
	rate, load              float64
	selfCPU, nodeCPU, pgCPU float64
	xacts, walBytes         float64
}

// pgMeter reads what a phase cost PostgreSQL: its processes' CPU time,
// transaction ids and WAL position (cluster-wide; the cluster is private
// to the run).
type pgMeter struct {
	conn       *pgx.Conn
	postmaster int
}

func newPGMeter(b *testing.B) *pgMeter {
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, disttest.AdminDSN(b))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { conn.Close(ctx) })
	var backend int
	if err := conn.QueryRow(ctx, `SELECT pg_backend_pid()`).Scan(&backend); err != nil {
		b.Fatal(err)
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", backend))
	if err != nil {
		b.Fatalf("PostgreSQL's processes must be on this machine: %v", err)
	}
	_, rest, _ := bytes.Cut(stat, []byte(") "))
	f := strings.Fields(string(rest))
	postmaster, err := strconv.Atoi(f[1])
	if err != nil {
		b.Fatalf("postmaster of %d: %v", backend, err)
	}
	return &pgMeter{conn: conn, postmaster: postmaster}
}

// counters returns the next transaction id and the WAL position.
func (m *pgMeter) counters(ctx context.Context, b *testing.B) (xid, wal int64) {
	if err := m.conn.QueryRow(ctx, `SELECT pg_snapshot_xmax(pg_current_snapshot())::text::bigint,
		pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::bigint`).Scan(&xid, &wal); err != nil {
		b.Fatal(err)
	}
	return xid, wal
}

// measure times n appends of t by writers concurrent writers.
func (m *pgMeter) measure(ctx context.Context, b *testing.B, t appendTarget, writers, n int) appendPhase {
	xid0, wal0 := m.counters(ctx, b)
	self0, nodes0, pg0 := selfCPU(), cpuTicks(t.nodes, nil), cpuTicks([]int{m.postmaster}, []int{m.postmaster})
	var next atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for w := range writers {
		wg.Go(func() {
			for next.Add(1) <= int64(n) {
				if err := t.appendOne(w); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	self1, nodes1, pg1 := selfCPU(), cpuTicks(t.nodes, nil), cpuTicks([]int{m.postmaster}, []int{m.postmaster})
	xid1, wal1 := m.counters(ctx, b)
	perK := 1000 / float64(n)
	ms := func(ticks int64) float64 { return float64(time.Duration(ticks)*clockTick) / 1e6 * perK }
	return appendPhase{
		rate:     float64(n) / elapsed.Seconds(),
		load:     loadAverage(),
		selfCPU:  float64(self1-self0) / 1e6 * perK,
		nodeCPU:  ms(nodes1 - nodes0),
		pgCPU:    ms(pg1 - pg0),
		xacts:    float64(xid1-xid0) * perK,
		walBytes: float64(wal1-wal0) / float64(n),
	}
}

// createHTTP creates n threads through nodes (round robin) and returns
// their ids.
func createHTTP(b *testing.B, nodes []*spooldNode, n int) []string {
	ids := make([]string, n)
	for i := range ids {
		t, err := nodes[i%len(nodes)].client.Create(context.Background(), client.CreateOptions{Cwd: "/bench", Source: "cli"})
		if err != nil {
			b.Fatal(err)
		}
		ids[i] = t.ID
	}
	return ids
}

// medianOf returns the median of f over ps.
func medianOf[T any](ps []T, f func(T) float64) float64 {
	vs := make([]float64, len(ps))
	for i, p := range ps {
		vs[i] = f(p)
	}
	return median(vs)
}

// median returns the median of vs (0 for none).
func median(vs []float64) float64 {
	if len(vs) == 0 {
		return 0
	}
	vs = slices.Clone(vs)
	slices.Sort(vs)
	if len(vs)%2 == 1 {
		return vs[len(vs)/2]
	}
	return (vs[len(vs)/2-1] + vs[len(vs)/2]) / 2
}

// BenchmarkDistributedList is a list page of the newest 50 threads at
// BENCH_PG_THREADS threads (default 1,000,000; goal p50 ≤ 2 ms, #17),
// through pgstore in process (via=pgstore) and through a spoold -pg over
// loopback HTTP (via=http, GET /v1/threads?limit=50). Pages follow the
// cursor and go back to the first page every 100. The rows are generated
// inside PostgreSQL (generate_series) into a database named for the count
// and the schema, kept between runs (listDatabase).
func BenchmarkDistributedList(b *testing.B) {
	ctx := context.Background()
	n := envInt(b, "BENCH_PG_THREADS", 1_000_000)
	dsn := listDatabase(b, n)
	s, err := pgstore.Open(ctx, dsn, pgstore.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(s.Close)
	b.Run(fmt.Sprintf("threads=%d/via=pgstore", n), func(b *testing.B) {
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
		b.ReportMetric(loadAverage(), "load1")
	})
	node := startSpoold(b, buildSpoold(b), nil, "-pg", dsn)
	b.Run(fmt.Sprintf("threads=%d/via=http", n), func(b *testing.B) {
		latencies := make([]time.Duration, 0, b.N)
		cursor := ""
		for b.Loop() {
			start := time.Now()
			page, err := node.client.List(ctx, client.ListOptions{Limit: 50, Cursor: cursor})
			if err != nil {
				b.Fatal(err)
			}
			latencies = append(latencies, time.Since(start))
			if len(page.Threads) != 50 {
				b.Fatalf("page of %d", len(page.Threads))
			}
			cursor = page.NextCursor
			if len(latencies)%100 == 0 {
				cursor = "" // back to the first page now and then
			}
		}
		reportQuantiles(b, latencies)
		b.ReportMetric(loadAverage(), "load1")
	})
}

// listDatabase returns the URL of a database of n generated threads on
// SPOOL_TEST_PG, generating it unless a complete one is there from an
// earlier run: its name holds n and a hash of the schema's migrations, and
// its comment says it is complete once the rows, their indexes and
// statistics are committed. scripts/test-distributed.sh keeps the
// benchmarks' cluster between runs, so a rerun does not regenerate. The
// benchmarks only read it.
func listDatabase(b *testing.B, n int) string {
	ctx := context.Background()
	admin := disttest.AdminDSN(b)
	h := sha256.New()
	if err := fs.WalkDir(migrations.FS, ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := fs.ReadFile(migrations.FS, path)
		fmt.Fprintf(h, "%s %d\n", path, len(data))
		h.Write(data)
		return err
	}); err != nil {
		b.Fatal(err)
	}
	name := fmt.Sprintf("spool_bench_list_%d_%x", n, h.Sum(nil)[:4])
	u, err := url.Parse(admin)
	if err != nil {
		b.Fatal(err)
	}
	u.Path = "/" + name
	dsn := u.String()

	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close(ctx)
	const complete = "spool bench: complete"
	var comment *string
	err = conn.QueryRow(ctx, `SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = $1`, name).Scan(&comment)
	switch {
	case err == nil && comment != nil && *comment == complete:
		b.Logf("list: reusing database %s", name)
		return dsn
	case err == nil: // an interrupted generation
		if _, err := conn.Exec(ctx, "DROP DATABASE "+name+" WITH (FORCE)"); err != nil {
			b.Fatal(err)
		}
	case !errors.Is(err, pgx.ErrNoRows):
		b.Fatal(err)
	}
	start := time.Now()
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		b.Fatal(err)
	}
	s, err := pgstore.Open(ctx, dsn, pgstore.Options{}) // the schema
	if err != nil {
		b.Fatal(err)
	}
	s.Close()
	gen, err := pgx.Connect(ctx, dsn)
	if err != nil {
		b.Fatal(err)
	}
	defer gen.Close(ctx)
	// Ids are UUIDs (v4 from md5), as spoold's; the order of updates is a
	// permutation of the creation order.
	for _, q := range []string{
		`INSERT INTO threads (id, created_at, updated_at, size, preview)
			SELECT md5(i::text)::uuid::text, 1700000000000 + i, 1700000000000 + i * 7 % 1000003, 100, 'prompt ' || i
			FROM generate_series(1, ` + strconv.Itoa(n) + `) AS i`,
		`VACUUM (ANALYZE) threads`,
	} {
		if _, err := gen.Exec(ctx, q); err != nil {
			b.Fatal(err)
		}
	}
	if _, err := conn.Exec(ctx, "COMMENT ON DATABASE "+name+" IS '"+complete+"'"); err != nil {
		b.Fatal(err)
	}
	b.Logf("list: generated %d threads into %s in %s", n, name, time.Since(start).Round(time.Second))
	return dsn
}

// BenchmarkDistributedFork forks, through pgstore, before the last user
// message of two parents, of BENCH_PG_FORK_MB megabytes (default 10 and
// 100), one after the other in each iteration: the cost must not grow
// with the parent (a reference fork, #17). It reports p50 and p99 per
// parent and the ratio of the p50s (large / small).
func BenchmarkDistributedFork(b *testing.B) {
	ctx := context.Background()
	dsn := disttest.DSN(b)
	s, err := pgstore.Open(ctx, dsn, pgstore.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(s.Close)
	sizes := envInts(b, "BENCH_PG_FORK_MB", []int{10, 100})
	parents := make([]string, len(sizes))
	// 1 MB appends of one user message and filler answers each.
	filler := bytes.Repeat(fmt.Appendf(nil, `{"timestamp":"2026-11-25T00:00:02.000Z","type":"event_msg","payload":{"type":"agent_message","message":"%s"}}`+"\n", bytes.Repeat([]byte("x"), 1000)), 1000)
	for k, mb := range sizes {
		parents[k] = uuid.Must(uuid.NewV7()).String()
		meta := fmt.Appendf(nil, `{"timestamp":"2026-11-25T00:00:00.000Z","type":"session_meta","payload":{"id":%q}}`+"\n", parents[k])
		if _, err := s.Create(ctx, pgstore.NewThread{ID: parents[k], Lines: meta}); err != nil {
			b.Fatal(err)
		}
		for i := range mb {
			user := fmt.Appendf(nil, `{"timestamp":"2026-11-25T00:00:01.000Z","type":"response_item","payload":{"type":"message","role":"user","content":[{"type":"input_text","text":"prompt %d"}]}}`+"\n", i)
			if _, err := s.Append(ctx, parents[k], append(user, filler...), -1); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.Run("interleaved", func(b *testing.B) {
		latencies := make([][]time.Duration, len(sizes))
		for b.Loop() {
			for k, mb := range sizes {
				child := uuid.Must(uuid.NewV7()).String()
				meta := fmt.Appendf(nil, `{"timestamp":"2026-11-25T00:00:00.000Z","type":"session_meta","payload":{"id":%q}}`+"\n", child)
				start := time.Now()
				if _, err := s.Fork(ctx, pgstore.Fork{ParentID: parents[k], ChildID: child, BeforeUserMessage: mb - 1, Lines: meta}); err != nil {
					b.Fatal(err)
				}
				latencies[k] = append(latencies[k], time.Since(start))
			}
		}
		p50 := make([]time.Duration, len(sizes))
		for k, mb := range sizes {
			slices.Sort(latencies[k])
			p50[k] = latencies[k][len(latencies[k])/2]
			b.ReportMetric(float64(p50[k].Nanoseconds())/1e3, fmt.Sprintf("parent=%dMB-p50-µs", mb))
			b.ReportMetric(float64(latencies[k][min(len(latencies[k])*99/100, len(latencies[k])-1)].Nanoseconds())/1e3, fmt.Sprintf("parent=%dMB-p99-µs", mb))
		}
		b.ReportMetric(float64(p50[len(p50)-1])/float64(p50[0]), "p50-large/small")
		b.ReportMetric(loadAverage(), "load1")
		b.ReportMetric(0, "ns/op")
	})
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

package store

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// Benchmarks run on an index of N threads (3 user messages each), N from
// the environment variable BENCH_THREADS. The default, 100000, keeps runs
// short; the full size the design targets is 1000000:
//
//	BENCH_THREADS=1000000 go test -run '^$' -bench . -benchtime 2000x ./store/
//
// The generated index is cached in os.TempDir() as spool-bench-index-v3-<N>.db and
// reused by later runs; delete it to regenerate.

const benchMessagesPerThread = 3

func benchThreads(b *testing.B) int {
	n := 100_000
	if v := os.Getenv("BENCH_THREADS"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n < 1 {
			b.Fatalf("BENCH_THREADS=%q: want a positive integer", v)
		}
	}
	return n
}

// benchIndex opens the cached index of n threads, generating it first when
// it is missing.
func benchIndex(b *testing.B, n int) *Store {
	b.Helper()
	return openBenchIndex(b, cachedBenchIndex(b, n), n)
}

// cachedBenchIndex returns the path of the cached index of n threads,
// generating it first when it is missing.
func cachedBenchIndex(b *testing.B, n int) string {
	b.Helper()
	path := filepath.Join(os.TempDir(), fmt.Sprintf("spool-bench-index-v3-%d.db", n))
	if _, err := os.Stat(path); err == nil {
		return path
	}
	tmp := filepath.Join(b.TempDir(), "gen.db")
	if err := generateIndex(b.Context(), tmp, n); err != nil {
		b.Fatalf("generate index of %d threads: %v", n, err)
	}
	// Copy rather than rename: the temp dir may be on another device.
	part := path + ".part"
	copyFile(b, tmp, part)
	if err := os.Rename(part, path); err != nil {
		b.Fatal(err)
	}
	return path
}

// copyFile copies the file at src to dst.
func copyFile(b *testing.B, src, dst string) {
	b.Helper()
	data, err := os.ReadFile(src)
	if err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(dst, data, 0o644); err != nil {
		b.Fatal(err)
	}
}

// openBenchIndex opens the index of n threads at path, closed at the end
// of the benchmark.
func openBenchIndex(b *testing.B, path string, n int) *Store {
	b.Helper()
	ctx := b.Context()
	s, err := Open(ctx, path)
	if err != nil {
		b.Fatalf("open cached index %s (delete it to regenerate): %v", path, err)
	}
	b.Cleanup(func() { s.Close() })
	var count int
	if err := s.reader.GetContext(ctx, &count, `SELECT COUNT(*) FROM threads`); err != nil || count != n {
		b.Fatalf("cached index %s holds %d threads (%v), want %d; delete it", path, count, err, n)
	}
	return s
}

// benchRareEvery makes one thread in so many come from the source vscode
// and the model provider ollama, the others from cli and openai: a list
// filtered by a rare value.
const benchRareEvery = 200

// generateIndex writes n threads with direct inserts in one transaction:
// many threads share each timestamp, a tenth are archived, 64 working
// directories, every seventh thread a fork, a rare source and provider
// (benchRareEvery).
func generateIndex(ctx context.Context, path string, n int) error {
	s, err := Open(ctx, path)
	if err != nil {
		return err
	}
	defer s.Close()
	tx, err := s.writer.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	thread, err := tx.PrepareContext(ctx, `INSERT INTO threads (id, rollout_path, created_at, updated_at,
		cwd, source, model_provider, name, preview, archived, archived_at, parent_id, user_message_count)
		VALUES (?, ?, ?, ?, ?, ?, ?, '', ?, ?, ?, ?, ?)`)
	if err != nil {
		return err
	}
	message, err := tx.PrepareContext(ctx, insertUserMessage)
	if err != nil {
		return err
	}
	lineage, err := tx.PrepareContext(ctx, insertLineage)
	if err != nil {
		return err
	}
	const base = int64(1_767_225_600_000) // 2026-01-01
	for i := range n {
		id := fmt.Sprintf("%08d-0000-7000-8000-000000000000", i)
		created := base + int64(i/4)*1000 // four threads per timestamp
		updated := created + int64(i%97)*60_000
		archived := i%10 == 0
		var archivedAt int64
		if archived {
			archivedAt = updated
		}
		var parent any
		if i%7 == 6 {
			parent = fmt.Sprintf("%08d-0000-7000-8000-000000000000", i-1)
		}
		preview := fmt.Sprintf("task %d: refactor module %d", i, i%113)
		source, provider := "cli", "openai"
		if i%benchRareEvery == 0 {
			source, provider = "vscode", "ollama"
		}
		if _, err := thread.ExecContext(ctx, id, "sessions/"+id+".jsonl", created, updated,
			fmt.Sprintf("/home/user/project%02d", i%64), source, provider, preview, archived, archivedAt, parent,
			benchMessagesPerThread); err != nil {
			return err
		}
		for ord := range benchMessagesPerThread {
			text := fmt.Sprintf("message %d of task %d about module %d", ord, i, i%113)
			if _, err := message.ExecContext(ctx, id, ord, int64(4096+ord*2048), int64(3+ord*9), text, text, 0, ""); err != nil {
				return err
			}
		}
		if parent != nil {
			if _, err := lineage.ExecContext(ctx, id, parent, 1); err != nil {
				return err
			}
		}
	}
	if err := tx.Commit(); err != nil {
		return err
	}
	_, err = s.writer.ExecContext(ctx, "ANALYZE")
	return err
}

// BenchmarkListPage measures one page of 50 threads (ns/op is the time per
// page) at the start of the listing and deep inside it through a cursor.
func BenchmarkListPage(b *testing.B) {
	ctx := context.Background()
	n := benchThreads(b)
	s := benchIndex(b, n)

	// A cursor at the middle of the newest-first listing, as a client that
	// paged there would hold.
	var mid struct {
		UpdatedAt int64  `db:"updated_at"`
		ID        string `db:"id"`
	}
	if err := s.reader.GetContext(ctx, &mid, `SELECT updated_at, id FROM threads
		ORDER BY updated_at DESC, id DESC LIMIT 1 OFFSET ?`, n/2); err != nil {
		b.Fatal(err)
	}
	deep := cursor{Sort: SortUpdated, Value: mid.UpdatedAt, ID: mid.ID}.encode()
	no := false

	for _, bc := range []struct {
		name   string
		opts   ListOptions
		cached bool // pages come from the cache: nothing is written between them
	}{
		{"first", ListOptions{Limit: 50}, false},
		{"first-cached", ListOptions{Limit: 50}, true},
		{"deep", ListOptions{Limit: 50, Cursor: deep}, false},
		{"first-live", ListOptions{Limit: 50, Archived: &no}, false},
		{"first-cwd", ListOptions{Limit: 50, Cwd: "/home/user/project07"}, false},
		{"first-cwd-created", ListOptions{Limit: 50, Cwd: "/home/user/project07", SortBy: SortCreated}, false},
		{"first-created-asc", ListOptions{Limit: 50, SortBy: SortCreated, Ascending: true}, false},
		// A source or provider has no index in updated order (one cost
		// every append's index commit a quarter more): a value few
		// threads have walks threads_updated until the page fills, one
		// no thread has reads the whole home. In created order each has
		// its own (migration 00018), which appends never change.
		{"first-source-rare", ListOptions{Limit: 50, Source: "vscode"}, false},
		{"first-provider-rare", ListOptions{Limit: 50, ModelProvider: "ollama"}, false},
		{"first-source-common", ListOptions{Limit: 50, Source: "cli"}, false},
		{"first-source-absent", ListOptions{Limit: 50, Source: "exec"}, false},
		{"first-source-rare-created", ListOptions{Limit: 50, Source: "vscode", SortBy: SortCreated}, false},
		{"first-source-absent-created", ListOptions{Limit: 50, Source: "exec", SortBy: SortCreated}, false},
	} {
		b.Run(bc.name, func(b *testing.B) {
			for b.Loop() {
				if !bc.cached {
					s.pages.changed() // as a write would: the page is read from the index
				}
				page, err := s.List(ctx, bc.opts)
				if err != nil {
					b.Fatal(err)
				}
				want := 50
				switch bc.opts.Source + bc.opts.ModelProvider {
				case "vscode", "ollama":
					want = min(50, (n+benchRareEvery-1)/benchRareEvery)
				case "exec":
					want = 0
				}
				if len(page.Threads) != want {
					b.Fatalf("page of %d threads, want %d", len(page.Threads), want)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "pages/s")
		})
	}
}

// BenchmarkUserMessageLookup measures finding the byte offset of user
// message (thread, ordinal), the seek behind fork and "show turn k".
func BenchmarkUserMessageLookup(b *testing.B) {
	ctx := context.Background()
	n := benchThreads(b)
	s := benchIndex(b, n)
	rng := rand.New(rand.NewPCG(1, 2))
	ids := make([]string, 1024)
	for i := range ids {
		ids[i] = fmt.Sprintf("%08d-0000-7000-8000-000000000000", rng.IntN(n))
	}
	i := 0
	for b.Loop() {
		m, err := s.UserMessage(ctx, ids[i%len(ids)], i%benchMessagesPerThread)
		if err != nil {
			b.Fatal(err)
		}
		if m.Offset < 4096 {
			b.Fatalf("offset %d, want >= 4096", m.Offset)
		}
		i++
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "lookups/s")
}

// BenchmarkLongThread reads one thread of 20,000 counted user messages, each
// in a Codex turn of its own: the message of a turn id (what a read or fork
// by turn id looks up), the rows of the last turn's page (UserMessagesBetween,
// what GET .../turns?order=desc&limit=1 reads) and, for scale, every row
// (UserMessages, what such a page read before).
func BenchmarkLongThread(b *testing.B) {
	const n = 20000
	s := openTest(b)
	th := newThread("long", 1)
	th.UserMessageCount = n
	msgs := messages(0, n, "prompt")
	for i := range msgs {
		msgs[i].TurnID = fmt.Sprintf("turn-%05d", i)
	}
	mustInsert(b, s, Record{Thread: th, Messages: msgs})
	ctx := b.Context()
	rng := rand.New(rand.NewPCG(1, 2))
	b.Run("turn-id", func(b *testing.B) {
		for b.Loop() {
			k := rng.IntN(n)
			m, err := s.UserMessageOfTurn(ctx, "long", msgs[k].TurnID)
			if err != nil || m.Ordinal != k {
				b.Fatalf("turn %s: message %d, %v; want %d", msgs[k].TurnID, m.Ordinal, err, k)
			}
		}
	})
	b.Run("last-page", func(b *testing.B) {
		for b.Loop() {
			got, err := s.UserMessagesBetween(ctx, "long", n-1, n+1)
			if err != nil || len(got) != 1 {
				b.Fatalf("%d messages, %v; want 1", len(got), err)
			}
		}
	})
	b.Run("every-row", func(b *testing.B) {
		for b.Loop() {
			got, err := s.UserMessages(ctx, "long")
			if err != nil || len(got) != n {
				b.Fatalf("%d messages, %v; want %d", len(got), err, n)
			}
		}
	})
}

// BenchmarkAdvanceBatch is the index commit of 64 appends to 64 recently
// updated threads, one AdvanceAll (ns/op is one commit), on a copy of the
// cached index: as it is, and with two more indexes that hold updated_at,
// (source, updated_at, id) and (model_provider, updated_at, id), which
// would serve lists by a rare source or provider in order. Every append
// moves its thread's updated_at, so each such index is updated in this
// commit: what keeps them out of the schema (BENCHMARKS.md).
func BenchmarkAdvanceBatch(b *testing.B) {
	n := benchThreads(b)
	src := cachedBenchIndex(b, n)
	for _, extra := range []bool{false, true} {
		b.Run(fmt.Sprintf("source-provider-indexes=%t", extra), func(b *testing.B) {
			path := filepath.Join(b.TempDir(), "index.db")
			copyFile(b, src, path)
			s := openBenchIndex(b, path, n)
			if extra {
				if _, err := s.writer.ExecContext(b.Context(), `CREATE INDEX bench_source_updated ON threads (source, updated_at, id);
					CREATE INDEX bench_model_provider_updated ON threads (model_provider, updated_at, id)`); err != nil {
					b.Fatal(err)
				}
			}
			ps := make([]Progress, min(64, n))
			for i := range ps {
				// The newest threads: those an append finds near the
				// end of every updated_at index.
				ps[i] = Progress{ID: fmt.Sprintf("%08d-0000-7000-8000-000000000000", n-1-i),
					KeepUserMessages: benchMessagesPerThread, NextOrdinal: benchMessagesPerThread}
			}
			at := int64(1_900_000_000_000)
			for r := 0; b.Loop(); r++ {
				at += 1000
				for i := range ps {
					ps[i].UpdatedAt, ps[i].LineCount = at, int64(10+r)
					ps[i].IndexedSize, ps[i].FileSize = int64(10_000+r), int64(10_000+r)
				}
				if err := s.AdvanceAll(b.Context(), ps); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkSearchRepeatedWord searches for a word that one message holds
// thousands of times (a pasted log searched for "error"), among prompts
// that hold it once. FTS5's snippet of that message costs the square of
// its hits; SearchPage asks FTS5 only for short messages' snippets. The
// baseline, in the same run, is FTS5's snippet of every matching message,
// what SearchPage asked for before.
//
//	go test -run '^$' -bench BenchmarkSearchRepeatedWord -benchtime 3x ./store/
func BenchmarkSearchRepeatedWord(b *testing.B) {
	for _, copies := range []int{1000, 5000} {
		b.Run(fmt.Sprintf("copies=%d", copies), func(b *testing.B) {
			s := openTest(b)
			var records []Record
			for i := range 50 {
				text := fmt.Sprintf("prompt %d: why does the build print an error here?", i)
				if i == 0 {
					text = strings.Repeat("error ", copies)
				}
				records = append(records, Record{Thread: newThread(fmt.Sprintf("t%03d", i), int64(i)),
					Messages: []UserMessage{{Ordinal: 0, Offset: 10, Line: 1, Preview: "p", Text: text}}})
			}
			if err := s.Replace(b.Context(), records); err != nil {
				b.Fatal(err)
			}
			b.Run("search", func(b *testing.B) {
				for b.Loop() {
					hits, err := s.Search(b.Context(), SearchOptions{Query: "error"})
					if err != nil || len(hits) != DefaultSearchLimit {
						b.Fatalf("%d hits, %v", len(hits), err)
					}
				}
			})
			// The baseline: what the search did before it made snippets
			// for its page only, FTS5's snippet of every matching message.
			b.Run("fts5-snippet-of-every-hit", func(b *testing.B) {
				const q = `SELECT snippet(user_message_fts, 0, ?, ?, '…', 16) FROM user_message_fts WHERE user_message_fts MATCH ?`
				for b.Loop() {
					var snippets []string
					if err := s.reader.SelectContext(b.Context(), &snippets, q, HighlightStart, HighlightEnd, `"error"`); err != nil || len(snippets) != 50 {
						b.Fatalf("%d snippets, %v", len(snippets), err)
					}
				}
			})
		})
	}
}

package bench

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spoolhq/spool/bench/corpus"
	"github.com/spoolhq/spool/manager"
	"github.com/spoolhq/spool/rollout"
	"github.com/spoolhq/spool/rolloutfs"
)

// Sizes come from the environment so that scripts/bench.sh can scale them
// with BENCH_SCALE; the defaults are the reduced sizes of BENCH_SCALE=1.
// Generated corpora are cached in os.TempDir() under names that hold their
// parameters (spool-bench-*); delete them to regenerate.

// envInt returns the positive integer in the environment variable name, or
// def when it is unset.
func envInt(tb testing.TB, name string, def int) int {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		tb.Fatalf("%s=%q: want a positive integer", name, v)
	}
	return n
}

// envInts returns the comma-separated positive integers in name, or def.
func envInts(tb testing.TB, name string, def []int) []int {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	var out []int
	for _, f := range strings.Split(v, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			tb.Fatalf("%s=%q: want positive integers separated by commas", name, v)
		}
		out = append(out, n)
	}
	return out
}

// quiet is the logger of every manager the benchmarks open.
var quiet = slog.New(slog.DiscardHandler)

// Corpus shapes. Changing one changes its bytes: bump corpusVersion so
// cached copies are not reused.
const corpusVersion = 2

// smallThreads are the many small threads of the list, incremental-reindex
// and memory figures: one turn each, about 4 KB.
var smallThreads = corpus.Options{Seed: 1, Turns: 1, TextBytes: 256}

// bigThread is the rollout of the fork and resume figures: about 43 KB of
// text and calls per turn plus a 256 KiB image every 8th turn.
func bigThread(bytes int64) corpus.Options {
	return corpus.Options{Seed: 2, TargetBytes: bytes, ImageEvery: 8, ImageBytes: 256 << 10}
}

// mediumThreads are the files of the full-reindex figure: about 100 KiB
// each, with a 32 KiB image every 4th turn.
var mediumThreads = corpus.Options{Seed: 3, TargetBytes: 100 << 10, ImageEvery: 4, ImageBytes: 32 << 10}

// pagedThreads are mediumThreads in Codex's paginated history mode, the
// mode Codex 0.169 starts threads in: the files of the full reindex
// without forks that BenchmarkReindex compares its reference forks with,
// and the bases of those forks.
var pagedThreads = paginated(mediumThreads)

// forkTurns are the own turns of each reference fork of the full-reindex
// figure: about 100 KiB, as a medium thread holds.
var forkTurns = corpus.Options{Seed: 4, TargetBytes: 100 << 10, ImageEvery: 4, ImageBytes: 32 << 10, Paginated: true}

// forkDepth is how deep the chains of reference forks of the full-reindex
// figure go: a fork, a fork of it, and so on.
const forkDepth = 4

func paginated(o corpus.Options) corpus.Options {
	o.Paginated = true
	return o
}

// cachedForkCorpus returns a Codex home under os.TempDir() of n files:
// n-n/4 paginated medium threads and n/4 reference forks of them in
// chains forkDepth deep (makeForks), generating it on first use.
func cachedForkCorpus(tb testing.TB, n int) (root string, forks int) {
	tb.Helper()
	forks = n / 4
	key := fmt.Sprintf("spool-bench-v%d-medium-forks-n%d-f%d-d%d", corpusVersion, n, forks, forkDepth)
	return cachedRoot(tb, key, false, func(ctx context.Context, dir string) error {
		if err := makeForks(ctx, dir, n-forks, forks, forkDepth, pagedThreads, forkTurns); err != nil {
			return err
		}
		// The files are the corpus, not the index that made them.
		for _, suffix := range []string{"", "-wal", "-shm"} {
			if err := os.Remove(filepath.Join(dir, manager.IndexFile+suffix)); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return err
			}
		}
		return nil
	}), forks
}

// makeForks writes under dir threads 0..bases-1 of base (paginated) and
// forks reference forks of them in chains depth deep, as a manager writes
// them: the first link of chain c forks thread c, each further link the
// one before, each before the last user message of what it forks, and
// each gets the own turns of turns (corpus.TurnLines, drawn for the
// fork's number), so that the next link's cut lies in its own file. The
// manager's index (manager.IndexFile) is left in dir.
func makeForks(ctx context.Context, dir string, bases, forks, depth int, base, turns corpus.Options) error {
	threads, err := corpus.Generate(ctx, dir, bases, base)
	if err != nil {
		return err
	}
	if forks > 0 && (depth < 1 || (forks+depth-1)/depth > bases) {
		return fmt.Errorf("%d forks %d deep need %d bases, have %d", forks, depth, (forks+depth-1)/depth, bases)
	}
	m, err := manager.Open(ctx, manager.Options{Root: dir, Sync: rolloutfs.SyncNone, Logger: quiet})
	if err != nil {
		return err
	}
	var prev string // the fork made last
	for k := 0; k < forks; k++ {
		parent := threads[k/depth].ID
		if k%depth > 0 {
			parent = prev
		}
		prev, err = forkWithTurns(ctx, m, parent, turns, k)
		if err != nil {
			m.Close()
			return fmt.Errorf("fork %d of %s: %w", k, parent, err)
		}
	}
	return m.Close()
}

// forkWithTurns forks parent by reference before its last user message and
// appends turn lines k of turns to the fork, whose id it returns.
func forkWithTurns(ctx context.Context, m *manager.Manager, parent string, turns corpus.Options, k int) (string, error) {
	p, err := m.Get(ctx, parent)
	if err != nil {
		return "", err
	}
	before := p.UserMessageCount - 1
	child, err := m.Fork(ctx, parent, manager.ForkOptions{BeforeUserMessage: &before, Mode: manager.ForkReference})
	if err != nil {
		return "", err
	}
	lines, err := corpus.TurnLines(turns, k, child.ID)
	if err != nil {
		return "", err
	}
	if _, err := m.AppendLines(ctx, child.ID, lines); err != nil {
		return "", err
	}
	return child.ID, nil
}

// cacheMu serialises corpus generation inside one test binary.
var cacheMu sync.Mutex

// cachedCorpus returns a Codex home under os.TempDir() holding threads
// 0..n-1 of o, generating it on first use. With indexed set, the home also
// holds a spool index of those threads (built by opening a manager on it).
func cachedCorpus(tb testing.TB, name string, n int, o corpus.Options, indexed bool) string {
	tb.Helper()
	key := fmt.Sprintf("spool-bench-v%d-%s-n%d", corpusVersion, name, n)
	return cachedRoot(tb, key, indexed, func(ctx context.Context, dir string) error {
		_, err := corpus.Generate(ctx, dir, n, o)
		return err
	})
}

// cachedRoot returns the Codex home os.TempDir()/key (key+"-indexed" with
// indexed set), made on first use by generate in a temporary directory
// renamed to it once complete, and then, with indexed set, indexed by
// opening a manager on it.
func cachedRoot(tb testing.TB, key string, indexed bool, generate func(ctx context.Context, dir string) error) string {
	tb.Helper()
	cacheMu.Lock()
	defer cacheMu.Unlock()
	if indexed {
		key += "-indexed"
	}
	root := filepath.Join(os.TempDir(), key)
	if _, err := os.Stat(filepath.Join(root, ".complete")); err == nil {
		return root
	}
	ctx := context.Background()
	os.RemoveAll(root)
	tmp, err := os.MkdirTemp(os.TempDir(), key+".part-")
	if err != nil {
		tb.Fatal(err)
	}
	defer os.RemoveAll(tmp)
	start := time.Now()
	if err := generate(ctx, tmp); err != nil {
		tb.Fatal(err)
	}
	tb.Logf("generated %s in %s", key, time.Since(start).Round(time.Millisecond))
	if err := os.Rename(tmp, root); err != nil {
		tb.Fatal(err)
	}
	if indexed {
		start = time.Now()
		m, err := manager.Open(ctx, manager.Options{Root: root, Sync: rolloutfs.SyncNone, Logger: quiet})
		if err != nil {
			tb.Fatalf("index %s: %v", root, err)
		}
		if err := m.Close(); err != nil {
			tb.Fatal(err)
		}
		tb.Logf("indexed %s in %s", key, time.Since(start).Round(time.Millisecond))
	}
	if err := os.WriteFile(filepath.Join(root, ".complete"), nil, 0o644); err != nil {
		tb.Fatal(err)
	}
	return root
}

// linkedRoot returns a new temporary root whose sessions/ holds hard links
// to the rollouts of src (copies where linking fails), so that a benchmark
// can write into it without touching the cache.
func linkedRoot(tb testing.TB, src string) string {
	tb.Helper()
	dst, err := os.MkdirTemp("", "spool-bench-root-")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { os.RemoveAll(dst) })
	sessions := filepath.Join(src, rollout.SessionsDir)
	err = filepath.WalkDir(sessions, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		if err := os.Link(p, target); err == nil {
			return nil
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(target, data, 0o644)
	})
	if err != nil {
		tb.Fatal(err)
	}
	return dst
}

// rolloutPaths returns the rollout files under root/sessions.
func rolloutPaths(tb testing.TB, root string) []string {
	tb.Helper()
	var paths []string
	err := filepath.WalkDir(filepath.Join(root, rollout.SessionsDir), func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(p, ".jsonl") {
			paths = append(paths, p)
		}
		return err
	})
	if err != nil {
		tb.Fatal(err)
	}
	return paths
}

// openManager opens a manager on root, closed when tb ends.
func openManager(tb testing.TB, root string, policy rolloutfs.SyncPolicy) *manager.Manager {
	tb.Helper()
	m, err := manager.Open(context.Background(), manager.Options{Root: root, Sync: policy, Logger: quiet})
	if err != nil {
		tb.Fatalf("open manager on %s: %v", root, err)
	}
	tb.Cleanup(func() {
		if err := m.Close(); err != nil {
			tb.Error(err)
		}
	})
	return m
}

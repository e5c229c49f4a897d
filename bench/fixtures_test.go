package bench

import (
	"context"
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

// cacheMu serialises corpus generation inside one test binary.
var cacheMu sync.Mutex

// cachedCorpus returns a Codex home under os.TempDir() holding threads
// 0..n-1 of o, generating it on first use. With indexed set, the home also
// holds a spool index of those threads (built by opening a manager on it).
func cachedCorpus(tb testing.TB, name string, n int, o corpus.Options, indexed bool) string {
	tb.Helper()
	cacheMu.Lock()
	defer cacheMu.Unlock()
	key := fmt.Sprintf("spool-bench-v%d-%s-n%d", corpusVersion, name, n)
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
	if _, err := corpus.Generate(ctx, tmp, n, o); err != nil {
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

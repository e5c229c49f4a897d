package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/spoolhq/spool/bench/corpus"
	"github.com/spoolhq/spool/manager"
	"github.com/spoolhq/spool/rollout"
	"github.com/spoolhq/spool/rolloutfs"
)

// corpusVersion changes when a corpus shape changes, so that cached
// copies are not reused.
const corpusVersion = 2

// listThreads are the many small threads of the list and first-index
// figures: one complete turn each, about 4 KB.
var listThreads = corpus.Options{Seed: 1, Turns: 1, TextBytes: 256}

// bigThread is the thread of the fork and last-turn figures.
func bigThread(mb int) corpus.Options {
	return corpus.Options{Seed: 2, TargetBytes: int64(mb) << 20, ImageEvery: 8, ImageBytes: 256 << 10}
}

// cache returns the directory of a cached corpus named key, building it
// with build into a temporary sibling on first use.
func cache(key string, build func(dir string) error) (string, error) {
	dir := filepath.Join(os.TempDir(), fmt.Sprintf("spool-bench-codex-v%d-%s", corpusVersion, key))
	if _, err := os.Stat(filepath.Join(dir, ".complete")); err == nil {
		return dir, nil
	}
	os.RemoveAll(dir)
	tmp, err := os.MkdirTemp(os.TempDir(), filepath.Base(dir)+".part-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)
	start := time.Now()
	if err := build(tmp); err != nil {
		return "", fmt.Errorf("build %s: %w", key, err)
	}
	if err := os.WriteFile(filepath.Join(tmp, ".complete"), nil, 0o644); err != nil {
		return "", err
	}
	if err := os.Rename(tmp, dir); err != nil {
		return "", err
	}
	logf("built %s in %s", dir, time.Since(start).Round(time.Millisecond))
	return dir, nil
}

// listCorpus returns a home holding n small legacy threads.
func listCorpus(ctx context.Context, n int) (string, error) {
	return cache(fmt.Sprintf("list-n%d", n), func(dir string) error {
		threads, err := corpus.Generate(ctx, dir, n, listThreads)
		if err != nil {
			return err
		}
		// Read-only: every home links these files, and neither program
		// should write into them.
		for _, t := range threads {
			if err := os.Chmod(filepath.Join(dir, filepath.FromSlash(t.Path)), 0o444); err != nil {
				return err
			}
		}
		return nil
	})
}

// bigCorpus returns a home holding one legacy thread of mb MiB, or its
// paginated copy made by `codex migrate-rollouts --apply`.
func bigCorpus(ctx context.Context, codexBin string, mb int, paginated bool) (string, error) {
	legacy, err := cache(fmt.Sprintf("big-%dmb-legacy", mb), func(dir string) error {
		_, err := corpus.Generate(ctx, dir, 1, bigThread(mb))
		return err
	})
	if err != nil || !paginated {
		return legacy, err
	}
	return cache(fmt.Sprintf("big-%dmb-paginated", mb), func(dir string) error {
		if err := copyTree(legacy, dir, false); err != nil {
			return err
		}
		start := time.Now()
		cmd := exec.CommandContext(ctx, "unshare", "-n", codexBin, "migrate-rollouts", "--apply", "--json")
		cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir, "CODEX_HOME=" + dir, "OPENAI_API_KEY=sk-dummy"}
		cmd.Dir = dir
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			return fmt.Errorf("codex migrate-rollouts: %w\n%s", err, tail(stderr.Bytes()))
		}
		if !bytes.Contains(out, []byte(`"migrated"`)) {
			return fmt.Errorf("codex migrate-rollouts migrated nothing: %s", tail(out))
		}
		logf("codex migrate-rollouts --apply: %d MiB in %s", mb, time.Since(start).Round(time.Millisecond))
		// Keep only the rollouts: the home Codex left is not a corpus.
		entries, err := os.ReadDir(dir)
		if err != nil {
			return err
		}
		for _, e := range entries {
			if e.Name() != rollout.SessionsDir {
				if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
					return err
				}
			}
		}
		return nil
	})
}

// copyTree recreates src/sessions under dst: hard links when link is set
// (the benchmarks never write into a parent's file), else copies.
func copyTree(src, dst string, link bool) error {
	sessions := filepath.Join(src, rollout.SessionsDir)
	return filepath.WalkDir(sessions, func(p string, d fs.DirEntry, err error) error {
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
		if link {
			return os.Link(p, target)
		}
		return copyFile(p, target)
	})
}

// copyFile copies src to a new file dst, writable by its owner.
func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	_, err = io.Copy(out, in)
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	return err
}

// freshDir returns a new empty directory under the run's work directory.
func freshDir(work, name string) (string, error) {
	return os.MkdirTemp(work, name+"-")
}

// linkedHome returns a new home under work whose sessions/ links the
// rollouts of src.
func linkedHome(work, name, src string) (string, error) {
	dir, err := freshDir(work, name)
	if err != nil {
		return "", err
	}
	return dir, copyTree(src, dir, true)
}

// spoolIndex builds spool's index of root in process (the fixtures of the
// warm figures; the first index itself is timed through spoold).
func spoolIndex(ctx context.Context, root string) error {
	m, err := manager.Open(ctx, manager.Options{Root: root, Sync: rolloutfs.SyncNone, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		return err
	}
	return m.Close()
}

// bigInfo is what the benchmarks need to know of the big thread.
type bigInfo struct {
	id      string
	path    string
	size    int64
	turnIDs []string // task_started turn ids, in order
}

// describeBig reads the big thread's id and its turn ids from its file.
func describeBig(home string) (bigInfo, error) {
	var info bigInfo
	err := filepath.WalkDir(filepath.Join(home, rollout.SessionsDir), func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(p, ".jsonl") {
			info.path = p
		}
		return err
	})
	if err != nil || info.path == "" {
		return info, fmt.Errorf("find the big thread in %s: %v", home, err)
	}
	f, err := os.Open(info.path)
	if err != nil {
		return info, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return info, err
	}
	info.size = st.Size()
	r := bufio.NewReaderSize(f, 1<<20)
	first := true
	for {
		line, err := r.ReadSlice('\n')
		if err == bufio.ErrBufferFull {
			// A long line (an image): not one we look at; skip its rest.
			for err == bufio.ErrBufferFull {
				_, err = r.ReadSlice('\n')
			}
			continue
		}
		if err != nil {
			break
		}
		if first {
			meta, merr := rollout.ParseSessionMeta(bytes.TrimSuffix(line, []byte{'\n'}))
			if merr != nil {
				return info, merr
			}
			info.id, first = meta.ID, false
			continue
		}
		if !bytes.Contains(line, []byte(`"task_started"`)) {
			continue
		}
		var ev struct {
			Payload struct {
				Type   string `json:"type"`
				TurnID string `json:"turn_id"`
			} `json:"payload"`
		}
		if json.Unmarshal(line, &ev) == nil && ev.Payload.Type == "task_started" {
			info.turnIDs = append(info.turnIDs, ev.Payload.TurnID)
		}
	}
	if len(info.turnIDs) < 3 {
		return info, fmt.Errorf("%s: %d turns, want at least 3", info.path, len(info.turnIDs))
	}
	return info, nil
}

// Command memprobe measures the memory a spool manager needs: it opens a
// manager on a store root, makes threads live one after another (Resume)
// with a bounded capacity, and prints its own peak and current resident set
// size from /proc/self/status as one JSON object. The benchmarks in package
// bench build and run it in a fresh process for each index size.
//
// Usage:
//
//	memprobe -root DIR [-touch N] [-capacity C]
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spoolhq/spool/manager"
	"github.com/spoolhq/spool/rolloutfs"
	"github.com/spoolhq/spool/store"
)

// report is what memprobe prints.
type report struct {
	Threads   int64 `json:"threads"`     // threads in the index
	Touched   int   `json:"touched"`     // threads made live
	Live      int   `json:"live"`        // live threads at the end
	OpenHWMKB int64 `json:"open_hwm_kb"` // peak RSS right after Open
	HWMKB     int64 `json:"hwm_kb"`      // peak RSS at the end
	RSSKB     int64 `json:"rss_kb"`      // RSS at the end
	OpenMs    int64 `json:"open_ms"`
	TouchMs   int64 `json:"touch_ms"`
}

func main() {
	if err := run(context.Background(), os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "memprobe:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("memprobe", flag.ContinueOnError)
	root := fs.String("root", "", "store root `dir` (required)")
	touch := fs.Int("touch", 100_000, "threads to make live, newest first")
	capacity := fs.Int("capacity", 1000, "live threads held in memory")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *root == "" {
		return errors.New("need -root")
	}
	var rep report
	start := time.Now()
	m, err := manager.Open(ctx, manager.Options{
		Root:     *root,
		Capacity: *capacity,
		Sync:     rolloutfs.SyncNone,
		Logger:   slog.New(slog.DiscardHandler),
	})
	if err != nil {
		return err
	}
	defer m.Close()
	rep.OpenMs = time.Since(start).Milliseconds()
	if rep.OpenHWMKB, _, err = memory(); err != nil {
		return err
	}
	stats, err := m.IndexStats(ctx)
	if err != nil {
		return err
	}
	rep.Threads = stats.Threads

	start = time.Now()
	opts := store.ListOptions{Limit: store.MaxListLimit}
	for rep.Touched < *touch {
		page, err := m.List(ctx, opts)
		if err != nil {
			return err
		}
		for _, t := range page.Threads {
			if rep.Touched == *touch {
				break
			}
			if _, err := m.Resume(ctx, t.ID); err != nil {
				return err
			}
			rep.Touched++
		}
		if page.NextCursor == "" {
			break
		}
		opts.Cursor = page.NextCursor
	}
	rep.TouchMs = time.Since(start).Milliseconds()
	rep.Live = m.Stats().Live
	if rep.HWMKB, rep.RSSKB, err = memory(); err != nil {
		return err
	}
	return json.NewEncoder(stdout).Encode(rep)
}

// memory returns VmHWM and VmRSS of this process, in KiB.
func memory() (hwm, rss int64, err error) {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		name, value, ok := strings.Cut(s.Text(), ":")
		if !ok || (name != "VmHWM" && name != "VmRSS") {
			continue
		}
		kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(value), " kB"), 10, 64)
		if err != nil {
			return 0, 0, fmt.Errorf("parse %s: %w", name, err)
		}
		if name == "VmHWM" {
			hwm = kb
		} else {
			rss = kb
		}
	}
	return hwm, rss, s.Err()
}

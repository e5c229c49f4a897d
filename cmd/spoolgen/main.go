// Command spoolgen writes a corpus of Codex-format rollout files for
// benchmarks: threads of complete Codex 0.169 turns (see bench/corpus) laid
// out as a Codex home (<root>/sessions/YYYY/MM/DD/rollout-<ts>-<uuid>.jsonl),
// legacy or, with -paginated, in Codex's paginated history mode. Codex
// 0.169 lists the threads and shows their turns as written. The output is
// deterministic: the same flags give the same bytes.
//
// Usage:
//
//	spoolgen -root DIR [-threads N] [-seed S] [-turns T] [-size BYTES]
//	         [-text BYTES] [-image-every K] [-image-bytes BYTES] [-paginated]
//
// Examples:
//
//	spoolgen -root /tmp/home -threads 10000 -turns 3
//	spoolgen -root /tmp/big -threads 1 -size 1GiB -image-every 8
//	spoolgen -root /tmp/paged -threads 100 -turns 5 -paginated
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"time"

	"github.com/spoolhq/spool/bench/corpus"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	switch {
	case errors.Is(err, flag.ErrHelp): // -h: the usage is printed, as asked
	case err != nil:
		fmt.Fprintln(os.Stderr, "spoolgen:", err)
		os.Exit(2)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("spoolgen", flag.ContinueOnError)
	fs.SetOutput(stderr)
	root := fs.String("root", "", "Codex home `dir` to write into (required)")
	threads := fs.Int("threads", 1, "number of threads")
	seed := fs.Uint64("seed", 1, "random seed: content and ids")
	turns := fs.Int("turns", 1, "minimum turns per thread")
	size := fs.String("size", "0", "minimum `bytes` per thread (suffixes KiB, MiB, GiB, KB, MB, GB); adds turns")
	text := fs.Int("text", 2048, "approximate free-text `bytes` per turn")
	imageEvery := fs.Int("image-every", 0, "put a base64 image line into every `k`-th turn (0: none)")
	imageBytes := fs.String("image-bytes", "256KiB", "image size before base64")
	paginated := fs.Bool("paginated", false, "write paginated threads (history_mode \"paginated\", ordinals), as Codex 0.169 writes new threads")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *root == "" || fs.NArg() > 0 || *threads < 1 {
		fs.Usage()
		return errors.New("need -root and a positive -threads, and no arguments")
	}
	target, err := parseBytes(*size)
	if err != nil {
		return fmt.Errorf("-size: %w", err)
	}
	imgBytes, err := parseBytes(*imageBytes)
	if err != nil {
		return fmt.Errorf("-image-bytes: %w", err)
	}
	o := corpus.Options{
		Seed:        *seed,
		Turns:       *turns,
		TargetBytes: target,
		TextBytes:   *text,
		ImageEvery:  *imageEvery,
		ImageBytes:  int(imgBytes),
		Paginated:   *paginated,
	}
	start := time.Now()
	ts, err := corpus.Generate(ctx, *root, *threads, o)
	if err != nil {
		return err
	}
	var total int64
	var users int
	for _, t := range ts {
		total += t.Size
		users += t.UserMessages
	}
	elapsed := time.Since(start)
	fmt.Fprintf(stdout, "wrote %d threads, %d user messages, %d bytes in %s (%.0f MB/s) under %s\n",
		len(ts), users, total, elapsed.Round(time.Millisecond), float64(total)/1e6/elapsed.Seconds(), *root)
	return nil
}

// parseBytes reads a byte count with an optional unit suffix.
func parseBytes(s string) (int64, error) {
	units := []struct {
		suffix string
		mult   int64
	}{
		{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30},
		{"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"B", 1},
	}
	mult := int64(1)
	for _, u := range units {
		if strings.HasSuffix(s, u.suffix) {
			s, mult = strings.TrimSuffix(s, u.suffix), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("not a byte count: %q", s)
	}
	return n * mult, nil
}

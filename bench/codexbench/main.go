// Command codexbench measures spool against the real Codex CLI on the same
// corpora, in one run: the pinned `codex app-server` (scripts/codex.sh;
// always inside `unshare -n`, with a temporary CODEX_HOME and a dummy API
// key) and spoold over HTTP. Each repetition runs Codex's operation and
// spool's one after the other (the order alternates), and the report gives
// medians, ratios of medians and the peak RSS (VmHWM, reset with clear_refs
// before each operation) of each process. make bench-codex runs it; see
// BENCHMARKS.md.
//
// Usage:
//
//	codexbench -codex BIN -spoold BIN [-threads 10000] [-big-mb 100] [-reps 5] [-only REGEXP]
//	codexbench -codex BIN -check HOME...
//
// With -check it only shows that Codex accepts the homes given (spoolgen's
// output): Codex lists their threads and shows each turn as written.
//
// Corpora are cached in $TMPDIR/spool-bench-codex-v*-*; homes and roots of
// one run go to a temporary directory that is removed at the end.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "# "+format+"\n", args...)
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:]); err != nil {
		stop()
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "codexbench:", err)
		}
		os.Exit(2)
	}
}

// config is the parsed command line.
type config struct {
	codex, spoold string
	threads       []int
	bigMB         int
	reps          int
	warmCalls     int
	only          *regexp.Regexp
	work          string
}

func run(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("codexbench", flag.ContinueOnError)
	var c config
	fs.StringVar(&c.codex, "codex", "", "the native Codex 0.169.0 `binary` (scripts/codex.sh prints it)")
	fs.StringVar(&c.spoold, "spoold", "", "a built spoold `binary`")
	threads := fs.String("threads", "10000", "thread counts of the list and first-index figures (comma-separated)")
	fs.IntVar(&c.bigMB, "big-mb", 100, "size in MiB of the thread of the fork and last-turn figures")
	fs.IntVar(&c.reps, "reps", 5, "repetitions of each operation on each side")
	fs.IntVar(&c.warmCalls, "warm-calls", 10, "calls per repetition of the warm list")
	only := fs.String("only", "", "run only the figures whose name matches this `regexp`")
	checkOnly := fs.Bool("check", false, "check that Codex accepts the homes given as arguments, and stop")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *checkOnly {
		if c.codex == "" || fs.NArg() == 0 {
			return errors.New("-check needs -codex and homes")
		}
		var err error
		if c.work, err = os.MkdirTemp("", "spool-bench-codex-check-"); err != nil {
			return err
		}
		defer os.RemoveAll(c.work)
		for _, home := range fs.Args() {
			if err := check(ctx, c, home, os.Stdout); err != nil {
				return fmt.Errorf("check %s: %w", home, err)
			}
		}
		return nil
	}
	if c.codex == "" || c.spoold == "" || fs.NArg() > 0 {
		fs.Usage()
		return errors.New("need -codex and -spoold, and no arguments")
	}
	for f := range strings.SplitSeq(*threads, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 50 {
			return fmt.Errorf("-threads %q: want counts of at least 50", *threads)
		}
		c.threads = append(c.threads, n)
	}
	var err error
	if c.only, err = regexp.Compile(*only); err != nil {
		return fmt.Errorf("-only: %w", err)
	}
	if c.work, err = os.MkdirTemp("", "spool-bench-codex-run-"); err != nil {
		return err
	}
	defer os.RemoveAll(c.work)

	r := newReport()
	start := time.Now()
	for _, n := range c.threads {
		if err := listFigures(ctx, c, r, n); err != nil {
			return err
		}
	}
	for _, paginated := range []bool{false, true} {
		if err := bigFigures(ctx, c, r, paginated); err != nil {
			return err
		}
	}
	r.print(os.Stdout, c)
	fmt.Printf("\n# total %s\n", time.Since(start).Round(time.Second))
	return nil
}

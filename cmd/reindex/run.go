package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/schollz/progressbar/v3"

	"github.com/spoolhq/spool/codexlock"
	"github.com/spoolhq/spool/indexer"
	"github.com/spoolhq/spool/internal/buildhint"
	"github.com/spoolhq/spool/internal/flagorigin"
	"github.com/spoolhq/spool/internal/shellquote"
	"github.com/spoolhq/spool/lockfile"
	"github.com/spoolhq/spool/manager"
	"github.com/spoolhq/spool/rollout"
	"github.com/spoolhq/spool/rolloutfs"
	"github.com/spoolhq/spool/store"
)

// Exit codes.
const (
	exitOK     = 0
	exitDrift  = 1
	exitError  = 2
	exitLocked = 3
	// exitInterrupted ends a run that Ctrl-C or SIGTERM stopped before it
	// was done, as a shell reports a command SIGINT ended.
	exitInterrupted = 130
)

// defaultIndexName is the index file inside a root.
const defaultIndexName = "spool.db"

// config is what the command line asked for.
type config struct {
	root    string
	index   string
	full    bool
	verify  bool
	repair  bool
	json    bool
	workers int
	// The distributed backend (docs/DISTRIBUTED.md): with pg set, verify
	// or collect its database and bucket instead of a root.
	pg, s3, s3Bucket string
	collect          bool
	grace            time.Duration
	tornGrace        time.Duration
}

// parseArgs parses the command line. The returned error has already been
// explained to the user on stderr by the flag package when it is a flag
// syntax error.
func parseArgs(args []string, stderr io.Writer) (config, error) {
	var cfg config
	fs := flag.NewFlagSet("reindex", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&cfg.root, "root", "", "the spool root or Codex home (default $SPOOL_ROOT, else ~/.spool)")
	fs.StringVar(&cfg.index, "index", "", "the index file (default $SPOOL_INDEX, as spoold's -index, else ROOT/"+defaultIndexName+")")
	fs.BoolVar(&cfg.full, "full", false, "rescan every file instead of only the changed ones")
	fs.BoolVar(&cfg.verify, "verify", false, "report drift between the index and the files; change nothing")
	fs.BoolVar(&cfg.repair, "repair", false, "cut torn last lines into side files, then update the index")
	fs.DurationVar(&cfg.tornGrace, "torn-grace", manager.DefaultTornGrace, "with --repair: how old a torn last line must be to be cut (its writer may still finish it)")
	fs.BoolVar(&cfg.json, "json", false, "print one JSON object instead of text")
	fs.IntVar(&cfg.workers, "workers", runtime.GOMAXPROCS(0), "files parsed in parallel")
	fs.StringVar(&cfg.pg, "pg", os.Getenv("SPOOL_PG"), "verify or collect the distributed backend on this PostgreSQL DSN instead of a root ($SPOOL_PG)")
	fs.StringVar(&cfg.s3, "s3", os.Getenv("SPOOL_S3"), "with --pg: the S3-compatible endpoint of its segments; credentials from $SPOOL_S3_ACCESS_KEY and $SPOOL_S3_SECRET_KEY ($SPOOL_S3)")
	fs.StringVar(&cfg.s3Bucket, "s3-bucket", envOr("SPOOL_S3_BUCKET", "spool"), "with --s3: the bucket ($SPOOL_S3_BUCKET)")
	fs.BoolVar(&cfg.collect, "collect", false, "with --pg and --s3: delete segment objects no row names, older than --grace")
	fs.DurationVar(&cfg.grace, "grace", time.Hour, "with --collect: how old an unnamed object must be (a sealer writes its object before its row)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: reindex [--root DIR] [--index PATH] [--full | --verify | --repair [--torn-grace D]] [--json] [--workers N]")
		fmt.Fprintln(stderr, "       reindex --pg DSN [--s3 URL [--s3-bucket B]] --verify | --repair | --collect [--grace D] [--json]")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return cfg, flagError{err} // the flag package printed it, and the usage
	}
	if fs.NArg() > 0 {
		return cfg, fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	from := flagorigin.Namer(fs, "--", os.Getenv)
	if cfg.pg != "" {
		modes := 0
		for _, on := range []bool{cfg.verify, cfg.collect, cfg.repair} {
			if on {
				modes++
			}
		}
		switch {
		case cfg.full:
			return cfg, fmt.Errorf("%s takes --verify, --repair or --collect: its bytes are in the database, nothing to rescan", from("pg", "SPOOL_PG"))
		case modes != 1:
			return cfg, fmt.Errorf("%s takes one of --verify, --repair and --collect", from("pg", "SPOOL_PG"))
		case cfg.collect && cfg.s3 == "":
			return cfg, errors.New("--collect needs --s3: it collects segment objects")
		}
		return cfg, nil
	}
	switch {
	case cfg.collect:
		return cfg, errors.New("--collect goes with --pg")
	case cfg.s3 != "":
		return cfg, fmt.Errorf("%s goes with --pg", from("s3", "SPOOL_S3"))
	}
	if cfg.verify && (cfg.full || cfg.repair) {
		return cfg, errors.New("--verify cannot be combined with --full or --repair")
	}
	if cfg.tornGrace < 0 {
		return cfg, fmt.Errorf("--torn-grace must not be negative, not %v", cfg.tornGrace)
	}
	if cfg.workers < 1 {
		return cfg, fmt.Errorf("--workers must be at least 1, not %d", cfg.workers)
	}
	if cfg.root == "" {
		cfg.root = os.Getenv("SPOOL_ROOT")
	}
	if cfg.root == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return cfg, fmt.Errorf("no --root and no home directory: %w", err)
		}
		cfg.root = filepath.Join(home, ".spool")
	}
	if cfg.index == "" {
		cfg.index = os.Getenv("SPOOL_INDEX")
	}
	if cfg.index == "" {
		cfg.index = filepath.Join(cfg.root, defaultIndexName)
	}
	return cfg, nil
}

// report is the --json output: one object per run.
type report struct {
	Mode   string                `json:"mode"` // "sync", "full", "verify" or "repair"
	Root   string                `json:"root"`
	Index  string                `json:"index"`
	Sync   *indexer.Summary      `json:"sync,omitempty"`
	Verify *indexer.VerifyReport `json:"verify,omitempty"`
	Cuts   []indexer.Cut         `json:"cuts,omitempty"`
	Left   []indexer.LeftTail    `json:"left,omitempty"`
	Failed []indexer.Problem     `json:"failed,omitempty"` // --repair: files it could not read or cut
}

// unreadable counts the problems that are files that could not be read or
// indexed at all (an empty one, which its writer may be creating, is not
// one of them).
func unreadable(problems []indexer.Problem) int {
	n := 0
	for _, p := range problems {
		if p.Unindexed() {
			n++
		}
	}
	return n
}

// run is the whole command; it returns the exit code. A run that fails
// once ctx is done (Ctrl-C, SIGTERM) was interrupted: the index keeps the
// batches committed before, which the next run builds on.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	code := runCommand(ctx, args, stdout, stderr)
	// Only a run the signal cut short: one that finished (a verify that
	// found drift, exit 1) keeps its code.
	if code == exitError && ctx.Err() != nil {
		fmt.Fprintln(stderr, "reindex: interrupted before it was done; the index keeps what it committed, and a new run goes on from there")
		return exitInterrupted
	}
	return code
}

// runCommand runs the command line args; it returns the exit code.
func runCommand(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cfg, err := parseArgs(args, stderr)
	var printed flagError
	switch {
	case errors.Is(err, flag.ErrHelp):
		return exitOK
	case errors.As(err, &printed):
		return exitError
	case err != nil:
		fmt.Fprintf(stderr, "reindex: %v\n", err)
		return exitError
	}
	if cfg.pg != "" {
		return runDistributed(ctx, cfg, stdout, stderr)
	}
	switch fi, err := os.Stat(cfg.root); {
	case errors.Is(err, fs.ErrNotExist):
		fmt.Fprintf(stderr, "reindex: no such root: %s (--root or $SPOOL_ROOT names it)\n", cfg.root)
		return exitError
	case err != nil:
		fmt.Fprintf(stderr, "reindex: %v\n", err)
		return exitError
	case !fi.IsDir():
		fmt.Fprintf(stderr, "reindex: root %s is not a directory\n", cfg.root)
		return exitError
	}
	// A directory named by mistake gets no index (nor any other mode's
	// hint to build one there).
	if err := manager.CheckRoot(cfg.root, cfg.index); errors.Is(err, manager.ErrNotRoot) {
		fmt.Fprintf(stderr, "reindex: root %v; --root or $SPOOL_ROOT names a spool root, a Codex home or an empty directory (to make this one a root: %s)\n",
			err, shellquote.Join("mkdir", "-m", "0700", filepath.Join(cfg.root, rollout.SessionsDir)))
		return exitError
	} else if err != nil {
		fmt.Fprintf(stderr, "reindex: %v\n", err)
		return exitError
	}
	if cfg.verify {
		return verifyOnly(ctx, cfg, stdout, stderr)
	}
	indexDir := filepath.Dir(cfg.index)
	if err := os.MkdirAll(indexDir, 0o700); err != nil {
		fmt.Fprintf(stderr, "reindex: %v\n", err)
		return exitError
	}
	lock, err := lockfile.Acquire(filepath.Join(indexDir, lockfile.FileName))
	var held *lockfile.HeldError
	if errors.As(err, &held) {
		fmt.Fprintf(stderr, "reindex: index is locked by %s (%s)\n", holderOf(held), lockAdvice(held))
		return exitLocked
	}
	if err != nil {
		fmt.Fprintf(stderr, "reindex: %v\n", err)
		return exitError
	}
	defer lock.Release()
	// An index refused (another program's database) leaves no lock file
	// that this run created.
	discard := lock.Discard
	if cfg.repair && filepath.Clean(indexDir) != filepath.Clean(cfg.root) {
		// Cutting torn tails writes to the root: whoever else writes there
		// holds the root's lock, not the index's.
		rootLock, err := lockfile.Acquire(filepath.Join(cfg.root, lockfile.FileName))
		if errors.As(err, &held) {
			lock.Discard()
			fmt.Fprintf(stderr, "reindex: root is locked by %s (%s)\n", holderOf(held), lockAdvice(held))
			return exitLocked
		}
		if err != nil {
			lock.Discard()
			fmt.Fprintf(stderr, "reindex: %v\n", err)
			return exitError
		}
		defer rootLock.Release()
		discard = func() error { return errors.Join(rootLock.Discard(), lock.Discard()) }
	}

	st, err := store.Open(ctx, cfg.index)
	if (errors.Is(err, store.ErrCorrupt) || errors.Is(err, store.ErrUnmigratable) || errors.Is(err, store.ErrSchemaTooNew)) && cfg.full {
		// A full rebuild needs nothing from the old index: keep it aside
		// for a post-mortem (or, for a newer spool's index, to put back
		// when that spool returns) and start a new one.
		why := "corrupt"
		switch {
		case errors.Is(err, store.ErrUnmigratable):
			why = "old"
		case errors.Is(err, store.ErrSchemaTooNew):
			why = "newer"
		}
		aside, moveErr := moveAside(cfg.index, why)
		if moveErr != nil {
			fmt.Fprintf(stderr, "reindex: %v; moving it aside: %v\n", err, moveErr)
			return exitError
		}
		fmt.Fprintf(stderr, "reindex: %v\nreindex: moved the %s index to %s; rebuilding\n", err, why, aside)
		st, err = store.Open(ctx, cfg.index)
	}
	if err != nil {
		discard()
		fmt.Fprintf(stderr, "reindex: %v\n", err)
		return exitError
	}
	defer st.Close()
	if mig := st.Migrated(); mig.Upgraded() {
		fmt.Fprintf(stderr, "reindex: migrated the index schema from version %d to %d in %v\n", mig.From, mig.To, mig.Took.Round(time.Millisecond))
	}
	rescan, why, err := st.RescanNeeded(ctx)
	if err != nil {
		fmt.Fprintf(stderr, "reindex: %v\n", err)
		return exitError
	}
	if rescan && !cfg.verify && !cfg.full {
		fmt.Fprintf(stderr, "reindex: the index asks for a full rescan (%s): rescanning every file\n", why)
		cfg.full = true
	}

	code, err := execute(ctx, cfg, st, stdout, stderr)
	if err == nil && code == exitOK && rescan && cfg.full {
		err = st.RescanDone(ctx)
	}
	if err != nil {
		fmt.Fprintf(stderr, "reindex: %v\n", err)
		return exitError
	}
	return code
}

// verifyOnly runs --verify: it opens the index read-only and takes no
// lock, so it runs beside spoold (or another reindex); it writes nothing,
// in the root or beside the index. Threads written while it runs may show
// as drift: run it again to tell drift that stays from drift in passing.
func verifyOnly(ctx context.Context, cfg config, stdout, stderr io.Writer) int {
	st, err := store.OpenReadOnly(ctx, cfg.index)
	if errors.Is(err, fs.ErrNotExist) {
		// Nothing to verify yet: say how to make it, as doctor does.
		index := cfg.index
		if index == filepath.Join(cfg.root, defaultIndexName) {
			index = ""
		}
		fmt.Fprintf(stderr, "reindex: no index to verify at %s (%s)\n", cfg.index, buildhint.Hint(cfg.root, index, buildhint.StateHome(os.Getenv), func(root, index string) []string {
			return []string{"reindex", "--root", root, "--index", index, "--verify"}
		}))
		return exitError
	}
	if err != nil {
		fmt.Fprintf(stderr, "reindex: %v\n", err)
		return exitError
	}
	defer st.Close()
	code, err := execute(ctx, cfg, st, stdout, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "reindex: %v\n", err)
		return exitError
	}
	return code
}

// moveAside renames the index file and its WAL and shared-memory files to
// <index>.<why>-<unix ns>[-wal|-shm] and returns the index's new name.
func moveAside(index, why string) (string, error) {
	aside := fmt.Sprintf("%s.%s-%d", index, why, time.Now().UnixNano())
	for _, suffix := range []string{"", "-wal", "-shm"} {
		err := os.Rename(index+suffix, aside+suffix)
		if err != nil && !(suffix != "" && errors.Is(err, fs.ErrNotExist)) {
			return "", err
		}
	}
	return aside, nil
}

func holderOf(e *lockfile.HeldError) string {
	if e.Holder == "" {
		return "another process"
	}
	return e.Holder
}

// lockAdvice is what to do about the holder of a lock: a spoold serves
// the root until it is stopped; another command (spool, reindex) finishes
// by itself. A holder that cannot be named may be either.
func lockAdvice(e *lockfile.HeldError) string {
	if e.Holder == "" || strings.HasPrefix(e.Holder, "spoold ") {
		return "is spoold running?"
	}
	return "wait for it to finish"
}

// execute runs the requested operation on an open, locked index.
func execute(ctx context.Context, cfg config, st *store.Store, stdout, stderr io.Writer) (int, error) {
	rep := report{Root: cfg.root, Index: cfg.index}
	if cfg.verify {
		rep.Mode = "verify"
		v, err := indexer.VerifyWith(ctx, st, rolloutfs.Local{Root: cfg.root}, indexer.VerifyOptions{Workers: cfg.workers})
		if err != nil {
			return exitError, err
		}
		// Lists, empty ones too, as the sync report's problems.
		if v.Drifts == nil {
			v.Drifts = []indexer.Drift{}
		}
		if v.Problems == nil {
			v.Problems = []indexer.Problem{}
		}
		rep.Verify = &v
		if err := output(stdout, cfg, rep); err != nil {
			return exitError, err
		}
		if !v.Clean() || unreadable(v.Problems) > 0 {
			return exitDrift, nil
		}
		return exitOK, nil
	}

	progress := newProgress(stderr)
	// Temporary files are removed only where reindex may write the root:
	// the index is in it, or --repair (see run); with the index elsewhere
	// the root may be a read-only Codex home, into which nothing is
	// written. Those a create of another process still writes are left
	// (rolloutfs.FS.RemoveTemp).
	writesRoot := cfg.repair || filepath.Clean(filepath.Dir(cfg.index)) == filepath.Clean(cfg.root)
	opts := indexer.SyncOptions{Full: cfg.full, Workers: cfg.workers, Progress: progress.update, RemoveTemps: writesRoot, FirstIndex: true}
	switch {
	case cfg.repair:
		rep.Mode = "repair"
		r, err := indexer.Repair(ctx, st, rolloutfs.Local{Root: cfg.root}, tailRule(cfg), opts)
		progress.finish()
		if err != nil {
			return exitError, err
		}
		rep.Sync, rep.Cuts, rep.Left, rep.Failed = &r.Sync, r.Cuts, r.Left, r.Failed
	default:
		rep.Mode = "sync"
		if cfg.full {
			rep.Mode = "full"
		}
		sum, err := indexer.Sync(ctx, st, rolloutfs.Local{Root: cfg.root}, opts)
		progress.finish()
		if err != nil {
			return exitError, err
		}
		rep.Sync = &sum
	}
	if err := output(stdout, cfg, rep); err != nil {
		return exitError, err
	}
	if len(rep.Left) > 0 || len(rep.Failed) > 0 || rep.Sync != nil && unreadable(rep.Sync.Problems) > 0 {
		return exitDrift, nil
	}
	return exitOK, nil
}

// tailRule is when --repair may cut a torn tail: as an append would, only
// holding the thread's writer lock (not while Codex has it loaded) and
// once the tail is --torn-grace old.
func tailRule(cfg config) indexer.TailRule {
	return indexer.TailRule{
		Grace: cfg.tornGrace,
		Lock: func(id string) (func(), error) {
			l, err := codexlock.TryLock(cfg.root, id)
			if err != nil {
				return nil, err
			}
			return func() { l.Unlock() }, nil
		},
	}
}

// output prints rep as JSON or as text for people.
func output(w io.Writer, cfg config, rep report) error {
	if cfg.json {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	var err error
	printf := func(format string, args ...any) {
		if err == nil {
			_, err = fmt.Fprintf(w, format, args...)
		}
	}
	for _, c := range rep.Cuts {
		if c.Ended {
			printf("ended the last record of %s with the newline it lacked\n", c.Path)
			continue
		}
		printf("cut %s from %s at offset %d, kept in %s\n", count(c.Length, "torn byte"), c.Path, c.Offset, c.SideFile)
	}
	for _, l := range rep.Left {
		again := "run --repair again once its writer is done"
		if l.RetryAfter > 0 {
			again = fmt.Sprintf("run --repair again in %s", l.RetryAfter.Round(100*time.Millisecond))
		}
		printf("left the torn tail of %s: %s; %s\n", l.Path, l.Reason, again)
	}
	for _, f := range rep.Failed {
		printf("could not repair %s: %s\n", f.Path, f.Detail)
	}
	if s := rep.Sync; s != nil {
		for _, p := range s.Problems {
			printf("problem: %s\n", p)
		}
		printf("%s: %d scanned, %d caught up, %d skipped, %d moved, %d renamed, %d deleted, %d failed\n",
			count(s.Files, "file"), s.Scanned, s.CaughtUp, s.Skipped, s.Moved, s.Renamed, s.Deleted, s.Failed)
		printf("read %s, %s, %s in %s (%.1f MB/s)\n", count(s.Lines, "line"), count(s.UserMessages, "user message"),
			formatBytes(s.BytesRead), s.Duration.Round(time.Millisecond), s.MBPerSec)
	}
	if v := rep.Verify; v != nil {
		for _, d := range v.Drifts {
			printf("drift: %s\n", d)
		}
		for _, p := range v.Problems {
			printf("problem: %s\n", p)
		}
		verdict := "index agrees with the files"
		n := unreadable(v.Problems)
		if n > 0 {
			verdict = fmt.Sprintf("index agrees with the files it could index; %d could not be read or indexed", n)
		}
		if !v.Clean() {
			verdict = count(len(v.Drifts), "drift")
			if n > 0 {
				verdict += "; " + count(n, "file") + " could not be read or indexed"
			}
		}
		printf("verified %s against %s in %s: %s\n", count(v.Files, "file"), count(v.Threads, "thread"),
			v.Duration.Round(time.Millisecond), verdict)
	}
	return err
}

// count returns n and noun, plural unless n is 1: "1 line", "2 lines".
func count[N ~int | ~int64](n N, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

func formatBytes(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d bytes", n)
}

// progress shows how far a sync has come on stderr: a progress bar on a
// terminal, otherwise a plain line at most every plainInterval.
type progress struct {
	w        io.Writer
	terminal bool
	bar      *progressbar.ProgressBar
	last     time.Time
	pending  *indexer.SyncProgress // the latest update not yet printed (plain mode)
}

const plainInterval = 2 * time.Second

func newProgress(w io.Writer) *progress {
	return &progress{w: w, terminal: isTerminal(w)}
}

// isTerminal reports whether w is a character device such as a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// update is called by Sync after each file, never concurrently.
func (p *progress) update(sp indexer.SyncProgress) {
	if p.terminal {
		if p.bar == nil {
			p.bar = progressbar.NewOptions(sp.FilesTotal,
				progressbar.OptionSetWriter(p.w),
				progressbar.OptionSetDescription("indexing"),
				progressbar.OptionShowCount(),
				progressbar.OptionSetItsString("files"),
				progressbar.OptionShowIts(),
				progressbar.OptionThrottle(100*time.Millisecond),
				progressbar.OptionClearOnFinish(),
			)
		}
		_ = p.bar.Set(sp.FilesDone)
		return
	}
	p.pending = &sp
	if now := time.Now(); now.Sub(p.last) >= plainInterval {
		p.last = now
		p.printPlain()
	}
}

func (p *progress) printPlain() {
	if p.pending == nil {
		return
	}
	sp := p.pending
	p.pending = nil
	fmt.Fprintf(p.w, "indexed %d/%d files, %s read\n", sp.FilesDone, sp.FilesTotal, formatBytes(sp.BytesRead))
}

// finish completes the bar, or prints the last plain line.
func (p *progress) finish() {
	if p.bar != nil {
		_ = p.bar.Finish()
		return
	}
	p.printPlain()
}

// flagError is an error of the command line's flags, which the flag
// package has already printed with the usage.
type flagError struct{ err error }

func (e flagError) Error() string { return e.err.Error() }

func (e flagError) Unwrap() error { return e.err }

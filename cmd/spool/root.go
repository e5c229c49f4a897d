package main

import (
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/spoolhq/spool/client"
	"github.com/spoolhq/spool/internal/buildhint"
	"github.com/spoolhq/spool/manager"
)

// Exit codes.
const (
	exitOK    = 0
	exitError = 1 // a command failed
	exitUsage = 2 // bad flags or arguments
	// exitDrift ends a doctor that ran and found the index and the files
	// disagree, or a rollout file it could not read: a finding, which a
	// script tells from a doctor that could not check (exitError).
	exitDrift = 3
	// exitInterrupted ends a command interrupted (Ctrl-C, SIGTERM) before
	// it finished, whose output may be cut short: 128+SIGINT, as a shell
	// reports a command that Ctrl-C ended.
	exitInterrupted = 130
)

// env is the process's outside world, injected so tests run the command
// in-process.
type env struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	// lookupEnv is os.LookupEnv: a variable set to "" (PAGER) may mean
	// something else than one unset.
	lookupEnv func(string) (string, bool)
	// terminal reports whether stdout is a terminal: show then pages.
	terminal bool
	// transport carries the requests to spoold; nil is
	// http.DefaultTransport.
	transport http.RoundTripper
	// defaultAddr is spoold's address when none is named; "" is
	// client.DefaultAddr.
	defaultAddr string
	// defaultProbeTimeout and namedProbeTimeout, when not zero, replace
	// the constants of those names.
	defaultProbeTimeout, namedProbeTimeout time.Duration
}

// getenv is the value of the environment variable key, "" when unset.
func (e env) getenv(key string) string {
	v, _ := e.lookupEnv(key)
	return v
}

// app is one run of the command: its flags and the backend it opened.
type app struct {
	env
	addr, token, root string
	// index is the index file of the root opened directly (--index,
	// $SPOOL_INDEX, else ROOT/spool.db), as spoold's -index.
	index      string
	forceLocal bool
	noPager    bool
	b          backend
}

// The health check that decides whether a spoold answers waits so long:
// briefly at the default address, where no answer means the root is
// opened instead; longer at one the user named, where no answer is an
// error, and a busy or distant spoold is still the one meant.
const (
	defaultProbeTimeout = 2 * time.Second
	namedProbeTimeout   = 30 * time.Second
)

// usageError marks an error in the command line.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

// exitCodeError ends the command with a code after its output said why.
type exitCodeError struct{ code int }

func (e exitCodeError) Error() string { return fmt.Sprintf("exit status %d", e.code) }

// run runs the command line args and returns the exit code.
func run(ctx context.Context, args []string, e env) int {
	a := &app{env: e}
	cmd := newRootCmd(a)
	cmd.SetArgs(args)
	err := cmd.ExecuteContext(ctx)
	if a.b != nil {
		if cerr := a.b.Close(); cerr != nil && err == nil {
			err = cerr
		}
	}
	var exit exitCodeError
	var usage usageError
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &exit):
		return exit.code
	case errors.As(err, &usage):
		fmt.Fprintf(printable{e.stderr}, "spool: %v\n(spool -h for help)\n", err)
		return exitUsage
	case ctx.Err() != nil:
		// Interrupted before the command was done (tail -f, which runs
		// until then, returns nil): what it printed may be cut short.
		return exitInterrupted
	default:
		// An error's text may come from elsewhere (a proxy's answer, a
		// file's name): shown, not acted on, as the output is.
		fmt.Fprintf(printable{e.stderr}, "spool: %v\n%s", err, hint(err))
		return exitError
	}
}

// hint says what to do about err, when the error alone does not, as a
// line of its own ("" for none).
func hint(err error) string {
	switch {
	case errors.Is(err, client.ErrUnauthorized):
		return "(give spoold's token with --token or $SPOOL_TOKEN)\n"
	case errors.Is(err, client.ErrReferenced), errors.Is(err, manager.ErrReferenced):
		return "(spool rm --purge deletes it and keeps its forks readable)\n"
	case errors.Is(err, client.ErrBusy), errors.Is(err, manager.ErrBusy):
		return "(a running Codex has the thread loaded and holds it until that process exits: quit it there, or try again later; show and fork work meanwhile)\n"
	}
	return ""
}

func newRootCmd(a *app) *cobra.Command {
	root := &cobra.Command{
		Use:   "spool",
		Short: "Read, fork and manage Codex threads stored by spool",
		Long: `spool is the command line for threads stored by spool: Codex rollout files
plus their index.

It talks to a running spoold at $SPOOL_ADDR (default 127.0.0.1:7878), with the
bearer token $SPOOL_TOKEN. When no spoold answers at the default address,
it opens the root itself: --root, else $SPOOL_ROOT, else ~/.spool, with the
index --index, else $SPOOL_INDEX, else ROOT/spool.db, as spoold takes them
(only one process may hold an index, so this works only while no spoold
serves it). An address named with --addr or $SPOOL_ADDR where no spoold
answers within 30 s is an error: the root would be another store (the
default address gets 2 s). --local opens the root without asking a spoold.

A thread is named by its id, or by a unique prefix or suffix of it: ids are
UUIDv7, so threads started close together share a prefix and their last
characters tell them apart.

Exit status: 0 done, 1 failed, 2 a mistake in the command line, 3 doctor
found drift or a rollout file it cannot index (1 when it could not check),
130 interrupted before it was done (tail -f ends with 0 then, and with 1 when
its follow ends otherwise: the thread deleted or laid out anew, spoold gone).`,
		SilenceErrors: true,
		SilenceUsage:  true,
	}
	root.SetIn(a.stdin)
	root.SetOut(a.stdout)
	root.SetErr(a.stderr)
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	flags := root.PersistentFlags()
	flags.StringVar(&a.addr, "addr", "", "spoold address, host:port or URL (default $SPOOL_ADDR, else "+client.DefaultAddr+")")
	flags.StringVar(&a.token, "token", "", "bearer token for spoold (default $SPOOL_TOKEN)")
	flags.StringVar(&a.root, "root", "", "root to open when no spoold answers (default $SPOOL_ROOT, else ~/.spool)")
	flags.StringVar(&a.index, "index", "", "index file of that root, as spoold's -index (default $SPOOL_INDEX, else ROOT/spool.db)")
	flags.BoolVar(&a.forceLocal, "local", false, "open the root directly, without trying spoold")

	root.AddCommand(
		newLsCmd(a), newShowCmd(a), newTailCmd(a), newForkCmd(a), newTreeCmd(a),
		newSearchCmd(a), newRenameCmd(a), newArchiveCmd(a, true), newArchiveCmd(a, false),
		newRmCmd(a), newDoctorCmd(a), newTransferCmd(a),
	)
	usageErrorsOfCobra(root) // after the commands and SetOut: it makes help and completion
	return root
}

// usageErrorsOfCobra turns the mistakes cobra handles itself into usage
// errors (exit 2, with the hint): an unknown command, which cobra reports
// as a plain error, and an unknown help topic or completion shell, for
// which it prints help and succeeds. Cobra checks for unknown commands
// only at a root without an argument check, and prints help for a command
// that does not run; so the root gets a check and runs help itself, and
// the help and completion commands, made here as cobra makes them, get
// checks of their own.
func usageErrorsOfCobra(root *cobra.Command) {
	root.SuggestionsMinimumDistance = 2
	root.Args = args(func(cmd *cobra.Command, argv []string) error {
		if len(argv) == 0 {
			return nil
		}
		err := fmt.Errorf("unknown command %q for %q", argv[0], cmd.CommandPath())
		if suggestions := cmd.SuggestionsFor(argv[0]); len(suggestions) > 0 {
			err = fmt.Errorf("%w (did you mean %q?)", err, suggestions[0])
		}
		return err
	})
	root.RunE = func(cmd *cobra.Command, _ []string) error { return cmd.Help() }

	root.InitDefaultHelpCmd()
	root.InitDefaultCompletionCmd()
	for _, cmd := range root.Commands() {
		switch cmd.Name() {
		case "help":
			cmd.Run = nil
			cmd.RunE = func(cmd *cobra.Command, topic []string) error {
				target, rest, err := cmd.Root().Find(topic)
				if err != nil || len(rest) > 0 {
					return usageError{fmt.Errorf("unknown help topic %q", strings.Join(topic, " "))}
				}
				target.InitDefaultHelpFlag() // so that help lists -h
				return target.Help()
			}
		case "completion":
			cmd.Args = args(cmd.Args)
			cmd.RunE = func(cmd *cobra.Command, _ []string) error { return cmd.Help() }
		}
	}
}

// args wraps a cobra argument check so a wrong count is a usage error.
func args(check cobra.PositionalArgs) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if err := check(cmd, args); err != nil {
			return usageError{err}
		}
		return nil
	}
}

// idArgs is args(check) for a command whose first n arguments (every one
// when n < 0) name threads: a blank one is a usage error too, found before
// anything is opened or changed.
func idArgs(check cobra.PositionalArgs, n int) cobra.PositionalArgs {
	return args(func(cmd *cobra.Command, argv []string) error {
		if err := check(cmd, argv); err != nil {
			return err
		}
		ids := argv
		if n >= 0 && n < len(argv) {
			ids = argv[:n]
		}
		for _, arg := range ids {
			if err := checkID(arg); err != nil {
				return err
			}
		}
		return nil
	})
}

// checkID fails for an argument that cannot name a thread: an empty or
// blank one, which a prefix or suffix match would take for every id.
func checkID(arg string) error {
	if strings.TrimSpace(arg) == "" {
		return fmt.Errorf("thread id %q is blank", arg)
	}
	return nil
}

func (a *app) setting(flag, envName, def string) string {
	if flag != "" {
		return flag
	}
	if v := a.getenv(envName); v != "" {
		return v
	}
	return def
}

// remoteRetries is how many times a request to spoold is sent again when
// its answer may have been lost.
const remoteRetries = 2

// backend returns the backend of this run, choosing it on first use: the
// spoold at the configured address when it answers /healthz, else the
// root, opened directly.
func (a *app) backend(ctx context.Context) (backend, error) {
	if a.b != nil {
		return a.b, nil
	}
	unanswered := "" // why the default address, where something is, is not used
	if !a.forceLocal {
		defaultAddr := a.defaultAddr
		if defaultAddr == "" {
			defaultAddr = client.DefaultAddr
		}
		addr := a.setting(a.addr, "SPOOL_ADDR", defaultAddr)
		opts := []client.Option{client.WithToken(a.setting(a.token, "SPOOL_TOKEN", ""))}
		if a.transport != nil {
			opts = append(opts, client.WithHTTPClient(&http.Client{Transport: a.transport}))
		}
		c, err := client.New(addr, opts...)
		if err != nil {
			// Named as the user gave it, which the client cannot know.
			switch {
			case a.addr != "":
				err = fmt.Errorf("--addr: %w", err)
			case a.getenv("SPOOL_ADDR") != "":
				err = fmt.Errorf("SPOOL_ADDR: %w", err)
			}
			return nil, usageError{err}
		}
		named := a.addr != "" || a.getenv("SPOOL_ADDR") != ""
		probeTimeout := cmp.Or(a.defaultProbeTimeout, defaultProbeTimeout)
		if named {
			probeTimeout = cmp.Or(a.namedProbeTimeout, namedProbeTimeout)
		}
		probeCtx, cancel := context.WithTimeout(ctx, probeTimeout)
		err = c.Health(probeCtx)
		cancel()
		var apiErr *client.Error
		switch {
		case err == nil:
			// The probe is sent once (no answer means the root); the
			// commands' requests are sent again when lost on the way,
			// where that cannot act twice (client.WithRetries).
			if c, err = client.New(addr, append(opts, client.WithRetries(remoteRetries))...); err != nil {
				return nil, usageError{err}
			}
			a.b = remote{c}
			var named []string
			if a.root != "" {
				named = append(named, "--root "+a.root)
			}
			if a.index != "" {
				named = append(named, "--index "+a.index)
			}
			if len(named) > 0 {
				// Not silently: the user named a root, and this acts on the
				// server's.
				fmt.Fprintf(a.stderr, "spool: %s ignored: using %s (--local opens the root)\n", strings.Join(named, " and "), a.b.Describe())
			}
			return a.b, nil
		case errors.As(err, &apiErr):
			// Something answered: a spoold shutting down, or not a spoold.
			return nil, fmt.Errorf("%s answered /healthz: %w", redacted(c.BaseURL()), err) // err says the status
		case tlsRefused(err):
			// Something answered too, over TLS it does not trust or not
			// over TLS: the root would be another store than the one
			// asked for.
			return nil, fmt.Errorf("%s answered, but not as https asks: %w", redacted(c.BaseURL()), err)
		case ctx.Err() != nil:
			return nil, ctx.Err()
		}
		// No spoold answers. The root is another store than a server the
		// user named (--addr, $SPOOL_ADDR): a command there would list,
		// or delete, other threads. Only at the default address, which
		// the user did not ask for, is the root what was meant.
		why := unansweredProbe(redacted(addr), err, probeTimeout)
		if named {
			return nil, fmt.Errorf("%s (--local opens the root instead)", why)
		}
		if !errors.Is(err, syscall.ECONNREFUSED) {
			// Something is there, but not spoold: say why it is not used.
			unanswered = why
		}
	}
	rootDir := a.setting(a.root, "SPOOL_ROOT", "")
	if rootDir == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return nil, fmt.Errorf("no --root, no $SPOOL_ROOT and no home directory: %w", err)
		}
		rootDir = filepath.Join(home, ".spool")
	}
	logger := slog.New(slog.NewTextHandler(a.stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	a.b = &local{root: rootDir, index: a.setting(a.index, "SPOOL_INDEX", ""), direct: a.forceLocal, stateHome: buildhint.StateHome(a.getenv), log: logger}
	if unanswered != "" {
		fmt.Fprintf(printable{a.stderr}, "spool: %s; using %s\n", unanswered, a.b.Describe())
	}
	return a.b, nil
}

// unansweredProbe says what happened at addr, where the health probe
// failed with err after waiting up to timeout.
func unansweredProbe(addr string, err error, timeout time.Duration) string {
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return fmt.Sprintf("no spoold answers at %s: nothing listens there", addr)
	case errors.Is(err, context.DeadlineExceeded):
		return fmt.Sprintf("no answer from %s within %v", addr, timeout)
	case !dialFailed(err):
		// A connection was made, and what came back (a banner, bytes
		// that are no HTTP status line, or nothing before the close) was
		// no HTTP answer. net/http words that differently with timing.
		return fmt.Sprintf("%s answered, but not as HTTP", addr)
	}
	return fmt.Sprintf("no spoold answers at %s: %v", addr, err)
}

// dialFailed reports whether err failed to make the connection at all.
func dialFailed(err error) bool {
	var opErr *net.OpError
	return errors.As(err, &opErr) && opErr.Op == "dial"
}

// tlsRefused reports whether err is a connection that a server made and
// TLS refused: its certificate is not trusted, or it does not speak TLS.
func tlsRefused(err error) bool {
	var (
		certErr   *tls.CertificateVerificationError
		recordErr tls.RecordHeaderError
	)
	return errors.As(err, &certErr) || errors.As(err, &recordErr) || errors.Is(err, http.ErrSchemeMismatch)
}

// thread opens the backend and resolves arg (an id, or a unique prefix or
// suffix of one) to a thread id on it: the first step of every command
// that acts on one thread.
func (a *app) thread(ctx context.Context, arg string) (backend, string, error) {
	b, err := a.backend(ctx)
	if err != nil {
		return nil, "", err
	}
	id, err := a.resolve(ctx, b, arg)
	if err != nil {
		return nil, "", err
	}
	return b, id, nil
}

// lister lists threads: what resolve needs of a backend.
type lister interface {
	List(ctx context.Context, o client.ListOptions) (client.Page, error)
}

// eachPage lists the threads o selects, page after page from o.Cursor on,
// handing each page's threads to use until it returns false or the last
// page. A server that answers a cursor with itself (a proxy's cache) would
// keep it asking: that is an error.
func eachPage(ctx context.Context, b lister, o client.ListOptions, use func([]client.Thread) bool) error {
	for {
		page, err := b.List(ctx, o)
		if err != nil {
			return err
		}
		if !use(page.Threads) || page.NextCursor == "" {
			return nil
		}
		if page.NextCursor == o.Cursor {
			return fmt.Errorf("list threads: the server answered cursor %q with itself", o.Cursor)
		}
		o.Cursor = page.NextCursor
	}
}

// resolve returns the thread id that arg names: arg itself when it is a
// whole id, else the one thread, live or archived, whose id starts or ends
// with it. Ids are UUIDv7, which begin with their creation time: threads
// started close together share a prefix, and their last characters (random
// bits) tell them apart. A blank arg, which every id would match, is a
// usage error.
func (a *app) resolve(ctx context.Context, b lister, arg string) (string, error) {
	const idLength = 36
	if err := checkID(arg); err != nil {
		return "", usageError{err}
	}
	arg = strings.ToLower(strings.TrimSpace(arg))
	if len(arg) == idLength {
		return arg, nil
	}
	var matches []string
	err := eachPage(ctx, b, client.ListOptions{Limit: 1000, Archived: client.AllThreads}, func(threads []client.Thread) bool {
		for _, t := range threads {
			if strings.HasPrefix(t.ID, arg) || strings.HasSuffix(t.ID, arg) {
				matches = append(matches, t.ID)
			}
		}
		return true
	})
	if err != nil {
		return "", err
	}
	switch len(matches) {
	case 0:
		return "", fmt.Errorf("no thread id starts or ends with %q", arg)
	case 1:
		return matches[0], nil
	default:
		named := strings.Join(matches[:2], ", ")
		if len(matches) > 2 {
			named += ", ..."
		}
		return "", fmt.Errorf("%q is ambiguous: %d thread ids start or end with it (%s)", arg, len(matches), named)
	}
}

// page writes what fn writes through $PAGER (unset: "less -FRX"; set to
// "": none, as git and man take it) when stdout is a terminal, and
// straight to stdout otherwise.
func (a *app) page(ctx context.Context, fn func(w io.Writer) error) error {
	pager, set := a.lookupEnv("PAGER")
	if !set {
		pager = "less -FRX"
	}
	if !a.terminal || a.noPager || pager == "" {
		return fn(a.stdout)
	}
	// Not killed when interrupted: the pager got the same Ctrl-C from the
	// terminal and handles it as it does (less takes it for itself). A
	// kill reaches the shell, and leaves a less it started on the
	// terminal, orphaned, or, where the shell execs it, kills less before
	// it can restore the terminal. What the pager was given ends instead,
	// and it ends when its reader quits it; a second Ctrl-C ends spool at
	// once (interrupt.Context).
	cmd := exec.Command("sh", "-c", pager)
	cmd.Stdout, cmd.Stderr = a.stdout, a.stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		return fn(a.stdout)
	}
	if err := cmd.Start(); err != nil {
		return fn(a.stdout)
	}
	// A write blocked on a pager that reads no further (less reads only
	// what it shows) is let go too.
	stopWriting := context.AfterFunc(ctx, func() { in.Close() })
	werr := fn(in)
	stopWriting()
	in.Close()
	perr := cmd.Wait()
	var exit *exec.ExitError
	switch {
	case werr != nil && ctx.Err() != nil:
		// Interrupted before all was written (the write may have failed
		// as its pipe was closed): the pager's text is cut short.
		return ctx.Err()
	case errors.As(perr, &exit) && exit.ExitCode() == 127:
		// The shell found no such pager: print plainly instead.
		return fn(a.stdout)
	case perr != nil:
		// The reader may have seen nothing.
		return fmt.Errorf("pager %q: %w", pager, perr)
	case werr != nil && !isBrokenPipe(werr):
		// A reader who quits the pager early makes our writes fail: that
		// is not an error of the command.
		return werr
	}
	return nil
}

func isBrokenPipe(err error) bool {
	return errors.Is(err, os.ErrClosed) || strings.Contains(err.Error(), "broken pipe")
}

// completeFirstID is completeIDs for a command that takes one thread, as
// its first argument (then, for rename, a name): nothing after it.
func (a *app) completeFirstID(cmd *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
	if len(args) > 0 {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	return a.completeIDs(cmd, args, toComplete)
}

// completeIDs completes thread ids, most recently updated first, with
// their names as descriptions, which shells print: their control
// characters are shown as printable shows them.
func (a *app) completeIDs(cmd *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
	b, err := a.backend(cmd.Context())
	if err != nil {
		return nil, cobra.ShellCompDirectiveError
	}
	page, err := b.List(cmd.Context(), client.ListOptions{Limit: 200, Archived: client.AllThreads})
	if err != nil {
		return nil, cobra.ShellCompDirectiveError
	}
	var out []string
	for _, t := range page.Threads {
		if strings.HasPrefix(t.ID, toComplete) {
			out = append(out, t.ID+"\t"+printableString(label(t)))
		}
	}
	return out, cobra.ShellCompDirectiveNoFileComp
}

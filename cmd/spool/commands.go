package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/spoolhq/spool/client"
	"github.com/spoolhq/spool/manager"
	"github.com/spoolhq/spool/rollout"
	"github.com/spoolhq/spool/store"
)

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// label is what people call a thread: its name, else its first prompt.
func label(t client.Thread) string {
	// A name of white space alone is no name (as Codex shows it), and
	// one over several lines would break a table.
	if name := oneLine(t.Name, 80); name != "" {
		return name
	}
	if t.Preview != "" {
		return fmt.Sprintf("%q", oneLine(t.Preview, 60))
	}
	if t.UserMessageCount > 0 {
		// Prompts without an echo (bare items) give no preview, as in
		// Codex; the thread is not empty for that.
		return "(no preview)"
	}
	return "(no messages)"
}

// oneLine flattens s onto one line of at most n runes.
func oneLine(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return s
}

func when(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.Local().Format("2006-01-02 15:04")
}

func newLsCmd(a *app) *cobra.Command {
	var (
		o        client.ListOptions
		limit    int
		archived bool
		all      bool
		spawned  bool
		notSpawn bool
		created  bool
		asJSON   bool
	)
	cmd := &cobra.Command{
		Use:   "ls",
		Short: "List threads, most recently updated first",
		Long: `List threads as a table: id, last update, user messages, flags (A archived,
F a fork) and name (or first prompt; "(no preview)" when its prompts have no
echo to give one, as Codex shows none). --json prints the threads as the API
returns them.`,
		Args: args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			switch {
			case archived && all:
				return usageError{errors.New("--archived and --all exclude each other")}
			case archived:
				o.Archived = client.ArchivedOnly
			case all:
				o.Archived = client.AllThreads
			}
			switch {
			case spawned && notSpawn:
				return usageError{errors.New("--subagents and --no-subagents exclude each other")}
			case spawned:
				o.Spawned = client.SpawnedOnly
			case notSpawn:
				o.Spawned = client.NotSpawned
			}
			if created {
				o.Sort = client.SortCreated
			}
			if limit < 0 {
				return usageError{fmt.Errorf("--limit must not be negative, not %d", limit)}
			}
			var err error
			if o.Cwd, err = absDir(o.Cwd); err != nil {
				return err
			}
			ctx := cmd.Context()
			b, err := a.backend(ctx)
			if err != nil {
				return err
			}
			if o.ParentID != "" {
				if o.ParentID, err = a.resolve(ctx, b, o.ParentID); err != nil {
					return err
				}
			}
			var threads []client.Thread
			o.Limit = 1000
			if limit > 0 {
				o.Limit = min(limit, 1000)
			}
			err = eachPage(ctx, b, o, func(page []client.Thread) bool {
				threads = append(threads, page...)
				return limit == 0 || len(threads) < limit
			})
			if err != nil {
				return err
			}
			if limit > 0 && len(threads) > limit {
				threads = threads[:limit]
			}
			if asJSON {
				if threads == nil {
					threads = []client.Thread{}
				}
				return writeJSON(a.stdout, threads)
			}
			tw := tabwriter.NewWriter(printable{a.stdout}, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tUPDATED\tMSGS\tFLAGS\tNAME")
			for _, t := range threads {
				flags := ""
				if t.Archived {
					flags += "A"
				}
				if t.ParentID != "" {
					flags += "F"
				}
				if flags == "" {
					flags = "-"
				}
				fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\n", t.ID, when(t.UpdatedAt), t.UserMessageCount, flags, label(t))
			}
			return tw.Flush()
		},
	}
	f := cmd.Flags()
	f.IntVarP(&limit, "limit", "n", 50, "at most this many threads; 0 for all")
	f.BoolVar(&archived, "archived", false, "archived threads only")
	f.BoolVarP(&all, "all", "a", false, "live and archived threads")
	f.BoolVar(&spawned, "subagents", false, "only sub-agents, threads another thread spawned")
	f.BoolVar(&notSpawn, "no-subagents", false, "leave spawned sub-agents out, as Codex's list does")
	f.BoolVar(&created, "created", false, "order by creation time instead of last update")
	f.BoolVar(&o.Ascending, "reverse", false, "oldest first")
	f.StringVar(&o.Cwd, "cwd", "", "only threads started in this directory (exact; a relative one is taken from here)")
	f.StringVar(&o.Text, "grep", "", "only threads whose name or first prompt contains this (any case)")
	f.StringVar(&o.ParentID, "parent", "", "only direct forks of this thread")
	f.StringVar(&o.Source, "source", "", "only threads of this source, as their session_meta names it (cli, vscode, exec, mcp, ...)")
	f.StringVar(&o.ModelProvider, "model-provider", "", "only threads of this model provider (openai, ollama, ...)")
	f.BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func newShowCmd(a *app) *cobra.Command {
	var (
		from int
		opts renderOptions
	)
	cmd := &cobra.Command{
		Use:   "show ID",
		Short: "Show a thread's conversation, turn by turn",
		Long: `Show a thread's conversation for reading: its prompts (numbered as spool and
forks count them), answers, tool calls and their output, renames and
rollbacks. Session setup, reasoning and events are left out unless --all.
On a terminal the output goes through $PAGER (unset: "less -FRX"; set to "":
none).
--raw prints the rollout lines as stored (NDJSON).`,
		Args:              idArgs(cobra.ExactArgs(1), 1),
		ValidArgsFunction: a.completeFirstID,
		RunE: func(cmd *cobra.Command, argv []string) error {
			if from < -1 { // -1, the default, is the whole thread
				return usageError{fmt.Errorf("--from must be 0 or more, not %d", from)}
			}
			ctx := cmd.Context()
			b, id, err := a.thread(ctx, argv[0])
			if err != nil {
				return err
			}
			thread, err := b.Get(ctx, id)
			if err != nil {
				return err
			}
			turns, err := b.Turns(ctx, id)
			if err != nil {
				return err
			}
			if from == 0 && len(turns) == 0 {
				// Message 0 onwards of a thread with none yet is all of
				// it, as a script reading threads from their start expects.
				from = -1
			}
			start := int64(0)
			if from >= 0 {
				if from >= len(turns) {
					return fmt.Errorf("thread %s has %s; --from %d is out of range", id, count(len(turns), "user message"), from)
				}
				start = turns[from].Offset
			}
			return a.page(ctx, func(w io.Writer) error {
				r := newRenderer(w, opts, thread.ID, turns)
				if !opts.raw {
					r.header(thread)
				}
				for line, err := range b.Items(ctx, id, from) {
					if err != nil {
						return err
					}
					if err := r.line(line, start); err != nil {
						return err
					}
				}
				return nil
			})
		},
	}
	f := cmd.Flags()
	f.IntVar(&from, "from", -1, "start at this user message (0-based)")
	f.BoolVar(&opts.raw, "raw", false, "print the rollout lines as stored")
	f.BoolVar(&opts.all, "all", false, "also show setup messages, reasoning and other lines")
	f.BoolVar(&a.noPager, "no-pager", false, "never page")
	return cmd
}

func newTailCmd(a *app) *cobra.Command {
	var (
		turnsBack   int
		follow      bool
		interval    time.Duration
		maxInterval time.Duration
		opts        renderOptions
	)
	cmd := &cobra.Command{
		Use:   "tail ID",
		Short: "Show a thread's last turns; -f to follow it",
		Long: `Show the last turns of a thread (-n, default 1) and, with -f, keep printing
lines as they are appended until interrupted.

-f reads spoold's follow stream (GET /v1/threads/{id}/items?follow=1): each
line comes as it is appended, without polling. It needs a running spoold: on
a root opened directly this command holds the root's lock, so nothing else
could append to it.`,
		Args:              idArgs(cobra.ExactArgs(1), 1),
		ValidArgsFunction: a.completeFirstID,
		RunE: func(cmd *cobra.Command, argv []string) (err error) {
			if turnsBack < 0 { // --interval and --max-interval are ignored, whatever they say
				return usageError{errors.New("-n must be >= 0")}
			}
			ctx := cmd.Context()
			defer func() {
				if follow && ctx.Err() != nil {
					err = nil // -f runs until interrupted: that is its end
				}
			}()
			b, err := a.backend(ctx)
			if err != nil {
				return err
			}
			if _, isLocal := b.(*local); follow && isLocal {
				why := "no spoold answers"
				if a.forceLocal {
					why = "--local opens the root directly"
				}
				return fmt.Errorf("tail -f needs a running spoold: %s, and on the %s, held by this command, nothing else can append", why, b.Describe())
			}
			id, err := a.resolve(ctx, b, argv[0])
			if err != nil {
				return err
			}
			turns, err := b.Turns(ctx, id)
			if err != nil {
				return err
			}
			from, start := -1, int64(0)
			if turnsBack > 0 && len(turns) > turnsBack {
				from = len(turns) - turnsBack
				start = turns[from].Offset
			}
			r := newRenderer(a.stdout, opts, id, turns)
			seen := start
			if turnsBack > 0 || !follow {
				for line, err := range b.Items(ctx, id, from) {
					if err != nil {
						return err
					}
					if err := r.line(line, start); err != nil {
						return err
					}
					seen = start + line.Offset + int64(len(line.Raw)) + 1
				}
			} else {
				thread, err := b.Get(ctx, id)
				if err != nil {
					return err
				}
				seen = thread.HistorySize()
			}
			if !follow {
				return nil
			}
			server, ok := b.(remote)
			if !ok {
				return fmt.Errorf("tail -f needs a running spoold, not the %s", b.Describe())
			}
			for line, err := range server.Follow(ctx, id, seen) {
				if err != nil {
					return followEnded(id, err)
				}
				if rollout.Classify(rollout.NewLine(line.Raw, line.Offset, 0)).Kind == rollout.KindUserMessage {
					// A new prompt: learn its ordinal (the line is indexed,
					// or it would not have been streamed).
					t, err := b.Turns(ctx, id)
					if err != nil {
						return err
					}
					r.turns = turnOffsets(t)
				}
				if err := r.line(line, 0); err != nil {
					return err
				}
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.IntVarP(&turnsBack, "turns", "n", 1, "show the last N turns first (0: the whole thread, or with -f only new lines)")
	f.BoolVarP(&follow, "follow", "f", false, "keep printing lines as they are appended (spoold's follow stream)")
	// -f polled before spoold's follow stream; the flags stay so scripts
	// that pass them still run.
	f.DurationVar(&interval, "interval", 250*time.Millisecond, "ignored: -f streams")
	f.DurationVar(&maxInterval, "max-interval", 5*time.Second, "ignored: -f streams")
	_ = f.MarkDeprecated("interval", "-f reads spoold's follow stream, without polling")
	_ = f.MarkDeprecated("max-interval", "-f reads spoold's follow stream, without polling")
	f.BoolVar(&opts.raw, "raw", false, "print the rollout lines as stored")
	f.BoolVar(&opts.all, "all", false, "also show setup messages, reasoning and other lines")
	return cmd
}

func newForkCmd(a *app) *cobra.Command {
	var (
		before      int
		turnID      string
		throughTurn string
		o           client.ForkOptions
		asJSON      bool
	)
	cmd := &cobra.Command{
		Use:   "fork ID",
		Short: "Fork a thread, whole, before a user message or by Codex turn",
		Long: `Create a new thread from a thread's history and print its id.

--before N keeps everything strictly before user message N (0-based, as
"spool show" numbers them; 0 keeps only the session setup). spool's turn k
starts at user message k, so this is "keep turns 0..N-1".

--before-turn ID cuts before the Codex turn ID (the turn_id of its
task_started and turn_context lines), before the turn's opening lines, as
Codex's own cut does. --through-turn ID keeps everything through the end of
that turn (its task_complete line), as Codex's fork with lastTurnId does; a
turn that has not ended is refused. The server finds the turn in its index.

With neither, the fork has the whole thread. A paginated thread (Codex
0.169's default) is forked by reference: the fork points into its history and
nothing is copied; a legacy thread's file is copied.`,
		Args:              idArgs(cobra.ExactArgs(1), 1),
		ValidArgsFunction: a.completeFirstID,
		RunE: func(cmd *cobra.Command, argv []string) error {
			if cmd.Flags().Changed("before") {
				if before < 0 {
					return usageError{fmt.Errorf("--before must not be negative, not %d", before)}
				}
				o.BeforeUserMessage = &before
			}
			o.BeforeTurnID, o.LastTurnID = turnID, throughTurn
			points := manager.ForkOptions{BeforeUserMessage: o.BeforeUserMessage, BeforeTurnID: o.BeforeTurnID, LastTurnID: o.LastTurnID}
			if points.Points() > 1 {
				return usageError{errors.New("--before, --before-turn and --through-turn exclude each other")}
			}
			var err error
			if o.Cwd, err = absDir(o.Cwd); err != nil {
				return err
			}
			ctx := cmd.Context()
			b, id, err := a.thread(ctx, argv[0])
			if err != nil {
				return err
			}
			fork, err := b.Fork(ctx, id, o)
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSON(a.stdout, fork)
			}
			_, err = fmt.Fprintln(a.stdout, fork.ID)
			return err
		},
	}
	f := cmd.Flags()
	f.IntVar(&before, "before", 0, "keep only what precedes user message N (0-based)")
	f.StringVar(&turnID, "before-turn", "", "keep only what precedes this Codex turn id")
	f.StringVar(&throughTurn, "through-turn", "", "keep everything through the end of this Codex turn id")
	f.StringVar(&o.Name, "name", "", "name of the new thread")
	f.StringVar(&o.Cwd, "cwd", "", "working directory recorded for the new thread (a relative one is taken from here)")
	f.StringVar(&o.Source, "source", "", "source recorded for the new thread (cli, vscode, exec, mcp, ...; default the parent's)")
	f.BoolVar(&asJSON, "json", false, "print the new thread as JSON")
	return cmd
}

func newTreeCmd(a *app) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "tree ID",
		Short: "Draw the fork tree a thread belongs to",
		Long: `Draw the fork tree of a thread: its oldest ancestor still known and every
thread forked from it, transitively. The thread asked about is marked ◀.
Deleted threads that still have forks are shown as (deleted).`,
		Args:              idArgs(cobra.ExactArgs(1), 1),
		ValidArgsFunction: a.completeFirstID,
		RunE: func(cmd *cobra.Command, argv []string) error {
			ctx := cmd.Context()
			b, id, err := a.thread(ctx, argv[0])
			if err != nil {
				return err
			}
			tree, err := b.Tree(ctx, id)
			if err != nil {
				return err
			}
			if asJSON {
				if tree.Members == nil {
					tree.Members = []client.Relative{}
				}
				return writeJSON(a.stdout, tree)
			}
			return drawTree(a.stdout, tree, id)
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the tree as the API returns it")
	return cmd
}

func newSearchCmd(a *app) *cobra.Command {
	var (
		o        client.SearchOptions
		live     bool
		archived bool
		asJSON   bool
	)
	cmd := &cobra.Command{
		Use:   "search QUERY...",
		Short: "Search the text of user messages",
		Long: `Search user messages with SQLite FTS5 (words match as terms; "a b" is a
phrase; AND, OR, NOT and prefix* work). Prints the thread, the user message
number and a snippet with the match in «».`,
		Args: args(cobra.MinimumNArgs(1)),
		RunE: func(cmd *cobra.Command, argv []string) error {
			switch {
			case live && archived:
				return usageError{errors.New("--live and --archived exclude each other")}
			case live:
				o.Archived = client.LiveOnly
			case archived:
				o.Archived = client.ArchivedOnly
			}
			if o.Limit < 1 || o.Limit > store.MaxSearchLimit {
				// ls and tail take 0 for "all"; a search answers one page.
				return usageError{fmt.Errorf("--limit must be 1..%d, not %d: a search gives at most %d hits", store.MaxSearchLimit, o.Limit, store.MaxSearchLimit)}
			}
			o.Query = strings.Join(argv, " ")
			if strings.TrimSpace(o.Query) == "" {
				// Found here, so both backends say the same.
				return usageError{fmt.Errorf("search query is blank, %q: give words to search for", o.Query)}
			}
			ctx := cmd.Context()
			b, err := a.backend(ctx)
			if err != nil {
				return err
			}
			hits, err := b.Search(ctx, o)
			if err != nil {
				return err
			}
			if asJSON {
				if hits == nil {
					hits = []client.SearchHit{}
				}
				return writeJSON(a.stdout, hits)
			}
			if len(hits) == 0 {
				fmt.Fprintln(a.stderr, "no matches")
				return nil
			}
			tw := tabwriter.NewWriter(printable{a.stdout}, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "THREAD\tMSG\tSNIPPET")
			for _, h := range hits {
				fmt.Fprintf(tw, "%s\t%d\t%s\n", h.ThreadID, h.Ordinal, oneLine(h.Snippet, 100))
			}
			return tw.Flush()
		},
	}
	f := cmd.Flags()
	f.IntVarP(&o.Limit, "limit", "n", store.DefaultSearchLimit, fmt.Sprintf("at most this many hits (1..%d)", store.MaxSearchLimit))
	f.BoolVar(&live, "live", false, "live threads only")
	f.BoolVar(&archived, "archived", false, "archived threads only")
	f.BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func newRenameCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:               "rename ID NAME",
		Short:             `Rename a thread ("" clears the name)`,
		Args:              idArgs(cobra.ExactArgs(2), 1),
		ValidArgsFunction: a.completeFirstID,
		RunE: func(cmd *cobra.Command, argv []string) error {
			ctx := cmd.Context()
			b, id, err := a.thread(ctx, argv[0])
			if err != nil {
				return err
			}
			t, err := b.Rename(ctx, id, argv[1])
			if err != nil {
				return err
			}
			_, err = fmt.Fprintf(printable{a.stdout}, "%s  %s\n", t.ID, label(t))
			return err
		},
	}
}

// eachThread runs fn on every thread the arguments name, reporting each
// result, and fails if any did.
func eachThread(a *app, cmd *cobra.Command, argv []string, fn func(b backend, id string) (string, error)) error {
	ctx := cmd.Context()
	b, err := a.backend(ctx)
	if err != nil {
		return err
	}
	failed := 0
	for _, arg := range argv {
		if ctx.Err() != nil {
			return ctx.Err() // interrupted: the rest are not failures
		}
		id, err := a.resolve(ctx, b, arg)
		var done string
		if err == nil {
			done, err = fn(b, id)
		}
		if err != nil && ctx.Err() != nil {
			return err
		}
		if err != nil {
			// Say which argument failed, unless the error names it
			// already (a thread's errors name its whole id).
			which := arg + ": "
			if strings.Contains(err.Error(), strings.ToLower(strings.TrimSpace(arg))) {
				which = ""
			}
			fmt.Fprintf(printable{a.stderr}, "spool: %s%v\n%s", which, err, hint(err))
			failed++
			continue
		}
		if _, err := fmt.Fprintln(a.stdout, done); err != nil {
			return err // what is done goes unreported: do no more
		}
	}
	if failed > 0 {
		return exitCodeError{exitError}
	}
	return nil
}

func newArchiveCmd(a *app, archive bool) *cobra.Command {
	use, short, verb := "archive ID...", "Archive threads (move their files to archived_sessions/)", "archived"
	if !archive {
		use, short, verb = "unarchive ID...", "Bring archived threads back", "unarchived"
	}
	return &cobra.Command{
		Use:               use,
		Short:             short,
		Args:              idArgs(cobra.MinimumNArgs(1), -1),
		ValidArgsFunction: a.completeIDs,
		RunE: func(cmd *cobra.Command, argv []string) error {
			return eachThread(a, cmd, argv, func(b backend, id string) (string, error) {
				op := b.Archive
				if !archive {
					op = b.Unarchive
				}
				if _, err := op(cmd.Context(), id); err != nil {
					return "", err
				}
				return verb + " " + id, nil
			})
		},
	}
}

func newRmCmd(a *app) *cobra.Command {
	var purge bool
	cmd := &cobra.Command{
		Use:   "rm ID...",
		Short: "Delete threads: their files and index rows",
		Long: `Delete threads: each one's rollout file and index rows are removed for good
(archive keeps them). Forks of a deleted thread keep their history and lineage.

A thread that reference forks use as their base is not deleted (as in Codex):
delete the forks first, or pass --purge, which first rewrites every thread
whose history continues it into a self-contained file (same id, same turns)
and then deletes it, its text and search rows included.`,
		Args:              idArgs(cobra.MinimumNArgs(1), -1),
		ValidArgsFunction: a.completeIDs,
		RunE: func(cmd *cobra.Command, argv []string) error {
			return eachThread(a, cmd, argv, func(b backend, id string) (string, error) {
				if purge {
					if err := b.Purge(cmd.Context(), id); err != nil {
						return "", err
					}
					return "purged " + id, nil
				}
				if err := b.Delete(cmd.Context(), id); err != nil {
					return "", err
				}
				return "deleted " + id, nil
			})
		},
	}
	cmd.Flags().BoolVar(&purge, "purge", false, "also delete a base of reference forks, making them self-contained first")
	return cmd
}

func newDoctorCmd(a *app) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "doctor",
		Short: "Check the index against the rollout files",
		Long: `Check that the index agrees with the rollout files. Exit status: 0 they agree,
3 they do not or a rollout file could not be read or indexed at all (what
"reindex --verify" fails for), 1 doctor could not check (no index, spoold gone).

On a root opened directly (no spoold running, or --local) this is
"reindex --verify": every file is re-read and compared with its index rows,
ancestry included, and nothing is changed; it takes no lock, so it runs
beside a spoold serving the root too. Through spoold, which has no
verify route, it checks each thread's streamed history against its index
row and turns instead (a thread whose history cannot be read, its base
cut or reverted under it, is a broken_chain drift), which cannot see files
the index does not know;
a thread another process appended to while doctor runs shows as drift
there once (reading it catches the index up): run doctor again before
acting on one. "reindex --repair" or a restart of spoold fixes what
doctor finds.`,
		Args: args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			b, err := a.backend(ctx)
			if err != nil {
				return err
			}
			rep, err := b.Doctor(ctx)
			if err != nil {
				return err
			}
			if asJSON {
				if rep.Drifts == nil {
					rep.Drifts = []drift{}
				}
				if rep.Problems == nil {
					rep.Problems = []string{}
				}
				if err := writeJSON(a.stdout, rep); err != nil {
					return err
				}
			} else {
				var out bytes.Buffer
				fmt.Fprintf(&out, "%s\nchecked: %s\n", rep.Where, rep.Method)
				if rep.Files > 0 {
					fmt.Fprintf(&out, "%s, ", count(rep.Files, "file"))
				}
				fmt.Fprintf(&out, "%s, %s, %s\n", count(rep.Threads, "thread"), count(len(rep.Drifts), "drift"), count(len(rep.Problems), "problem"))
				for _, d := range rep.Drifts {
					fmt.Fprintf(&out, "drift %s: thread %s (%s): %s\n", d.Kind, d.ThreadID, d.Path, d.Detail)
				}
				for _, p := range rep.Problems {
					fmt.Fprintf(&out, "problem: %s\n", p)
				}
				// Paths and details may hold any byte.
				if _, err := (printable{a.stdout}).Write(out.Bytes()); err != nil {
					return err
				}
			}
			if len(rep.Drifts) > 0 || rep.unreadable > 0 {
				return exitCodeError{exitDrift}
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the report as JSON")
	return cmd
}

// absDir returns dir as an absolute path when it is relative (".", "src"):
// Codex records a thread's directory absolute, so a relative one would
// match no thread and mean nothing in a new one. An absolute dir is
// cleaned (no trailing slash, "." or "//"), as Codex 0.169 cleans the cwd
// it records ("/p/" and "/./p" both record "/p") and as a relative one is:
// the API matches it exactly, and a shell's completion ends a directory
// with a slash.
func absDir(dir string) (string, error) {
	if dir == "" {
		return dir, nil
	}
	if filepath.IsAbs(dir) {
		return filepath.Clean(dir), nil
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", fmt.Errorf("--cwd %s: %w", dir, err)
	}
	return abs, nil
}

// followEnded says why a follow of thread id ended, and what to do about
// it: for the ends the server names, and for a connection that broke (the
// reader's "unexpected EOF" alone says neither). The server's error
// answers pass as they are.
func followEnded(id string, err error) error {
	var (
		end    *client.StreamEndError
		apiErr *client.Error
	)
	switch {
	case errors.As(err, &apiErr):
		return err
	case !errors.As(err, &end):
		return fmt.Errorf("lost the connection to spoold while following thread %s (%w); run spool tail -f again once it answers", id, err)
	}
	switch end.Reason {
	case "reverted":
		// The server ends a follow so for three changes it does not tell
		// apart; only the first changes what the thread's history is.
		return fmt.Errorf("thread %s was laid out anew (reverted, rewritten by another program, or made self-contained by the purge of a thread it was forked from): "+
			"its lines are at other offsets and, after a revert, some of those shown are no longer its history; run spool tail -f again to follow it", id)
	case "deleted":
		return fmt.Errorf("thread %s was deleted", id)
	case "shutdown":
		return fmt.Errorf("spoold shut down; run spool tail -f again once it is back")
	}
	return err
}

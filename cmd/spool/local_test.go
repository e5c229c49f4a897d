package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spoolhq/spool/api"
	"github.com/spoolhq/spool/client"
	"github.com/spoolhq/spool/internal/buildhint"
	"github.com/spoolhq/spool/internal/fixtures"
	"github.com/spoolhq/spool/internal/shellquote"
	"github.com/spoolhq/spool/internal/storetest"
	"github.com/spoolhq/spool/lockfile"
	"github.com/spoolhq/spool/manager"
	"github.com/spoolhq/spool/rollout"
)

// seedRoot writes a parent with two prompts and a fork before the second
// into a new root through the manager, and closes it.
func seedRoot(t *testing.T) (root string, parent, fork manager.Thread) {
	t.Helper()
	root = t.TempDir()
	ctx := t.Context()
	storetest.Write(t, filepath.Join(root, manager.IndexFile))
	m, err := manager.Open(ctx, manager.Options{Root: root, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatalf("open manager: %v", err)
	}
	defer func() {
		if err := m.Close(); err != nil {
			t.Fatalf("close manager: %v", err)
		}
	}()
	if parent, err = m.Start(ctx, manager.StartOptions{Name: "local parent"}); err != nil {
		t.Fatalf("Start: %v", err)
	}
	var items []rollout.Item
	for _, text := range []string{"local prompt one", "local prompt two"} {
		p := item("user", text)
		items = append(items, rollout.Item{Type: p.Type, Payload: p.Payload})
	}
	if _, err := m.Append(ctx, parent.ID, items); err != nil {
		t.Fatalf("Append: %v", err)
	}
	one := 1
	if fork, err = m.Fork(ctx, parent.ID, manager.ForkOptions{BeforeUserMessage: &one, Name: "local fork"}); err != nil {
		t.Fatalf("Fork: %v", err)
	}
	if parent, err = m.Get(ctx, parent.ID); err != nil {
		t.Fatalf("Get: %v", err)
	}
	return root, parent, fork
}

// listenLoopback serves each connection to a loopback address with
// serve, until the test ends.
func listenLoopback(t *testing.T, serve func(net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	var conns sync.WaitGroup
	t.Cleanup(func() { ln.Close(); conns.Wait() })
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			conns.Go(func() { serve(conn) })
		}
	}()
	return ln.Addr().String()
}

// TestNamedAddressIsNotAFallback: a server address the user named
// (--addr, $SPOOL_ADDR) where no spoold answers is an error that names
// it and what happened there, never a root opened instead, which is
// another store (a command would list, or delete, the threads of that
// one); --local opens the root. Only the default address, which the user
// did not ask for, falls back, and says why when something else than
// nothing answered there. spool fell back at a named address too.
func TestNamedAddressIsNotAFallback(t *testing.T) {
	root, parent, _ := seedRoot(t)
	notHTTP := listenLoopback(t, func(c net.Conn) {
		io.WriteString(c, "SSH-2.0-OpenSSH_9.6\r\n")
		c.Close()
	})
	hangsUp := listenLoopback(t, func(c net.Conn) { c.Close() })
	silent := listenLoopback(t, func(c net.Conn) {
		io.Copy(io.Discard, c) // until the client gives up
		c.Close()
	})
	closed := fixtures.ClosedAddr(t)
	// Only the silent server's case waits out the probe: the others are
	// answered at once, and a probe as short (2 s, the default address's)
	// could end first on a busy machine.
	const short, long = 2 * time.Second, time.Minute
	tests := []struct {
		name        string
		addr        string
		byFlag      bool
		defaultAddr bool // addr is the default address, not named
		probe       time.Duration
		want        string
	}{
		{"nothing listens, $SPOOL_ADDR", closed, false, false, long, "no spoold answers at " + closed},
		{"nothing listens, --addr", closed, true, false, long, "no spoold answers at " + closed},
		{"not HTTP", notHTTP, false, false, long, notHTTP + " answered, but not as HTTP"},
		{"hangs up", hangsUp, true, false, long, hangsUp + " answered, but not as HTTP"},
		{"no answer in time", silent, true, false, short, "no answer from " + silent + " within 2s"},
		{"not HTTP at the default address", notHTTP, false, true, long, notHTTP + " answered, but not as HTTP; using root " + root},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cli := newCLI(t, map[string]string{"SPOOL_ROOT": root})
			cli.defaultProbeTimeout, cli.namedProbeTimeout = tc.probe, tc.probe
			args := []string{"ls"}
			switch {
			case tc.defaultAddr:
				cli.defaultAddr = tc.addr
			case tc.byFlag:
				args = append(args, "--addr", tc.addr)
			default:
				cli.vars["SPOOL_ADDR"] = tc.addr
			}
			r := cli.run(args...)
			if !strings.Contains(r.stderr, tc.want) {
				t.Errorf("stderr %q, want it to say %q", r.stderr, tc.want)
			}
			if tc.defaultAddr {
				if r.code != exitOK || !strings.Contains(r.stdout, parent.ID) {
					t.Errorf("at the default address: exit %d, stdout %q; want 0 and the root's threads", r.code, r.stdout)
				}
				return
			}
			if r.code != exitError || strings.Contains(r.stdout, parent.ID) || !strings.Contains(r.stderr, "--local") {
				t.Errorf("at a named address: exit %d, stdout %q, stderr %q; want %d, the root not listed, and --local named", r.code, r.stdout, r.stderr, exitError)
			}
		})
	}
}

func TestLocalRoot(t *testing.T) {
	root, parent, fork := seedRoot(t)
	cli := newCLI(t, map[string]string{"SPOOL_ROOT": root}) // no spoold at the default address

	r := cli.run("ls")
	if r.code != 0 || !strings.Contains(r.stdout, parent.ID) || !strings.Contains(r.stdout, "local fork") {
		t.Fatalf("ls on the root (no spoold answering): exit %d, stderr %q, stdout:\n%s", r.code, r.stderr, r.stdout)
	}
	if out := cli.ok("show", parent.ID); !strings.Contains(out, "── user #1") || !strings.Contains(out, "local prompt two") {
		t.Fatalf("show on the root:\n%s", out)
	}
	if out := cli.ok("search", "two"); !strings.Contains(out, parent.ID) {
		t.Fatalf("search on the root:\n%s", out)
	}
	newID := strings.TrimSpace(cli.ok("--local", "--root", root, "fork", "--before", "0", fork.ID))
	want := parent.ID + "  local parent  [2 msgs]\n" +
		"└── " + fork.ID + "  local fork  [before #1, 1 msg]\n" +
		"    └── " + newID + "  local fork  [before #0, 0 msgs]  ◀\n" // named as its parent
	if out := cli.ok("tree", newID); out != want {
		t.Fatalf("tree on the root =\n%s\nwant\n%s", out, want)
	}
	if r := cli.run("tail", "-f", parent.ID); r.code != exitError || !strings.Contains(r.stderr, "needs a running spoold: no spoold answers") {
		t.Fatalf("tail -f on a root: exit %d, stderr %q; want 1 and why", r.code, r.stderr)
	}
	// With --local no spoold was asked: the message must not say none answers.
	if r := cli.run("--local", "tail", "-f", parent.ID); r.code != exitError || !strings.Contains(r.stderr, "needs a running spoold: --local") || strings.Contains(r.stderr, "answers") {
		t.Fatalf("tail -f --local: exit %d, stderr %q; want 1 and why, without a spoold that did not answer", r.code, r.stderr)
	}
	if out := cli.ok("tail", parent.ID); !strings.Contains(out, "local prompt two") || strings.Contains(out, "local prompt one") {
		t.Fatalf("tail on the root should show the last turn:\n%s", out)
	}
	cli.ok("rename", newID, "empty fork")
	cli.ok("archive", newID)
	var threads []api.Thread
	if err := json.Unmarshal([]byte(cli.ok("ls", "--archived", "--json")), &threads); err != nil {
		t.Fatalf("ls --json: %v", err)
	}
	if len(threads) != 1 || threads[0].ID != newID || threads[0].Name != "empty fork" {
		t.Fatalf("archived threads = %+v, want only the renamed fork", threads)
	}
	cli.ok("rm", newID)
	if out := cli.ok("ls", "--all"); strings.Contains(out, newID) {
		t.Fatalf("ls --all still lists the deleted fork:\n%s", out)
	}
}

func TestLocalDoctor(t *testing.T) {
	root, parent, _ := seedRoot(t)
	cli := newCLI(t, map[string]string{"SPOOL_ROOT": root})
	before := listDir(t, root)
	out := cli.ok("doctor")
	if !strings.Contains(out, "root "+root) || !strings.Contains(out, "2 files, 2 threads, 0 drifts") {
		t.Fatalf("doctor on a clean root:\n%s", out)
	}
	if after := listDir(t, root); !slices.Equal(after, before) {
		t.Fatalf("doctor changed the root's files: %v, then %v", before, after)
	}
	corruptLastPrompt(t, filepath.Join(root, filepath.FromSlash(parent.RolloutPath)))
	r := cli.run("doctor")
	if r.code != exitDrift || !strings.Contains(r.stdout, "drift messages: thread "+parent.ID) {
		t.Fatalf("doctor after corruption: exit %d, stdout:\n%s\nstderr %s", r.code, r.stdout, r.stderr)
	}
	// doctor changes nothing: the drift is still there.
	if r := cli.run("doctor"); r.code != exitDrift {
		t.Fatalf("second doctor: exit %d, want the drift to remain", r.code)
	}
}

// TestDoctorExitStatusSaysWhich: a script tells a doctor that found
// something (drift, an unreadable rollout file: exitDrift) from one that
// could not check (exitError), and both from a clean store (0). doctor
// exited 1 for both.
func TestDoctorExitStatusSaysWhich(t *testing.T) {
	tests := []struct {
		name  string
		spoil func(t *testing.T, root string, parent manager.Thread)
		want  int
	}{
		{"clean", func(*testing.T, string, manager.Thread) {}, exitOK},
		{"drift", func(t *testing.T, root string, parent manager.Thread) {
			corruptLastPrompt(t, filepath.Join(root, filepath.FromSlash(parent.RolloutPath)))
		}, exitDrift},
		{"unreadable rollout file", func(t *testing.T, root string, parent manager.Thread) {
			name := "rollout-2026-01-02T03-04-05-01a21b67-0000-7000-8000-000000000001.jsonl"
			bad := filepath.Join(filepath.Dir(filepath.Join(root, filepath.FromSlash(parent.RolloutPath))), name)
			if err := os.WriteFile(bad, []byte("not a rollout\n"), 0o600); err != nil {
				t.Fatal(err)
			}
		}, exitDrift},
		{"no index to check", func(t *testing.T, root string, _ manager.Thread) {
			if err := os.Remove(filepath.Join(root, manager.IndexFile)); err != nil {
				t.Fatal(err)
			}
		}, exitError},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			root, parent, _ := seedRoot(t)
			tc.spoil(t, root, parent)
			r := newCLI(t, map[string]string{"SPOOL_ROOT": root}).run("--local", "doctor")
			if r.code != tc.want {
				t.Fatalf("doctor: exit %d, want %d; stdout %q, stderr %q", r.code, tc.want, r.stdout, r.stderr)
			}
		})
	}
}

// TestLocalDoctorUnreadableFile: a rollout file that cannot be read at
// all fails doctor (exitDrift, the file named), as it fails reindex --verify,
// though the index agrees with every file it could read.
func TestLocalDoctorUnreadableFile(t *testing.T) {
	root, parent, _ := seedRoot(t)
	cli := newCLI(t, map[string]string{"SPOOL_ROOT": root})
	name := "rollout-2026-01-02T03-04-05-01a21b67-0000-7000-8000-000000000001.jsonl"
	bad := filepath.Join(filepath.Dir(filepath.Join(root, filepath.FromSlash(parent.RolloutPath))), name)
	if err := os.WriteFile(bad, []byte("not a rollout\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	r := cli.run("doctor")
	if r.code != exitDrift || !strings.Contains(r.stdout, "0 drifts, 1 problem") || !strings.Contains(r.stdout, name) {
		t.Fatalf("doctor with an unreadable rollout: exit %d, want %d naming it; stdout:\n%s\nstderr %s", r.code, exitDrift, r.stdout, r.stderr)
	}
}

// TestLocalDoctorBrokenBase: a reference fork whose base is not there is a
// file the index cannot hold; doctor names it and exits exitDrift, as
// reindex --verify does. Before, it exited 0.
func TestLocalDoctorBrokenBase(t *testing.T) {
	const (
		fork    = "01a21b67-0000-7000-8000-00000000f001"
		missing = "01a21b67-0000-7000-8000-00000000dead"
	)
	root, parent, _ := seedRoot(t)
	cli := newCLI(t, map[string]string{"SPOOL_ROOT": root})
	name := "rollout-2026-01-02T03-04-05-" + fork + ".jsonl"
	meta := fmt.Sprintf(`{"timestamp":"2026-01-02T03:04:05.000Z","ordinal":0,"type":"session_meta","payload":`+
		`{"id":%q,"forked_from_id":%q,"timestamp":"2026-01-02T03:04:05.000Z","cwd":"/src","originator":"","cli_version":"",`+
		`"source":"cli","model_provider":"openai","history_mode":"paginated","forked_from_ordinal_exclusive":1,`+
		`"history_base":{"thread_id":%q,"end_ordinal_exclusive":1,"end_byte_offset":100}}}`+"\n", fork, missing, missing)
	bad := filepath.Join(filepath.Dir(filepath.Join(root, filepath.FromSlash(parent.RolloutPath))), name)
	if err := os.WriteFile(bad, []byte(meta), 0o600); err != nil {
		t.Fatal(err)
	}
	r := cli.run("doctor")
	if r.code != exitDrift || !strings.Contains(r.stdout, "dangling-base") || !strings.Contains(r.stdout, name) {
		t.Fatalf("doctor with a dangling reference fork: exit %d, want %d naming it; stdout:\n%s\nstderr %s", r.code, exitDrift, r.stdout, r.stderr)
	}
}

// TestLocalDoctorWithoutIndex: doctor on a root without an index fails,
// writing nothing into it, and gives the reindex command that builds the
// index it checks, as a shell reads it back (a root with a space and a
// quote in its name): in the root of spool's own (its lock is there),
// beside an index given elsewhere, and for a Codex home outside it (in the
// state directory), with the doctor that then checks that index.
func TestLocalDoctorWithoutIndex(t *testing.T) {
	tests := []struct {
		name     string
		files    []string // in the root; a trailing / makes a directory
		index    string   // --index, "" for none
		indexEnv string   // $SPOOL_INDEX
		outside  bool     // the index is built in the state directory
	}{
		{name: "codex home", files: []string{"sessions/", "config.toml"}, outside: true},
		{name: "codex home never used", files: []string{"config.toml"}, outside: true},
		{name: "spool root whose index went", files: []string{"sessions/", "spool.lock"}},
		{name: "index elsewhere by flag", files: []string{"sessions/"}, index: "state dir/codex.db"},
		{name: "index elsewhere by environment", files: []string{"sessions/"}, indexEnv: "state dir/codex.db"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			root := filepath.Join(t.TempDir(), "my 'codex")
			fixtures.MakeTree(t, root, tc.files...)
			stateHome := t.TempDir()
			vars := map[string]string{"SPOOL_ROOT": root, "XDG_STATE_HOME": stateHome}
			args := []string{"doctor"}
			wantArgs := []string{"--root", root}
			switch {
			case tc.index != "":
				index := filepath.Join(t.TempDir(), tc.index)
				args = append(args, "--index", index)
				wantArgs = append(wantArgs, "--index", index)
			case tc.indexEnv != "":
				index := filepath.Join(t.TempDir(), tc.indexEnv)
				vars["SPOOL_INDEX"] = index
				wantArgs = append(wantArgs, "--index", index)
			case tc.outside:
				wantArgs = append(wantArgs, "--index", buildhint.StateIndex(root, stateHome))
			}
			before := dirNames(t, root)
			r := newCLI(t, vars).run(args...)
			if r.code != exitError || !strings.Contains(r.stderr, "no index to check") {
				t.Fatalf("doctor without an index: exit %d, stdout %q, stderr %q; want %d and no index to check", r.code, r.stdout, r.stderr, exitError)
			}
			if after := dirNames(t, root); !slices.Equal(after, before) {
				t.Errorf("doctor wrote into the root: %v, before %v", after, before)
			}
			m := regexp.MustCompile(`\(reindex (.*?) builds one`).FindStringSubmatch(r.stderr)
			if m == nil {
				t.Fatalf("stderr %q gives no reindex command", r.stderr)
			}
			if got := shellWords(t, m[1]); !slices.Equal(got, wantArgs) {
				t.Errorf("the hint's reindex takes %q, want %q", got, wantArgs)
			}
			if tc.outside {
				if then := shellquote.Join(append(append([]string{"spool"}, wantArgs...), "doctor")...); !strings.Contains(r.stderr, then) {
					t.Errorf("stderr %q does not say %q", r.stderr, then)
				}
			}
		})
	}
}

// dirNames lists the names in dir.
func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

// shellWords is the arguments sh reads in line.
func shellWords(t *testing.T, line string) []string {
	t.Helper()
	out, err := exec.Command("sh", "-c", `for a in `+line+`; do printf '%s\0' "$a"; done`).Output()
	if err != nil {
		t.Fatalf("sh on %q: %v", line, err)
	}
	return strings.Split(strings.TrimSuffix(string(out), "\x00"), "\x00")
}

func TestLocalRootHeldByAnother(t *testing.T) {
	root, _, _ := seedRoot(t)
	m, err := manager.Open(t.Context(), manager.Options{Root: root, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatalf("open manager: %v", err)
	}
	t.Cleanup(func() { m.Close() })
	cli := newCLI(t, map[string]string{"SPOOL_ROOT": root})
	r := cli.run("--local", "ls")
	pid := fmt.Sprintf("(pid %d)", os.Getpid())
	if r.code != exitError || !strings.Contains(r.stderr, "is in use by") || strings.Count(r.stderr, pid) != 1 {
		t.Fatalf("spool ls on a held root: exit %d, stderr %q; want 1, naming the holder %s once", r.code, r.stderr, pid)
	}
	// doctor reads the index read-only, as reindex --verify: beside the
	// holder too.
	if r := cli.run("--local", "doctor"); r.code != 0 || !strings.Contains(r.stdout, "0 drifts") {
		t.Fatalf("spool doctor beside the holder: exit %d, stdout %q, stderr %q; want 0 drifts", r.code, r.stdout, r.stderr)
	}
}

// TestLockedHint: a root held by spoold suggests SPOOL_ADDR; one held by
// another command says to wait for it; the error is lockfile.ErrLocked.
func TestLockedHint(t *testing.T) {
	tests := []struct{ holder, want string }{
		{"spoold (pid 7) on vm since 2026-11-26T10:00:00Z\n", "SPOOL_ADDR"},
		{"spool (pid 7) on vm since 2026-11-26T10:00:00Z\n", "wait for it"},
		{"pid 7 on vm since 2026-11-26T10:00:00Z\n", "SPOOL_ADDR"}, // an older spoold's lock
		{"", "another process"},
	}
	for _, tt := range tests {
		err := lockedHint(fmt.Errorf("open: %w", &lockfile.HeldError{Path: "/r/spool.lock", Holder: tt.holder}), "/r", "set SPOOL_ADDR")
		if !errors.Is(err, lockfile.ErrLocked) || !strings.Contains(err.Error(), tt.want) || strings.Count(err.Error(), "pid 7") > 1 {
			t.Errorf("lockedHint(%q) = %v, want ErrLocked saying %q, the holder once", tt.holder, err, tt.want)
		}
	}
}

// cancelOnWrite cancels a context at the first write it takes, as Ctrl-C
// pressed once the output has begun.
type cancelOnWrite struct {
	bytes.Buffer
	cancel context.CancelFunc
}

func (w *cancelOnWrite) Write(p []byte) (int, error) {
	w.cancel()
	return w.Buffer.Write(p)
}

// TestLocalShowStopsWhenInterrupted: show of a thread on a root opened
// directly stops at the interrupt, as it does through spoold (whose
// stream the interrupt closes), rather than reading the whole history
// first: Ctrl-C did nothing for as long as a big thread took to print.
func TestLocalShowStopsWhenInterrupted(t *testing.T) {
	root, parent, _ := seedRoot(t)
	cli := newCLI(t, map[string]string{"SPOOL_ROOT": root})
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	out := &cancelOnWrite{cancel: cancel}
	r := cli.runCtx(ctx, out, "--local", "show", "--raw", parent.ID)
	if r.code != exitInterrupted || strings.Count(out.String(), "\n") != 1 {
		t.Fatalf("show interrupted at its first line: exit %d, stderr %q, output %q; want exit %d after that line", r.code, r.stderr, out.String(), exitInterrupted)
	}
}

// TestSearchLimitAgrees: search's --limit is held to spoold's bounds
// before either backend is asked, with one usage error (exit 2) on both;
// 0, which ls takes for "all", is refused, since a search gives at most a
// bounded page.
func TestSearchLimitAgrees(t *testing.T) {
	root, _, _ := seedRoot(t)
	s := startSpoold(t, "")
	seed(t, s.c)
	backends := map[string]*cli{
		"spoold": s.cli(t),
		"root":   newCLI(t, map[string]string{"SPOOL_ROOT": root}),
	}
	tests := []struct {
		limit string
		code  int
		want  string // in stderr
	}{
		{"500", exitUsage, "--limit must be 1..200, not 500"},
		{"201", exitUsage, "--limit must be 1..200, not 201"},
		{"0", exitUsage, "--limit must be 1..200, not 0"},
		{"-1", exitUsage, "--limit must be 1..200, not -1"},
		{"200", exitOK, ""},
	}
	for name, cli := range backends {
		for _, tc := range tests {
			t.Run(name+"/"+tc.limit, func(t *testing.T) {
				r := cli.run("--local="+strconv.FormatBool(name == "root"), "search", "-n", tc.limit, "prompt")
				if r.code != tc.code || !strings.Contains(r.stderr, tc.want) {
					t.Fatalf("exit %d, stderr %q; want %d and %q", r.code, r.stderr, tc.code, tc.want)
				}
			})
		}
	}
}

// TestSearchBlankQuery: a query of nothing but spaces ("" or " ", which a
// script's empty variable gives) is a usage error found before either
// backend is asked, with one message on both: spoold answered "" with its
// API's "missing query parameter q", a root with "empty search query",
// and both exited 1, as for a failure.
func TestSearchBlankQuery(t *testing.T) {
	root, _, _ := seedRoot(t)
	s := startSpoold(t, "")
	backends := map[string]*cli{
		"spoold": s.cli(t),
		"root":   newCLI(t, map[string]string{"SPOOL_ROOT": root}),
	}
	for name, cli := range backends {
		for _, query := range [][]string{{""}, {" "}, {"", "\t"}} {
			t.Run(fmt.Sprintf("%s/%q", name, query), func(t *testing.T) {
				r := cli.run(append([]string{"--local=" + strconv.FormatBool(name == "root"), "search"}, query...)...)
				if r.code != exitUsage || !strings.Contains(r.stderr, "search query is blank") {
					t.Fatalf("exit %d, stderr %q; want %d and %q", r.code, r.stderr, exitUsage, "search query is blank")
				}
			})
		}
	}
}

// TestLsSubagents: ls leaves sub-agents out, or lists only them, the same
// against a server and on a root directly.
func TestLsSubagents(t *testing.T) {
	spawnSource := func(parent string) string {
		return `{"subagent":{"thread_spawn":{"parent_thread_id":"` + parent + `","depth":1}}}`
	}
	setups := map[string]func(t *testing.T) (c *cli, lead, scout string){
		"server": func(t *testing.T) (*cli, string, string) {
			s := startSpoold(t, "")
			lead, err := s.c.Create(t.Context(), client.CreateOptions{Name: "lead"})
			if err != nil {
				t.Fatal(err)
			}
			scout, err := s.c.Create(t.Context(), client.CreateOptions{Name: "scout", Source: spawnSource(lead.ID)})
			if err != nil {
				t.Fatal(err)
			}
			return s.cli(t), lead.ID, scout.ID
		},
		"local": func(t *testing.T) (*cli, string, string) {
			root := t.TempDir()
			m, err := manager.Open(t.Context(), manager.Options{Root: root, Logger: slog.New(slog.DiscardHandler)})
			if err != nil {
				t.Fatal(err)
			}
			lead, err := m.Start(t.Context(), manager.StartOptions{Name: "lead"})
			if err != nil {
				t.Fatal(err)
			}
			scout, err := m.Start(t.Context(), manager.StartOptions{Name: "scout", Source: spawnSource(lead.ID)})
			if err != nil {
				t.Fatal(err)
			}
			if err := m.Close(); err != nil {
				t.Fatal(err)
			}
			return newCLI(t, map[string]string{"SPOOL_ROOT": root}), lead.ID, scout.ID
		},
	}
	for name, setup := range setups {
		t.Run(name, func(t *testing.T) {
			c, lead, scout := setup(t)
			local := []string{}
			if name == "local" {
				local = []string{"--local"}
			}
			for _, tc := range []struct {
				flag      string
				in, notIn string
			}{
				{"--no-subagents", lead, scout},
				{"--subagents", scout, lead},
			} {
				out := c.ok(append(local, "ls", tc.flag)...)
				if !strings.Contains(out, tc.in) || strings.Contains(out, tc.notIn) {
					t.Errorf("ls %s should list %s and not %s:\n%s", tc.flag, tc.in, tc.notIn, out)
				}
			}
			if out := c.ok(append(local, "ls")...); !strings.Contains(out, lead) || !strings.Contains(out, scout) {
				t.Errorf("ls should list both:\n%s", out)
			}
			if r := c.run(append(local, "ls", "--subagents", "--no-subagents")...); r.code != 2 {
				t.Errorf("ls --subagents --no-subagents: exit %d, want 2 (usage)", r.code)
			}
		})
	}
}

// listDir returns the names and sizes of the entries of dir.
func listDir(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		info, err := e.Info()
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, fmt.Sprintf("%s %d", e.Name(), info.Size()))
	}
	return out
}

// TestLocalIndexElsewhere: a Codex home served with spoold -index
// elsewhere (README) is opened by the CLI with the same index, from
// $SPOOL_INDEX as spoold reads it or from --index: it lists the threads
// that index holds, writes no index or lock into the home, is refused
// while another process holds that index, and doctor checks that index.
// Before, the CLI took ROOT/spool.db whatever spoold used: it wrote a
// second index and lock into the Codex home, and ran beside the spoold
// that held the other one.
func TestLocalIndexElsewhere(t *testing.T) {
	home := t.TempDir()
	index := filepath.Join(t.TempDir(), "state", "codex.db")
	m, err := manager.Open(t.Context(), manager.Options{Root: home, IndexPath: index, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatalf("open manager: %v", err)
	}
	th, err := m.Start(t.Context(), manager.StartOptions{Name: "in a codex home"})
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	before := listDir(t, home)
	noIndexInHome := func(what string) {
		t.Helper()
		for _, name := range []string{manager.IndexFile, manager.LockFile} {
			if _, err := os.Stat(filepath.Join(home, name)); !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("%s: %s in the Codex home (%v); the index is %s", what, name, err, index)
			}
		}
	}

	byEnv := newCLI(t, map[string]string{"SPOOL_ROOT": home, "SPOOL_INDEX": index})
	r := byEnv.run("ls")
	if r.code != 0 || !strings.Contains(r.stdout, th.ID) {
		t.Fatalf("ls with $SPOOL_INDEX: exit %d, stderr %q, stdout:\n%s", r.code, r.stderr, r.stdout)
	}
	noIndexInHome("ls with $SPOOL_INDEX")
	if out := byEnv.ok("doctor"); !strings.Contains(out, "1 thread, 0 drifts") || !strings.Contains(out, "(index "+index+")") {
		t.Fatalf("doctor with $SPOOL_INDEX:\n%s", out)
	}

	byFlag := newCLI(t, map[string]string{"SPOOL_ROOT": home})
	if out := byFlag.ok("--local", "--index", index, "ls"); !strings.Contains(out, th.ID) {
		t.Fatalf("ls --index:\n%s", out)
	}
	noIndexInHome("ls --index")
	if after := listDir(t, home); !slices.Equal(after, before) {
		t.Fatalf("the CLI changed the Codex home's top level: %v, then %v", before, after)
	}

	// The holder of that index (a spoold on another address) stops it.
	held, err := manager.Open(t.Context(), manager.Options{Root: home, IndexPath: index, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatalf("open manager: %v", err)
	}
	t.Cleanup(func() { held.Close() })
	if r := byEnv.run("--local", "rename", th.ID, "x"); r.code != exitError || !strings.Contains(r.stderr, "is in use by") {
		t.Fatalf("rename while the index is held: exit %d, stderr %q; want 1, naming the holder", r.code, r.stderr)
	}
	noIndexInHome("a refused rename")

	// Without an index there, doctor says how to build that one.
	r = newCLI(t, map[string]string{"SPOOL_ROOT": home, "SPOOL_INDEX": filepath.Join(t.TempDir(), "none.db")}).run("--local", "doctor")
	if r.code != exitError || !strings.Contains(r.stderr, "--index ") {
		t.Fatalf("doctor without the index: exit %d, stderr %q; want 1 and the reindex command with --index", r.code, r.stderr)
	}
}

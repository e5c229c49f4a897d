package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/spoolhq/spool/client"
	"github.com/spoolhq/spool/codexlock"
	"github.com/spoolhq/spool/internal/fixtures"
	"github.com/spoolhq/spool/internal/lossy"
	"github.com/spoolhq/spool/internal/storetest"
	"github.com/spoolhq/spool/manager"
	"github.com/spoolhq/spool/rollout"
	"github.com/spoolhq/spool/server"
)

// spoold is a real server over a real manager on a temporary root, on a
// loopback port.
type spoold struct {
	root  string
	addr  string
	token string
	c     *client.Client
	close func(t *testing.T) // stops the server and closes the manager; once
	ts    *httptest.Server
}

func startSpoold(t *testing.T, token string) *spoold {
	t.Helper()
	root := t.TempDir()
	storetest.Write(t, filepath.Join(root, manager.IndexFile))
	m, err := manager.Open(t.Context(), manager.Options{Root: root, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatalf("open manager: %v", err)
	}
	ts := httptest.NewServer(server.New(m, server.Config{Token: token, Logger: slog.New(slog.DiscardHandler)}).Handler())
	var once sync.Once
	closeAll := func(t *testing.T) {
		once.Do(func() {
			ts.Close()
			if err := m.Close(); err != nil {
				t.Errorf("close manager: %v", err)
			}
		})
	}
	t.Cleanup(func() { closeAll(t) })
	c, err := client.New(ts.URL, client.WithToken(token))
	if err != nil {
		t.Fatalf("client: %v", err)
	}
	return &spoold{root: root, addr: strings.TrimPrefix(ts.URL, "http://"), token: token, c: c, close: closeAll, ts: ts}
}

// result is what one run of the command left behind.
type result struct {
	stdout, stderr string
	code           int
}

// cli runs the spool command in-process. Its environment points at a
// spoold (addr, token) and at an empty root of its own, so a run that fell
// back to a root instead of the server would find no threads.
type cli struct {
	t         *testing.T
	vars      map[string]string
	terminal  bool
	transport http.RoundTripper // nil: the default
	// defaultAddr stands for client.DefaultAddr: a closed port unless a
	// test says otherwise, so that no spoold of the machine answers.
	defaultAddr string
	// defaultProbeTimeout and namedProbeTimeout, when not zero, replace
	// the wait for a spoold at the default address and at a named one.
	defaultProbeTimeout, namedProbeTimeout time.Duration
}

func newCLI(t *testing.T, vars map[string]string) *cli {
	if _, ok := vars["SPOOL_ROOT"]; !ok {
		vars["SPOOL_ROOT"] = t.TempDir()
	}
	return &cli{t: t, vars: vars, defaultAddr: fixtures.ClosedAddr(t)}
}

func (s *spoold) cli(t *testing.T) *cli {
	return newCLI(t, map[string]string{"SPOOL_ADDR": s.addr, "SPOOL_TOKEN": s.token})
}

func (c *cli) run(args ...string) result {
	c.t.Helper()
	return c.runCtx(c.t.Context(), &bytes.Buffer{}, args...)
}

func (c *cli) runCtx(ctx context.Context, stdout interface{ Write([]byte) (int, error) }, args ...string) result {
	c.t.Helper()
	var stderr bytes.Buffer
	code := run(ctx, args, env{
		stdin:               strings.NewReader(""),
		stdout:              stdout,
		stderr:              &stderr,
		lookupEnv:           func(k string) (string, bool) { v, ok := c.vars[k]; return v, ok },
		terminal:            c.terminal,
		transport:           c.transport,
		defaultAddr:         c.defaultAddr,
		defaultProbeTimeout: c.defaultProbeTimeout,
		namedProbeTimeout:   c.namedProbeTimeout,
	})
	out := ""
	if b, ok := stdout.(*bytes.Buffer); ok {
		out = b.String()
	}
	return result{stdout: out, stderr: stderr.String(), code: code}
}

// ok runs args and fails the test unless the command exits 0.
func (c *cli) ok(args ...string) string {
	c.t.Helper()
	r := c.run(args...)
	if r.code != 0 {
		c.t.Fatalf("spool %s: exit %d, stderr %q, stdout:\n%s", strings.Join(args, " "), r.code, r.stderr, r.stdout)
	}
	return r.stdout
}

func item(role, text string) client.Item {
	kind := "input_text"
	if role == "assistant" {
		kind = "output_text"
	}
	payload, _ := json.Marshal(map[string]any{
		"type": "message", "role": role,
		"content": []map[string]string{{"type": kind, "text": text}},
	})
	return client.Item{Type: "response_item", Payload: payload}
}

func event(fields map[string]any) client.Item {
	payload, _ := json.Marshal(fields)
	return client.Item{Type: "event_msg", Payload: payload}
}

// family is a parent with three prompts, a fork before prompt 1 and a
// whole copy of the fork.
type family struct {
	parent, fork, copy client.Thread
}

func seed(t *testing.T, c *client.Client) family {
	t.Helper()
	ctx := t.Context()
	parent, err := c.Create(ctx, client.CreateOptions{Name: "parent", Cwd: "/work/project", Source: "cli", HistoryMode: "legacy"}) // copy forks: a middle one can be deleted
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	if _, err := c.Append(ctx, parent.ID,
		item("user", "prompt one about gophers"), item("assistant", "answer one"),
		item("user", "prompt two"), item("assistant", "answer two"),
		item("user", "prompt three"), item("assistant", "answer three"),
	); err != nil {
		t.Fatalf("Append: %v", err)
	}
	one := 1
	fork, err := c.Fork(ctx, parent.ID, client.ForkOptions{BeforeUserMessage: &one, Name: "retry"})
	if err != nil {
		t.Fatalf("Fork: %v", err)
	}
	cp, err := c.Fork(ctx, fork.ID, client.ForkOptions{Name: "copy"})
	if err != nil {
		t.Fatalf("Fork: %v", err)
	}
	if parent, err = c.Get(ctx, parent.ID); err != nil {
		t.Fatalf("Get: %v", err)
	}
	return family{parent: parent, fork: fork, copy: cp}
}

func TestLs(t *testing.T) {
	s := startSpoold(t, "tok")
	f := seed(t, s.c)
	cli := s.cli(t)

	out := cli.ok("ls")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 4 || !strings.HasPrefix(lines[0], "ID") {
		t.Fatalf("ls printed %d lines, want a header and 3 threads:\n%s", len(lines), out)
	}
	for _, want := range []struct {
		th          client.Thread
		msgs, flags string
	}{{f.parent, "3", "-"}, {f.fork, "1", "F"}, {f.copy, "1", "F"}} {
		var row string
		for _, l := range lines {
			if strings.HasPrefix(l, want.th.ID) {
				row = l
			}
		}
		fields := strings.Fields(row)
		if len(fields) < 6 || fields[3] != want.msgs || fields[4] != want.flags || fields[5] != want.th.Name {
			t.Fatalf("ls row of %s = %q, want %s messages, flags %s, name %s", want.th.Name, row, want.msgs, want.flags, want.th.Name)
		}
	}

	var threads []client.Thread
	if err := json.Unmarshal([]byte(cli.ok("ls", "--json", "-n", "2")), &threads); err != nil {
		t.Fatalf("ls --json: %v", err)
	}
	if len(threads) != 2 || threads[0].ID != f.copy.ID {
		t.Fatalf("ls --json -n 2 = %d threads starting %s, want 2 starting with the newest, %s", len(threads), threads[0].ID, f.copy.ID)
	}

	if _, err := s.c.Archive(t.Context(), f.parent.ID); err != nil {
		t.Fatalf("Archive: %v", err)
	}
	if out := cli.ok("ls"); strings.Contains(out, f.parent.ID) {
		t.Fatalf("ls shows the archived parent:\n%s", out)
	}
	out = cli.ok("ls", "--archived")
	if !strings.Contains(out, f.parent.ID) || strings.Contains(out, f.fork.ID) {
		t.Fatalf("ls --archived should list only the parent:\n%s", out)
	}
	if out := cli.ok("ls", "--parent", f.fork.ID[len(f.fork.ID)-8:]); !strings.Contains(out, f.copy.ID) || strings.Contains(out, f.fork.ID+" ") {
		t.Fatalf("ls --parent <fork suffix> should list only the copy:\n%s", out)
	}
	if out := cli.ok("ls", "--grep", "RETRY"); !strings.Contains(out, f.fork.ID) || strings.Contains(out, f.copy.ID) {
		t.Fatalf("ls --grep RETRY should list only the fork:\n%s", out)
	}
	run, err := s.c.Create(t.Context(), client.CreateOptions{Source: "exec", ModelProvider: "ollama"})
	if err != nil {
		t.Fatal(err)
	}
	for _, flag := range []string{"--source=exec", "--model-provider=ollama"} {
		if out := cli.ok("ls", flag); !strings.Contains(out, run.ID) || strings.Count(out, "\n") != 2 {
			t.Fatalf("ls %s should list only %s:\n%s", flag, run.ID, out)
		}
	}

	// A relative --cwd is taken from the current directory, for fork as
	// for ls: Codex records directories absolute.
	dir := t.TempDir()
	t.Chdir(dir)
	here := strings.TrimSpace(cli.ok("fork", f.fork.ID, "--cwd", "."))
	if th, err := s.c.Get(t.Context(), here); err != nil || th.Cwd != dir {
		t.Fatalf("fork --cwd . recorded %q (%v), want %s", th.Cwd, err, dir)
	}
	if out := cli.ok("ls", "--cwd", "."); !strings.Contains(out, here) || strings.Contains(out, f.fork.ID+" ") {
		t.Fatalf("ls --cwd . in %s should list only the fork made there:\n%s", dir, out)
	}
	if out := cli.ok("ls", "--cwd", dir); !strings.Contains(out, here) {
		t.Fatalf("ls --cwd %s should list the fork made there:\n%s", dir, out)
	}
	// A fork records the source it is given, as Codex's gives a fork its
	// forking process's; without one it keeps its parent's.
	mcp := strings.TrimSpace(cli.ok("fork", f.fork.ID, "--source", "mcp"))
	if out := cli.ok("ls", "--source", "mcp"); !strings.Contains(out, mcp) || strings.Count(out, "\n") != 2 {
		t.Fatalf("ls --source mcp should list only the fork given it:\n%s", out)
	}
	// An absolute one is cleaned as Codex cleans the cwd it records: a
	// shell's completion ends a directory with a slash. Before, it was
	// matched as typed and listed nothing.
	for _, typed := range []string{dir + "/", dir + "/.", filepath.Dir(dir) + "/./" + filepath.Base(dir) + "//"} {
		if out := cli.ok("ls", "--cwd", typed); !strings.Contains(out, here) {
			t.Fatalf("ls --cwd %s should list the fork made in %s:\n%s", typed, dir, out)
		}
	}
	slash := strings.TrimSpace(cli.ok("fork", f.fork.ID, "--cwd", dir+"/"))
	if th, err := s.c.Get(t.Context(), slash); err != nil || th.Cwd != dir {
		t.Fatalf("fork --cwd %s/ recorded %q (%v), want %s", dir, th.Cwd, err, dir)
	}
}

func TestShow(t *testing.T) {
	s := startSpoold(t, "")
	f := seed(t, s.c)
	cli := s.cli(t)

	out := cli.ok("show", f.parent.ID)
	for _, want := range []string{
		"thread " + f.parent.ID + "  parent",
		"/work/project · cli",
		"── user #0", "prompt one about gophers", "── assistant", "answer one",
		"── user #1", "── user #2", "prompt three",
		`· renamed to "parent"`,
	} {
		if !strings.Contains(out, want) {
			t.Fatalf("show lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "session_meta") {
		t.Fatalf("show prints session_meta without --all:\n%s", out)
	}

	// By a unique suffix; a fork says where it came from.
	out = cli.ok("show", f.fork.ID[len(f.fork.ID)-8:])
	if !strings.Contains(out, "forked from "+f.parent.ID+" before user message 1") || strings.Contains(out, "prompt two") {
		t.Fatalf("show of the fork should name its parent and stop before prompt two:\n%s", out)
	}
	if !strings.Contains(out, "1 user message") || strings.Contains(out, "1 user messages") {
		t.Fatalf("show of the fork should count its one user message in the singular:\n%s", out)
	}
	// The parent's rename, in the fork's history before the cut, says
	// whose it is; the fork's own does not need to.
	for _, want := range []string{`· ` + f.parent.ID + ` renamed to "parent"`, `· renamed to "retry"`} {
		if !strings.Contains(out, want) {
			t.Fatalf("show of the fork lacks %q:\n%s", want, out)
		}
	}

	out = cli.ok("show", "--from", "2", f.parent.ID)
	if strings.Contains(out, "prompt two") || !strings.Contains(out, "── user #2") {
		t.Fatalf("show --from 2 should start at user message 2:\n%s", out)
	}
	// A thread with no user message yet has one to start from: its start.
	empty, err := s.c.Create(t.Context(), client.CreateOptions{Name: "empty"})
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	if out := cli.ok("show", "--from", "0", empty.ID); !strings.Contains(out, "thread "+empty.ID+"  empty") {
		t.Fatalf("show --from 0 of a thread with no user message should show it:\n%s", out)
	}
	if r := cli.run("show", "--from", "1", empty.ID); r.code != exitError || !strings.Contains(r.stderr, "has 0 user messages; --from 1 is out of range") {
		t.Fatalf("show --from 1 of a thread with no user message: exit %d, stderr %q", r.code, r.stderr)
	}

	raw := cli.ok("show", "--raw", f.parent.ID)
	body, err := s.c.ReadItems(t.Context(), f.parent.ID, -1)
	if err != nil {
		t.Fatalf("ReadItems: %v", err)
	}
	defer body.Close()
	var want bytes.Buffer
	if _, err := want.ReadFrom(body); err != nil {
		t.Fatalf("read items: %v", err)
	}
	if raw != want.String() {
		t.Fatalf("show --raw differs from the stored lines:\n%s\nwant:\n%s", raw, want.String())
	}
}

func TestShowNumbersTurnsAfterARollback(t *testing.T) {
	s := startSpoold(t, "")
	ctx := t.Context()
	// Legacy: Codex rolls back only those.
	th, err := s.c.Create(ctx, client.CreateOptions{HistoryMode: "legacy"})
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	if _, err := s.c.Append(ctx, th.ID,
		item("user", "kept"), item("user", "dropped"),
		event(map[string]any{"type": "thread_rolled_back", "num_turns": 1}),
		item("user", "after"),
	); err != nil {
		t.Fatalf("Append: %v", err)
	}
	out := s.cli(t).ok("show", th.ID)
	for _, want := range []string{"── user #0 · ", "kept", "── user (rolled back) · ", "dropped", "· rolled back 1 turn", "── user #1 · ", "after"} {
		if !strings.Contains(out, want) {
			t.Fatalf("show lacks %q:\n%s", want, out)
		}
	}
	if i, j := strings.Index(out, "── user #1"), strings.Index(out, "after"); i > j {
		t.Fatalf("user #1 should be the message after the rollback:\n%s", out)
	}
}

// TestShowPaginatedRollbackIgnored: a rollback marker another writer put
// in a paginated thread counts for nothing (as in Codex): show says so and
// numbers every message.
func TestShowPaginatedRollbackIgnored(t *testing.T) {
	s := startSpoold(t, "")
	ctx := t.Context()
	th, err := s.c.Create(ctx, client.CreateOptions{})
	if err == nil {
		_, err = s.c.Append(ctx, th.ID, item("user", "one"), item("user", "two"))
	}
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(s.root, filepath.FromSlash(th.RolloutPath))
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	marker, err := rollout.WithOrdinal([]byte(`{"timestamp":"2026-11-20T10:00:00.000Z","type":"event_msg","payload":{"type":"thread_rolled_back","num_turns":1}}`),
		int64(bytes.Count(data, []byte("\n"))))
	if err != nil {
		t.Fatal(err)
	}
	appendLine(t, path, string(marker))
	out := s.cli(t).ok("show", th.ID)
	for _, want := range []string{"── user #0 · ", "── user #1 · ", "two", "a rollback of 1 turn, ignored"} {
		if !strings.Contains(out, want) {
			t.Fatalf("show lacks %q:\n%s", want, out)
		}
	}
}

// appendLine appends line and a newline to the file at path, as another
// writer would.
func appendLine(t *testing.T, path, line string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(line + "\n"); err != nil {
		t.Fatal(err)
	}
}

func TestShowPagesOnATerminal(t *testing.T) {
	s := startSpoold(t, "")
	f := seed(t, s.c)
	paged := filepath.Join(t.TempDir(), "paged")
	cli := s.cli(t)
	cli.vars["PAGER"] = "cat > " + paged
	cli.terminal = true

	r := cli.run("show", f.parent.ID)
	if r.code != 0 || r.stdout != "" {
		t.Fatalf("show on a terminal: exit %d, stdout %q; want 0 and everything in the pager", r.code, r.stdout)
	}
	data, err := os.ReadFile(paged)
	if err != nil {
		t.Fatalf("the pager did not run: %v", err)
	}
	if !strings.Contains(string(data), "prompt three") {
		t.Fatalf("the pager got %q, want the conversation", data)
	}
	if r := cli.run("show", "--no-pager", f.parent.ID); !strings.Contains(r.stdout, "prompt three") {
		t.Fatalf("show --no-pager on a terminal printed %q, want the conversation on stdout", r.stdout)
	}
	cli.vars["PAGER"] = "no-such-pager-anywhere"
	if r := cli.run("show", f.parent.ID); r.code != 0 || !strings.Contains(r.stdout, "prompt three") {
		t.Fatalf("show with a missing pager: exit %d, stdout %q; want the conversation on stdout", r.code, r.stdout)
	}
	// A pager that fails shows nothing: the command says so.
	cli.vars["PAGER"] = "exit 3"
	if r := cli.run("show", f.parent.ID); r.code != exitError || !strings.Contains(r.stderr, `pager "exit 3"`) {
		t.Fatalf("show with a pager that fails: exit %d, stderr %q; want %d and the pager named", r.code, r.stderr, exitError)
	}
}

// TestEmptyPagerMeansNone: PAGER set to "" means no pager, as git and
// man take it; unset, it means the default "less -FRX". spool paged an
// empty PAGER with less all the same.
func TestEmptyPagerMeansNone(t *testing.T) {
	s := startSpoold(t, "")
	f := seed(t, s.c)
	// A less of our own, first on PATH, says whether and how it ran.
	bin := t.TempDir()
	ran := filepath.Join(t.TempDir(), "less-ran")
	if err := os.WriteFile(filepath.Join(bin, "less"), []byte("#!/bin/sh\necho \"$@\" > "+ran+"\ncat > /dev/null\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", bin+string(filepath.ListSeparator)+os.Getenv("PATH"))
	tests := []struct {
		name      string
		pager     *string // nil: unset
		wantLess  string  // less's arguments, "" for less not run
		wantPlain bool    // the conversation on stdout
	}{
		{"unset", nil, "-FRX\n", false},
		{"empty", new(""), "", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			os.Remove(ran)
			cli := s.cli(t)
			cli.terminal = true
			if tc.pager != nil {
				cli.vars["PAGER"] = *tc.pager
			}
			r := cli.run("show", f.parent.ID)
			if r.code != exitOK {
				t.Fatalf("show: exit %d, stderr %q", r.code, r.stderr)
			}
			args, err := os.ReadFile(ran)
			if err != nil && !errors.Is(err, fs.ErrNotExist) {
				t.Fatal(err)
			}
			if string(args) != tc.wantLess {
				t.Errorf("less ran with %q, want %q (\"\" for not at all)", args, tc.wantLess)
			}
			if plain := strings.Contains(r.stdout, "prompt three"); plain != tc.wantPlain {
				t.Errorf("conversation on stdout = %v, want %v: stdout %q", plain, tc.wantPlain, r.stdout)
			}
		})
	}
}

// interruptAtHistoryEnd is a transport that interrupts the command (as
// Ctrl-C does) when a history it streams comes to its end, before the
// command has closed the pager's input.
type interruptAtHistoryEnd struct{ cancel context.CancelFunc }

func (tr interruptAtHistoryEnd) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err == nil && strings.HasSuffix(req.URL.Path, "/items") {
		resp.Body = &cancelAtEOF{ReadCloser: resp.Body, cancel: tr.cancel}
	}
	return resp, err
}

type cancelAtEOF struct {
	io.ReadCloser
	cancel context.CancelFunc
}

func (b *cancelAtEOF) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err == io.EOF {
		b.cancel()
		err = context.Canceled
	}
	return n, err
}

// TestInterruptLeavesThePagerToEndItself: Ctrl-C while show pages stops
// what spool writes, and leaves the pager, which got the same Ctrl-C from
// the terminal (less takes it for itself), to end as it ends: it reads
// what it was given and quits when its reader quits it, leaving the
// terminal as it found it. spool killed it (SIGKILL), which leaves less's
// terminal without echo.
func TestInterruptLeavesThePagerToEndItself(t *testing.T) {
	s := startSpoold(t, "")
	f := seed(t, s.c)
	ended := filepath.Join(t.TempDir(), "ended")
	cli := s.cli(t)
	cli.terminal = true
	cli.vars["PAGER"] = "cat > /dev/null; echo by itself > " + ended
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	cli.transport = interruptAtHistoryEnd{cancel: cancel}
	r := cli.runCtx(ctx, &bytes.Buffer{}, "show", f.parent.ID)
	if r.code != exitInterrupted {
		t.Errorf("show interrupted while paging: exit %d, stderr %q; want %d", r.code, r.stderr, exitInterrupted)
	}
	if data, err := os.ReadFile(ended); err != nil || string(data) != "by itself\n" {
		t.Errorf("the pager did not end by itself: %q, %v", data, err)
	}
}

// uniquePrefix returns the shortest prefix of id that no other id has.
func uniquePrefix(id string, others ...string) string {
	for n := 1; n < len(id); n++ {
		shared := false
		for _, o := range others {
			shared = shared || strings.HasPrefix(o, id[:n])
		}
		if !shared {
			return id[:n]
		}
	}
	return id
}

func TestResolveIDs(t *testing.T) {
	s := startSpoold(t, "")
	f := seed(t, s.c)
	cli := s.cli(t)
	prefix := uniquePrefix(f.copy.ID, f.parent.ID, f.fork.ID)
	// UUIDv7 ids begin with their creation time: threads made in one test
	// share their first digits.
	shared := f.parent.ID
	for _, id := range []string{f.fork.ID, f.copy.ID} {
		for !strings.HasPrefix(id, shared) {
			shared = shared[:len(shared)-1]
		}
	}
	tests := []struct {
		name, arg string
		want      string // the thread shown, or "" for an error
		err       string
	}{
		{name: "whole id", arg: f.fork.ID, want: f.fork.ID},
		{name: "upper case", arg: strings.ToUpper(f.fork.ID), want: f.fork.ID},
		{name: "unique prefix", arg: prefix, want: f.copy.ID},
		{name: "suffix", arg: f.parent.ID[len(f.parent.ID)-6:], want: f.parent.ID},
		{name: "shared prefix", arg: shared, err: "is ambiguous: 3 thread ids"},
		{name: "nothing", arg: "zzzz", err: `no thread id starts or ends with "zzzz"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := cli.run("show", tc.arg)
			if tc.err != "" {
				if r.code != exitError || !strings.Contains(r.stderr, tc.err) {
					t.Fatalf("show %s: exit %d, stderr %q; want 1 and %q", tc.arg, r.code, r.stderr, tc.err)
				}
				return
			}
			if r.code != 0 || !strings.HasPrefix(r.stdout, "thread "+tc.want) {
				t.Fatalf("show %s: exit %d, stderr %q, stdout starts %.50q; want thread %s", tc.arg, r.code, r.stderr, r.stdout, tc.want)
			}
		})
	}
}

// listFunc is a lister made of a function.
type listFunc func(ctx context.Context, o client.ListOptions) (client.Page, error)

func (f listFunc) List(ctx context.Context, o client.ListOptions) (client.Page, error) {
	return f(ctx, o)
}

// TestAmbiguousNamesTheMatches: an ambiguous argument names the ids it
// matches, with "..." only when there are more than it names.
func TestAmbiguousNamesTheMatches(t *testing.T) {
	ids := []string{
		"01a2153c-0000-7000-8000-00000000000a",
		"01a2153c-0000-7000-8000-00000000000b",
		"01a2153d-0000-7000-8000-00000000000c",
	}
	tests := []struct{ arg, want string }{
		{"01a2153c", `"01a2153c" is ambiguous: 2 thread ids start or end with it (` + ids[0] + ", " + ids[1] + ")"},
		{"01a2153", `"01a2153" is ambiguous: 3 thread ids start or end with it (` + ids[0] + ", " + ids[1] + ", ...)"},
	}
	list := listFunc(func(context.Context, client.ListOptions) (client.Page, error) {
		var page client.Page
		for _, id := range ids {
			page.Threads = append(page.Threads, client.Thread{ID: id})
		}
		return page, nil
	})
	for _, tc := range tests {
		t.Run(tc.arg, func(t *testing.T) {
			_, err := (&app{}).resolve(t.Context(), list, tc.arg)
			if err == nil || err.Error() != tc.want {
				t.Fatalf("resolve(%q) = %v, want %q", tc.arg, err, tc.want)
			}
		})
	}
}

func TestTail(t *testing.T) {
	s := startSpoold(t, "")
	f := seed(t, s.c)
	out := s.cli(t).ok("tail", f.parent.ID)
	if !strings.Contains(out, "── user #2") || strings.Contains(out, "prompt two") {
		t.Fatalf("tail should show only the last turn:\n%s", out)
	}
	out = s.cli(t).ok("tail", "-n", "2", f.parent.ID)
	if !strings.Contains(out, "prompt two") || strings.Contains(out, "prompt one") {
		t.Fatalf("tail -n 2 should show the last two turns:\n%s", out)
	}
}

// watchWriter is a stdout that tells a test when something was written.
type watchWriter struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	written chan struct{}
}

func newWatchWriter() *watchWriter { return &watchWriter{written: make(chan struct{}, 1)} }

func (w *watchWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	n, err := w.buf.Write(p)
	select {
	case w.written <- struct{}{}:
	default:
	}
	return n, err
}

func (w *watchWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

// waitFor returns once the output contains s; ctx bounds the wait.
func (w *watchWriter) waitFor(ctx context.Context, t *testing.T, s string) {
	t.Helper()
	for !strings.Contains(w.String(), s) {
		select {
		case <-w.written:
		case <-ctx.Done():
			t.Fatalf("output never showed %q; it is:\n%s", s, w.String())
		}
	}
}

func TestTailFollow(t *testing.T) {
	s := startSpoold(t, "")
	f := seed(t, s.c)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	followCtx, stop := context.WithCancel(ctx)
	out := newWatchWriter()
	done := make(chan result, 1)
	cli := s.cli(t)
	go func() {
		done <- cli.runCtx(followCtx, out, "tail", "-f", f.parent.ID)
	}()
	out.waitFor(ctx, t, "answer three")

	if _, err := s.c.Append(ctx, f.parent.ID, item("user", "prompt four"), item("assistant", "answer four")); err != nil {
		t.Fatalf("Append: %v", err)
	}
	out.waitFor(ctx, t, "answer four")
	if _, err := s.c.Append(ctx, f.parent.ID, item("assistant", "more of answer four")); err != nil {
		t.Fatalf("Append: %v", err)
	}
	out.waitFor(ctx, t, "more of answer four")
	stop()
	r := <-done
	if r.code != 0 {
		t.Fatalf("tail -f ended with exit %d, stderr %q; want 0 when interrupted", r.code, r.stderr)
	}
	got := out.String()
	if !strings.Contains(got, "── user #3") {
		t.Fatalf("the followed prompt should be numbered #3:\n%s", got)
	}
	if n := strings.Count(got, "answer three"); n != 1 {
		t.Fatalf("tail -f printed answer three %d times, want once:\n%s", n, got)
	}
	if n := strings.Count(got, "prompt four"); n != 1 {
		t.Fatalf("tail -f printed prompt four %d times, want once:\n%s", n, got)
	}
}

// TestTailFollowEnds: a follow the server ends says why, in words: the
// followed thread deleted, or laid out anew (here: made self-contained by
// the purge of the thread it was forked from, its history the same).
func TestTailFollowEnds(t *testing.T) {
	tests := []struct {
		name string
		end  func(ctx context.Context, c *client.Client, followed, parent string) error
		want string
	}{
		{"deleted", func(ctx context.Context, c *client.Client, followed, _ string) error {
			return c.Delete(ctx, followed)
		}, "thread %s was deleted"},
		{"its parent purged", func(ctx context.Context, c *client.Client, _, parent string) error {
			return c.Purge(ctx, parent)
		}, "thread %s was laid out anew (reverted, rewritten by another program, or made self-contained by the purge of a thread it was forked from)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := startSpoold(t, "")
			ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
			defer cancel()
			parent, err := s.c.Create(ctx, client.CreateOptions{Cwd: "/work/project"})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := s.c.Append(ctx, parent.ID, item("user", "a prompt"), item("assistant", "its answer")); err != nil {
				t.Fatal(err)
			}
			th, err := s.c.Fork(ctx, parent.ID, client.ForkOptions{}) // by reference: its history is its parent's bytes
			if err != nil {
				t.Fatal(err)
			}
			out := newWatchWriter()
			done := make(chan result, 1)
			cli := s.cli(t)
			go func() { done <- cli.runCtx(ctx, out, "tail", "-f", th.ID) }()
			out.waitFor(ctx, t, "its answer")
			// A line that reached the output through the follow stream:
			// the stream is open, so the end comes through it (rather than
			// as a 404).
			if _, err := s.c.Append(ctx, th.ID, item("assistant", "a later answer")); err != nil {
				t.Fatal(err)
			}
			out.waitFor(ctx, t, "a later answer")
			if err := tt.end(ctx, s.c, th.ID, parent.ID); err != nil {
				t.Fatal(err)
			}
			r := <-done
			if want := fmt.Sprintf(tt.want, th.ID); r.code != exitError || !strings.Contains(r.stderr, want) || strings.Contains(r.stderr, "stream ended") {
				t.Fatalf("tail -f: exit %d, stderr %q; want exit %d saying %q", r.code, r.stderr, exitError, want)
			}
		})
	}
}

// TestInterruptedIsNotSuccess: a command interrupted (Ctrl-C, SIGTERM)
// before it finished did not succeed: its output may be cut short, so it
// exits exitInterrupted, not 0, and a script that runs it (spool ls --json
// > threads.json && ...) does not take a half-written answer for a whole
// one. Only tail -f, which runs until interrupted, ends with 0 that way
// (TestTailFollow).
func TestInterruptedIsNotSuccess(t *testing.T) {
	s := startSpoold(t, "")
	f := seed(t, s.c)
	root, _, _ := seedRoot(t)
	tests := []struct {
		name string
		cli  *cli
		args []string
	}{
		{"ls through spoold", s.cli(t), []string{"ls", "--json"}},
		{"show through spoold", s.cli(t), []string{"show", "--raw", f.parent.ID}},
		{"ls of a root", newCLI(t, map[string]string{"SPOOL_ROOT": root}), []string{"--local", "ls", "--json"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(t.Context())
			cancel() // as a signal does before the command is done
			r := tc.cli.runCtx(ctx, &bytes.Buffer{}, tc.args...)
			if r.code != exitInterrupted {
				t.Fatalf("spool %s interrupted: exit %d, stdout %q, stderr %q; want exit %d", strings.Join(tc.args, " "), r.code, r.stdout, r.stderr, exitInterrupted)
			}
		})
	}
}

// TestTailFollowConnectionLost: a follow whose connection breaks (spoold
// killed, the network gone) says so and what to do, rather than the
// reader's "unexpected EOF" alone.
func TestTailFollowConnectionLost(t *testing.T) {
	s := startSpoold(t, "")
	f := seed(t, s.c)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	out := newWatchWriter()
	done := make(chan result, 1)
	cli := s.cli(t)
	go func() { done <- cli.runCtx(ctx, out, "tail", "-f", f.parent.ID) }()
	out.waitFor(ctx, t, "answer three")
	// The stream is open once a line came through it.
	if _, err := s.c.Append(ctx, f.parent.ID, item("assistant", "a later answer")); err != nil {
		t.Fatal(err)
	}
	out.waitFor(ctx, t, "a later answer")
	s.ts.CloseClientConnections()
	r := <-done
	if r.code != exitError || !strings.Contains(r.stderr, "lost the connection to spoold") || !strings.Contains(r.stderr, "spool tail -f again") {
		t.Fatalf("tail -f whose connection broke: exit %d, stderr %q; want exit %d saying the connection was lost and to run it again", r.code, r.stderr, exitError)
	}
}

// TestInterruptedAmongThreads: archive (rm, unarchive) of several threads
// interrupted after the first stops there and exits exitInterrupted,
// without reporting the threads it did not get to as failures ("context
// canceled", one for each).
func TestInterruptedAmongThreads(t *testing.T) {
	s := startSpoold(t, "")
	f := seed(t, s.c)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	out := &cancelOnWrite{cancel: cancel}
	r := s.cli(t).runCtx(ctx, out, "archive", f.parent.ID, f.fork.ID, f.copy.ID)
	if r.code != exitInterrupted || r.stderr != "" || out.String() != "archived "+f.parent.ID+"\n" {
		t.Fatalf("archive interrupted after its first thread: exit %d, stdout %q, stderr %q; want exit %d after the first, nothing on stderr", r.code, out.String(), r.stderr, exitInterrupted)
	}
	if th, err := s.c.Get(t.Context(), f.copy.ID); err != nil || th.Archived {
		t.Fatalf("the last thread: %+v, %v; want it live", th, err)
	}
}

func TestFork(t *testing.T) {
	s := startSpoold(t, "")
	f := seed(t, s.c)
	cli := s.cli(t)

	id := strings.TrimSpace(cli.ok("fork", "--before", "2", "--name", "second try", f.parent.ID))
	got, err := s.c.Get(t.Context(), id)
	if err != nil {
		t.Fatalf("Get of the printed id %q: %v", id, err)
	}
	if got.ParentID != f.parent.ID || got.ForkUserMessage != 2 || got.UserMessageCount != 2 || got.Name != "second try" {
		t.Fatalf("fork = parent %s before %d with %d messages named %q; want %s, 2, 2, second try",
			got.ParentID, got.ForkUserMessage, got.UserMessageCount, got.Name, f.parent.ID)
	}

	var whole client.Thread
	if err := json.Unmarshal([]byte(cli.ok("fork", "--json", f.parent.ID)), &whole); err != nil {
		t.Fatalf("fork --json: %v", err)
	}
	if whole.ForkUserMessage != -1 || whole.UserMessageCount != 3 {
		t.Fatalf("whole fork = before %d with %d messages, want -1 and 3", whole.ForkUserMessage, whole.UserMessageCount)
	}

	r := cli.run("fork", "--before", "9", f.parent.ID)
	if r.code != exitError || !strings.Contains(r.stderr, "has 3 user messages (0 to 2); 9 is out of range") {
		t.Fatalf("fork --before 9: exit %d, stderr %q; want %d and the count", r.code, r.stderr, exitError)
	}
}

// TestForkAnswerLost: a fork whose answer is lost on the way from spoold
// is sent again and made once (the client names it with an idempotency
// key of its own); a rename whose answer is lost is not sent again.
func TestForkAnswerLost(t *testing.T) {
	s := startSpoold(t, "")
	f := seed(t, s.c)
	before, err := s.c.List(t.Context(), client.ListOptions{ParentID: f.parent.ID})
	if err != nil {
		t.Fatal(err)
	}
	tr := &lossy.Transport{Drop: func(r *http.Request) bool { return r.Method != http.MethodGet }}
	cli := s.cli(t)
	cli.transport = tr
	id := strings.TrimSpace(cli.ok("fork", "--before", "2", f.parent.ID))
	if n := tr.Sent("POST", "/fork"); n != 2 {
		t.Fatalf("the fork was sent %d times, want twice (its first answer lost)", n)
	}
	after, err := s.c.List(t.Context(), client.ListOptions{ParentID: f.parent.ID})
	if err != nil || len(after.Threads) != len(before.Threads)+1 || after.Threads[0].ID != id {
		t.Fatalf("forks of the parent: %d, %v; want one more than %d, the one printed (%s) newest",
			len(after.Threads), err, len(before.Threads), id)
	}
	if r := cli.run("rename", id, "lost"); r.code == exitOK {
		t.Fatalf("a rename whose answer was lost: exit %d, want a failure", r.code)
	}
	if n := tr.Sent("PATCH", id); n != 1 {
		t.Fatalf("the rename was sent %d times, want once", n)
	}
}

func TestTree(t *testing.T) {
	s := startSpoold(t, "")
	f := seed(t, s.c)
	two := 2
	sibling, err := s.c.Fork(t.Context(), f.parent.ID, client.ForkOptions{BeforeUserMessage: &two, Name: "sibling"})
	if err != nil {
		t.Fatalf("Fork: %v", err)
	}
	want := fmt.Sprintf(`%s  parent  [3 msgs]
├── %s  retry  [before #1, 1 msg]
│   └── %s  copy  [copy, 1 msg]  ◀
└── %s  sibling  [before #2, 2 msgs]
`, f.parent.ID, f.fork.ID, f.copy.ID, sibling.ID)
	if got := s.cli(t).ok("tree", f.copy.ID); got != want {
		t.Fatalf("tree =\n%s\nwant\n%s", got, want)
	}

	// The fork deleted: the index forgets it, its copy still names it.
	if err := s.c.Delete(t.Context(), f.fork.ID); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	want = fmt.Sprintf(`%s  parent  [3 msgs]
├── %s  sibling  [before #2, 2 msgs]  ◀
└── %s  (deleted)
    └── %s  copy  [copy, 1 msg]
`, f.parent.ID, sibling.ID, f.fork.ID, f.copy.ID)
	if got := s.cli(t).ok("tree", sibling.ID); got != want {
		t.Fatalf("tree after deleting the fork =\n%s\nwant\n%s", got, want)
	}
}

func TestSearch(t *testing.T) {
	s := startSpoold(t, "")
	f := seed(t, s.c)
	out := s.cli(t).ok("search", "gophers")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[1], f.parent.ID) || !strings.Contains(lines[1], "«gophers»") {
		t.Fatalf("search gophers =\n%s\nwant one hit in the parent, with the match marked", out)
	}
	r := s.cli(t).run("search", "nothing-matches-this")
	if r.code != 0 || r.stdout != "" || !strings.Contains(r.stderr, "no matches") {
		t.Fatalf("search without hits: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
}

func TestRenameArchiveRm(t *testing.T) {
	s := startSpoold(t, "")
	f := seed(t, s.c)
	cli := s.cli(t)
	ctx := t.Context()

	cli.ok("rename", f.parent.ID, "better name")
	if got, _ := s.c.Get(ctx, f.parent.ID); got.Name != "better name" {
		t.Fatalf("after rename the name is %q", got.Name)
	}

	cli.ok("archive", f.parent.ID, f.fork.ID)
	for _, id := range []string{f.parent.ID, f.fork.ID} {
		if got, _ := s.c.Get(ctx, id); !got.Archived {
			t.Fatalf("thread %s is not archived after archive", id)
		}
	}
	r := cli.run("unarchive", f.parent.ID, f.copy.ID)
	if r.code != exitError || !strings.Contains(r.stdout, "unarchived "+f.parent.ID) || !strings.Contains(r.stderr, f.copy.ID) {
		t.Fatalf("unarchive of an archived and a live thread: exit %d, stdout %q, stderr %q; want 1, one done, one refused", r.code, r.stdout, r.stderr)
	}
	if got, _ := s.c.Get(ctx, f.parent.ID); got.Archived {
		t.Fatalf("parent still archived after unarchive")
	}

	cli.ok("rm", f.copy.ID)
	if _, err := s.c.Get(ctx, f.copy.ID); err == nil {
		t.Fatalf("thread %s still exists after rm", f.copy.ID)
	}
	// Each failure names its thread once: the error names it already.
	if r := cli.run("rm", f.copy.ID); r.code != exitError || !strings.Contains(r.stderr, "not_found") || strings.Count(r.stderr, f.copy.ID) != 1 {
		t.Fatalf("rm of a deleted thread: exit %d, stderr %q; want 1 and not_found, naming it once", r.code, r.stderr)
	}
	if r := cli.run("rm", "zzzz"); r.code != exitError || r.stderr != "spool: no thread id starts or ends with \"zzzz\"\n" {
		t.Fatalf("rm of an id no thread has: exit %d, stderr %q", r.code, r.stderr)
	}
}

// corruptLastPrompt turns the last user message of a thread's file into a
// tool message of the same length, so the index no longer matches it.
func corruptLastPrompt(t *testing.T, path string) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read rollout: %v", err)
	}
	i := bytes.LastIndex(data, []byte(`"role":"user"`))
	if i < 0 {
		t.Fatalf("no user message in %s", path)
	}
	copy(data[i:], `"role":"tool"`)
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatalf("write rollout: %v", err)
	}
}

// TestDoctorThroughSpooldGoesOnPastABrokenChain: a thread whose history
// cannot be read (its base no longer holds the bytes below its cut, as
// after Codex reverts a base under its forks) is one drift, and doctor
// checks the other threads. It stopped at the first such thread, with an
// error and no report.
func TestDoctorThroughSpooldGoesOnPastABrokenChain(t *testing.T) {
	s := startSpoold(t, "")
	cli := s.cli(t)
	ctx := t.Context()
	base, err := s.c.Create(ctx, client.CreateOptions{Cwd: "/work/project"})
	if err == nil {
		_, err = s.c.Append(ctx, base.ID, item("user", "p one"), item("assistant", "a one"))
	}
	var fork client.Thread
	if err == nil {
		fork, err = s.c.Fork(ctx, base.ID, client.ForkOptions{})
	}
	if err == nil {
		_, err = s.c.Create(ctx, client.CreateOptions{Cwd: "/work/other"})
	}
	if err != nil {
		t.Fatal(err)
	}
	if fork.BaseID != base.ID {
		t.Fatalf("whole fork of a paginated thread: base %q, want %s", fork.BaseID, base.ID)
	}
	// The base loses its last line: the fork's cut is past its end.
	path := filepath.Join(s.root, filepath.FromSlash(base.RolloutPath))
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	last := bytes.LastIndexByte(data[:len(data)-1], '\n') + 1
	if err := os.WriteFile(path, data[:last], 0o600); err != nil {
		t.Fatal(err)
	}
	r := cli.run("doctor", "--json")
	var rep doctorReport
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil || r.code != exitDrift {
		t.Fatalf("doctor --json with a broken chain: exit %d, %v; stdout %s stderr %s", r.code, err, r.stdout, r.stderr)
	}
	if rep.Threads != 3 || !slices.ContainsFunc(rep.Drifts, func(d drift) bool { return d.ThreadID == fork.ID && d.Kind == "broken_chain" }) {
		t.Fatalf("doctor: %d threads, drifts %+v; want 3 threads checked and the fork's broken_chain", rep.Threads, rep.Drifts)
	}
}

func TestDoctorThroughSpoold(t *testing.T) {
	s := startSpoold(t, "")
	f := seed(t, s.c)
	cli := s.cli(t)
	if _, err := s.c.Archive(t.Context(), f.copy.ID); err != nil {
		t.Fatalf("Archive: %v", err)
	}
	// A reference fork (of a paginated thread) with lines of its own, and
	// a fork of that fork: their histories begin in their bases' files.
	paginated, err := s.c.Create(t.Context(), client.CreateOptions{Cwd: "/work/project"})
	if err == nil {
		_, err = s.c.Append(t.Context(), paginated.ID, item("user", "p one"), item("assistant", "a one"), item("user", "p two"))
	}
	one := 1
	var ref client.Thread
	if err == nil {
		ref, err = s.c.Fork(t.Context(), paginated.ID, client.ForkOptions{BeforeUserMessage: &one})
	}
	if err == nil {
		_, err = s.c.Append(t.Context(), ref.ID, item("user", "own prompt"), item("assistant", "own answer"))
	}
	var leaf client.Thread
	if err == nil {
		leaf, err = s.c.Fork(t.Context(), ref.ID, client.ForkOptions{})
	}
	if err != nil {
		t.Fatal(err)
	}
	if ref.BaseID == "" {
		t.Fatalf("fork of a paginated thread has no base: %+v", ref)
	}
	out := cli.ok("doctor")
	if !strings.Contains(out, "spoold at http://"+s.addr) || !strings.Contains(out, "6 threads, 0 drifts") {
		t.Fatalf("doctor on a clean store:\n%s", out)
	}
	corruptLastPrompt(t, filepath.Join(s.root, filepath.FromSlash(f.parent.RolloutPath)))
	r := cli.run("doctor", "--json")
	if r.code != exitDrift {
		t.Fatalf("doctor after corruption: exit %d, want %d; stdout %s stderr %s", r.code, exitDrift, r.stdout, r.stderr)
	}
	var rep doctorReport
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
		t.Fatalf("doctor --json: %v", err)
	}
	if len(rep.Drifts) != 1 || rep.Drifts[0].ThreadID != f.parent.ID || rep.Drifts[0].Kind != "messages" {
		t.Fatalf("doctor drifts = %+v, want one messages drift of the parent", rep.Drifts)
	}

	// A thread whose file is gone (deleted by Codex, or by hand) is
	// dropped from the index by the read that finds it so, as Codex's
	// thread/delete would be: the doctor's read of its history drops it,
	// and it is no drift.
	if err := os.Remove(filepath.Join(s.root, filepath.FromSlash(leaf.RolloutPath))); err != nil {
		t.Fatal(err)
	}
	r = cli.run("doctor", "--json")
	rep = doctorReport{}
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil || r.code != exitOK {
		t.Fatalf("doctor --json with a file gone: exit %d, %v; stdout %s stderr %s", r.code, err, r.stdout, r.stderr)
	}
	if slices.ContainsFunc(rep.Drifts, func(d drift) bool { return d.ThreadID == leaf.ID }) {
		t.Fatalf("doctor drifts = %+v, want none for the thread whose file is gone", rep.Drifts)
	}
	if _, err := s.c.Get(t.Context(), leaf.ID); !errors.Is(err, client.ErrNotFound) {
		t.Fatalf("get of the thread whose file is gone, after doctor read it: %v, want ErrNotFound", err)
	}
}

func TestHelpAndUsage(t *testing.T) {
	cli := newCLI(t, map[string]string{})
	tests := []struct {
		args []string
		code int
		want string // in stdout for 0, stderr otherwise
	}{
		{[]string{"-h"}, exitOK, "Available Commands"},
		{[]string{"--help"}, exitOK, "doctor"},
		{[]string{"tail", "-h"}, exitOK, "follow stream"},
		{[]string{"fork", "-h"}, exitOK, "--before"},
		{[]string{"completion", "bash"}, exitOK, "bash completion"},
		{[]string{"completion", "zsh"}, exitOK, "zsh completion"},
		{[]string{"ls", "--no-such-flag"}, exitUsage, "unknown flag"},
		{[]string{"show"}, exitUsage, "accepts 1 arg"},
		{[]string{"ls", "--archived", "--all"}, exitUsage, "exclude each other"},
		{[]string{"fork", "x", "--before", "0", "--before-turn", "t"}, exitUsage, "exclude each other"},
		{[]string{"fork", "x", "--before-turn", "t", "--through-turn", "u"}, exitUsage, "exclude each other"},
		{[]string{"show", "x", "--from", "-2"}, exitUsage, "--from must be 0 or more, not -2"},
		{[]string{}, exitOK, "Available Commands"},
		{[]string{"help"}, exitOK, "Available Commands"},
		{[]string{"help", "show"}, exitOK, "Show a thread's conversation"},
		{[]string{"help", "completion", "bash"}, exitOK, "autocompletion script for the bash shell"},
		{[]string{"completion"}, exitOK, "Generate the autocompletion script"},
		{[]string{"no-such-command"}, exitUsage, `unknown command "no-such-command" for "spool"`},
		{[]string{"shw"}, exitUsage, `unknown command "shw" for "spool" (did you mean "show"?)`},
		{[]string{"help", "frob"}, exitUsage, `unknown help topic "frob"`},
		{[]string{"help", "show", "extra"}, exitUsage, `unknown help topic "show extra"`},
		{[]string{"completion", "tcsh"}, exitUsage, `unknown command "tcsh" for "spool completion"`},
	}
	for _, tc := range tests {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			r := cli.run(tc.args...)
			got := r.stdout
			if tc.code != 0 {
				got = r.stderr
			}
			if r.code != tc.code || !strings.Contains(got, tc.want) {
				t.Fatalf("exit %d, output %q; want %d and %q", r.code, got, tc.code, tc.want)
			}
			if tc.code == exitUsage && !strings.HasSuffix(r.stderr, "\n(spool -h for help)\n") {
				t.Fatalf("a usage error's stderr %q does not end with the help hint", r.stderr)
			}
		})
	}
}

func TestCompletesThreadIDs(t *testing.T) {
	s := startSpoold(t, "")
	f := seed(t, s.c)
	out := s.cli(t).ok("__complete", "show", f.fork.ID[:4])
	if !strings.Contains(out, f.fork.ID+"\tretry") || !strings.Contains(out, ":4") {
		t.Fatalf("completion of show %s:\n%s\nwant the fork's id with its name and no file completion (:4)", f.fork.ID[:4], out)
	}
	// A command of one thread offers none after it (rename's NAME, a
	// second show argument); one of many goes on offering them.
	for _, args := range [][]string{{"rename", f.fork.ID, ""}, {"show", f.fork.ID, ""}} {
		if out := s.cli(t).ok(append([]string{"__complete"}, args...)...); strings.Contains(out, f.fork.ID) {
			t.Errorf("completion of %q offers ids:\n%s", args, out)
		}
	}
	if out := s.cli(t).ok("__complete", "archive", f.parent.ID, f.fork.ID[:4]); !strings.Contains(out, f.fork.ID) {
		t.Errorf("completion of archive's second id:\n%s", out)
	}
}

func TestWrongTokenIsNotAFallback(t *testing.T) {
	s := startSpoold(t, "right")
	cli := newCLI(t, map[string]string{"SPOOL_ADDR": s.addr, "SPOOL_TOKEN": "wrong"})
	r := cli.run("ls")
	if r.code != exitError || !strings.Contains(r.stderr, "unauthorized") {
		t.Fatalf("ls with a wrong token: exit %d, stderr %q; want 1 and unauthorized", r.code, r.stderr)
	}
}

func TestForkBeforeTurnID(t *testing.T) {
	s := startSpoold(t, "")
	ctx := t.Context()
	// Legacy: Codex rolls back only those.
	th, err := s.c.Create(ctx, client.CreateOptions{HistoryMode: "legacy"})
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	turnContext := func(id string) client.Item {
		payload, _ := json.Marshal(map[string]any{"turn_id": id, "cwd": "/p"})
		return client.Item{Type: "turn_context", Payload: payload}
	}
	var items []client.Item
	for _, turn := range []struct{ id, prompt string }{{"turn-a", "alpha"}, {"turn-b", "beta"}, {"turn-c", "gamma"}, {"turn-d", "delta"}} {
		items = append(items, turnContext(turn.id),
			event(map[string]any{"type": "task_started", "turn_id": turn.id}),
			item("user", turn.prompt), item("assistant", "re: "+turn.prompt))
		if turn.id == "turn-c" {
			items = append(items, event(map[string]any{"type": "thread_rolled_back", "num_turns": 1}))
		}
		items = append(items, event(map[string]any{"type": "task_complete", "turn_id": turn.id}))
	}
	if _, err := s.c.Append(ctx, th.ID, items...); err != nil {
		t.Fatalf("Append: %v", err)
	}

	tests := []struct {
		turn    string
		want    int    // the fork's fork_user_message
		wantErr string // in stderr when the fork must fail
	}{
		{turn: "turn-a", want: 0},
		{turn: "turn-b", want: 1},
		{turn: "turn-d", want: 2},                  // gamma, in turn-c, was rolled back
		{turn: "turn-c", wantErr: `turn "turn-c"`}, // its only message was rolled back
		{turn: "turn-z", wantErr: `turn "turn-z"`},
	}
	cli := s.cli(t)
	for _, tc := range tests {
		t.Run(tc.turn, func(t *testing.T) {
			r := cli.run("fork", "--json", "--before-turn", tc.turn, th.ID)
			if tc.wantErr != "" {
				if r.code != exitError || !strings.Contains(r.stderr, tc.wantErr) {
					t.Fatalf("exit %d, stderr %q; want 1 and %q", r.code, r.stderr, tc.wantErr)
				}
				return
			}
			var fork client.Thread
			if err := json.Unmarshal([]byte(r.stdout), &fork); err != nil {
				t.Fatalf("exit %d, stderr %q: %v", r.code, r.stderr, err)
			}
			if fork.ForkUserMessage != tc.want || fork.UserMessageCount != tc.want {
				t.Fatalf("fork before %s = cut before %d with %d messages, want %d", tc.turn, fork.ForkUserMessage, fork.UserMessageCount, tc.want)
			}
		})
	}
	if r := cli.run("fork", "--before", "1", "--before-turn", "turn-a", th.ID); r.code != exitUsage {
		t.Fatalf("--before with --before-turn: exit %d, want %d", r.code, exitUsage)
	}
	if r := cli.run("fork", "--through-turn", "turn-a", "--before-turn", "turn-b", th.ID); r.code != exitUsage {
		t.Fatalf("--through-turn with --before-turn: exit %d, want %d", r.code, exitUsage)
	}
	// --through-turn keeps turn-b whole: alpha and beta.
	r := cli.run("fork", "--json", "--through-turn", "turn-b", th.ID)
	var through client.Thread
	if err := json.Unmarshal([]byte(r.stdout), &through); err != nil || through.UserMessageCount != 2 {
		t.Fatalf("fork --through-turn turn-b: exit %d, stderr %q, %d messages (%v); want 2", r.code, r.stderr, through.UserMessageCount, err)
	}
}

// TestRmPurge: rm refuses a base of reference forks (409 referenced, as
// Codex does); rm --purge deletes it through spoold's purge route after
// making the fork self-contained, which keeps its id and its turns.
func TestRmPurge(t *testing.T) {
	s := startSpoold(t, "")
	cli := s.cli(t)
	ctx := t.Context()
	base, err := s.c.Create(ctx, client.CreateOptions{Cwd: "/work/project", Source: "cli"})
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	if _, err := s.c.Append(ctx, base.ID, item("user", "prompt one"), item("assistant", "answer one"), item("user", "prompt two")); err != nil {
		t.Fatalf("Append: %v", err)
	}
	one := 1
	fork, err := s.c.Fork(ctx, base.ID, client.ForkOptions{BeforeUserMessage: &one})
	if err != nil {
		t.Fatalf("Fork: %v", err)
	}
	if fork.BaseID != base.ID {
		t.Fatalf("fork base = %q, want a reference fork of %s", fork.BaseID, base.ID)
	}
	before := cli.ok("show", fork.ID)
	if !strings.Contains(before, "prompt one") {
		t.Fatalf("show of the fork = %q, want its inherited prompt", before)
	}
	if r := cli.run("rm", base.ID); r.code != exitError || !strings.Contains(r.stderr, "referenced") || !strings.Contains(r.stderr, "rm --purge") {
		t.Fatalf("rm of a base: exit %d, stderr %q; want 1, referenced and the way out", r.code, r.stderr)
	}
	if got := cli.ok("rm", "--purge", base.ID); !strings.Contains(got, "purged "+base.ID) {
		t.Fatalf("rm --purge printed %q", got)
	}
	if _, err := s.c.Get(ctx, base.ID); !errors.Is(err, client.ErrNotFound) {
		t.Fatalf("purged base: Get = %v, want ErrNotFound", err)
	}
	got, err := s.c.Get(ctx, fork.ID)
	if err != nil || got.BaseID != "" || got.UserMessageCount != 1 {
		t.Fatalf("fork after the purge: %+v (%v), want self-contained with 1 user message", got, err)
	}
	if after := cli.ok("show", fork.ID); after != before {
		t.Fatalf("fork's turns after the purge:\n%s\nwant\n%s", after, before)
	}
}

// TestMissingRootIsNotMade: with no spoold answering, a command on a root
// that does not exist fails and makes nothing, so a mistyped --root or
// $SPOOL_ADDR is not answered with an empty list.
func TestMissingRootIsNotMade(t *testing.T) {
	root := filepath.Join(t.TempDir(), "nonexistent")
	cli := newCLI(t, map[string]string{})
	for _, args := range [][]string{{"ls"}, {"search", "x"}, {"show", "abc"}} {
		r := cli.run(append(args, "--root", root)...)
		if r.code != exitError || !strings.Contains(r.stderr, "no such root") {
			t.Errorf("%v: exit %d, stderr %q; want %d and no such root", args, r.code, r.stderr, exitError)
		}
	}
	// --local asked for the root, not a spoold: no advice about one.
	if r := cli.run("--local", "ls", "--root", root); r.code != exitError || !strings.Contains(r.stderr, "no such root") || strings.Contains(r.stderr, "SPOOL_ADDR") {
		t.Errorf("--local ls: exit %d, stderr %q; want %d and no such root, without SPOOL_ADDR", r.code, r.stderr, exitError)
	}
	if _, err := os.Stat(root); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("the root was made: %v", err)
	}
	if r := cli.run("doctor", "--root", root); r.code != exitError || !strings.Contains(r.stderr, "no such root") {
		t.Errorf("doctor: exit %d, stderr %q; want %d and no such root", r.code, r.stderr, exitError)
	}
}

// TestDirectoryThatIsNoRootIsNotWritten: a root named by mistake, an
// existing directory that is neither a spool root nor a Codex home, is
// refused by every command that would open it, and gets no index, lock or
// sessions/ directory. An empty Codex home (its config.toml only) opens.
func TestDirectoryThatIsNoRootIsNotWritten(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("mine\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cli := newCLI(t, map[string]string{})
	for _, args := range [][]string{{"ls"}, {"search", "x"}, {"show", "abc"}, {"tree", "abc"}, {"doctor"}} {
		r := cli.run(append(args, "--local", "--root", dir)...)
		if r.code != exitError || !strings.Contains(r.stderr, "neither a spool root nor a Codex home: "+dir) {
			t.Errorf("%v: exit %d, stderr %q; want %d and neither a spool root nor a Codex home", args, r.code, r.stderr, exitError)
		}
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Fatalf("%s holds %v, want only notes.txt", dir, entries)
	}
	codexHome := t.TempDir()
	if err := os.WriteFile(filepath.Join(codexHome, "config.toml"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if r := cli.run("ls", "--local", "--root", codexHome); r.code != exitOK {
		t.Errorf("ls of an empty Codex home: exit %d, stderr %q; want 0", r.code, r.stderr)
	}
}

// TestRootThatIsAFile: a root that names a file is called so by every
// command, doctor too (it said "not a directory" for a missing root and
// "mkdir ...: not a directory" for the others).
func TestRootThatIsAFile(t *testing.T) {
	file := filepath.Join(t.TempDir(), "a-file")
	if err := os.WriteFile(file, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	cli := newCLI(t, map[string]string{})
	for _, args := range [][]string{{"ls"}, {"doctor"}, {"show", "abc"}} {
		r := cli.run(append(args, "--root", file)...)
		if r.code != exitError || !strings.Contains(r.stderr, "root "+file+" is not a directory") {
			t.Errorf("%v: exit %d, stderr %q; want %d and that the root is not a directory", args, r.code, r.stderr, exitError)
		}
	}
}

// TestDoctorIndexItCannotLookAt: an index doctor cannot stat for another
// reason than its absence is not reported as missing, with a hint to
// build one (a root whose directory is not the user's).
func TestDoctorIndexItCannotLookAt(t *testing.T) {
	if os.Geteuid() == 0 {
		// Root passes every permission check: take a file for the
		// directory instead, which fails stat with ENOTDIR.
		root := t.TempDir()
		index := filepath.Join(root, "file", "spool.db")
		if err := os.WriteFile(filepath.Join(root, "file"), nil, 0o600); err != nil {
			t.Fatal(err)
		}
		cli := newCLI(t, map[string]string{"SPOOL_ROOT": root, "SPOOL_INDEX": index})
		r := cli.run("--local", "doctor")
		if r.code != exitError || strings.Contains(r.stderr, "no index to check") || !strings.Contains(r.stderr, "not a directory") {
			t.Fatalf("doctor with an index under a file: exit %d, stderr %q; want 1 and the stat error", r.code, r.stderr)
		}
		return
	}
	root := t.TempDir()
	if err := os.Chmod(root, 0); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Chmod(root, 0o700) })
	cli := newCLI(t, map[string]string{"SPOOL_ROOT": root})
	r := cli.run("--local", "doctor")
	if r.code != exitError || strings.Contains(r.stderr, "no index to check") || !strings.Contains(r.stderr, "permission denied") {
		t.Fatalf("doctor on a root it cannot enter: exit %d, stderr %q; want 1 and permission denied", r.code, r.stderr)
	}
}

// TestBusySaysWhatToDo: a thread a running Codex holds (its writer lock)
// is refused with what to do about it, through spoold and on a root, while
// show and fork still work.
func TestBusySaysWhatToDo(t *testing.T) {
	s := startSpoold(t, "")
	f := seed(t, s.c)
	lock, err := codexlock.TryLock(s.root, f.parent.ID)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Unlock()
	cli := s.cli(t)
	for _, args := range [][]string{{"rename", f.parent.ID, "x"}, {"archive", f.parent.ID}} {
		if r := cli.run(args...); r.code != exitError || !strings.Contains(r.stderr, "busy") || !strings.Contains(r.stderr, "until that process exits") {
			t.Errorf("%v while Codex holds the thread: exit %d, stderr %q; want 1 and what to do", args, r.code, r.stderr)
		}
	}
	cli.ok("show", f.parent.ID)
	cli.ok("fork", f.parent.ID)
	s.close(t)
	local := newCLI(t, map[string]string{"SPOOL_ROOT": s.root})
	if r := local.run("rename", f.parent.ID, "x"); r.code != exitError || !strings.Contains(r.stderr, "until that process exits") {
		t.Errorf("rename on the root while Codex holds the thread: exit %d, stderr %q; want 1 and what to do", r.code, r.stderr)
	}
}

// TestWrongTokenSaysWhatToDo: a 401 from spoold says how to give the token.
func TestWrongTokenSaysWhatToDo(t *testing.T) {
	s := startSpoold(t, "tok")
	cli := newCLI(t, map[string]string{"SPOOL_ADDR": s.addr, "SPOOL_TOKEN": "wrong"})
	if r := cli.run("ls"); r.code != exitError || !strings.Contains(r.stderr, "401") || !strings.Contains(r.stderr, "$SPOOL_TOKEN") {
		t.Fatalf("ls with a wrong token: exit %d, stderr %q; want 1, the 401 and how to give the token", r.code, r.stderr)
	}
}

// TestBlankIDIsAUsageError: an empty or blank thread id is a mistake in
// the command line (exit 2), found before anything is asked of spoold or
// done: it used to reach spoold as a request for another route.
func TestBlankIDIsAUsageError(t *testing.T) {
	s := startSpoold(t, "")
	f := seed(t, s.c)
	cli := s.cli(t)
	tests := [][]string{
		{"show", ""},
		{"show", " "},
		{"tail", ""},
		{"fork", "\t"},
		{"tree", ""},
		{"rename", "", "name"},
		{"archive", f.parent.ID, " "},
		{"rm", f.copy.ID, ""},
		{"ls", "--parent", " "},
		{"transfer", "", "--from", s.root, "--to", t.TempDir()},
	}
	for _, args := range tests {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			r := cli.run(args...)
			if r.code != exitUsage || !strings.Contains(r.stderr, "is blank") || !strings.Contains(r.stderr, "(spool -h for help)") {
				t.Fatalf("exit %d, stderr %q; want %d, a blank id and the help hint", r.code, r.stderr, exitUsage)
			}
		})
	}
	// The valid ids beside the blank ones were left alone.
	for _, id := range []string{f.parent.ID, f.copy.ID} {
		if got, err := s.c.Get(t.Context(), id); err != nil || got.Archived {
			t.Fatalf("thread %s after the refused commands: archived %v, %v; want it live", id, got.Archived, err)
		}
	}
}

// TestWholeForkKinds: tree and show call a fork of a whole thread what it
// is: a reference into a paginated parent's history (nothing copied) or a
// copy of a legacy parent's file.
func TestWholeForkKinds(t *testing.T) {
	s := startSpoold(t, "")
	cli := s.cli(t)
	ctx := t.Context()
	tests := []struct {
		mode       string // the parent's history mode
		tree, show string
	}{
		{"paginated", "[reference, 1 msg]", "(the whole thread, by reference)"},
		{"legacy", "[copy, 1 msg]", "(the whole thread, copied)"},
	}
	for _, tc := range tests {
		t.Run(tc.mode, func(t *testing.T) {
			parent, err := s.c.Create(ctx, client.CreateOptions{HistoryMode: tc.mode})
			if err == nil {
				_, err = s.c.Append(ctx, parent.ID, item("user", "only prompt"), event(map[string]any{"type": "user_message", "message": "only prompt"}))
			}
			var fork client.Thread
			if err == nil {
				fork, err = s.c.Fork(ctx, parent.ID, client.ForkOptions{})
			}
			if err != nil {
				t.Fatal(err)
			}
			if tree := cli.ok("tree", fork.ID); !strings.Contains(tree, fork.ID+"  \"only prompt\"  "+tc.tree+"  ◀") {
				t.Fatalf("tree of the fork (base %q) =\n%s\nwant it labelled %s", fork.BaseID, tree, tc.tree)
			}
			if shown := cli.ok("show", fork.ID); !strings.Contains(shown, "forked from "+parent.ID+" "+tc.show+"\n") {
				t.Fatalf("show of the fork (base %q) =\n%s\nwant it to say %s", fork.BaseID, shown, tc.show)
			}
		})
	}
}

// TestLabel: a thread's label in a listing is its name on one line, or,
// for a name of white space alone (no name, as Codex shows it), its
// first prompt. A thread with neither says why: it has no user messages,
// or its prompts have no echo to give a preview (bare items, as the
// README's first session appends them, or Codex's thread/inject_items).
func TestLabel(t *testing.T) {
	tests := []struct {
		name, preview string
		messages      int
		want          string
	}{
		{"plan", "hello", 1, "plan"},
		{"two\nlines", "hello", 1, "two lines"},
		{" \t", "hello", 1, `"hello"`},
		{"", "", 0, "(no messages)"},
		{"", "", 2, "(no preview)"},
	}
	for _, tt := range tests {
		th := client.Thread{Name: tt.name, Preview: tt.preview, UserMessageCount: tt.messages}
		if got := label(th); got != tt.want {
			t.Errorf("label(name %q, preview %q, %d user messages) = %q, want %q", tt.name, tt.preview, tt.messages, got, tt.want)
		}
	}
}

// TestRootGivenWithAServer: with a spoold answering, --root names a root
// the command does not open: it says so on stderr, and --local opens it.
func TestRootGivenWithAServer(t *testing.T) {
	s := startSpoold(t, "")
	other := t.TempDir()
	r := s.cli(t).run("--root", other, "ls")
	if r.code != exitOK || !strings.Contains(r.stderr, "--root "+other+" ignored") {
		t.Fatalf("ls --root with a server: exit %d, stderr %q; want the root named as ignored", r.code, r.stderr)
	}
	if r := s.cli(t).run("ls"); strings.Contains(r.stderr, "ignored") {
		t.Fatalf("ls without --root warned: %q", r.stderr)
	}
}

// TestAddressPasswordNotShown: a password in the address (a proxy's basic
// auth, https://user:secret@host) is sent, not printed: spool names the
// server it uses, or the one that did not answer, without it.
func TestAddressPasswordNotShown(t *testing.T) {
	s := startSpoold(t, "")
	withPassword := "http://me:s3cret@" + s.addr
	r := newCLI(t, map[string]string{"SPOOL_ADDR": withPassword}).run("--root", t.TempDir(), "doctor", "--json")
	if r.code != exitOK || !strings.Contains(r.stderr, "using spoold at http://me:xxxxx@"+s.addr) || !strings.Contains(r.stdout, "spoold at http://me:xxxxx@"+s.addr) {
		t.Fatalf("doctor at %s: exit %d, stdout %q, stderr %q; want the server named without its password", withPassword, r.code, r.stdout, r.stderr)
	}
	closed := "http://me:s3cret@" + fixtures.ClosedAddr(t)
	r = newCLI(t, map[string]string{"SPOOL_ADDR": closed}).run("ls")
	if !strings.Contains(r.stderr, "no spoold answers at http://me:xxxxx@") {
		t.Fatalf("ls at %s: stderr %q; want the address named without its password", closed, r.stderr)
	}
	for _, out := range []string{r.stdout, r.stderr} {
		if strings.Contains(out, "s3cret") {
			t.Fatalf("spool printed the password: %q", out)
		}
	}
}

// TestControlCharactersShown: an escape sequence in a thread's name or a
// prompt reaches the terminal as visible symbols from ls, show, tree and
// search, never as the control characters a terminal would act on; --json
// and --raw keep every byte, for programs.
func TestControlCharactersShown(t *testing.T) {
	s := startSpoold(t, "")
	ctx := t.Context()
	const esc = "\x1b[31m"
	th, err := s.c.Create(ctx, client.CreateOptions{Name: "red " + esc + "name", Cwd: "/work", Source: "cli"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.c.Append(ctx, th.ID, item("user", "gophers "+esc+"RED\x9b2J prompt"), item("assistant", "ok")); err != nil {
		t.Fatal(err)
	}
	cli := s.cli(t)
	// Completion too: zsh and fish print its descriptions, the names.
	for _, args := range [][]string{{"ls"}, {"show", th.ID}, {"tree", th.ID}, {"search", "gophers"}, {"__complete", "show", th.ID[:8]}} {
		out := cli.ok(args...)
		if strings.ContainsAny(out, "\x1b\u009b") {
			t.Errorf("spool %v printed a control character: %q", args, out)
		}
		if !strings.Contains(out, "␛[31m") {
			t.Errorf("spool %v does not show the escape as ␛: %q", args, out)
		}
	}
	if raw := cli.ok("show", "--raw", th.ID); !strings.Contains(raw, `\u001b[31mRED`) {
		t.Errorf("show --raw changed the stored line: %q", raw)
	}
	if js := cli.ok("ls", "--json"); !strings.Contains(js, `red \u001b[31mname`) {
		t.Errorf("ls --json changed the name: %q", js)
	}
}

// TestErrorsShowControlCharacters: an error's text can come from outside
// (a proxy's or another server's answer, which the client keeps as its
// message): its control characters reach stderr as printable shows them,
// for every command and for each thread of archive and rm.
func TestErrorsShowControlCharacters(t *testing.T) {
	const esc = "\x1b]0;owned\x07\x1b[2J"
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/healthz" {
			return
		}
		w.Header().Set("Content-Type", "text/plain")
		w.WriteHeader(http.StatusBadGateway)
		io.WriteString(w, "upstream says "+esc)
	}))
	t.Cleanup(ts.Close)
	cli := newCLI(t, map[string]string{"SPOOL_ADDR": ts.URL})
	for _, args := range [][]string{{"ls"}, {"show", "01a2"}, {"rm", "01a2", "01a3"}} {
		r := cli.run(args...)
		if r.code != exitError || !strings.Contains(r.stderr, "upstream says") {
			t.Fatalf("spool %v: exit %d, stderr %q; want %d and the answer's text", args, r.code, r.stderr, exitError)
		}
		if strings.ContainsAny(r.stderr, "\x1b\x07") || !strings.Contains(r.stderr, "␛[2J") {
			t.Errorf("spool %v printed %q; want its control characters shown as ␛", args, r.stderr)
		}
	}
}

// TestServerWithBadTLSIsNotAFallback: a spoold asked for over https that
// answers with a certificate this machine does not trust, or an https
// address that answers plain HTTP, answered: the command says why it
// cannot use it, rather than "no spoold answers" and a root instead.
func TestServerWithBadTLSIsNotAFallback(t *testing.T) {
	s := startSpoold(t, "")
	tlsServer := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	t.Cleanup(tlsServer.Close)
	tlsServer.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshake
	tests := []struct{ name, addr, want string }{
		{"untrusted certificate", tlsServer.URL, "certificate"},
		{"plain HTTP at https", "https://" + s.addr, "HTTP response to HTTPS client"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := newCLI(t, map[string]string{"SPOOL_ADDR": tc.addr}).run("ls")
			if r.code != exitError || strings.Contains(r.stderr, "no spoold answers") || !strings.Contains(r.stderr, tc.want) {
				t.Fatalf("ls at %s: exit %d, stderr %q; want %d saying %q, not a fallback to the root", tc.addr, r.code, r.stderr, exitError, tc.want)
			}
		})
	}
}

// TestProbeRefusedSaysItOnce: a server that answers the health probe with
// an error (a spoold shutting down, a Host it does not serve) is named
// with its answer, whose status the answer states once.
func TestProbeRefusedSaysItOnce(t *testing.T) {
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusServiceUnavailable)
		io.WriteString(w, `{"error":{"code":"unavailable","message":"shutting down"}}`)
	}))
	t.Cleanup(ts.Close)
	r := newCLI(t, map[string]string{"SPOOL_ADDR": ts.URL}).run("ls")
	if r.code != exitError || !strings.Contains(r.stderr, ts.URL) || !strings.Contains(r.stderr, "shutting down") || strings.Count(r.stderr, "503") != 1 {
		t.Fatalf("ls against a server answering 503: exit %d, stderr %q; want %d naming it, its message and 503 once", r.code, r.stderr, exitError)
	}
}

// fullWriter fails every write, as stdout on a full disk does.
type fullWriter struct{}

func (fullWriter) Write([]byte) (int, error) { return 0, errors.New("no space left on device") }

// TestOutputThatCannotBeWrittenFails: a command whose report could not be
// written (spool doctor > /dev/full) fails, whatever it did: a script
// must not take the missing report for a clean one.
func TestOutputThatCannotBeWrittenFails(t *testing.T) {
	s := startSpoold(t, "")
	f := seed(t, s.c)
	cli := s.cli(t)
	for _, args := range [][]string{{"doctor"}, {"archive", f.copy.ID}, {"ls"}, {"show", f.parent.ID}} {
		r := cli.runCtx(t.Context(), fullWriter{}, args...)
		if r.code != exitError || !strings.Contains(r.stderr, "no space left on device") {
			t.Errorf("spool %v to a full disk: exit %d, stderr %q; want %d and the write's error", args, r.code, r.stderr, exitError)
		}
	}
}

// TestListingStopsOnARepeatedCursor: a server (or a proxy's cache) that
// answers a page with the cursor it was asked for would keep ls -n 0, and
// the lookup of an id by its prefix, asking and gathering forever; they
// fail instead.
func TestListingStopsOnARepeatedCursor(t *testing.T) {
	var repeats atomic.Int32
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		switch r.URL.Path {
		case "/healthz":
			io.WriteString(w, `{"status":"ok"}`)
		case "/v1/threads":
			if r.URL.Query().Get("cursor") != "" && repeats.Add(1) > 10 {
				http.Error(w, "asked too often", http.StatusTeapot)
				return
			}
			io.WriteString(w, `{"threads":[{"id":"0199a000-0000-7000-8000-000000000001"}],"next_cursor":"same"}`)
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(ts.Close)
	c := newCLI(t, map[string]string{"SPOOL_ADDR": ts.URL})
	for _, args := range [][]string{{"ls", "-n", "0"}, {"show", "0199a000"}} {
		repeats.Store(0)
		r := c.run(args...)
		if r.code != 1 || !strings.Contains(r.stderr, "cursor") || repeats.Load() != 1 {
			t.Errorf("spool %s over a repeated cursor: exit %d after %d repeats, stderr %q; want 1 after one, naming the cursor",
				strings.Join(args, " "), r.code, repeats.Load(), r.stderr)
		}
	}
}

// TestNamedAddressWaitsForASlowSpoold: a spoold the user named that takes
// longer than the default address's probe to answer (busy, or far away)
// is used; spool gave up after 2 s with "no answer", and no flag could
// make it wait.
func TestNamedAddressWaitsForASlowSpoold(t *testing.T) {
	const slow = 2500 * time.Millisecond // the default address's probe waits 2 s
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		switch r.URL.Path {
		case "/healthz":
			select {
			case <-time.After(slow): // the slow answer is the case
			case <-r.Context().Done():
				return
			}
			io.WriteString(w, `{"status":"ok"}`)
		case "/v1/threads":
			io.WriteString(w, `{"threads":[{"id":"0199a000-0000-7000-8000-000000000001"}]}`)
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(ts.Close)
	r := newCLI(t, map[string]string{"SPOOL_ADDR": ts.URL}).run("ls")
	if r.code != 0 || !strings.Contains(r.stdout, "0199a000-0000-7000-8000-000000000001") {
		t.Fatalf("ls at a slow named spoold: exit %d, stderr %q, stdout %q; want its thread", r.code, r.stderr, r.stdout)
	}
}

// TestBadAddrNamesItsSource: an address spool cannot use is reported
// under the name the user gave it, SPOOL_ADDR or --addr, as spoold
// reports its settings.
func TestBadAddrNamesItsSource(t *testing.T) {
	tests := []struct {
		name string
		vars map[string]string
		args []string
		want string
	}{
		{"environment", map[string]string{"SPOOL_ADDR": "ftp://127.0.0.1:1"}, []string{"ls"}, "SPOOL_ADDR"},
		{"flag over the environment", map[string]string{"SPOOL_ADDR": "127.0.0.1:1"}, []string{"--addr", "ftp://127.0.0.1:1", "ls"}, "--addr"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newCLI(t, tt.vars).run(tt.args...)
			if r.code == 0 || !strings.Contains(r.stderr, "spool: "+tt.want+": ") {
				t.Fatalf("spool %v with %v: exit %d, stderr %q, want a failure naming %s", tt.args, tt.vars, r.code, r.stderr, tt.want)
			}
		})
	}
}

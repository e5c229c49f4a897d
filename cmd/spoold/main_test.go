package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/spoolhq/spool/internal/spooldtest"
	"github.com/spoolhq/spool/internal/testbin"
)

// spoold is a running spoold process.
type spoold struct{ *spooldtest.Process }

// startSpoold runs the binary on root with a free loopback port and waits
// for its "listening" log line.
func startSpoold(t *testing.T, bin, root string, extraArgs ...string) *spoold {
	t.Helper()
	args := append([]string{"-root", root, "-sync", "always"}, extraArgs...)
	return &spoold{spooldtest.Start(t, bin, spooldtest.Options{Args: args})}
}

func (p *spoold) call(t *testing.T, method, path, body string, wantStatus int) []byte {
	t.Helper()
	req, err := http.NewRequest(method, p.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != wantStatus {
		t.Fatalf("%s %s: status %d, want %d; body %s", method, path, resp.StatusCode, wantStatus, data)
	}
	return data
}

// TestBinaryRestart builds the real binary, drives it over HTTP, checks
// that a second instance cannot take the same root, stops it with SIGTERM
// and restarts it on the same root to find the data there.
func TestBinaryRestart(t *testing.T) {
	bin := buildSpoold(t)
	root := filepath.Join(t.TempDir(), "root")

	first := startSpoold(t, bin, root)
	first.call(t, "GET", "/healthz", "", http.StatusOK)

	// A second spoold on the same root is refused with a clear message.
	out, err := exec.Command(bin, "-root", root, "-addr", "127.0.0.1:0").CombinedOutput()
	var exitErr *exec.ExitError
	if !errors.As(err, &exitErr) || exitErr.ExitCode() != 1 {
		t.Fatalf("second spoold: err %v, want exit status 1; output:\n%s", err, out)
	}
	if !strings.Contains(string(out), "lock") {
		t.Fatalf("second spoold output does not mention the lock:\n%s", out)
	}
	// The root is named once, by the call that opened it ("open store
	// ROOT: open manager at ROOT: ..." named it at two layers).
	if n := strings.Count(string(out), root+": "); n != 1 {
		t.Fatalf("second spoold output names the root %d times, want once:\n%s", n, out)
	}

	var thread struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal(first.call(t, "POST", "/v1/threads", `{"cwd":"/w","name":"kept"}`, http.StatusCreated), &thread); err != nil {
		t.Fatal(err)
	}
	prompt := `{"type":"response_item","payload":{"type":"message","role":"user","content":[{"type":"input_text","text":"survive a restart"}]}}`
	first.call(t, "POST", "/v1/threads/"+thread.ID+"/items", prompt, http.StatusOK)
	before := first.call(t, "GET", "/v1/threads/"+thread.ID+"/items", "", http.StatusOK)
	first.Stop(t)
	if !strings.Contains(first.Log(), "stopped") {
		t.Fatalf("no clean-stop log line:\n%s", first.Log())
	}

	second := startSpoold(t, bin, root)
	got := second.call(t, "GET", "/v1/threads/"+thread.ID, "", http.StatusOK)
	var restored struct {
		Name             string `json:"name"`
		UserMessageCount int    `json:"user_message_count"`
	}
	if err := json.Unmarshal(got, &restored); err != nil {
		t.Fatal(err)
	}
	if restored.Name != "kept" || restored.UserMessageCount != 1 {
		t.Fatalf("after restart thread = %s, want name kept and 1 user message", got)
	}
	after := second.call(t, "GET", "/v1/threads/"+thread.ID+"/items", "", http.StatusOK)
	if !bytes.Equal(before, after) {
		t.Fatalf("history changed across restart:\nbefore %s\nafter  %s", before, after)
	}
	second.Stop(t)
}

func TestParseConfig(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		wantErr bool
		check   func(t *testing.T, c config)
	}{
		{name: "defaults", check: func(t *testing.T, c config) {
			if c.addr != "127.0.0.1:7878" || c.capacity != 1000 || c.sync.String() != "always" || c.maxBody != 64<<20 || c.token != "" {
				t.Fatalf("defaults = %+v", c)
			}
		}},
		{name: "environment", env: map[string]string{
			"SPOOL_ROOT": "/r", "SPOOL_ADDR": "127.0.0.1:0", "SPOOL_CAPACITY": "5",
			"SPOOL_SYNC": "batch", "SPOOL_TOKEN": "t", "SPOOL_MAX_BODY": "1024",
		}, check: func(t *testing.T, c config) {
			if c.root != "/r" || c.addr != "127.0.0.1:0" || c.capacity != 5 || c.sync.String() != "batch" || c.token != "t" || c.maxBody != 1024 {
				t.Fatalf("from environment = %+v", c)
			}
		}},
		{name: "flags beat environment", args: []string{"-capacity", "7", "-sync", "none"},
			env: map[string]string{"SPOOL_CAPACITY": "5", "SPOOL_SYNC": "batch"},
			check: func(t *testing.T, c config) {
				if c.capacity != 7 || c.sync.String() != "none" {
					t.Fatalf("flags over environment = %+v", c)
				}
			}},
		{name: "sizes with units", args: []string{"-max-body", "1MiB", "-max-body-in-flight", "1GB", "-body-min-rate", "64KiB", "-body-timeout", "3s"},
			check: func(t *testing.T, c config) {
				if c.maxBody != 1<<20 || c.maxBodyInFlight != 1e9 || c.bodyMinRate != 64<<10 || c.bodyTimeout != 3*time.Second {
					t.Fatalf("sizes = %+v", c)
				}
			}},
		{name: "hardening defaults", check: func(t *testing.T, c config) {
			if c.maxBodyInFlight != 256<<20 || c.bodyMinRate != 256<<10 || c.fileMode != 0o600 || c.insecureNoToken || c.cors != nil || c.allowHosts != nil {
				t.Fatalf("defaults = %+v", c)
			}
		}},
		{name: "lists", args: []string{"-cors", "https://a.example, http://localhost:3000", "-allow-host", "spool.internal,,box:9000", "-file-mode", "0640"},
			check: func(t *testing.T, c config) {
				if strings.Join(c.cors, " ") != "https://a.example http://localhost:3000" ||
					strings.Join(c.allowHosts, " ") != "spool.internal box:9000" || c.fileMode != 0o640 {
					t.Fatalf("lists = %+v", c)
				}
			}},
		{name: "cors wildcard", args: []string{"-cors", "*"}, wantErr: true},
		{name: "cors null", args: []string{"-cors", "null"}, wantErr: true},
		{name: "cors with path", args: []string{"-cors", "https://a.example/app"}, wantErr: true},
		{name: "budget below max body", args: []string{"-max-body", "64MiB", "-max-body-in-flight", "32MiB"}, wantErr: true},
		{name: "file mode owner cannot read", args: []string{"-file-mode", "0040"}, wantErr: true},
		{name: "file mode not octal", args: []string{"-file-mode", "rw"}, wantErr: true},
		{name: "bad body timeout", args: []string{"-body-timeout", "0s"}, wantErr: true},
		{name: "negative drain delay", args: []string{"-drain-delay", "-1s"}, wantErr: true},
		{name: "negative shutdown timeout", args: []string{"-shutdown-timeout", "-1s"}, wantErr: true},
		{name: "max conns", args: []string{"-max-conns", "0"}, env: map[string]string{"SPOOL_MAX_CONNS": "9"},
			check: func(t *testing.T, c config) {
				if c.maxConns != 0 {
					t.Fatalf("max conns = %d, want 0 (no limit)", c.maxConns)
				}
			}},
		{name: "max conns default", check: func(t *testing.T, c config) {
			var lim syscall.Rlimit
			if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
				t.Fatal(err)
			}
			if c.maxConns < 64 || c.maxConns > 16384 || uint64(c.maxConns) > max(lim.Cur, 64+fdReserve)-fdReserve {
				t.Fatalf("max conns = %d with an open-file limit of %d, want it at most the limit less %d, in 64..16384", c.maxConns, lim.Cur, fdReserve)
			}
		}},
		{name: "bad max conns", args: []string{"-max-conns", "-1"}, wantErr: true},
		{name: "bad capacity", args: []string{"-capacity", "0"}, wantErr: true},
		{name: "bad sync", args: []string{"-sync", "sometimes"}, wantErr: true},
		{name: "bad watch", args: []string{"-watch", "maybe"}, wantErr: true},
		{name: "bad max body", args: []string{"-max-body", "lots"}, wantErr: true},
		{name: "help", args: []string{"-h"}, wantErr: true},
		{name: "bad log format", args: []string{"-log-format", "xml"}, wantErr: true},
		{name: "bad log level", args: []string{"-log-level", "loud"}, wantErr: true},
		{name: "stray argument", args: []string{"serve"}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			getenv := func(k string) string { return tt.env[k] }
			c, err := parseConfig(tt.args, getenv, io.Discard)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("parseConfig(%v) succeeded, want an error", tt.args)
				}
				return
			}
			if err != nil {
				t.Fatalf("parseConfig(%v): %v", tt.args, err)
			}
			tt.check(t, c)
		})
	}
}

// TestBadValueNamesItsSource: a bad value is reported under the name the
// user gave it: the environment variable when it came from there, the
// flag when the flag was given (SPOOL_SYNC=foo was reported as "-sync").
func TestBadValueNamesItsSource(t *testing.T) {
	tests := []struct {
		name string
		args []string
		env  map[string]string
		want string // the message starts with it
	}{
		{name: "sync from the environment", env: map[string]string{"SPOOL_SYNC": "foo"}, want: "SPOOL_SYNC"},
		{name: "sync flag over a good environment", args: []string{"-sync", "foo"}, env: map[string]string{"SPOOL_SYNC": "batch"}, want: "-sync"},
		{name: "sync flag over a bad environment", args: []string{"-sync", "foo"}, env: map[string]string{"SPOOL_SYNC": "bar"}, want: "-sync"},
		{name: "watch", env: map[string]string{"SPOOL_WATCH": "maybe"}, want: "SPOOL_WATCH"},
		{name: "capacity", env: map[string]string{"SPOOL_CAPACITY": "0"}, want: "SPOOL_CAPACITY"},
		{name: "max body", env: map[string]string{"SPOOL_MAX_BODY": "lots"}, want: "SPOOL_MAX_BODY"},
		{name: "max body in flight", env: map[string]string{"SPOOL_MAX_BODY_IN_FLIGHT": "lots"}, want: "SPOOL_MAX_BODY_IN_FLIGHT"},
		{name: "budget below max body", env: map[string]string{"SPOOL_MAX_BODY_IN_FLIGHT": "1MiB"}, want: "SPOOL_MAX_BODY_IN_FLIGHT"},
		{name: "body timeout", env: map[string]string{"SPOOL_BODY_TIMEOUT": "0s"}, want: "SPOOL_BODY_TIMEOUT"},
		{name: "body min rate", env: map[string]string{"SPOOL_BODY_MIN_RATE": "fast"}, want: "SPOOL_BODY_MIN_RATE"},
		{name: "file mode", env: map[string]string{"SPOOL_FILE_MODE": "rw"}, want: "SPOOL_FILE_MODE"},
		{name: "cors", env: map[string]string{"SPOOL_CORS": "*"}, want: "SPOOL_CORS"},
		{name: "log level", env: map[string]string{"SPOOL_LOG_LEVEL": "loud"}, want: "SPOOL_LOG_LEVEL"},
		{name: "log format", env: map[string]string{"SPOOL_LOG_FORMAT": "xml"}, want: "SPOOL_LOG_FORMAT"},
		{name: "seal bytes", env: map[string]string{"SPOOL_SEAL_BYTES": "0"}, want: "SPOOL_SEAL_BYTES"},
		{name: "segment cache size", env: map[string]string{"SPOOL_SEGMENT_CACHE_SIZE": "big"}, want: "SPOOL_SEGMENT_CACHE_SIZE"},
		{name: "s3 without pg", env: map[string]string{"SPOOL_S3": "http://127.0.0.1:9000"}, want: "SPOOL_S3"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			getenv := func(k string) string { return tt.env[k] }
			_, err := parseConfig(tt.args, getenv, io.Discard)
			if err == nil {
				t.Fatalf("parseConfig(%v) with %v succeeded, want an error", tt.args, tt.env)
			}
			if !strings.HasPrefix(err.Error(), tt.want+" ") && !strings.HasPrefix(err.Error(), tt.want+":") {
				t.Fatalf("parseConfig(%v) with %v: %q, want it to start with %s", tt.args, tt.env, err, tt.want)
			}
		})
	}
}

// TestShownAddr: the listening line gives the host the user asked for with
// the port bound, so -addr 0.0.0.0:7878 is not logged as [::]:7878, the
// address the kernel reports for a dual-stack listener.
func TestShownAddr(t *testing.T) {
	tests := []struct {
		asked string
		bound *net.TCPAddr
		want  string
	}{
		{"0.0.0.0:7878", &net.TCPAddr{IP: net.IPv6unspecified, Port: 7878}, "0.0.0.0:7878"},
		{"0.0.0.0:0", &net.TCPAddr{IP: net.IPv6unspecified, Port: 41234}, "0.0.0.0:41234"},
		{"127.0.0.1:0", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 5555}, "127.0.0.1:5555"},
		{"[::1]:0", &net.TCPAddr{IP: net.IPv6loopback, Port: 5555}, "[::1]:5555"},
		{"[::]:7878", &net.TCPAddr{IP: net.IPv6unspecified, Port: 7878}, "[::]:7878"},
		{"localhost:7878", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 7878}, "localhost:7878"},
		{":7878", &net.TCPAddr{IP: net.IPv6unspecified, Port: 7878}, ":7878"},
	}
	for _, tt := range tests {
		t.Run(tt.asked, func(t *testing.T) {
			if got := shownAddr(tt.asked, tt.bound); got != tt.want {
				t.Fatalf("shownAddr(%q, %s) = %q, want %q", tt.asked, tt.bound, got, tt.want)
			}
		})
	}
}

func TestParseSize(t *testing.T) {
	tests := []struct {
		in      string
		want    int64
		wantErr bool
	}{
		{"1048576", 1 << 20, false},
		{"64MiB", 64 << 20, false},
		{"64mib", 64 << 20, false},
		{"64 MiB", 64 << 20, false},
		{"1GB", 1e9, false},
		{"1GiB", 1 << 30, false},
		{"512KiB", 512 << 10, false},
		{"10kb", 10000, false},
		{"7B", 7, false},
		{"2TiB", 2 << 40, false},
		{"", 0, true},
		{"0", 0, true},
		{"-1MiB", 0, true},
		{"1.5GiB", 0, true},
		{"MiB", 0, true},
		{"64M", 0, true},
		{"9999999TiB", 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := parseSize(tt.in)
			if (err != nil) != tt.wantErr {
				t.Fatalf("parseSize(%q) error = %v, want error %v", tt.in, err, tt.wantErr)
			}
			if got != tt.want {
				t.Fatalf("parseSize(%q) = %d, want %d", tt.in, got, tt.want)
			}
		})
	}
}

// TestHelpExitsZero runs the built binary with -h: it prints the flags,
// the new ones included, and exits 0 (issue #15).
func TestHelpExitsZero(t *testing.T) {
	out, err := exec.Command(buildSpoold(t), "-h").CombinedOutput()
	if err != nil {
		t.Fatalf("spoold -h: %v\n%s", err, out)
	}
	for _, flag := range []string{"-allow-host", "-cors", "-insecure-no-token", "-max-body-in-flight", "-body-min-rate", "-file-mode"} {
		if !strings.Contains(string(out), flag) {
			t.Errorf("spoold -h does not list %s:\n%s", flag, out)
		}
	}
}

// TestUnknownFlagExitsTwo: a flag spoold does not know is a mistake in
// the command line: said once, with the usage, and exit status 2, as the
// flag package's own programs exit. It was said twice, and exited 1.
func TestUnknownFlagExitsTwo(t *testing.T) {
	out, err := exec.Command(buildSpoold(t), "-no-such-flag").CombinedOutput()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 2 {
		t.Fatalf("spoold -no-such-flag: %v, want exit status 2\n%s", err, out)
	}
	if n := strings.Count(string(out), "flag provided but not defined: -no-such-flag"); n != 1 || !strings.Contains(string(out), "Usage of spoold") {
		t.Fatalf("spoold -no-such-flag said the mistake %d times, want once with the usage:\n%s", n, out)
	}
}

// TestIndexAndRootPrivate starts the binary on a new root and checks that
// the root is created 0700 and spool.db, its WAL and SHM are 0600; then,
// on a root whose index an older version left 0644, that the start makes
// it 0600 (issue #14).
// TestFilesPrivate is the one test of the one rule for file modes: every
// file spool creates (rollouts, the directories holding them, spool.db and
// its WAL and SHM) is private to its owner by default, an index an older
// version left readable is tightened at start, and -file-mode widens all of
// them alike.
func TestFilesPrivate(t *testing.T) {
	old := syscall.Umask(0o002)
	t.Cleanup(func() { syscall.Umask(old) })
	bin := buildSpoold(t)
	root := filepath.Join(t.TempDir(), "root")
	p := startSpoold(t, bin, root)
	var th struct {
		RolloutPath string `json:"rollout_path"`
	}
	if err := json.Unmarshal(p.call(t, "POST", "/v1/threads", `{"cwd":"/w"}`, http.StatusCreated), &th); err != nil {
		t.Fatal(err)
	}
	checkMode(t, root, 0o700|os.ModeDir)
	checkTree(t, root, th.RolloutPath, 0o600, 0o700)
	for _, name := range []string{"spool.db", "spool.db-wal", "spool.db-shm", "spool.lock"} {
		checkMode(t, filepath.Join(root, name), 0o600)
	}
	p.Stop(t)

	if err := os.Chmod(filepath.Join(root, "spool.db"), 0o644); err != nil {
		t.Fatal(err)
	}
	p = startSpoold(t, bin, root)
	checkMode(t, filepath.Join(root, "spool.db"), 0o600)
	p.Stop(t)

	shared := filepath.Join(t.TempDir(), "shared")
	p = startSpoold(t, bin, shared, "-file-mode", "0640")
	if err := json.Unmarshal(p.call(t, "POST", "/v1/threads", `{"cwd":"/w"}`, http.StatusCreated), &th); err != nil {
		t.Fatal(err)
	}
	checkTree(t, shared, th.RolloutPath, 0o640, 0o750)
	checkMode(t, filepath.Join(shared, "spool.db"), 0o640)
	checkMode(t, filepath.Join(shared, "spool.lock"), 0o640)
	p.Stop(t)
}

// TestServeCodexHomeIndexElsewhere (issue #13): with -index, spoold serves
// a Codex home without writing its index or lock into it; it lists the
// threads Codex wrote there, before and while it runs; and the home holds
// nothing of spool's but what a client asked for (a thread it started).
func TestServeCodexHomeIndexElsewhere(t *testing.T) {
	bin := buildSpoold(t)
	home := t.TempDir()
	index := filepath.Join(t.TempDir(), "state", "codex.db")
	before := writeCodexRollout(t, home, "2026-01-02T03-04-05", "019b0000-0000-7000-8000-000000000001", "written before spoold")
	p := startSpoold(t, bin, home, "-index", index, "-log-level", "debug")
	p.WaitLog(t, "reconciled store")
	if got := p.call(t, "GET", "/v1/threads/"+before, "", http.StatusOK); !bytes.Contains(got, []byte(`"user_message_count":1`)) {
		t.Fatalf("thread Codex wrote before the start: %s", got)
	}
	during := writeCodexRollout(t, home, "2026-01-03T03-04-05", "019b0000-0000-7000-8000-000000000002", "written while it runs")
	for {
		p.WaitLog(t, "synced changed rollouts") // the watcher synced something
		resp, err := http.Get(p.URL + "/v1/threads/" + during)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			break
		}
	}
	p.Stop(t)
	for _, name := range []string{"spool.db", "spool.db-wal", "spool.db-shm", "spool.lock"} {
		if _, err := os.Stat(filepath.Join(home, name)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s in the Codex home: %v", name, err)
		}
	}
	for _, name := range []string{"codex.db", "spool.lock"} {
		if _, err := os.Stat(filepath.Join(filepath.Dir(index), name)); err != nil {
			t.Errorf("%s beside the index: %v", name, err)
		}
	}
}

// writeCodexRollout writes a one-prompt rollout into home as Codex would
// and returns its thread id.
func writeCodexRollout(t *testing.T, home, stamp, id, prompt string) string {
	t.Helper()
	day := strings.ReplaceAll(stamp[:10], "-", "/")
	dir := filepath.Join(home, "sessions", day)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	ts := stamp[:10] + "T" + strings.ReplaceAll(stamp[11:], "-", ":") + ".000Z"
	body := fmt.Sprintf(`{"timestamp":%q,"type":"session_meta","payload":{"id":%q,"timestamp":%q,"cwd":"/w","originator":"codex_cli_rs","cli_version":"0.169.0","source":"cli","model_provider":"openai"}}
{"timestamp":%q,"type":"response_item","payload":{"type":"message","role":"user","content":[{"type":"input_text","text":%q}]}}
`, ts, id, ts, ts, prompt)
	if err := os.WriteFile(filepath.Join(dir, "rollout-"+stamp+"-"+id+".jsonl"), []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return id
}

// checkTree checks the mode of the rollout rel under root and of every
// directory between them.
func checkTree(t *testing.T, root, rel string, file, dir os.FileMode) {
	t.Helper()
	checkMode(t, filepath.Join(root, filepath.FromSlash(rel)), file)
	for d := path.Dir(rel); d != "."; d = path.Dir(d) {
		checkMode(t, filepath.Join(root, filepath.FromSlash(d)), dir|os.ModeDir)
	}
}

func checkMode(t *testing.T, path string, want os.FileMode) {
	t.Helper()
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := info.Mode() & (os.ModeDir | os.ModePerm); got != want {
		t.Errorf("%s mode = %v, want %v", filepath.Base(path), got, want)
	}
}

var (
	buildOnce sync.Once
	builtBin  string
	buildErr  error
)

// buildSpoold builds the binary once per test run.
func buildSpoold(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "spoold-test")
		if err != nil {
			buildErr = err
			return
		}
		builtBin, buildErr = testbin.Build(context.Background(), dir, "github.com/spoolhq/spool/cmd/spoold")
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return builtBin
}

// TestMain removes the binary buildSpoold built.
func TestMain(m *testing.M) {
	code := m.Run()
	if builtBin != "" {
		os.RemoveAll(filepath.Dir(builtBin))
	}
	os.Exit(code)
}

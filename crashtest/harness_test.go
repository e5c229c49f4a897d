package crashtest

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/spoolhq/spool/internal/testbin"
)

// binDir holds the binaries built for this test run; TestMain removes it.
var binDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "spool-crashtest-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "crashtest:", err)
		os.Exit(2)
	}
	binDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// built is the outcome of building one command, once per test binary.
type built struct {
	once sync.Once
	path string
	err  error
}

var spooldBin, reindexBin built

// buildCommand builds ./cmd/<name> of this module into binDir once.
func buildCommand(b *built, name string) (string, error) {
	b.once.Do(func() {
		b.path, b.err = testbin.Build(context.Background(), binDir, "github.com/spoolhq/spool/cmd/"+name)
	})
	return b.path, b.err
}

// serverStartTimeout bounds how long spoold may take to log "listening".
// Opening a root reconciles the index first, which is quick here, but the
// machine is shared with other builds.
const serverStartTimeout = 60 * time.Second

// listenRE finds the address in spoold's "listening" log line.
var listenRE = regexp.MustCompile(`addr=(127\.0\.0\.1:[0-9]+)`)

// spoold is a running spoold process.
type spoold struct {
	cmd  *exec.Cmd
	base string        // http://127.0.0.1:PORT
	done chan struct{} // closed when its stderr reached EOF (the process exited)
	log  *tailLog
	// reconciled is closed when spoold logged the end of its background
	// reconcile: from then on its index agrees with the files.
	reconciled chan struct{}

	waitOnce sync.Once
	waitErr  error
}

// tailLog keeps the last lines a process logged, and its first warnings
// and errors, for failure messages.
type tailLog struct {
	mu       sync.Mutex
	lines    []string // guarded by mu: the last tailLines lines
	problems []string // guarded by mu: the first tailLines WARN and ERROR lines
}

const tailLines = 40

func (l *tailLog) add(line string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, line)
	if len(l.lines) > tailLines {
		l.lines = l.lines[len(l.lines)-tailLines:]
	}
	if len(l.problems) < tailLines && (strings.Contains(line, "level=ERROR") || strings.Contains(line, "level=WARN")) {
		l.problems = append(l.problems, line)
	}
}

func (l *tailLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return "warnings and errors:\n" + strings.Join(l.problems, "\n") + "\nlast lines:\n" + strings.Join(l.lines, "\n")
}

// startSpoold starts spoold on root with a port picked by the kernel and
// waits for its "listening" line on stderr. The process is killed at the
// end of the test if still running.
func startSpoold(t *testing.T, bin, root string, extra ...string) *spoold {
	t.Helper()
	// A torn tail injected before a restart is cut by the next append
	// (the grace period is for writers that may still finish a line; the
	// killed one will not).
	args := append([]string{"-root", root, "-addr", "127.0.0.1:0", "-sync", "always", "-torn-grace", "1ms"}, extra...)
	cmd := exec.Command(bin, args...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start spoold: %v", err)
	}
	s := &spoold{cmd: cmd, done: make(chan struct{}), log: &tailLog{}, reconciled: make(chan struct{})}
	t.Cleanup(func() { s.kill(t) })

	addrc := make(chan string, 1)
	go func() {
		defer close(s.done)
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		found, reconciled := false, false
		for sc.Scan() {
			line := sc.Text()
			s.log.add(line)
			if !reconciled && strings.Contains(line, "reconciled store") {
				reconciled = true
				close(s.reconciled)
			}
			if !found && strings.Contains(line, "listening") {
				if m := listenRE.FindStringSubmatch(line); m != nil {
					found = true
					addrc <- m[1]
				}
			}
		}
		// Drain whatever is left so the child never blocks on a full pipe.
		io.Copy(io.Discard, stderr)
	}()

	timer := time.NewTimer(serverStartTimeout)
	defer timer.Stop()
	select {
	case addr := <-addrc:
		s.base = "http://" + addr
		// spoold serves before its reconcile ends; the checks after a
		// restart are of the recovered state, so they wait for it.
		select {
		case <-s.reconciled:
		case <-s.done:
			err := s.wait()
			t.Fatalf("spoold exited before its reconcile ended: %v\n%s", err, s.log)
		case <-timer.C:
			t.Fatalf("spoold did not log the end of its reconcile within %v\n%s", serverStartTimeout, s.log)
		}
		return s
	case <-s.done:
		err := s.wait()
		t.Fatalf("spoold exited before listening: %v\n%s", err, s.log)
	case <-timer.C:
		s.kill(t)
		t.Fatalf("spoold did not log listening within %v\n%s", serverStartTimeout, s.log)
	}
	return nil
}

// wait reaps the process once its stderr is closed.
func (s *spoold) wait() error {
	<-s.done
	s.waitOnce.Do(func() { s.waitErr = s.cmd.Wait() })
	return s.waitErr
}

// kill sends SIGKILL (if the process still runs) and reaps it.
func (s *spoold) kill(t *testing.T) {
	t.Helper()
	if err := s.cmd.Process.Signal(syscall.SIGKILL); err != nil && !errors.Is(err, os.ErrProcessDone) {
		t.Errorf("kill spoold: %v", err)
	}
	s.wait()
}

// stop waits for spoold's background reconcile to end (a stop before it
// leaves the index behind the files until the next start, which the tests
// that verify after stop do not expect), asks it to shut down (SIGTERM)
// and requires a clean exit.
func (s *spoold) stop(t *testing.T) {
	t.Helper()
	timer := time.NewTimer(serverStartTimeout)
	defer timer.Stop()
	select {
	case <-s.reconciled:
	case <-s.done:
	case <-timer.C:
		t.Fatalf("spoold did not log the end of its reconcile within %v\n%s", serverStartTimeout, s.log)
	}
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatalf("signal spoold: %v", err)
	}
	if err := s.wait(); err != nil {
		t.Fatalf("spoold exit after SIGTERM: %v\n%s", err, s.log)
	}
}

// client talks to one spoold process.
type client struct {
	base string
	hc   *http.Client
}

func newClient(base string) *client {
	return &client{base: base, hc: &http.Client{
		Timeout:   60 * time.Second,
		Transport: &http.Transport{MaxIdleConnsPerHost: 16},
	}}
}

func (c *client) close() { c.hc.CloseIdleConnections() }

// apiError is a response with a status other than the one expected.
type apiError struct {
	Method, Path string
	Status       int
	Body         string
}

func (e *apiError) Error() string {
	return fmt.Sprintf("%s %s: status %d: %s", e.Method, e.Path, e.Status, strings.TrimSpace(e.Body))
}

// call sends a JSON request and decodes a JSON response into out. A
// transport failure (the server died) is returned as is; a status other
// than want is an *apiError.
func (c *client) call(ctx context.Context, method, path string, body any, want int, out any) error {
	var rd io.Reader
	if body != nil {
		data, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(data)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != want {
		return &apiError{Method: method, Path: path, Status: resp.StatusCode, Body: string(data)}
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			return fmt.Errorf("%s %s: decode response: %w", method, path, err)
		}
	}
	return nil
}

// items returns the NDJSON stream of a thread's whole history.
func (c *client) items(ctx context.Context, id string) ([]byte, error) {
	path := "/v1/threads/" + id + "/items"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+path, nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", path, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, &apiError{Method: http.MethodGet, Path: path, Status: resp.StatusCode, Body: string(data)}
	}
	return data, nil
}

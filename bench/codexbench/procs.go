package main

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
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/spoolhq/spool/internal/codexrpc"
)

// peak is what /proc/PID/status says of a process's memory, in KiB.
type peak struct{ hwmKB, rssKB int64 }

// readPeak reads VmHWM and VmRSS of pid.
func readPeak(pid int) (peak, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return peak{}, err
	}
	var p peak
	for line := range strings.SplitSeq(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		n, _ := strconv.ParseInt(f[1], 10, 64)
		switch f[0] {
		case "VmHWM:":
			p.hwmKB = n
		case "VmRSS:":
			p.rssKB = n
		}
	}
	return p, nil
}

// resetPeak sets pid's VmHWM back to its current RSS (clear_refs 5), so
// that the next readPeak gives the peak of what happens in between.
func resetPeak(pid int) error {
	return os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", pid), []byte("5"), 0)
}

// codex is one running `codex app-server`.
type codex struct {
	*codexrpc.Server
	stderr *bytes.Buffer
}

// startCodex runs codex app-server on home (in unshare -n, with a dummy
// key; codexrpc.Start) and returns once initialize has answered.
func startCodex(ctx context.Context, bin, home string) (*codex, error) {
	var stderr bytes.Buffer
	s, err := codexrpc.Start(ctx, codexrpc.Options{Binary: bin, Home: home, Stderr: &lockedWriter{w: &stderr}})
	if err != nil {
		return nil, fmt.Errorf("%w\nstderr:\n%s", err, tail(stderr.Bytes()))
	}
	return &codex{Server: s, stderr: &stderr}, nil
}

// call is Server.Call with a deadline of ten minutes (a 1 GB fork takes
// Codex tens of seconds).
func (c *codex) call(ctx context.Context, method string, params, result any) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	return c.Call(ctx, method, params, result)
}

type lockedWriter struct {
	mu sync.Mutex // guards w
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func tail(b []byte) string {
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return string(b)
}

// spoold is one running spoold.
type spoold struct {
	cmd    *exec.Cmd
	base   string // http://HOST:PORT
	client *http.Client
	logs   *bytes.Buffer
	waited chan error
	// walkEnded is closed when spoold logs that its walk at start ended
	// (walkErr then holds the line if the walk failed); stopped when its
	// stderr ends (it exited), after every line was read.
	walkEnded, stopped chan struct{}
	walkErr            string
}

var listenAddr = regexp.MustCompile(`msg=listening addr=(\S+)`)

// The lines spoold logs when its walk at start ends, and when it fails.
const (
	reconciledLine = `msg="reconciled store"`
	walkFailedLine = `msg="reconcile in the background"`
)

// startSpoold runs spoold on root with the given sync policy on a free
// loopback port and returns once it logs that it listens.
func startSpoold(ctx context.Context, bin, root, sync string) (*spoold, error) {
	cmd := exec.CommandContext(ctx, bin, "-root", root, "-addr", "127.0.0.1:0", "-sync", sync, "-log-level", "info")
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + root}
	cmd.WaitDelay = 10 * time.Second
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start spoold: %w", err)
	}
	s := &spoold{cmd: cmd, logs: &bytes.Buffer{}, waited: make(chan error, 1),
		walkEnded: make(chan struct{}), stopped: make(chan struct{}),
		client: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}, Timeout: 10 * time.Minute}}
	found := make(chan string, 1)
	go func() {
		walkSeen := false
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 16<<20)
		for sc.Scan() {
			line := sc.Text()
			s.logs.WriteString(line + "\n")
			if m := listenAddr.FindStringSubmatch(line); m != nil {
				select {
				case found <- m[1]:
				default:
				}
			}
			failed := strings.Contains(line, walkFailedLine)
			if (failed || strings.Contains(line, reconciledLine)) && !walkSeen {
				walkSeen = true
				if failed {
					s.walkErr = line
				}
				close(s.walkEnded)
			}
		}
		_, _ = io.Copy(io.Discard, stderr) // past a line too long to scan: spoold must not block on a full pipe
		close(found)
		close(s.stopped)
		s.waited <- cmd.Wait()
	}()
	select {
	case addr, ok := <-found:
		if !ok {
			return nil, fmt.Errorf("spoold exited before listening: %v", <-s.waited)
		}
		s.base = "http://" + addr
		return s, nil
	case <-time.After(30 * time.Minute):
		_ = cmd.Process.Kill()
		return nil, errors.New("spoold did not listen within 30 minutes")
	}
}

func (s *spoold) pid() int { return s.cmd.Process.Pid }

// do sends a request and reads the whole answer, which must have status
// want; it returns the body.
func (s *spoold) do(ctx context.Context, method, path, body string, want int) ([]byte, error) {
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, s.base+path, rd)
	if err != nil {
		return nil, err
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != want {
		return nil, fmt.Errorf("%s %s: %s: %s", method, path, resp.Status, tail(b))
	}
	return b, nil
}

// list asks for the newest limit threads and checks it got them.
func (s *spoold) list(ctx context.Context, limit int) error {
	b, err := s.do(ctx, http.MethodGet, fmt.Sprintf("/v1/threads?limit=%d", limit), "", http.StatusOK)
	if err != nil {
		return err
	}
	return checkSpoolPage(b, limit)
}

// checkSpoolPage decodes a list page's body as the benchmark's client
// does and checks it holds limit threads.
func checkSpoolPage(body []byte, limit int) error {
	var page struct {
		Threads []json.RawMessage `json:"threads"`
	}
	if err := json.Unmarshal(body, &page); err != nil {
		return fmt.Errorf("spool list: %w", err)
	}
	if len(page.Threads) != limit {
		return fmt.Errorf("spool list: %d threads, want %d", len(page.Threads), limit)
	}
	return nil
}

// checkSpoolTurn decodes a page of turns with their items, as the
// benchmark's client does, and checks it holds turn k and items.
func checkSpoolTurn(body []byte, k int) error {
	var page struct {
		Turns []struct {
			Ordinal int               `json:"ordinal"`
			Items   []json.RawMessage `json:"items"`
		} `json:"turns"`
	}
	if err := json.Unmarshal(body, &page); err != nil {
		return fmt.Errorf("spool turns: %w", err)
	}
	if len(page.Turns) != 1 || page.Turns[0].Ordinal != k || len(page.Turns[0].Items) == 0 {
		return fmt.Errorf("spool turns: want turn %d with its items, got %d turns", k, len(page.Turns))
	}
	return nil
}

// waitIndexed waits until spoold logs that the walk of a first start has
// ended (bounded by ctx), then checks in /metrics that the index holds n
// threads and counts the walk as ended: the home is indexed, list indexes
// and all. It reads the log rather than polling /metrics while the index
// is built: each poll's counts competed with the walk for this machine's
// two cores and slowed it (BENCHMARKS.md, the thirty-fourth stop). A walk
// that fails, or a spoold that exits first, is an error.
func (s *spoold) waitIndexed(ctx context.Context, n int) error {
	select {
	case <-s.walkEnded:
	case <-s.stopped:
		return fmt.Errorf("spoold exited before its walk ended:\n%s", s.logs)
	case <-ctx.Done():
		return ctx.Err()
	}
	if s.walkErr != "" {
		return fmt.Errorf("spoold's walk failed: %s", s.walkErr)
	}
	for range 100 {
		b, err := s.do(ctx, http.MethodGet, "/metrics", "", http.StatusOK)
		if err != nil {
			return err
		}
		// The gauge is set just after the line is logged.
		if strings.Contains(string(b), "spool_reconciled 1\n") {
			if got, ok := gauge(b, "spool_index_threads"); !ok || got != float64(n) {
				return fmt.Errorf("spoold reconciled with spool_index_threads %v (found %v), want %d", got, ok, n)
			}
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(5 * time.Millisecond):
		}
	}
	return errors.New("spoold logged its reconcile but /metrics does not count it")
}

// gauge returns the value of the unlabelled metric name in a /metrics
// answer, as Prometheus text writes it (1e+06 for a million).
func gauge(metrics []byte, name string) (float64, bool) {
	for line := range strings.Lines(string(metrics)) {
		if value, ok := strings.CutPrefix(line, name+" "); ok {
			v, err := strconv.ParseFloat(strings.TrimSpace(value), 64)
			return v, err == nil
		}
	}
	return 0, false
}

// stop sends SIGTERM and waits for spoold to exit.
func (s *spoold) stop() error {
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-s.waited:
		return err
	case <-time.After(2 * time.Minute):
		_ = s.cmd.Process.Kill()
		return errors.New("spoold did not stop within 2 minutes")
	}
}

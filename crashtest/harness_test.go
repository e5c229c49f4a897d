package crashtest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spoolhq/spool/internal/spooldtest"
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

// spoold is a running spoold process.
type spoold struct {
	*spooldtest.Process
	base string // http://127.0.0.1:PORT
}

// startSpoold starts spoold on root with a port picked by the kernel and
// waits until it listens and its background reconcile ended: the checks
// after a restart are of the recovered state. The process is killed at the
// end of the test if still running.
func startSpoold(t *testing.T, bin, root string, extra ...string) *spoold {
	t.Helper()
	// A torn tail injected before a restart is cut by the next append
	// (the grace period is for writers that may still finish a line; the
	// killed one will not).
	args := append([]string{"-root", root, "-sync", "always", "-torn-grace", "1ms"}, extra...)
	p := spooldtest.Start(t, bin, spooldtest.Options{Args: args})
	p.WaitLog(t, "reconciled store")
	return &spoold{Process: p, base: p.URL}
}

// logTail returns the first warnings and errors s logged and its last
// lines, for failure messages.
func (s *spoold) logTail() string {
	const most = 40
	var problems []string
	lines := s.Lines()
	for _, line := range lines {
		if len(problems) < most && (strings.Contains(line, "level=ERROR") || strings.Contains(line, "level=WARN")) {
			problems = append(problems, line)
		}
	}
	lines = lines[max(0, len(lines)-most):]
	return "warnings and errors:\n" + strings.Join(problems, "\n") + "\nlast lines:\n" + strings.Join(lines, "\n")
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

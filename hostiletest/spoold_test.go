package hostiletest_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spoolhq/spool/internal/spooldtest"
	"github.com/spoolhq/spool/internal/testbin"
)

// spooldBin is the spoold binary built once by TestMain.
var spooldBin string

func TestMain(m *testing.M) {
	// Built without -race: the memory test measures the server as shipped.
	os.Exit(testbin.Run(m, "github.com/spoolhq/spool/cmd/spoold", &spooldBin))
}

// spoold is a running spoold process.
type spoold struct {
	*spooldtest.Process
	root string
}

// startSpoold runs spoold on a fresh root and a free loopback port with
// extra flags, and waits for its "listening" line. It is killed at cleanup
// if still running.
func startSpoold(t *testing.T, extraArgs ...string) *spoold {
	t.Helper()
	root := filepath.Join(t.TempDir(), "root")
	return startSpooldOn(t, root, extraArgs...)
}

func startSpooldOn(t *testing.T, root string, extraArgs ...string) *spoold {
	t.Helper()
	args := append([]string{"-root", root, "-sync", "none"}, extraArgs...)
	return &spoold{Process: spooldtest.Start(t, spooldBin, spooldtest.Options{Args: args}), root: root}
}

// port returns the port spoold listens on.
func (p *spoold) port() string {
	_, port, _ := net.SplitHostPort(p.Addr)
	return port
}

// rawResponse is an answer read off the wire.
type rawResponse struct {
	status int
	header http.Header
	body   []byte
}

// code returns the error code of a JSON error body, or "".
func (r rawResponse) code() string {
	var e struct {
		Error struct {
			Code      string `json:"code"`
			RequestID string `json:"request_id"`
		} `json:"error"`
	}
	json.Unmarshal(r.body, &e)
	return e.Error.Code
}

// sendRaw writes request, the bytes of one HTTP/1.1 request, on a new
// connection and reads the answer. Raw bytes reach the server exactly as
// written: no client library fixes a header or escapes a path.
func (p *spoold) sendRaw(t *testing.T, request []byte) rawResponse {
	t.Helper()
	conn, err := net.Dial("tcp", p.Addr)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := conn.Write(request); err != nil {
		t.Fatalf("write request: %v", err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("read response to %q: %v", firstLine(request), err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read response body: %v", err)
	}
	return rawResponse{status: resp.StatusCode, header: resp.Header, body: body}
}

func firstLine(b []byte) string {
	line, _, _ := bytes.Cut(b, []byte("\r\n"))
	return string(line)
}

// request builds a raw request. headers are "Name: value" lines; Host
// defaults to the listen address and Content-Length is set for a body.
func (p *spoold) request(method, target string, headers []string, body string) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\n", method, target)
	hasHost, hasLength := false, false
	for _, h := range headers {
		hasHost = hasHost || strings.HasPrefix(strings.ToLower(h), "host:")
		hasLength = hasLength || strings.HasPrefix(strings.ToLower(h), "content-length:")
	}
	if !hasHost {
		fmt.Fprintf(&b, "Host: %s\r\n", p.Addr)
	}
	for _, h := range headers {
		b.WriteString(h + "\r\n")
	}
	if !hasLength && (body != "" || method == "POST" || method == "PATCH") {
		fmt.Fprintf(&b, "Content-Length: %d\r\n", len(body))
	}
	b.WriteString("Connection: close\r\n\r\n")
	b.WriteString(body)
	return b.Bytes()
}

// call sends a JSON request with net/http and checks its status.
func (p *spoold) call(t *testing.T, method, path, body string, wantStatus int) []byte {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, p.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
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

// createThread starts a thread and returns its id.
func (p *spoold) createThread(t *testing.T) string {
	t.Helper()
	var thread struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal(p.call(t, "POST", "/v1/threads", `{"cwd":"/w"}`, http.StatusCreated), &thread); err != nil {
		t.Fatal(err)
	}
	return thread.ID
}

// written is what spoold has stored: threads in the index and the rollout
// files with their sizes.
type written struct {
	threads int
	files   map[string]int64
}

// snapshot reads what spoold has stored, through the API (every thread,
// archived or not) and on disk.
func (p *spoold) snapshot(t *testing.T) written {
	t.Helper()
	var page struct {
		Threads []json.RawMessage `json:"threads"`
	}
	if err := json.Unmarshal(p.call(t, "GET", "/v1/threads?archived=all&limit=1000", "", http.StatusOK), &page); err != nil {
		t.Fatal(err)
	}
	w := written{threads: len(page.Threads), files: map[string]int64{}}
	err := filepath.WalkDir(p.root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && strings.HasSuffix(path, ".jsonl") {
			info, err := d.Info()
			if err != nil {
				return err
			}
			w.files[path] = info.Size()
		}
		return nil
	})
	if err != nil {
		t.Fatalf("walk root: %v", err)
	}
	return w
}

// sameAs fails unless nothing was written between before and after.
func (w written) sameAs(t *testing.T, before written, what string) {
	t.Helper()
	if w.threads != before.threads {
		t.Errorf("%s: %d threads, was %d: the refused request wrote a thread", what, w.threads, before.threads)
	}
	if len(w.files) != len(before.files) {
		t.Errorf("%s: %d rollout files, was %d", what, len(w.files), len(before.files))
	}
	for path, size := range w.files {
		if before.files[path] != size {
			t.Errorf("%s: %s is %d bytes, was %d", what, filepath.Base(path), size, before.files[path])
		}
	}
}

// runSpoold runs spoold to completion (for starts that must fail) and
// returns its output.
func runSpoold(t *testing.T, args ...string) (string, error) {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), spooldBin, args...)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir()}
	out, err := cmd.CombinedOutput()
	return string(out), err
}

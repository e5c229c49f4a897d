package client_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/spoolhq/spool/client"
	"github.com/spoolhq/spool/server"
)

// TestCallsReuseTheirConnection: every call reads its answer to the end
// before it closes it, and neither side asks to close the connection, so
// the next call can go over the same connection. A program polling Health
// (waiting for spoold to start, a liveness probe) opened a connection per
// call, each left in TIME_WAIT.
//
// The test checks what the client does with each answer, not whether the
// transport dialed again: net/http also drops a connection whose request
// write it has not heard the end of 50 ms after the answer was read
// (maxWriteWaitBeforeConnReuse), which a starved writer goroutine on a
// loaded machine can miss with a client that does everything right.
func TestCallsReuseTheirConnection(t *testing.T) {
	transport := &http.Transport{}
	t.Cleanup(transport.CloseIdleConnections)
	answers := &answerLog{next: transport}
	c := serve(t, server.Config{}, client.WithHTTPClient(&http.Client{Transport: answers}))
	thread, err := c.Create(t.Context(), client.CreateOptions{})
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	const missing = "01a2252d-da4c-77aa-8b74-76d324ec4200"
	tests := []struct {
		name string
		call func(ctx context.Context) error
	}{
		{"health", c.Health},
		{"get", func(ctx context.Context) error { _, err := c.Get(ctx, thread.ID); return err }},
		{"list", func(ctx context.Context) error { _, err := c.List(ctx, client.ListOptions{}); return err }},
		{"metrics", func(ctx context.Context) error { _, err := c.Metrics(ctx); return err }},
		{"error answer", func(ctx context.Context) error {
			if _, err := c.Get(ctx, missing); !errors.Is(err, client.ErrNotFound) {
				return err
			}
			return nil
		}},
		{"items", func(ctx context.Context) error {
			for _, err := range c.Items(ctx, thread.ID, -1) {
				if err != nil {
					return err
				}
			}
			return nil
		}},
	}
	// json.Decoder reads 512 bytes first, then up to 1536: an answer
	// whose JSON ends exactly there decodes without reading its newline.
	sized := sizedThread(t, c, 1536)
	tests = append(tests, struct {
		name string
		call func(ctx context.Context) error
	}{"get of a 1536-byte thread", func(ctx context.Context) error { _, err := c.Get(ctx, sized); return err }})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			answers.take()
			if err := tt.call(t.Context()); err != nil {
				t.Fatal(err)
			}
			got := answers.take()
			if len(got) == 0 {
				t.Fatal("the call made no request")
			}
			for i, a := range got {
				if problem := a.problem(); problem != "" {
					t.Errorf("answer %d of %d to %s: %s: its connection cannot carry the next call", i+1, len(got), a.request, problem)
				}
			}
		})
	}
}

// answerLog is an http.RoundTripper that records how the caller left each
// answer it passed on.
type answerLog struct {
	next http.RoundTripper

	mu      sync.Mutex // guards answers
	answers []*answer
}

func (l *answerLog) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := l.next.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	a := &answer{ReadCloser: resp.Body, request: req.Method + " " + req.URL.Path, askedClose: req.Close, toldClose: resp.Close,
		ended: resp.Body == http.NoBody} // nothing to read
	resp.Body = a
	l.mu.Lock()
	l.answers = append(l.answers, a)
	l.mu.Unlock()
	return resp, nil
}

// take returns the answers recorded since the last take.
func (l *answerLog) take() []*answer {
	l.mu.Lock()
	defer l.mu.Unlock()
	taken := l.answers
	l.answers = nil
	return taken
}

// answer is the body of an answer, recording what its reader did with it.
type answer struct {
	io.ReadCloser
	request               string
	askedClose, toldClose bool // Connection: close in the request, the answer

	mu           sync.Mutex // guards ended, closed
	ended        bool       // a Read returned io.EOF
	closedBefore bool       // closed before it ended
	closed       bool
}

func (a *answer) Read(p []byte) (int, error) {
	n, err := a.ReadCloser.Read(p)
	if err == io.EOF {
		a.mu.Lock()
		a.ended = true
		a.mu.Unlock()
	}
	return n, err
}

func (a *answer) Close() error {
	a.mu.Lock()
	a.closed, a.closedBefore = true, !a.ended
	a.mu.Unlock()
	return a.ReadCloser.Close()
}

// problem says why the transport would not put the answer's connection
// back for the next call, "" when it would.
func (a *answer) problem() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	switch {
	case a.askedClose:
		return "the request asked to close the connection"
	case a.toldClose:
		return "the answer asked to close the connection"
	case !a.closed:
		return "its body was not closed"
	case a.closedBefore:
		return "its body was closed before it was read to the end"
	}
	return ""
}

// sizedThread starts a thread in a long cwd and names it so that GET
// /v1/threads/{id} answers exactly size bytes of JSON before its newline,
// and returns its id.
func sizedThread(t *testing.T, c *client.Client, size int) string {
	t.Helper()
	thread, err := c.Create(t.Context(), client.CreateOptions{Cwd: "/" + strings.Repeat("d", 800)})
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	answerSize := func() int {
		resp, err := http.Get(c.BaseURL() + "/v1/threads/" + thread.ID)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return len(bytes.TrimSuffix(body, []byte("\n")))
	}
	name := strings.Repeat("n", size-answerSize())
	if _, err := c.Rename(t.Context(), thread.ID, name); err != nil {
		t.Fatalf("Rename: %v", err)
	}
	if got := answerSize(); got != size {
		t.Fatalf("thread answer is %d bytes, want %d", got, size)
	}
	return thread.ID
}

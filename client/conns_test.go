package client_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/spoolhq/spool/client"
	"github.com/spoolhq/spool/server"
)

// TestCallsReuseTheirConnection: every call reads its answer to the end
// before it closes it, so the next call goes over the same connection. A
// program polling Health (waiting for spoold to start, a liveness probe)
// opened a connection per call, each left in TIME_WAIT.
func TestCallsReuseTheirConnection(t *testing.T) {
	var dials atomic.Int64
	var dialer net.Dialer
	transport := &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		dials.Add(1)
		return dialer.DialContext(ctx, network, addr)
	}}
	t.Cleanup(transport.CloseIdleConnections)
	c := serve(t, server.Config{}, client.WithHTTPClient(&http.Client{Transport: transport}))
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
			if err := tt.call(t.Context()); err != nil { // may dial: the last test may have left none idle
				t.Fatalf("first call: %v", err)
			}
			before := dials.Load()
			for range 3 {
				if err := tt.call(t.Context()); err != nil {
					t.Fatal(err)
				}
			}
			if got := dials.Load() - before; got != 0 {
				t.Fatalf("3 more calls dialed %d new connections, want 0", got)
			}
		})
	}
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

package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptrace"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestSecondSignalStillDrains: a second SIGINT or SIGTERM while spoold
// drains (a wrapper such as npm run forwards the signal the terminal also
// sent) does not end it: the request in flight completes and spoold exits
// cleanly, having closed its store.
func TestSecondSignalStillDrains(t *testing.T) {
	bin := buildSpoold(t)
	p := startSpoold(t, bin, filepath.Join(t.TempDir(), "root"))
	var thread struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal(p.call(t, "POST", "/v1/threads", `{}`, http.StatusCreated), &thread); err != nil {
		t.Fatal(err)
	}
	// An append whose body is still coming holds the drain. It asks for
	// 100 Continue on a connection of its own, so the signal goes only
	// once its handler is reading: a kept-alive connection still idle on
	// spoold's side, or one not yet accepted, is closed by any drain.
	body, more := io.Pipe()
	reading := make(chan struct{})
	trace := &httptrace.ClientTrace{Got100Continue: func() { close(reading) }}
	ctx := httptrace.WithClientTrace(t.Context(), trace)
	req, err := http.NewRequestWithContext(ctx, "POST", p.URL+"/v1/threads/"+thread.ID+"/items", body)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Expect", "100-continue")
	own := &http.Client{Transport: &http.Transport{ExpectContinueTimeout: time.Hour}}
	defer own.CloseIdleConnections()
	answered := make(chan *http.Response, 1)
	failed := make(chan error, 1)
	go func() {
		resp, err := own.Do(req)
		if err != nil {
			failed <- err
			return
		}
		answered <- resp
	}()
	select {
	case <-reading:
	case err := <-failed:
		t.Fatalf("the append failed before any signal: %v", err)
	}
	p.Signal(t, syscall.SIGTERM)
	p.WaitLog(t, "shutting down")
	p.Signal(t, os.Interrupt)
	item := `{"type":"response_item","payload":{"type":"message","role":"user","content":[{"type":"input_text","text":"in flight"}]}}`
	if _, err := io.WriteString(more, item); err != nil {
		t.Fatalf("spoold gone after a second signal: %v", err)
	}
	more.Close()
	select {
	case resp := <-answered:
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("the append in flight answered %s", resp.Status)
		}
	case err := <-failed:
		t.Fatalf("the append in flight failed after a second signal: %v", err)
	}
	if err := p.Exit(t); err != nil || !strings.Contains(p.Log(), `msg=stopped`) {
		t.Fatalf("spoold after two signals: %v, want a clean stop:\n%s", err, p.Log())
	}
}

// TestDrainDelayKeepsServing: with -drain-delay, spoold goes on serving
// after SIGTERM, /healthz answering 503 so that a load balancer stops
// sending work, before its listener closes; then it stops cleanly.
// Without the delay the listener closes at once and both calls are
// refused.
func TestDrainDelayKeepsServing(t *testing.T) {
	bin := buildSpoold(t)
	p := startSpoold(t, bin, filepath.Join(t.TempDir(), "root"), "-drain-delay", "10s")
	p.call(t, "GET", "/healthz", "", http.StatusOK)
	p.Signal(t, syscall.SIGTERM)
	p.WaitLog(t, "shutting down")
	// On new connections, as a load balancer's probes and requests come.
	fresh := func(method, path string, want int) {
		t.Helper()
		req, err := http.NewRequestWithContext(t.Context(), method, p.URL+path, strings.NewReader(`{}`))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		resp, err := (&http.Client{Transport: &http.Transport{DisableKeepAlives: true}}).Do(req)
		if err != nil {
			t.Fatalf("%s %s while draining: %v", method, path, err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Fatalf("%s %s while draining: %s, want %d", method, path, resp.Status, want)
		}
	}
	fresh("GET", "/healthz", http.StatusServiceUnavailable)
	fresh("POST", "/v1/threads", http.StatusCreated)
	if err := p.Exit(t); err != nil || !strings.Contains(p.Log(), `msg=stopped`) {
		t.Fatalf("spoold after its drain delay: %v, want a clean stop:\n%s", err, p.Log())
	}
}

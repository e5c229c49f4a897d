package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestListenerFailureStillDrains: when the listener fails, at any time
// or during -drain-delay, the requests spoold is serving finish before
// the manager closes, as on a signal: an append whose body is still
// coming is answered 200. Before, the manager closed at once, so it was
// answered 503 (manager closed), and in the binary any request still
// running was cut off by the exit.
func TestListenerFailureStillDrains(t *testing.T) {
	for _, c := range []struct {
		name   string
		args   []string
		signal bool // the failure comes during the drain of a signal
	}{
		{"serving", nil, false},
		{"during the drain delay", []string{"-drain-delay", "1h"}, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			logs := &watchedLog{}
			args := append([]string{"-root", filepath.Join(t.TempDir(), "root"), "-shutdown-timeout", "1m"}, c.args...)
			cfg, err := parseConfig(args, func(string) string { return "" }, logs)
			if err != nil {
				t.Fatal(err)
			}
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			ctx, signal := context.WithCancel(t.Context())
			defer signal()
			served := make(chan error, 1)
			go func() { served <- serve(ctx, cfg, ln) }()
			url := "http://" + ln.Addr().String()
			thread := create(t, url)
			// An append whose body is still coming, its handler reading
			// it (100 Continue sent), when the listener fails.
			answered, failed, more := appendInFlight(t, url, thread)
			if c.signal {
				signal()
				<-logs.saw("shutting down")
			}
			ln.Close() // Accept fails: Serve returns its error
			select {
			case <-logs.saw("the listener failed"):
			case err := <-served:
				served <- err // for the check below
				t.Logf("serve returned with the append in flight: %v", err)
			}
			item := `{"type":"response_item","payload":{"type":"message","role":"user","content":[{"type":"input_text","text":"in flight"}]}}`
			if _, err := io.WriteString(more, item); err != nil {
				t.Fatalf("the append's connection is gone: %v", err)
			}
			more.Close()
			select {
			case resp := <-answered:
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					t.Fatalf("the append in flight when the listener failed answered %s, want 200", resp.Status)
				}
			case err := <-failed:
				t.Fatalf("the append in flight when the listener failed: %v", err)
			}
			if err := <-served; err == nil || !strings.Contains(err.Error(), "serve:") {
				t.Fatalf("serve after its listener failed: %v, want Serve's error", err)
			}
		})
	}
}

// create starts a thread through the server at url and returns its id.
func create(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Post(url+"/v1/threads", "application/json", strings.NewReader(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var thread struct {
		ID string `json:"id"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&thread); err != nil || resp.StatusCode != http.StatusCreated {
		t.Fatalf("create: %s, %v", resp.Status, err)
	}
	return thread.ID
}

// appendInFlight sends an append to thread whose body is still coming,
// on a connection of its own, and returns once its handler reads it (100
// Continue sent): its answer or error comes on answered or failed once
// the body, written to more, is closed.
func appendInFlight(t *testing.T, url, thread string) (answered <-chan *http.Response, failed <-chan error, more *io.PipeWriter) {
	t.Helper()
	body, more := io.Pipe()
	reading := make(chan struct{})
	ctx := httptrace.WithClientTrace(t.Context(), &httptrace.ClientTrace{Got100Continue: func() { close(reading) }})
	req, err := http.NewRequestWithContext(ctx, "POST", url+"/v1/threads/"+thread+"/items", body)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Expect", "100-continue")
	own := &http.Client{Transport: &http.Transport{ExpectContinueTimeout: time.Hour}}
	t.Cleanup(own.CloseIdleConnections)
	answers, errs := make(chan *http.Response, 1), make(chan error, 1)
	go func() {
		resp, err := own.Do(req)
		if err != nil {
			errs <- err
			return
		}
		answers <- resp
	}()
	select {
	case <-reading:
	case err := <-errs:
		t.Fatalf("the append failed before the listener did: %v", err)
	}
	return answers, errs, more
}

// watchedLog is a log that tells when a text appears in it.
type watchedLog struct {
	mu      sync.Mutex // guards buf and waiting
	buf     bytes.Buffer
	waiting map[string]chan struct{}
}

func (l *watchedLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf.Write(p)
	for text, ch := range l.waiting {
		if strings.Contains(l.buf.String(), text) {
			close(ch)
			delete(l.waiting, text)
		}
	}
	return len(p), nil
}

// saw returns a channel closed once text is in the log.
func (l *watchedLog) saw(text string) <-chan struct{} {
	l.mu.Lock()
	defer l.mu.Unlock()
	ch := make(chan struct{})
	if strings.Contains(l.buf.String(), text) {
		close(ch)
		return ch
	}
	if l.waiting == nil {
		l.waiting = map[string]chan struct{}{}
	}
	l.waiting[text] = ch
	return ch
}

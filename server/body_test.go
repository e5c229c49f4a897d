package server

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// TestBodyBudget503 holds 80 of a 100-byte body budget with a request
// blocked in its handler and checks that a 30-byte body is then answered
// 503 with Retry-After without reaching the handler, that it passes once
// the first request is done, that a chunked body past MaxBody is 413, and
// that every reservation is returned.
func TestBodyBudget503(t *testing.T) {
	s := New(nil, Config{MaxBody: 100, MaxBodyBytesInFlight: 100})
	entered := make(chan []byte)
	release := make(chan struct{})
	inner := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-Block") != "" {
			entered <- requestBody(r)
			<-release
		}
		w.Header().Set("X-Body", string(requestBody(r)))
		w.WriteHeader(http.StatusNoContent)
	})
	ts := httptest.NewServer(s.bufferBody(inner))
	t.Cleanup(ts.Close)
	post := func(body io.Reader, block bool) *http.Response {
		t.Helper()
		req, err := http.NewRequestWithContext(t.Context(), "POST", ts.URL+"/v1/threads", body)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		if block {
			req.Header.Set("X-Block", "1")
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}

	first := make(chan int, 1)
	go func() {
		req, _ := http.NewRequest("POST", ts.URL+"/v1/threads", strings.NewReader(strings.Repeat("a", 80)))
		req.Header.Set("X-Block", "1")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			first <- 0
			return
		}
		resp.Body.Close()
		first <- resp.StatusCode
	}()
	if got := <-entered; len(got) != 80 {
		t.Fatalf("handler saw %d body bytes, want 80", len(got))
	}
	if got := s.budget.inUse(); got != 80 {
		t.Fatalf("budget in use = %d, want 80", got)
	}
	refused := post(strings.NewReader(strings.Repeat("b", 30)), false)
	if refused.StatusCode != http.StatusServiceUnavailable || refused.Header.Get("Retry-After") == "" {
		t.Fatalf("body past the budget: status %d Retry-After %q, want 503 with Retry-After",
			refused.StatusCode, refused.Header.Get("Retry-After"))
	}
	close(release)
	if code := <-first; code != http.StatusNoContent {
		t.Fatalf("first request: %d, want 204", code)
	}
	ok := post(strings.NewReader(strings.Repeat("b", 30)), false)
	if ok.StatusCode != http.StatusNoContent || ok.Header.Get("X-Body") != strings.Repeat("b", 30) {
		t.Fatalf("after release: status %d body %q", ok.StatusCode, ok.Header.Get("X-Body"))
	}
	// A body of unknown length (chunked) is cut at MaxBody.
	chunked := post(io.MultiReader(bytes.NewReader(make([]byte, 60)), bytes.NewReader(make([]byte, 60))), false)
	if chunked.StatusCode != http.StatusRequestEntityTooLarge {
		t.Fatalf("chunked 120-byte body: %d, want 413", chunked.StatusCode)
	}
	if got := s.budget.inUse(); got != 0 {
		t.Fatalf("budget in use after all requests = %d, want 0", got)
	}
}

// TestUnreadBodyHasADeadline declares a body and sends none, to requests
// answered without reading it (no token, no such route, a body past the
// budget): net/http drops what is left of a small unread body before it
// writes the answer, and without a deadline that read waited for as long
// as the client kept the connection open, so the answer never came.
func TestUnreadBodyHasADeadline(t *testing.T) {
	s := New(nil, Config{Token: "s3cret", MaxBody: 1000, MaxBodyBytesInFlight: 1000,
		BodyTimeout: 50 * time.Millisecond, BodyMinRate: 1 << 20})
	ts := httptest.NewServer(s.Handler())
	t.Cleanup(ts.Close)
	host := strings.TrimPrefix(ts.URL, "http://")
	tests := []struct {
		name, request string
		wantStatus    int
	}{
		{"no token", "POST /v1/threads HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n", http.StatusUnauthorized},
		{"no such route", "POST /v1/nope HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer s3cret\r\nContent-Length: 100\r\n\r\n", http.StatusNotFound},
		{"past -max-body", "POST /v1/threads HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer s3cret\r\nContent-Type: application/json\r\nContent-Length: 2000\r\n\r\n", http.StatusRequestEntityTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			conn, err := net.Dial("tcp", host)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			if _, err := fmt.Fprintf(conn, tt.request, host); err != nil {
				t.Fatal(err)
			}
			// Far past the body's allowance: a read that outlives it has
			// waited on the unsent body.
			if err := conn.SetReadDeadline(time.Now().Add(5 * time.Second)); err != nil {
				t.Fatal(err)
			}
			resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
			if err != nil {
				t.Fatalf("no answer while the declared body is not sent: %v", err)
			}
			resp.Body.Close()
			if resp.StatusCode != tt.wantStatus {
				t.Fatalf("status = %d, want %d", resp.StatusCode, tt.wantStatus)
			}
		})
	}
}

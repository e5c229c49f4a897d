package server

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
)

// TestLimitSaturated holds the only in-flight slot with a blocked request
// and checks that the next request is refused with 503 unavailable at once
// while /healthz still answers.
func TestLimitSaturated(t *testing.T) {
	s := New(nil, Config{MaxInFlight: 1})
	entered := make(chan struct{})
	release := make(chan struct{})
	blocking := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/block" {
			close(entered)
			<-release
		}
		w.WriteHeader(http.StatusNoContent)
	})
	ts := httptest.NewServer(s.limit(blocking))
	t.Cleanup(ts.Close)

	blockedDone := make(chan int, 1)
	go func() {
		resp, err := http.Get(ts.URL + "/block")
		if err != nil {
			blockedDone <- 0
			return
		}
		resp.Body.Close()
		blockedDone <- resp.StatusCode
	}()
	<-entered

	resp, err := http.Get(ts.URL + "/other")
	if err != nil {
		t.Fatal(err)
	}
	var body errorBody
	err = json.NewDecoder(resp.Body).Decode(&body)
	resp.Body.Close()
	if err != nil {
		t.Fatalf("decode error body: %v", err)
	}
	if resp.StatusCode != http.StatusServiceUnavailable || body.Error.Code != CodeUnavailable {
		t.Fatalf("saturated request: status %d code %q, want 503 %s", resp.StatusCode, body.Error.Code, CodeUnavailable)
	}

	health, err := http.Get(ts.URL + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	health.Body.Close()
	if health.StatusCode != http.StatusNoContent {
		t.Fatalf("/healthz while saturated: status %d, want 204 from the inner handler", health.StatusCode)
	}

	close(release)
	if code := <-blockedDone; code != http.StatusNoContent {
		t.Fatalf("blocked request finished with %d, want 204", code)
	}
	// The slot is free again.
	resp, err = http.Get(ts.URL + "/other")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("after release: status %d, want 204", resp.StatusCode)
	}
}

func TestCanonicalPath(t *testing.T) {
	tests := []struct {
		path string
		want bool
	}{
		{"/", true},
		{"/v1/threads", true},
		{"/v1/threads/", true},
		{"/v1/threads/%2e%2e%2f", true}, // escaped: one opaque segment, rejected later as an id
		{"/v1/threads/../etc", false},
		{"/v1/threads/./x", false},
		{"/v1//threads", false},
		{"v1/threads", false},
		{"", false},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			if got := canonicalPath(tt.path); got != tt.want {
				t.Fatalf("canonicalPath(%q) = %v, want %v", tt.path, got, tt.want)
			}
		})
	}
}

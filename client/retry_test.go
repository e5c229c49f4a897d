package client_test

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/spoolhq/spool/client"
	"github.com/spoolhq/spool/internal/lossy"
	"github.com/spoolhq/spool/server"
)

// TestRetriesActOnce: with WithRetries, a start, a fork, an append and a
// turn whose answers are lost are sent again and take effect once (the Client
// names each with an Idempotency-Key of its own), a GET is sent again, and
// a rename is not; without retries the loss is the caller's error, while
// the server did create the thread.
func TestRetriesActOnce(t *testing.T) {
	ctx := t.Context()
	t.Run("with retries", func(t *testing.T) {
		tr := &lossy.Transport{Drop: func(r *http.Request) bool { return r.Method != http.MethodGet || strings.Count(r.URL.Path, "/") == 3 }}
		var waits []time.Duration
		c := serve(t, server.Config{}, client.WithHTTPClient(&http.Client{Transport: tr}), client.WithRetries(2),
			client.WithPause(func(_ context.Context, d time.Duration) error { waits = append(waits, d); return nil }))
		th, err := c.Create(ctx, client.CreateOptions{Cwd: "/w"})
		if err != nil {
			t.Fatalf("Create: %v", err)
		}
		if _, err := c.Append(ctx, th.ID, userItem("one"), userItem("two")); err != nil {
			t.Fatalf("Append: %v", err)
		}
		one := 1
		fork, err := c.Fork(ctx, th.ID, client.ForkOptions{BeforeUserMessage: &one})
		if err != nil {
			t.Fatalf("Fork: %v", err)
		}
		if _, err := c.AppendTurn(ctx, th.ID, client.TurnOptions{Prompt: "three", Answer: "a"}); err != nil {
			t.Fatalf("AppendTurn: %v", err)
		}
		got, err := c.Get(ctx, th.ID)
		if err != nil || got.UserMessageCount != 3 {
			t.Fatalf("Get: %d user messages, %v; want the 2 appended and the turn's, each once", got.UserMessageCount, err)
		}
		page, err := c.List(ctx, client.ListOptions{Limit: 10})
		if err != nil || len(page.Threads) != 2 {
			t.Fatalf("List: %d threads, %v; want the thread and its fork %s", len(page.Threads), err, fork.ID)
		}
		for _, r := range []struct{ method, suffix string }{{"POST", "/v1/threads"}, {"POST", "/items"}, {"POST", "/fork"}, {"POST", "/turns"}, {"GET", th.ID}} {
			if n := tr.Sent(r.method, r.suffix); n != 2 {
				t.Errorf("%s …%s sent %d times, want 2", r.method, r.suffix, n)
			}
		}
		if len(waits) != 5 {
			t.Errorf("waited %v before retries, want 5 waits", waits)
		}
		if _, err := c.Rename(ctx, th.ID, "renamed"); err == nil {
			t.Fatal("Rename whose answer was lost: no error")
		}
		if n := tr.Sent("PATCH", th.ID); n != 1 {
			t.Fatalf("a rename sent %d times, want once", n)
		}
	})
	t.Run("without", func(t *testing.T) {
		tr := &lossy.Transport{Drop: func(r *http.Request) bool { return r.Method == http.MethodPost }}
		c := serve(t, server.Config{}, client.WithHTTPClient(&http.Client{Transport: tr}))
		if _, err := c.Create(ctx, client.CreateOptions{Cwd: "/w"}); !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Fatalf("Create whose answer was lost: %v, want the loss", err)
		}
		page, err := c.List(ctx, client.ListOptions{})
		if err != nil || len(page.Threads) != 1 {
			t.Fatalf("List: %d threads, %v; want the one the lost request made", len(page.Threads), err)
		}
	})
}

// unavailable answers a request's first attempt 503 with Retry-After,
// without sending it on.
type unavailable struct{ attempts int }

func (u *unavailable) RoundTrip(req *http.Request) (*http.Response, error) {
	u.attempts++
	if u.attempts == 1 {
		return &http.Response{StatusCode: http.StatusServiceUnavailable, Header: http.Header{"Retry-After": {"3"}},
			Body: io.NopCloser(strings.NewReader(`{"code":"unavailable","message":"busy"}`)), Request: req}, nil
	}
	return http.DefaultTransport.RoundTrip(req)
}

// TestRetryAfterUnavailable: a 503 is sent again after the server's
// Retry-After; a done context ends the wait with its error.
func TestRetryAfterUnavailable(t *testing.T) {
	tr := &unavailable{}
	var waits []time.Duration
	c := serve(t, server.Config{}, client.WithHTTPClient(&http.Client{Transport: tr}), client.WithRetries(1),
		client.WithPause(func(_ context.Context, d time.Duration) error { waits = append(waits, d); return nil }))
	if _, err := c.List(t.Context(), client.ListOptions{}); err != nil {
		t.Fatalf("List after a 503: %v", err)
	}
	if len(waits) != 1 || waits[0] != 3*time.Second {
		t.Fatalf("waits %v, want one of 3s (Retry-After)", waits)
	}

	ctx, cancel := context.WithCancel(t.Context())
	tr.attempts = 0
	c = serve(t, server.Config{}, client.WithHTTPClient(&http.Client{Transport: tr}), client.WithRetries(1),
		client.WithPause(func(ctx context.Context, d time.Duration) error { cancel(); return ctx.Err() }))
	if _, err := c.List(ctx, client.ListOptions{}); !errors.Is(err, context.Canceled) {
		t.Fatalf("List cancelled during the wait: %v, want context.Canceled", err)
	}
}

// TestRetryWait: waits follow Retry-After up to MaxRetryWait, else double
// from 100 ms up to 2 s, at most a quarter less for jitter.
func TestRetryWait(t *testing.T) {
	for _, tc := range []struct {
		attempt  int
		after    time.Duration
		min, max time.Duration
	}{
		{1, 0, 75 * time.Millisecond, 100 * time.Millisecond},
		{2, 0, 150 * time.Millisecond, 200 * time.Millisecond},
		{9, 0, 1500 * time.Millisecond, 2 * time.Second},
		{1, 5 * time.Second, 5 * time.Second, 5 * time.Second},
		{1, time.Hour, client.MaxRetryWait, client.MaxRetryWait},
	} {
		for range 20 {
			if d := client.RetryWait(tc.attempt, tc.after); d < tc.min || d > tc.max {
				t.Fatalf("retryWait(%d, %s) = %s, want %s to %s", tc.attempt, tc.after, d, tc.min, tc.max)
			}
		}
	}
}

// TestNoRetryOnCertificateError: a server whose certificate the client
// does not trust, or one that does not speak TLS at an https address, is
// refused at once; another attempt would meet the same server, so the
// Client does not wait and send again.
func TestNoRetryOnCertificateError(t *testing.T) {
	tlsServer := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	t.Cleanup(tlsServer.Close)
	tlsServer.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshakes
	plain := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	t.Cleanup(plain.Close)
	tests := []struct {
		name, url string
		is        func(error) bool
	}{
		{"untrusted certificate", tlsServer.URL, func(err error) bool {
			var certErr *tls.CertificateVerificationError
			return errors.As(err, &certErr)
		}},
		// It does not speak TLS, and answers the handshake in plain HTTP.
		{"plain HTTP at https", strings.Replace(plain.URL, "http://", "https://", 1), func(err error) bool {
			return errors.Is(err, http.ErrSchemeMismatch)
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			waits := 0
			c, err := client.New(tc.url, client.WithHTTPClient(&http.Client{}), client.WithRetries(2),
				client.WithPause(func(context.Context, time.Duration) error { waits++; return nil }))
			if err != nil {
				t.Fatal(err)
			}
			_, err = c.Get(t.Context(), "019a0000-0000-7000-8000-000000000000")
			if !tc.is(err) {
				t.Fatalf("Get: %v, want the TLS failure", err)
			}
			if waits != 0 {
				t.Fatalf("%d retries of %v, want none: it would fail again", waits, err)
			}
		})
	}
}

// TestHealthAsksOnce: Health reports the server's state at the moment it
// asks, so WithRetries does not make it wait out a 503 (a server shutting
// down) and ask again: a probe would see a draining server healthy.
func TestHealthAsksOnce(t *testing.T) {
	tr := &unavailable{}
	waits := 0
	c := serve(t, server.Config{}, client.WithHTTPClient(&http.Client{Transport: tr}), client.WithRetries(3),
		client.WithPause(func(context.Context, time.Duration) error { waits++; return nil }))
	if err := c.Health(t.Context()); !errors.Is(err, client.ErrUnavailable) {
		t.Fatalf("Health answered 503: %v, want ErrUnavailable", err)
	}
	if tr.attempts != 1 || waits != 0 {
		t.Fatalf("Health sent %d requests after %d waits, want 1 and none", tr.attempts, waits)
	}
}

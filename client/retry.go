package client

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"io"
	mathrand "math/rand/v2"
	"net/http"
	"strconv"
	"time"
)

// WithRetries makes the Client send a request again, up to n more times,
// when it may have been lost on the way or the server was briefly away:
// the connection failed before the answer's status arrived (refused,
// reset, closed; not a refused certificate, which would fail again), or
// the answer was 503 unavailable. It waits before each
// retry as the server's Retry-After says (at most MaxRetryWait), else
// 100 ms doubling up to 2 s, less some jitter; a done context ends the
// wait.
//
// Only requests that cannot take effect twice are sent again: GETs, and
// the starts, forks and appends (Create, Fork, Append, AppendWith,
// AppendLines, AppendTurn), which carry an Idempotency-Key: the caller's,
// or one the Client makes up for the call, so the server answers a retry
// of a request it did complete with what it did, and creates or writes
// nothing more (unless the server crashed between writing an append and
// indexing it, which forgets the key: an append that must never be written
// twice also carries AppendOptions.ExpectedSize). Renames, reverts,
// archives, unarchives, deletes and purges are sent once, and so is
// Health, whose answer is the server's state at the moment it asks.
// n <= 0 turns retries off, the default.
func WithRetries(n int) Option {
	return func(c *Client) { c.retries = max(n, 0) }
}

// MaxRetryWait bounds the wait before a retry that a server's Retry-After
// asks for.
const MaxRetryWait = 30 * time.Second

// key returns the Idempotency-Key a start, fork or append sends: given,
// else one made up when the Client retries (so that a retry is safe), else
// none.
func (c *Client) key(given string) string {
	if given != "" || c.retries == 0 {
		return given
	}
	var b [16]byte
	rand.Read(b[:]) // never fails (crypto/rand)
	return "client-" + hex.EncodeToString(b[:])
}

// send sends req, and sends it again while WithRetries allows it and the
// attempt may have been lost (see WithRetries). It returns the last
// attempt's answer or error.
func (c *Client) send(req *http.Request) (*http.Response, error) {
	for attempt := 1; ; attempt++ {
		resp, err := c.http.Do(req)
		if attempt > c.retries || !resendable(req) || req.Context().Err() != nil {
			return resp, err
		}
		var after time.Duration
		switch {
		case err != nil && !transient(err):
			return resp, err
		case err != nil:
		case resp.StatusCode == http.StatusServiceUnavailable:
			after = retryAfter(resp)
			io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
			resp.Body.Close()
		default:
			return resp, nil
		}
		if err := c.pause(req.Context(), retryWait(attempt, after)); err != nil {
			return nil, err
		}
		if req.GetBody != nil {
			if req.Body, err = req.GetBody(); err != nil {
				return nil, err
			}
		}
	}
}

// onceKey marks a context whose requests are sent once (sendOnce).
type onceKey struct{}

// sendOnce returns ctx marked so that a request made with it is not sent
// again, whatever WithRetries says.
func sendOnce(ctx context.Context) context.Context { return context.WithValue(ctx, onceKey{}, true) }

// resendable reports whether req can be sent again: a GET or HEAD, or a
// POST naming itself with an Idempotency-Key, whose body (if any) can be
// read again; never one made with sendOnce's context.
func resendable(req *http.Request) bool {
	switch {
	case req.Context().Value(onceKey{}) != nil:
		return false
	case req.Body != nil && req.Body != http.NoBody && req.GetBody == nil:
		return false
	case req.Method == http.MethodGet, req.Method == http.MethodHead:
		return true
	}
	return req.Method == http.MethodPost && req.Header.Get("Idempotency-Key") != ""
}

// transient reports whether err, a failed attempt, may go another way
// next time: not when the server's certificate was refused (every
// verification error comes wrapped in a tls.CertificateVerificationError)
// or it does not speak TLS (net/http turns a plain HTTP answer to the
// handshake into http.ErrSchemeMismatch), which another attempt would
// meet again.
func transient(err error) bool {
	var (
		certErr   *tls.CertificateVerificationError
		recordErr tls.RecordHeaderError
	)
	return !errors.As(err, &certErr) && !errors.As(err, &recordErr) && !errors.Is(err, http.ErrSchemeMismatch)
}

// retryAfter returns resp's Retry-After in seconds, 0 when it has none.
func retryAfter(resp *http.Response) time.Duration {
	secs, err := strconv.Atoi(resp.Header.Get("Retry-After"))
	if err != nil || secs <= 0 {
		return 0
	}
	return time.Duration(secs) * time.Second
}

// retryWait returns how long to wait before retry number attempt: after,
// bounded by MaxRetryWait, when the server said; else 100 ms doubling up
// to 2 s, the last quarter of it random so that clients retrying together
// spread out.
func retryWait(attempt int, after time.Duration) time.Duration {
	if after > 0 {
		return min(after, MaxRetryWait)
	}
	d := min(100*time.Millisecond<<min(attempt-1, 5), 2*time.Second)
	return d - time.Duration(mathrand.Int64N(int64(d/4)+1))
}

// sleep waits d, or until ctx is done.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Package lossy is an http.RoundTripper for tests that loses answers: it
// sends each request on to the real transport and, for the first request
// of each route its Drop picks, discards the answer after the server acted
// on the request, so the client sees a connection that broke before the
// answer's status. It is the failure that idempotency keys and retries are
// for.
package lossy

import (
	"io"
	"net/http"
	"strings"
	"sync"
)

// Transport loses the answer of the first request of each route (method
// and path) that Drop picks. The zero value with Drop set is ready.
type Transport struct {
	// Drop picks the requests whose first answer is lost.
	Drop func(*http.Request) bool

	mu   sync.Mutex
	seen map[string]int // requests sent, by method and path
}

// RoundTrip implements http.RoundTripper.
func (l *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	route := req.Method + " " + req.URL.Path
	l.mu.Lock()
	if l.seen == nil {
		l.seen = make(map[string]int)
	}
	l.seen[route]++
	first := l.seen[route] == 1
	l.mu.Unlock()
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err == nil && first && l.Drop(req) {
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return nil, io.ErrUnexpectedEOF
	}
	return resp, err
}

// Sent returns how many requests of method to a path ending in suffix
// were sent.
func (l *Transport) Sent(method, suffix string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for route, count := range l.seen {
		if strings.HasPrefix(route, method+" ") && strings.HasSuffix(route, suffix) {
			n += count
		}
	}
	return n
}

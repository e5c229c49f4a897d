package server

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// statusWriter records the status code and body size of a response. It
// unwraps to the underlying writer so http.ResponseController reaches the
// connection (flushes, deadlines).
type statusWriter struct {
	http.ResponseWriter
	status int
	bytes  int64
}

func (w *statusWriter) WriteHeader(status int) {
	if w.status == 0 {
		w.status = status
	}
	w.ResponseWriter.WriteHeader(status)
}

func (w *statusWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(p)
	w.bytes += int64(n)
	return n, err
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// unmatchedRoute labels requests that match no route in logs and metrics,
// so arbitrary paths cannot grow the metric label set.
const unmatchedRoute = "unmatched"

// observe gives the request its id (answered in X-Request-Id), logs one
// line per request and records it in the metrics, labelled by route pattern
// rather than path.
func (s *Server) observe(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		id := newRequestID(r)
		w.Header().Set("X-Request-Id", id.id)
		r = r.WithContext(context.WithValue(r.Context(), requestIDKey{}, id))
		_, routeLabel := s.mux.Handler(r)
		if routeLabel == "" || !canonicalPath(r.URL.EscapedPath()) {
			routeLabel = unmatchedRoute
		}
		sw := &statusWriter{ResponseWriter: w}
		// Deferred so that a stream aborted with http.ErrAbortHandler is
		// logged and counted too.
		defer func() {
			if sw.status == 0 {
				sw.status = http.StatusOK
			}
			elapsed := time.Since(start)
			s.metrics.observeRequest(routeLabel, sw.status, elapsed)
			level := slog.LevelInfo
			switch {
			case sw.status == http.StatusServiceUnavailable:
				level = slog.LevelWarn
			case sw.status >= 500:
				level = slog.LevelError
			}
			s.log.LogAttrs(r.Context(), level, "request",
				slog.String("method", r.Method),
				slog.String("route", routeLabel),
				slog.String("path", r.URL.Path),
				slog.Int("status", sw.status),
				slog.Duration("duration", elapsed),
				slog.Int64("bytes", sw.bytes),
			)
		}()
		next.ServeHTTP(sw, r)
	})
}

// recoverPanics turns a panicking handler into a logged 500 internal error
// instead of a dropped connection. http.ErrAbortHandler is re-raised, as
// the http package expects.
func (s *Server) recoverPanics(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			v := recover()
			if v == nil {
				return
			}
			if v == http.ErrAbortHandler {
				panic(v)
			}
			s.writeError(w, r, fmt.Errorf("panic serving %s %s: %v", r.Method, r.URL.Path, v))
		}()
		next.ServeHTTP(w, r)
	})
}

// authenticate requires the bearer token, when one is configured, on every
// route but /healthz. An event stream's request may carry it in the
// access_token query parameter instead (streamToken), which no handler
// then sees.
func (s *Server) authenticate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r, token := streamToken(r)
		if r.URL.Path != "/healthz" && !s.authorized(r, token) {
			s.writeError(w, r, errorf(http.StatusUnauthorized, CodeUnauthorized, "missing or wrong bearer token"))
			return
		}
		next.ServeHTTP(w, r)
	})
}

// accessTokenParam is the query parameter an event stream's request may
// carry the bearer token in (RFC 6750, section 2.3).
const accessTokenParam = "access_token"

// streamToken returns r without its access_token query parameter, and
// that parameter, when r is what a browser's EventSource sends for one of
// the event streams (a GET of /v1/events or of a thread's items with
// follow on, that accepts text/event-stream and has no Authorization
// header: an EventSource cannot send one). Any other request is returned
// as it is, with "": it must send the header, so that tokens stay out of
// URLs (which proxies and browser histories keep) wherever a header can
// be sent.
func streamToken(r *http.Request) (*http.Request, string) {
	if r.Method != http.MethodGet || r.Header.Get("Authorization") != "" || !wantsSSE(r) {
		return r, ""
	}
	values, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil || !values.Has(accessTokenParam) || !isEventStream(r.URL.Path, values) {
		return r, "" // an unparsable query is refused further on
	}
	token := values.Get(accessTokenParam)
	values.Del(accessTokenParam)
	r = r.Clone(r.Context())
	r.URL.RawQuery = values.Encode()
	return r, token
}

// isEventStream reports whether a GET of path with query values opens one
// of the streams an EventSource may follow: /v1/events, or a thread's
// items with follow on (handlers.go's readItems reads the same values).
func isEventStream(path string, values url.Values) bool {
	if path == "/v1/events" {
		return true
	}
	rest, ok := strings.CutPrefix(path, "/v1/threads/")
	if !ok {
		return false
	}
	id, ok := strings.CutSuffix(rest, "/items")
	if !ok || id == "" || strings.Contains(id, "/") {
		return false
	}
	switch values.Get("follow") {
	case "1", "true":
		return true
	}
	return false
}

// limit bounds the requests in flight (503 unavailable at once when all
// slots are taken; /healthz is exempt so probes see the truth). It runs
// after bufferBody, so a request takes a slot only once its body is in.
func (s *Server) limit(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/healthz" {
			select {
			case s.inFlight <- struct{}{}:
				slot := &inFlightSlot{release: func() { <-s.inFlight }}
				defer slot.done()
				r = r.WithContext(context.WithValue(r.Context(), inFlightSlotKey{}, slot))
			default:
				s.writeError(w, r, errorf(http.StatusServiceUnavailable, CodeUnavailable,
					"too many requests in flight (%d)", cap(s.inFlight)))
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

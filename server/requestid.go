package server

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"net/http"
)

// maxRequestIDLen bounds a client's X-Request-Id.
const maxRequestIDLen = 128

// requestIDKey is the context key of a request's requestID.
type requestIDKey struct{}

// requestID is a request's id: the client's X-Request-Id when it is
// acceptable, else a generated one. refused records a client id that was
// not acceptable; guard answers such a request 400.
type requestID struct {
	id      string
	refused bool
}

// newRequestID returns r's id (see requestID).
func newRequestID(r *http.Request) requestID {
	given := r.Header.Get("X-Request-Id")
	if given != "" && validRequestID(given) {
		return requestID{id: given}
	}
	var b [12]byte
	rand.Read(b[:]) // never fails
	return requestID{id: hex.EncodeToString(b[:]), refused: given != ""}
}

// validRequestID reports whether s is 1..maxRequestIDLen printable ASCII
// characters without space.
func validRequestID(s string) bool {
	if len(s) == 0 || len(s) > maxRequestIDLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] > '~' {
			return false
		}
	}
	return true
}

// RequestID returns the id of the request whose context is ctx, or "".
func RequestID(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey{}).(requestID)
	return id.id
}

// WithRequestID returns a slog.Handler that adds a request_id attribute to
// every record logged with the context of a request served by a Server
// (the *Context logging methods), and passes the others on unchanged. The
// Server wraps its own logger with it; give it to the manager's logger too
// so that its lines name the request they belong to.
func WithRequestID(h slog.Handler) slog.Handler {
	if _, ok := h.(requestIDHandler); ok {
		return h
	}
	return requestIDHandler{h}
}

type requestIDHandler struct{ slog.Handler }

func (h requestIDHandler) Handle(ctx context.Context, rec slog.Record) error {
	if id := RequestID(ctx); id != "" {
		rec.AddAttrs(slog.String("request_id", id))
	}
	return h.Handler.Handle(ctx, rec)
}

func (h requestIDHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return requestIDHandler{h.Handler.WithAttrs(attrs)}
}

func (h requestIDHandler) WithGroup(name string) slog.Handler {
	return requestIDHandler{h.Handler.WithGroup(name)}
}

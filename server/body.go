package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"sync"
	"time"
)

// bodyBudget bounds the bytes of request bodies held in memory at once,
// over all requests. It is safe for concurrent use.
type bodyBudget struct {
	limit int64
	mu    sync.Mutex
	used  int64 // guarded by mu
}

// acquire reserves n bytes, or reports false when that would pass the limit.
func (b *bodyBudget) acquire(n int64) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.used+n > b.limit {
		return false
	}
	b.used += n
	return true
}

// release returns n reserved bytes.
func (b *bodyBudget) release(n int64) {
	b.mu.Lock()
	b.used -= n
	b.mu.Unlock()
}

// inUse returns the bytes reserved now.
func (b *bodyBudget) inUse() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.used
}

// bodyKey is the context key of a request's body, read by bufferBody: a
// *heldBody.
type bodyKey struct{}

// heldBody holds a request's body until the handler drops it.
type heldBody struct{ data []byte }

// requestBody returns the body bufferBody read for r (nil when r has none,
// or dropBody dropped it).
func requestBody(r *http.Request) []byte {
	if held, ok := r.Context().Value(bodyKey{}).(*heldBody); ok {
		return held.data
	}
	return nil
}

// dropBody lets the memory of r's body go before the handler returns, for
// a handler that has decoded what it needs into values of its own (its
// bytes stay reserved in the budget until the request ends).
func dropBody(r *http.Request) {
	if held, ok := r.Context().Value(bodyKey{}).(*heldBody); ok {
		held.data = nil
	}
}

// bufferBody reads the body of a POST, PATCH or PUT request to a known
// route into memory
// before the request takes an in-flight slot, so a client that sends its
// body slowly holds a connection but no slot:
//   - a Content-Type other than JSON (or NDJSON on the append route) is
//     answered 415, so a browser's "simple" cross-site request cannot write;
//   - a body larger than MaxBody is answered 413;
//   - bytes reserved for bodies are bounded over all requests by
//     MaxBodyBytesInFlight: past it, 503 with Retry-After;
//   - the body must arrive at BodyMinRate after BodyTimeout, or the request
//     is answered 408 and the connection closed.
//
// A body is held once, in a buffer of its declared size; the handlers
// validate it in place.
func (s *Server) bufferBody(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, pattern := s.mux.Handler(r)
		if pattern == "" {
			next.ServeHTTP(w, r) // dispatch answers 404 or 405
			return
		}
		writes := r.Method == http.MethodPost || r.Method == http.MethodPatch || r.Method == http.MethodPut
		if !writes {
			// No GET or DELETE route reads a body; one sent anyway is
			// left unread (the connection is closed after the answer).
			next.ServeHTTP(w, r)
			return
		}
		hasBody := r.ContentLength > 0 || (r.ContentLength < 0 && r.Body != nil && r.Body != http.NoBody)
		if ct := r.Header.Get("Content-Type"); hasBody || ct != "" {
			if err := checkContentType(ct, pattern, fromBrowser(r)); err != nil {
				s.writeError(w, r, err)
				return
			}
		}
		if !hasBody {
			next.ServeHTTP(w, r)
			return
		}
		data, reserved, err := s.readBody(w, r, s.bodyWeight(pattern))
		defer s.budget.release(reserved)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), bodyKey{}, &heldBody{data})))
	})
}

// fromBrowser reports whether r carries the headers every current browser
// adds to a request a page makes (Origin on a POST, Sec-Fetch-Site), which
// command-line clients such as curl do not send.
func fromBrowser(r *http.Request) bool {
	return r.Header.Get("Origin") != "" || r.Header.Get("Sec-Fetch-Site") != ""
}

// checkContentType refuses a body's Content-Type unless it is JSON (empty,
// application/json or any +json type), or NDJSON on the append route. The
// form type of curl -d (application/x-www-form-urlencoded) is read as JSON
// too, but only from a client that is not a browser: a page's form post
// is the one cross-site write a browser sends without asking first.
func checkContentType(contentType, pattern string, browser bool) error {
	if !browser && isFormType(contentType) {
		return nil
	}
	ndjson, err := isNDJSON(contentType, pattern == appendPattern)
	if err != nil {
		return err
	}
	if ndjson && pattern != appendPattern {
		return errorf(http.StatusUnsupportedMediaType, CodeUnsupportedMediaType, "this route reads %s", mediaJSON)
	}
	return nil
}

// bodyIsNDJSON reports whether r's body, its Content-Type already passed
// by checkContentType, is NDJSON. The form type reads as JSON there (from
// a client that is not a browser), so it does here.
func bodyIsNDJSON(r *http.Request) (bool, error) {
	contentType := r.Header.Get("Content-Type")
	if isFormType(contentType) {
		return false, nil
	}
	return isNDJSON(contentType, true)
}

// isFormType reports whether contentType is the form type curl -d sends.
func isFormType(contentType string) bool {
	mediaType, _, err := mime.ParseMediaType(contentType)
	return err == nil && mediaType == "application/x-www-form-urlencoded"
}

// initialChunkedBuffer is the first buffer for a body of unknown length.
const initialChunkedBuffer = 64 << 10

// bodyDeadline gives a request that declares a body the time readBody
// would give it to arrive (BodyTimeout plus one second per BodyMinRate
// bytes declared, MaxBody when the length is not declared), from before any
// check that may answer without reading it. net/http reads and drops up to
// 256 KiB of an unread body before it writes an answer; without a deadline
// a client that declares a body and sends none would wait for its 401, 404,
// 413 or 503 as long as it kept the connection, and hold that connection.
// readBody sets its own deadline as it reads and clears it when done.
func (s *Server) bodyDeadline(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength != 0 && r.Body != nil && r.Body != http.NoBody {
			declared := r.ContentLength
			if declared < 0 || declared > s.cfg.MaxBody {
				declared = s.cfg.MaxBody
			}
			allowed := s.cfg.BodyTimeout + time.Duration(float64(declared)/float64(s.cfg.BodyMinRate)*float64(time.Second))
			err := http.NewResponseController(w).SetReadDeadline(time.Now().Add(allowed))
			if err != nil && !errors.Is(err, http.ErrNotSupported) {
				s.writeError(w, r, fmt.Errorf("set body read deadline: %w", err))
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

// turnBodyWeight is what a byte of a whole turn's body counts in the
// budget of bodies in flight. A turn's lines carry its prompt twice and
// its answer three times, and the index reads its texts again: one turn
// of a 60 MB prompt takes spoold's peak RSS about 650 MB up by itself
// (hostiletest), where an append of one item holds about twice its body.
const turnBodyWeight = 4

// bodyWeight returns what a byte of a body of the route pattern counts in
// the budget of bodies in flight: turnBodyWeight for a whole turn, less
// when the budget is smaller than that many bodies of the largest size
// (a turn of that size alone must still fit), 1 for the others.
func (s *Server) bodyWeight(pattern string) int64 {
	if pattern != turnsPattern {
		return 1
	}
	return max(1, min(turnBodyWeight, s.budget.limit/s.cfg.MaxBody))
}

// readBody reads r's body, reserving its bytes times weight in the budget
// first (the caller releases reserved, also on error). The read deadline
// of the connection moves with the bytes received: BodyTimeout, plus one
// second per BodyMinRate bytes.
func (s *Server) readBody(w http.ResponseWriter, r *http.Request, weight int64) (data []byte, reserved int64, err error) {
	if r.ContentLength > s.cfg.MaxBody {
		return nil, 0, &http.MaxBytesError{Limit: s.cfg.MaxBody}
	}
	// reserve charges size more bytes to the budget. The charge is the
	// size of the buffer held; a buffer being replaced by a bigger one
	// is not charged for the moment both exist.
	reserve := func(size int64) error {
		if !s.budget.acquire(size * weight) {
			return errorf(http.StatusServiceUnavailable, CodeUnavailable,
				"request bodies in flight would pass %d bytes; retry later", s.budget.limit)
		}
		reserved += size * weight
		return nil
	}
	known := r.ContentLength >= 0
	size := r.ContentLength
	if !known {
		size = min(s.cfg.MaxBody, initialChunkedBuffer)
	}
	if err := reserve(size); err != nil {
		return nil, reserved, err
	}
	buf := make([]byte, size)
	var probe [1]byte // reads past the end of buf
	rc := http.NewResponseController(w)
	start := time.Now()
	n := 0
	for {
		dst, probing := buf[n:], false
		if n == len(buf) {
			// A declared length is all the body reader gives: the probe
			// reads its EOF, which lets the server notice a client that
			// goes away later. At MaxBody, a byte more is too large.
			if known || int64(n) == s.cfg.MaxBody {
				dst, probing = probe[:], true
			} else {
				size := min(2*int64(len(buf)), s.cfg.MaxBody)
				if err := reserve(size - int64(len(buf))); err != nil {
					return nil, reserved, err
				}
				bigger := make([]byte, size)
				copy(bigger, buf)
				buf, dst = bigger, bigger[n:]
			}
		}
		allowed := s.cfg.BodyTimeout + time.Duration(float64(n)/float64(s.cfg.BodyMinRate)*float64(time.Second))
		if err := rc.SetReadDeadline(start.Add(allowed)); err != nil && !errors.Is(err, http.ErrNotSupported) {
			return nil, reserved, fmt.Errorf("set body read deadline: %w", err)
		}
		m, err := r.Body.Read(dst)
		if probing && m > 0 {
			return nil, reserved, &http.MaxBytesError{Limit: s.cfg.MaxBody}
		}
		n += m
		if err == io.EOF {
			break
		}
		if err != nil {
			var netErr net.Error
			if errors.As(err, &netErr) && netErr.Timeout() {
				return nil, reserved, errorf(http.StatusRequestTimeout, CodeTimeout,
					"request body arrived slower than %d bytes/s after %v (%d of %d bytes)",
					s.cfg.BodyMinRate, s.cfg.BodyTimeout, n, r.ContentLength)
			}
			return nil, reserved, errorf(http.StatusBadRequest, CodeInvalidArgument, "cannot read request body: %v", err)
		}
	}
	// The handler reads nothing more. Its answer gets the whole
	// WriteTimeout from now, however long the body took.
	if err := rc.SetReadDeadline(time.Time{}); err != nil && !errors.Is(err, http.ErrNotSupported) {
		return nil, reserved, fmt.Errorf("clear body read deadline: %w", err)
	}
	if err := rc.SetWriteDeadline(time.Now().Add(s.cfg.WriteTimeout)); err != nil && !errors.Is(err, http.ErrNotSupported) {
		return nil, reserved, fmt.Errorf("set write deadline: %w", err)
	}
	return buf[:n], reserved, nil
}

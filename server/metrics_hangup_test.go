package server_test

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"syscall"
	"testing"

	"github.com/spoolhq/spool/manager"
	"github.com/spoolhq/spool/server"
)

// hungUpWriter is the response of a client that left once the status line
// was sent: every write of the body fails as a closed socket's does, and
// the request's context ends, as net/http ends it when the connection
// closes.
type hungUpWriter struct {
	header       http.Header
	writeHeaders []int
	leave        context.CancelFunc
}

func (w *hungUpWriter) Header() http.Header    { return w.header }
func (w *hungUpWriter) WriteHeader(status int) { w.writeHeaders = append(w.writeHeaders, status) }
func (w *hungUpWriter) Write(p []byte) (int, error) {
	if len(w.writeHeaders) == 0 {
		w.writeHeaders = append(w.writeHeaders, http.StatusOK) // as net/http sends it
	}
	w.leave()
	return 0, syscall.EPIPE
}

// TestMetricsClientHangsUp: a scraper that hangs up while /metrics is
// written (curl .../metrics | head) is not an internal error. spoold
// logged it at ERROR as "internal error ... write: broken pipe" and then
// tried to send a 500 after the 200, which net/http logged as a
// superfluous WriteHeader call.
func TestMetricsClientHangsUp(t *testing.T) {
	m, err := manager.Open(t.Context(), manager.Options{Root: t.TempDir(), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	var logs bytes.Buffer
	h := server.New(m, server.Config{Logger: slog.New(slog.NewTextHandler(&logs, nil))}).Handler()

	ctx, leave := context.WithCancel(t.Context())
	w := &hungUpWriter{header: http.Header{}, leave: leave}
	h.ServeHTTP(w, httptest.NewRequestWithContext(ctx, "GET", "http://127.0.0.1/metrics", nil))
	if len(w.writeHeaders) > 1 {
		t.Errorf("status written %d times (%v), want once", len(w.writeHeaders), w.writeHeaders)
	}
	if strings.Contains(logs.String(), "level=ERROR") {
		t.Errorf("a scraper's hang-up was logged as an error:\n%s", logs.String())
	}
}

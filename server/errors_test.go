package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/spoolhq/spool/manager"
	"github.com/spoolhq/spool/rollout"
	"github.com/spoolhq/spool/store"
)

func TestErrorFor(t *testing.T) {
	tests := []struct {
		name         string
		err          error
		status       int
		code         string
		wantInternal bool
	}{
		{"api error", errorf(http.StatusTeapot, "teapot", "short and stout"), http.StatusTeapot, "teapot", false},
		{"not found", fmt.Errorf("get: %w", manager.ErrNotFound), 404, CodeNotFound, false},
		{"invalid id", fmt.Errorf("x: %w", manager.ErrInvalidID), 400, CodeInvalidID, false},
		{"invalid path", manager.ErrInvalidPath, 400, CodeInvalidArgument, false},
		{"invalid item", fmt.Errorf("append: %w", manager.ErrInvalidItem), 400, CodeInvalidItem, false},
		{"rollout missing type", fmt.Errorf("line 2: %w", rollout.ErrMissingType), 400, CodeInvalidItem, false},
		{"rollout bad utf8", rollout.ErrInvalidUTF8, 400, CodeInvalidItem, false},
		{"out of range", fmt.Errorf("fork: %w", &manager.OutOfRangeError{ID: "t", Requested: 4, Count: 2}), 400, CodeOutOfRange, false},
		{"bad cursor", fmt.Errorf("list: %w", store.ErrBadCursor), 400, CodeInvalidArgument, false},
		{"archived", manager.ErrArchived, 409, CodeArchived, false},
		{"not archived", manager.ErrNotArchived, 409, CodeNotArchived, false},
		{"exists", store.ErrExists, 409, CodeConflict, false},
		{"turn exists", fmt.Errorf("append to t: %w: %q", manager.ErrTurnExists, "x"), 409, CodeConflict, false},
		{"broken chain", fmt.Errorf("base b of t: %w", manager.ErrBrokenChain), 409, CodeBrokenChain, false},
		{"too large", fmt.Errorf("read: %w", &http.MaxBytesError{Limit: 10}), 413, CodeTooLarge, false},
		{"closed", manager.ErrClosed, 503, CodeUnavailable, false},
		{"index locked by another connection", fmt.Errorf("advance: begin: %w", store.ErrWriteLocked), 503, CodeUnavailable, false},
		{"storage unavailable", fmt.Errorf("list: %w: dial tcp: connection refused", manager.ErrUnavailable), 503, CodeUnavailable, false},
		{"canceled", fmt.Errorf("read: %w", context.Canceled), 503, CodeUnavailable, false},
		{"unexpected", errors.New("disk on fire at /secret/path"), 500, CodeInternal, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, internal := errorFor(tt.err)
			if got.Status != tt.status || got.Code != tt.code || internal != tt.wantInternal {
				t.Fatalf("errorFor(%v) = %d %s internal=%v, want %d %s internal=%v",
					tt.err, got.Status, got.Code, internal, tt.status, tt.code, tt.wantInternal)
			}
		})
	}

	t.Run("out of range carries the count", func(t *testing.T) {
		got, _ := errorFor(&manager.OutOfRangeError{ID: "t", Requested: 4, Count: 2})
		if got.UserMessages == nil || *got.UserMessages != 2 || !strings.Contains(got.Message, "2 user messages") {
			t.Fatalf("out_of_range error = %+v, want the count 2 in field and message", got)
		}
	})
}

// TestInternalErrorsLoggedNotLeaked checks that a panicking handler and an
// unexpected error give a generic 500 to the client and the details to the
// log.
func TestInternalErrorsLoggedNotLeaked(t *testing.T) {
	var logs bytes.Buffer
	s := New(nil, Config{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	ts := httptest.NewServer(s.observe(s.recoverPanics(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/panic" {
			panic("secret panic detail")
		}
		s.writeError(w, r, errors.New("secret error detail"))
	}))))
	t.Cleanup(ts.Close)

	for _, path := range []string{"/panic", "/error"} {
		t.Run(path, func(t *testing.T) {
			resp, err := http.Get(ts.URL + path)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var body errorBody
			if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != 500 || body.Error.Code != CodeInternal || strings.Contains(body.Error.Message, "secret") {
				t.Fatalf("got %d %+v, want 500 internal without details", resp.StatusCode, body.Error)
			}
		})
	}
	ts.Close() // wait for the handlers, and so the log writes, to finish
	for _, want := range []string{"secret panic detail", "secret error detail", "status=500"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, logs.String())
		}
	}
}

// TestRefusalsFromStorageAreLogged: a full disk and a lack of file
// descriptors reach the client without details, so the log says what
// failed (the file, the index), for the operator who must make room.
func TestRefusalsFromStorageAreLogged(t *testing.T) {
	tests := []struct {
		name   string
		err    error
		status int
	}{
		{"disk full", fmt.Errorf("append to t: write /root/sessions/secret.jsonl: %w", syscall.ENOSPC), http.StatusInsufficientStorage},
		{"quota", fmt.Errorf("start: commit: %w", syscall.EDQUOT), http.StatusInsufficientStorage},
		{"too many open files", fmt.Errorf("open /root/sessions/secret.jsonl: %w", syscall.EMFILE), http.StatusServiceUnavailable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var logs bytes.Buffer
			s := New(nil, Config{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
			w := httptest.NewRecorder()
			s.writeError(w, httptest.NewRequest("POST", "/v1/threads/t/items", nil), tt.err)
			if w.Code != tt.status {
				t.Fatalf("status %d, want %d", w.Code, tt.status)
			}
			if strings.Contains(w.Body.String(), "secret") {
				t.Fatalf("answer %s shows the error's details", w.Body)
			}
			for _, want := range []string{"level=WARN", tt.err.Error(), "status=" + strconv.Itoa(tt.status), "path=/v1/threads/t/items"} {
				if !strings.Contains(logs.String(), want) {
					t.Errorf("log lacks %q:\n%s", want, logs.String())
				}
			}
		})
	}
}

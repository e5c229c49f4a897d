package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spoolhq/spool/codexlock"
	"github.com/spoolhq/spool/manager"
	"github.com/spoolhq/spool/rollout"
	"github.com/spoolhq/spool/store"
)

// Error codes of the API. They are stable: clients switch on them, so a code
// is never renamed or given another meaning.
const (
	CodeNotFound             = "not_found"              // 404: unknown thread, turn or route
	CodeInvalidID            = "invalid_id"             // 400: a thread id that is not a canonical UUID
	CodeInvalidJSON          = "invalid_json"           // 400: a body that is not the JSON expected
	CodeInvalidItem          = "invalid_item"           // 400: an item or line that cannot be appended
	CodeInvalidArgument      = "invalid_argument"       // 400: a bad query parameter or field
	CodeInvalidQuery         = "invalid_query"          // 400: a search query that does not parse
	CodeOutOfRange           = "out_of_range"           // 400: a user-message ordinal past the thread's count
	CodeArchived             = "archived"               // 409: the thread is archived
	CodeNotArchived          = "not_archived"           // 409: the thread is not archived
	CodeConflict             = "conflict"               // 409: the thread, or a turn id given to POST …/turns, already exists
	CodeReferenced           = "referenced"             // 409: delete of a thread other threads' history continues (reference forks)
	CodeBusy                 = "busy"                   // 409: another process (a running Codex) holds the thread's writer lock
	CodeTornTail             = "torn_tail"              // 409: the thread ends with a line its writer may still finish; retry after Retry-After
	CodeCompressed           = "compressed"             // 409: the thread's rollout is compressed (.jsonl.zst), read-only; fork it to continue
	CodeTurnInProgress       = "turn_in_progress"       // 409: a fork through a Codex turn that has not ended (Codex refuses it too)
	CodeSizeMismatch         = "size_mismatch"          // 409: Expected-Size is not the thread's size; nothing was written
	CodeBrokenChain          = "broken_chain"           // 409: the thread's history continues a file or thread that is gone
	CodeIndexDrift           = "index_drift"            // 409: the index disagrees with itself (edited by hand): reindex --verify, then --full
	CodeIdempotencyKeyReused = "idempotency_key_reused" // 422: an Idempotency-Key sent again with another body
	CodeInsufficientStorage  = "insufficient_storage"   // 507: the disk is full; the request was not completed
	CodeTooLarge             = "too_large"              // 413: the body is larger than the limit
	CodeUnsupportedMediaType = "unsupported_media_type" // 415: a Content-Type the route does not read
	CodeUnauthorized         = "unauthorized"           // 401: missing or wrong bearer token
	CodeForbiddenHost        = "forbidden_host"         // 403: a Host that is not a name of the server (DNS rebinding)
	CodeForbiddenOrigin      = "forbidden_origin"       // 403: a cross-origin request from an origin not allowed by -cors
	CodeTimeout              = "timeout"                // 408: the request body arrived too slowly
	CodeMethodNotAllowed     = "method_not_allowed"     // 405: the route exists with other methods
	CodeUnavailable          = "unavailable"            // 503: saturated, shutting down or closed
	CodeNotSupported         = "not_supported"          // 501: the route needs a capability this server's backend does not offer
	CodeInternal             = "internal"               // 500: a bug or an I/O failure; details are logged
)

// Error is an API error: an HTTP status, a stable code and a message meant
// for the client. Handlers return it for problems found at the edge; errors
// from the manager are translated into one by errorFor.
type Error struct {
	Status  int
	Code    string
	Message string
	// UserMessages is the thread's user-message count, set for out_of_range.
	UserMessages *int
	// Size is the thread's size, set for size_mismatch.
	Size *int64
	// RetryAfter, when set, is sent as the Retry-After header (seconds,
	// rounded up).
	RetryAfter time.Duration
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

// errorBody is the JSON shape of every error response.
type errorBody struct {
	Error errorJSON `json:"error"`
}

type errorJSON struct {
	Code         string `json:"code"`
	Message      string `json:"message"`
	UserMessages *int   `json:"user_messages,omitempty"`
	Size         *int64 `json:"size,omitempty"`
	RequestID    string `json:"request_id,omitempty"`
}

func errorf(status int, code, format string, args ...any) *Error {
	return &Error{Status: status, Code: code, Message: fmt.Sprintf(format, args...)}
}

// errorFor maps any error a handler meets to the API error sent to the
// client. It is the one place where errors become status codes. internal
// reports whether the error is unexpected and must be logged.
func errorFor(err error) (apiErr *Error, internal bool) {
	var (
		asAPI      *Error
		outOfRange *manager.OutOfRangeError
		tooLarge   *http.MaxBytesError
		torn       *manager.TornTailError
		mismatch   *manager.SizeMismatchError
	)
	switch {
	case errors.As(err, &asAPI):
		return asAPI, false
	case errors.As(err, &tooLarge):
		return errorf(http.StatusRequestEntityTooLarge, CodeTooLarge,
			"request body is larger than %d bytes", tooLarge.Limit), false
	case errors.As(err, &outOfRange):
		count := outOfRange.Count
		return &Error{
			Status:       http.StatusBadRequest,
			Code:         CodeOutOfRange,
			Message:      outOfRange.Error(),
			UserMessages: &count,
		}, false
	case errors.Is(err, manager.ErrOutOfRange):
		return errorf(http.StatusBadRequest, CodeOutOfRange, "%s", err.Error()), false
	case errors.Is(err, manager.ErrNotFound):
		return errorf(http.StatusNotFound, CodeNotFound, "%s", err.Error()), false
	case errors.Is(err, manager.ErrInvalidID):
		return errorf(http.StatusBadRequest, CodeInvalidID, "%s", err.Error()), false
	case errors.Is(err, manager.ErrInvalidPath):
		return errorf(http.StatusBadRequest, CodeInvalidArgument, "%s", err.Error()), false
	case errors.Is(err, manager.ErrInvalidItem),
		errors.Is(err, rollout.ErrInvalidJSON),
		errors.Is(err, rollout.ErrNotObject),
		errors.Is(err, rollout.ErrRawNewline),
		errors.Is(err, rollout.ErrMissingType),
		errors.Is(err, rollout.ErrInvalidUTF8):
		return errorf(http.StatusBadRequest, CodeInvalidItem, "%s", err.Error()), false
	case errors.Is(err, store.ErrBadQuery):
		return errorf(http.StatusBadRequest, CodeInvalidQuery, "%s", err.Error()), false
	case errors.Is(err, store.ErrBadCursor), errors.Is(err, store.ErrEmptyQuery), errors.Is(err, manager.ErrInvalidArgument):
		return errorf(http.StatusBadRequest, CodeInvalidArgument, "%s", err.Error()), false
	case errors.Is(err, manager.ErrArchived):
		return errorf(http.StatusConflict, CodeArchived, "%s", err.Error()), false
	case errors.Is(err, manager.ErrNotArchived):
		return errorf(http.StatusConflict, CodeNotArchived, "%s", err.Error()), false
	case errors.Is(err, manager.ErrReferenced):
		return errorf(http.StatusConflict, CodeReferenced, "%s", err.Error()), false
	case errors.As(err, &mismatch):
		size := mismatch.Actual
		e := errorf(http.StatusConflict, CodeSizeMismatch, "%s", err.Error())
		e.Size = &size
		return e, false
	case errors.Is(err, manager.ErrIdempotencyKeyReused):
		return errorf(http.StatusUnprocessableEntity, CodeIdempotencyKeyReused, "%s", err.Error()), false
	case errors.Is(err, manager.ErrBusy):
		msg := err.Error()
		if held := (*codexlock.HeldError)(nil); errors.As(err, &held) {
			// The lock's place in the root, not the server's file system.
			msg = strings.Replace(msg, held.Path, path.Join(codexlock.Dir, filepath.Base(held.Path)), 1)
		}
		return errorf(http.StatusConflict, CodeBusy, "%s", msg), false
	case errors.Is(err, manager.ErrTurnInProgress):
		return errorf(http.StatusConflict, CodeTurnInProgress, "%s", err.Error()), false
	case errors.Is(err, manager.ErrBrokenChain), errors.Is(err, manager.ErrDamaged):
		return errorf(http.StatusConflict, CodeBrokenChain, "%s", err.Error()), false
	case errors.Is(err, manager.ErrIndexDrift):
		return errorf(http.StatusConflict, CodeIndexDrift, "%s", err.Error()), false
	case errors.Is(err, manager.ErrCompressed):
		return errorf(http.StatusConflict, CodeCompressed, "%s", err.Error()), false
	case errors.As(err, &torn):
		e := errorf(http.StatusConflict, CodeTornTail, "%s", err.Error())
		e.RetryAfter = torn.RetryAfter
		return e, false
	case errors.Is(err, syscall.EMFILE), errors.Is(err, syscall.ENFILE):
		// Out of file descriptors: other requests close theirs soon.
		e := errorf(http.StatusServiceUnavailable, CodeUnavailable, "the server has too many files open: retry later")
		e.RetryAfter = time.Second
		return e, false
	case errors.Is(err, syscall.ENOSPC), errors.Is(err, syscall.EDQUOT):
		return errorf(http.StatusInsufficientStorage, CodeInsufficientStorage, "the disk is full: the request was not completed; retry once there is room"), false
	case errors.Is(err, store.ErrExists), errors.Is(err, manager.ErrTurnExists):
		return errorf(http.StatusConflict, CodeConflict, "%s", err.Error()), false
	case errors.Is(err, manager.ErrNotSupported):
		return errorf(http.StatusNotImplemented, CodeNotSupported, "%s", err.Error()), false
	case errors.Is(err, store.ErrWriteLocked):
		// Another connection (a sqlite3 shell's write transaction) holds
		// the index's write lock; spoold waited the busy timeout for it.
		e := errorf(http.StatusServiceUnavailable, CodeUnavailable, "the index is locked by another connection (a write transaction left open on spool.db?): nothing was written; retry later")
		e.RetryAfter = time.Second
		return e, false
	case errors.Is(err, manager.ErrClosed), errors.Is(err, manager.ErrLocked):
		return errorf(http.StatusServiceUnavailable, CodeUnavailable, "the store is not available"), false
	case errors.Is(err, manager.ErrStorageLocked):
		// As store.ErrWriteLocked, for a backend's database.
		e := errorf(http.StatusServiceUnavailable, CodeUnavailable, "a row or table this request needs is locked by another session of the database (a transaction left open?): retry later")
		e.RetryAfter = time.Second
		return e, false
	case errors.Is(err, manager.ErrUnwalked):
		return errorf(http.StatusServiceUnavailable, CodeUnavailable, "no walk of the root has succeeded since spoold started (the log says why), so the forks the index cannot read are not known: nothing was removed; retry once a sync succeeds"), false
	case errors.Is(err, manager.ErrUnavailable):
		return errorf(http.StatusServiceUnavailable, CodeUnavailable, "the storage cannot be reached: retry later"), false
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		// The client went away or the server is stopping; nothing to log.
		return errorf(http.StatusServiceUnavailable, CodeUnavailable, "request canceled"), false
	default:
		return errorf(http.StatusInternalServerError, CodeInternal, "internal error"), true
	}
}

// writeError sends err as a structured error response, logging it first
// when it is unexpected; the client never sees an internal error's text.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	apiErr, internal := errorFor(err)
	switch {
	case internal:
		s.log.ErrorContext(r.Context(), "internal error",
			slog.String("method", r.Method), slog.String("path", r.URL.Path), slog.Any("err", err))
	case errors.Is(err, manager.ErrUnavailable):
		// The client sees no details: the log says what could not be reached.
		s.log.WarnContext(r.Context(), "storage unavailable",
			slog.String("method", r.Method), slog.String("path", r.URL.Path), slog.Any("err", err))
	case apiErr.Status == http.StatusInsufficientStorage, errors.Is(err, syscall.EMFILE), errors.Is(err, syscall.ENFILE):
		// Nor here: the log names the file or the index that could not
		// grow, or the open that failed, for the operator who must make room.
		s.log.WarnContext(r.Context(), "storage refused the request",
			slog.String("method", r.Method), slog.String("path", r.URL.Path), slog.Int("status", apiErr.Status), slog.Any("err", err))
	}
	if apiErr.Status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="spool"`)
	}
	switch {
	case apiErr.RetryAfter > 0:
		w.Header().Set("Retry-After", strconv.Itoa(int((apiErr.RetryAfter+time.Second-1)/time.Second)))
	case apiErr.Status == http.StatusServiceUnavailable:
		w.Header().Set("Retry-After", "1")
	}
	writeJSON(w, apiErr.Status, errorBody{Error: errorJSON{
		Code:         apiErr.Code,
		Message:      apiErr.Message,
		UserMessages: apiErr.UserMessages,
		Size:         apiErr.Size,
		RequestID:    RequestID(r.Context()),
	}})
}

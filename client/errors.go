package client

import (
	"errors"
	"fmt"
	"net/http"
	"time"
)

// Sentinel errors, one per error code of the API. An *Error matches the
// sentinel of its Code with errors.Is:
//
//	if errors.Is(err, client.ErrNotFound) { ... }
var (
	ErrNotFound             = errors.New("client: not found")
	ErrInvalidID            = errors.New("client: invalid id")
	ErrInvalidJSON          = errors.New("client: invalid json")
	ErrInvalidItem          = errors.New("client: invalid item")
	ErrInvalidArgument      = errors.New("client: invalid argument")
	ErrOutOfRange           = errors.New("client: user message out of range")
	ErrArchived             = errors.New("client: thread is archived")
	ErrNotArchived          = errors.New("client: thread is not archived")
	ErrConflict             = errors.New("client: conflict")
	ErrReferenced           = errors.New("client: other threads' history continues this thread")
	ErrCompressed           = errors.New("client: thread is compressed (read-only)")
	ErrTooLarge             = errors.New("client: request too large")
	ErrUnsupportedMediaType = errors.New("client: unsupported media type")
	ErrUnauthorized         = errors.New("client: unauthorized")
	ErrMethodNotAllowed     = errors.New("client: method not allowed")
	ErrUnavailable          = errors.New("client: unavailable")
	ErrNotSupported         = errors.New("client: not supported by the server's backend")
	ErrInternal             = errors.New("client: internal server error")
	ErrForbidden            = errors.New("client: forbidden host or origin")
	ErrTimeout              = errors.New("client: request body too slow")
	ErrTurnInProgress       = errors.New("client: turn is in progress")
	ErrBusy                 = errors.New("client: thread has another writer")
	ErrTornTail             = errors.New("client: thread ends with an unfinished line")
	ErrInsufficientStorage  = errors.New("client: server disk is full")
	ErrInvalidQuery         = errors.New("client: search query does not parse")
	ErrSizeMismatch         = errors.New("client: thread size is not the expected size")
	ErrBrokenChain          = errors.New("client: thread's history continues a file or thread that is gone, or one that is damaged")
	ErrIdempotencyKeyReused = errors.New("client: idempotency key reused with another body")
	ErrIndexDrift           = errors.New("client: the server's index disagrees with itself: rebuild it")
)

// ErrAnswerTooLarge: an answer, or a line or event record of a stream, is
// larger than the Client reads into memory (WithMaxAnswer). The server
// sent it; it has no code.
var ErrAnswerTooLarge = errors.New("client: answer too large")

// The error codes of the API (docs/API.md). They are stable.
const (
	CodeNotFound             = "not_found"
	CodeInvalidID            = "invalid_id"
	CodeInvalidJSON          = "invalid_json"
	CodeInvalidItem          = "invalid_item"
	CodeInvalidArgument      = "invalid_argument"
	CodeOutOfRange           = "out_of_range"
	CodeArchived             = "archived"
	CodeNotArchived          = "not_archived"
	CodeConflict             = "conflict"
	CodeReferenced           = "referenced"
	CodeCompressed           = "compressed"
	CodeTooLarge             = "too_large"
	CodeUnsupportedMediaType = "unsupported_media_type"
	CodeUnauthorized         = "unauthorized"
	CodeMethodNotAllowed     = "method_not_allowed"
	CodeUnavailable          = "unavailable"
	CodeNotSupported         = "not_supported"
	CodeInternal             = "internal"
	CodeForbiddenHost        = "forbidden_host"
	CodeForbiddenOrigin      = "forbidden_origin"
	CodeTimeout              = "timeout"
	CodeBusy                 = "busy"
	CodeTornTail             = "torn_tail"
	CodeInsufficientStorage  = "insufficient_storage"
	CodeSizeMismatch         = "size_mismatch"
	CodeBrokenChain          = "broken_chain"
	CodeIndexDrift           = "index_drift"
	CodeInvalidQuery         = "invalid_query"
	CodeIdempotencyKeyReused = "idempotency_key_reused"
	CodeTurnInProgress       = "turn_in_progress"
)

// sentinels maps each code to its sentinel.
var sentinels = map[string]error{
	CodeNotFound:             ErrNotFound,
	CodeInvalidID:            ErrInvalidID,
	CodeInvalidJSON:          ErrInvalidJSON,
	CodeInvalidItem:          ErrInvalidItem,
	CodeInvalidArgument:      ErrInvalidArgument,
	CodeOutOfRange:           ErrOutOfRange,
	CodeArchived:             ErrArchived,
	CodeNotArchived:          ErrNotArchived,
	CodeConflict:             ErrConflict,
	CodeReferenced:           ErrReferenced,
	CodeCompressed:           ErrCompressed,
	CodeTooLarge:             ErrTooLarge,
	CodeUnsupportedMediaType: ErrUnsupportedMediaType,
	CodeUnauthorized:         ErrUnauthorized,
	CodeMethodNotAllowed:     ErrMethodNotAllowed,
	CodeUnavailable:          ErrUnavailable,
	CodeNotSupported:         ErrNotSupported,
	CodeInternal:             ErrInternal,
	CodeForbiddenHost:        ErrForbidden,
	CodeForbiddenOrigin:      ErrForbidden,
	CodeTimeout:              ErrTimeout,
	CodeBusy:                 ErrBusy,
	CodeTornTail:             ErrTornTail,
	CodeInsufficientStorage:  ErrInsufficientStorage,
	CodeSizeMismatch:         ErrSizeMismatch,
	CodeBrokenChain:          ErrBrokenChain,
	CodeIndexDrift:           ErrIndexDrift,
	CodeInvalidQuery:         ErrInvalidQuery,
	CodeIdempotencyKeyReused: ErrIdempotencyKeyReused,
	CodeTurnInProgress:       ErrTurnInProgress,
}

// statusCodes gives the code of an error answer that carries none (a proxy
// in between, say), by its status.
var statusCodes = map[int]string{
	http.StatusBadRequest:            CodeInvalidArgument,
	http.StatusUnauthorized:          CodeUnauthorized,
	http.StatusNotFound:              CodeNotFound,
	http.StatusMethodNotAllowed:      CodeMethodNotAllowed,
	http.StatusConflict:              CodeConflict,
	http.StatusRequestEntityTooLarge: CodeTooLarge,
	http.StatusUnsupportedMediaType:  CodeUnsupportedMediaType,
	http.StatusInternalServerError:   CodeInternal,
	http.StatusNotImplemented:        CodeNotSupported,
	http.StatusServiceUnavailable:    CodeUnavailable,
	http.StatusForbidden:             CodeForbiddenOrigin,
	http.StatusRequestTimeout:        CodeTimeout,
	http.StatusInsufficientStorage:   CodeInsufficientStorage,
}

// Error is an error answer of the server: its HTTP status and the stable
// code and message of its body. It matches the sentinel of its code with
// errors.Is (an *Error with Code "not_found" is ErrNotFound).
type Error struct {
	Status  int
	Code    string
	Message string
	// UserMessages is the thread's user-message count, set with
	// CodeOutOfRange.
	UserMessages *int
	// Size is the thread's size, set with CodeSizeMismatch.
	Size *int64
	// RetryAfter is the server's Retry-After (with CodeTornTail and
	// CodeUnavailable); 0 when it sent none.
	RetryAfter time.Duration
}

// Error says what the server answered: "spoold: <code> (<status>): <message>",
// or "spoold: status <status>: <message>" for an answer without a code (a
// proxy's 502, say).
func (e *Error) Error() string {
	if e.Code == "" {
		return fmt.Sprintf("spoold: status %d: %s", e.Status, e.Message)
	}
	return fmt.Sprintf("spoold: %s (%d): %s", e.Code, e.Status, e.Message)
}

// Is reports whether target is the sentinel of e's code.
func (e *Error) Is(target error) bool {
	s, ok := sentinels[e.Code]
	return ok && s == target
}

// errorBody is the JSON shape of every error answer.
type errorBody struct {
	Error struct {
		Code         string `json:"code"`
		Message      string `json:"message"`
		UserMessages *int   `json:"user_messages"`
		Size         *int64 `json:"size"`
	} `json:"error"`
}

package rollout

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Line types that Codex writes in the envelope's "type" field.
const (
	TypeSessionMeta  = "session_meta"
	TypeResponseItem = "response_item"
	TypeEventMsg     = "event_msg"
	TypeTurnContext  = "turn_context"
	TypeCompacted    = "compacted"
)

// Sentinel errors for lines that cannot be appended. Callers test them with
// errors.Is; the returned error wraps one of them with detail.
var (
	// ErrInvalidJSON reports a line or payload that is not valid JSON.
	ErrInvalidJSON = errors.New("invalid JSON")
	// ErrNotObject reports a line or payload that is JSON but not an object.
	ErrNotObject = errors.New("not a JSON object")
	// ErrRawNewline reports a line containing a raw newline byte.
	ErrRawNewline = errors.New("raw newline in line")
	// ErrMissingType reports a line whose envelope has no string "type".
	ErrMissingType = errors.New("missing type")
	// ErrInvalidUTF8 reports a line that is not valid UTF-8.
	ErrInvalidUTF8 = errors.New("invalid UTF-8")
)

// TimestampLayout is the layout of envelope timestamps written by spool:
// UTC with milliseconds, as Codex writes them.
const TimestampLayout = "2006-01-02T15:04:05.000Z"

// Item is one line to append, given as its parts. Timestamp may be empty, in
// which case EncodeItem stamps the current time.
type Item struct {
	Timestamp string          `json:"timestamp,omitempty"`
	Type      string          `json:"type"`
	Payload   json.RawMessage `json:"payload"`
}

// EncodeItem returns the line for it, newline included:
// {"timestamp":...,"type":...,"payload":...}. The payload must be a JSON
// object without raw newlines; an empty Timestamp is replaced by now in
// TimestampLayout. Errors wrap ErrInvalidJSON, ErrNotObject, ErrRawNewline or
// ErrMissingType.
func EncodeItem(it Item, now time.Time) ([]byte, error) {
	panic("unimplemented")
}

// EncodeLine validates a complete line given by the caller (one JSON object
// with a string "type", with or without its trailing newline) and returns it
// with exactly one trailing newline. The bytes are kept verbatim, except that
// a line without a top-level "timestamp" gets one inserted as its first
// member. Errors wrap the sentinel errors of this package.
func EncodeLine(line []byte, now time.Time) ([]byte, error) {
	panic("unimplemented")
}

// FormatTimestamp formats t as an envelope timestamp (UTC, milliseconds).
func FormatTimestamp(t time.Time) string { return t.UTC().Format(TimestampLayout) }

// MalformedLineError describes a complete line that is not a JSON object.
// The line is still yielded by the Reader and kept in the file.
type MalformedLineError struct {
	Offset int64 // byte offset of the line's first byte
	Number int64 // 0-based line number
	Err    error // what is wrong with it
}

func (e *MalformedLineError) Error() string {
	return fmt.Sprintf("line %d at offset %d: %v", e.Number, e.Offset, e.Err)
}

func (e *MalformedLineError) Unwrap() error { return e.Err }

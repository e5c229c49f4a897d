package rollout

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"
	"unicode/utf8"
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
	// ErrLineTooLong reports a line longer than MaxLineSize, which no
	// Reader would read back.
	ErrLineTooLong = errors.New("line longer than the 256 MiB limit")
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
// TimestampLayout. The payload is kept verbatim (surrounding space
// trimmed). Errors wrap ErrInvalidJSON, ErrNotObject, ErrRawNewline,
// ErrMissingType, ErrInvalidUTF8 or ErrLineTooLong.
func EncodeItem(it Item, now time.Time) ([]byte, error) {
	c, err := CheckItem(it, now)
	if err != nil {
		return nil, err
	}
	return c.Encode()
}

// CheckedItem is an item that passed EncodeItem's checks, its timestamp
// filled in; CheckItem makes one. It encodes without being checked again,
// so a caller that learns later where the line goes (its ordinal) makes
// one copy of the payload, not two.
type CheckedItem struct {
	timestamp, typ string
	payload        []byte // trimmed; shares the Item's bytes
}

// CheckItem checks it as EncodeItem does (all but the length of the line)
// and returns it ready to encode, stamped with now when it has no
// timestamp.
func CheckItem(it Item, now time.Time) (CheckedItem, error) {
	if it.Type == "" {
		return CheckedItem{}, fmt.Errorf("encode item: %w", ErrMissingType)
	}
	if !utf8.ValidString(it.Type) || !utf8.ValidString(it.Timestamp) {
		return CheckedItem{}, fmt.Errorf("encode %s item: %w", it.Type, ErrInvalidUTF8)
	}
	payload := bytes.TrimSpace(it.Payload)
	if err := checkRawLine(payload); err != nil {
		return CheckedItem{}, fmt.Errorf("encode %s item payload: %w", it.Type, err)
	}
	if _, err := scanLine(payload); err != nil {
		return CheckedItem{}, fmt.Errorf("encode %s item payload: %w", it.Type, err)
	}
	ts := it.Timestamp
	if ts == "" {
		ts = FormatTimestamp(now)
	}
	return CheckedItem{timestamp: ts, typ: it.Type, payload: payload}, nil
}

// Encode returns c's line as EncodeItem does. It fails only with
// ErrLineTooLong.
func (c CheckedItem) Encode() ([]byte, error) {
	return c.AppendLine(make([]byte, 0, c.Size()))
}

// EncodeWithOrdinal returns c's line with "ordinal":n after its timestamp,
// as a paginated rollout carries it: the bytes WithOrdinal makes of
// Encode's line. It fails with ErrInvalidOrdinal for a negative n and
// with ErrLineTooLong.
func (c CheckedItem) EncodeWithOrdinal(n int64) ([]byte, error) {
	return c.AppendLineWithOrdinal(make([]byte, 0, c.Size()+32), n)
}

// Size is about how many bytes c's line takes (for a buffer's capacity).
func (c CheckedItem) Size() int { return len(c.payload) + len(c.typ) + len(c.timestamp) + 48 }

// AppendLine appends Encode's line to dst; on an error dst is returned
// as it was.
func (c CheckedItem) AppendLine(dst []byte) ([]byte, error) { return c.appendLine(dst, -1) }

// AppendLineWithOrdinal appends EncodeWithOrdinal's line to dst; on an
// error dst is returned as it was.
func (c CheckedItem) AppendLineWithOrdinal(dst []byte, n int64) ([]byte, error) {
	if n < 0 {
		return dst, fmt.Errorf("encode %s item with ordinal %d: %w", c.typ, n, ErrInvalidOrdinal)
	}
	return c.appendLine(dst, n)
}

// appendLine appends c's line to dst, with an ordinal member when
// ordinal >= 0.
func (c CheckedItem) appendLine(dst []byte, ordinal int64) ([]byte, error) {
	start := len(dst)
	line := append(dst, `{"timestamp":`...)
	line = appendString(line, c.timestamp)
	if ordinal >= 0 {
		line = append(line, `,"ordinal":`...)
		line = strconv.AppendInt(line, ordinal, 10)
	}
	line = append(line, `,"type":`...)
	line = appendString(line, c.typ)
	line = append(line, `,"payload":`...)
	line = append(line, c.payload...)
	line = append(line, '}', '\n')
	if n := len(line) - start - 1; n > MaxLineSize {
		return dst, fmt.Errorf("encode %s item: %w: %d bytes", c.typ, ErrLineTooLong, n)
	}
	return line, nil
}

// checkRawLine rejects bytes that cannot be one line of a rollout: a raw
// newline anywhere, or invalid UTF-8.
func checkRawLine(b []byte) error {
	if len(b) > MaxLineSize {
		return fmt.Errorf("%w: %d bytes", ErrLineTooLong, len(b))
	}
	if i := bytes.IndexByte(b, '\n'); i >= 0 {
		return fmt.Errorf("%w at byte %d", ErrRawNewline, i)
	}
	if !utf8.Valid(b) {
		return ErrInvalidUTF8
	}
	return nil
}

// appendString appends s as a JSON string. It escapes only what JSON
// requires (quote, backslash, control characters), so text stays readable.
func appendString(dst []byte, s string) []byte {
	const hex = "0123456789abcdef"
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' {
			continue
		}
		dst = append(dst, s[start:i]...)
		switch c {
		case '"', '\\':
			dst = append(dst, '\\', c)
		case '\n':
			dst = append(dst, '\\', 'n')
		case '\r':
			dst = append(dst, '\\', 'r')
		case '\t':
			dst = append(dst, '\\', 't')
		default:
			dst = append(dst, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		}
		start = i + 1
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// EncodeLine validates a complete line given by the caller (one JSON object
// with a string "type", with or without its trailing newline) and returns it
// with exactly one trailing newline. The bytes are kept verbatim, except that
// a line without a top-level "timestamp" gets one inserted as its first
// member. Errors wrap the sentinel errors of this package.
func EncodeLine(line []byte, now time.Time) ([]byte, error) {
	c, err := CheckLine(line, now)
	if err != nil {
		return nil, err
	}
	return c.Encode()
}

// CheckedLine is a line that passed EncodeLine's checks, with the time
// to stamp it with when it has none; CheckLine makes one. As a
// CheckedItem, it encodes without being checked again.
type CheckedLine struct {
	body       []byte // without its newline; shares the caller's bytes
	res        scanResult
	hasOrdinal bool
	timestamp  string // inserted when the line has none
}

// CheckLine checks line as EncodeLine does and returns it ready to
// encode, to be stamped with now when it has no timestamp.
func CheckLine(line []byte, now time.Time) (CheckedLine, error) {
	c, err := checkLine(line)
	if err != nil {
		return CheckedLine{}, fmt.Errorf("encode line: %w", err)
	}
	if !c.res.HasTimestamp {
		c.timestamp = FormatTimestamp(now)
	}
	return c, nil
}

// checkLine checks that line (its newline optional) is one rollout line:
// valid UTF-8 without a raw newline, one JSON object with a string "type".
// The result inserts no timestamp.
func checkLine(line []byte) (CheckedLine, error) {
	body := bytes.TrimSuffix(line, []byte{'\n'})
	if err := checkRawLine(body); err != nil {
		return CheckedLine{}, err
	}
	res, err := scanLine(body)
	if err != nil {
		return CheckedLine{}, err
	}
	if res.Type == "" {
		return CheckedLine{}, ErrMissingType
	}
	return CheckedLine{body: body, res: res, hasOrdinal: res.HasOrdinal}, nil
}

// Encode returns c's line as EncodeLine does. It fails only with
// ErrLineTooLong.
func (c CheckedLine) Encode() ([]byte, error) {
	return c.AppendLine(make([]byte, 0, c.Size()))
}

// EncodeWithOrdinal returns c's line with "ordinal":n where a paginated
// rollout carries it: the bytes WithOrdinal makes of Encode's line. It
// fails with ErrInvalidOrdinal for a negative n or a line that has an
// ordinal already, and with ErrLineTooLong.
func (c CheckedLine) EncodeWithOrdinal(n int64) ([]byte, error) {
	return c.AppendLineWithOrdinal(make([]byte, 0, c.Size()+32), n)
}

// Size is about how many bytes c's line takes (for a buffer's capacity).
func (c CheckedLine) Size() int { return len(c.body) + len(c.timestamp) + 18 }

// AppendLine appends Encode's line to dst; on an error dst is returned
// as it was.
func (c CheckedLine) AppendLine(dst []byte) ([]byte, error) { return c.appendLine(dst, -1) }

// AppendLineWithOrdinal appends EncodeWithOrdinal's line to dst; on an
// error dst is returned as it was.
func (c CheckedLine) AppendLineWithOrdinal(dst []byte, n int64) ([]byte, error) {
	if n < 0 {
		return dst, fmt.Errorf("with ordinal %d: %w", n, ErrInvalidOrdinal)
	}
	if c.hasOrdinal {
		return dst, hasOrdinalError{}
	}
	return c.appendLine(dst, n)
}

// appendLine appends c's line to dst, with an ordinal member when ordinal
// >= 0: after the timestamp inserted first, else where WithOrdinal puts
// it.
func (c CheckedLine) appendLine(dst []byte, ordinal int64) ([]byte, error) {
	var member []byte
	if ordinal >= 0 {
		member = strconv.AppendInt([]byte(`"ordinal":`), ordinal, 10)
	}
	start := len(dst)
	out := dst
	if c.timestamp != "" {
		// The object has at least its "type" member, so a comma always
		// follows an inserted member.
		out = append(out, c.body[:c.res.open+1]...)
		out = append(out, `"timestamp":`...)
		out = appendString(out, c.timestamp)
		out = append(out, ',')
		if member != nil {
			out = append(append(out, member...), ',')
		}
		out = append(out, c.body[c.res.open+1:]...)
	} else if member != nil {
		at, comma := openingMemberEnd(c.body)
		out = append(out, c.body[:at]...)
		if comma {
			out = append(append(out, ','), member...)
		} else {
			out = append(append(out, member...), ',')
		}
		out = append(out, c.body[at:]...)
	} else {
		out = append(out, c.body...)
	}
	if n := len(out) - start; n > MaxLineSize {
		return dst, fmt.Errorf("encode line: %w: %d bytes", ErrLineTooLong, n)
	}
	return append(out, '\n'), nil
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

package rollout

import (
	"errors"
	"fmt"
	"strconv"
)

// ErrInvalidOrdinal reports a top-level ordinal that is not a non-negative
// integer.
var ErrInvalidOrdinal = errors.New("rollout: invalid ordinal")

// LineOrdinal returns the top-level "ordinal" member of one rollout line
// (without its newline), which every line of a paginated thread carries.
// ok is false when the line has none. Errors wrap ErrInvalidJSON or
// ErrNotObject for a line that is not a JSON object, and ErrInvalidOrdinal
// for an ordinal that is not a non-negative integer. As with encoding/json,
// the last of duplicate members wins.
func LineOrdinal(raw []byte) (ordinal int64, ok bool, err error) {
	s := scanner{buf: raw}
	s.skipSpace()
	if s.pos >= len(raw) || raw[s.pos] != '{' {
		if _, err := scanLine(raw); err != nil {
			return 0, false, fmt.Errorf("line ordinal: %w", err)
		}
		return 0, false, fmt.Errorf("line ordinal: %w", ErrNotObject)
	}
	var value []byte
	s.members(func(key []byte, escaped bool) {
		name := string(key)
		if escaped {
			name = decodeString(key)
		}
		start := s.pos
		s.value()
		if name == "ordinal" && s.err == nil {
			value = raw[start:s.pos]
		}
	})
	if s.err == nil {
		s.skipSpace()
		if s.pos < len(raw) {
			s.fail("unexpected data after top-level value")
		}
	}
	if s.err != nil {
		return 0, false, fmt.Errorf("line ordinal: %w: %v", ErrInvalidJSON, s.err)
	}
	if value == nil {
		return 0, false, nil
	}
	n, perr := strconv.ParseInt(string(value), 10, 64)
	if perr != nil || n < 0 {
		return 0, false, fmt.Errorf("line ordinal %s: %w", value, ErrInvalidOrdinal)
	}
	return n, true, nil
}

// WithOrdinal returns line (one complete line, newline optional) with a
// top-level "ordinal":n member inserted after its leading "timestamp"
// member, where Codex writes it, or first when the line does not start with
// a timestamp. The result ends in one newline. It fails (ErrInvalidOrdinal)
// when n is negative or the line already has an ordinal, and with
// ErrInvalidJSON, ErrNotObject, ErrMissingType, ErrRawNewline or
// ErrInvalidUTF8 for a line that is not one valid rollout line.
func WithOrdinal(line []byte, n int64) ([]byte, error) {
	out, err := AppendWithOrdinal(make([]byte, 0, len(line)+32), line, n)
	if err != nil {
		return nil, err
	}
	return out, nil
}

// AppendWithOrdinal appends WithOrdinal's line to dst and returns the
// extended buffer; on an error dst is returned as it was. It is
// CheckedLine's AppendLineWithOrdinal of the line as it stands.
func AppendWithOrdinal(dst, line []byte, n int64) ([]byte, error) {
	c, err := checkLine(line)
	if err != nil {
		return dst, fmt.Errorf("with ordinal: %w", err)
	}
	return c.AppendLineWithOrdinal(dst, n)
}

// hasOrdinalError is WithOrdinal's ErrInvalidOrdinal for a line that
// carries an ordinal already; its text says only that, so that a caller's
// "invalid item" does not read "invalid" twice.
type hasOrdinalError struct{}

func (hasOrdinalError) Error() string { return "line already has an ordinal" }
func (hasOrdinalError) Unwrap() error { return ErrInvalidOrdinal }

// openingMemberEnd returns where to insert a member in a valid object line:
// just after a leading "timestamp" member (comma true: the member follows
// it), else just after the opening brace (comma false: a comma must follow
// the inserted member; the object has at least its "type").
func openingMemberEnd(body []byte) (at int, comma bool) {
	s := scanner{buf: body}
	s.skipSpace()
	open := s.pos
	s.pos++
	s.skipSpace()
	if s.pos < len(body) && body[s.pos] == '"' {
		key, _ := s.str()
		if string(key) == "timestamp" {
			s.skipSpace()
			s.pos++ // ':'
			s.skipSpace()
			s.value()
			if s.err == nil {
				return s.pos, true
			}
		}
	}
	return open + 1, false
}

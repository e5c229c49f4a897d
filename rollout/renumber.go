package rollout

import (
	"bytes"
	"fmt"
	"strconv"
)

// Renumber returns line (one complete line, newline optional) with its
// top-level "ordinal" set to n, every other byte kept, appended to dst. A
// line without an ordinal gets one where WithOrdinal puts it. The result
// ends in one newline. Errors are those of LineOrdinal and WithOrdinal.
//
// A line that starts as Codex writes one, {"timestamp":"…","ordinal":k,
// with no other "ordinal" in it, is renumbered without parsing the rest:
// a copy of a paginated history costs a scan for the word, not a JSON
// parse of every line. The rest of such a line is not validated.
func Renumber(dst, line []byte, n int64) ([]byte, error) {
	if n < 0 {
		return nil, fmt.Errorf("renumber %d: %w", n, ErrInvalidOrdinal)
	}
	body := bytes.TrimSuffix(line, []byte{'\n'})
	start, end, ok := fastOrdinal(body)
	if !ok {
		var has bool
		var err error
		start, end, has, err = ordinalSpan(body)
		if err != nil {
			return nil, fmt.Errorf("renumber: %w", err)
		}
		if !has {
			numbered, err := WithOrdinal(body, n)
			if err != nil {
				return nil, fmt.Errorf("renumber: %w", err)
			}
			return append(dst, numbered...), nil
		}
	}
	dst = append(dst, body[:start]...)
	dst = strconv.AppendInt(dst, n, 10)
	dst = append(dst, body[end:]...)
	return append(dst, '\n'), nil
}

var (
	timestampPrefix = []byte(`{"timestamp":"`)
	ordinalMember   = []byte(`,"ordinal":`)
	ordinalKey      = []byte(`"ordinal"`)
)

// fastOrdinal finds the digits of the ordinal in a line that starts
// {"timestamp":"<no escapes>","ordinal":<digits>[,}] and holds the word
// "ordinal" nowhere else.
func fastOrdinal(body []byte) (start, end int, ok bool) {
	if !bytes.HasPrefix(body, timestampPrefix) {
		return 0, 0, false
	}
	i := len(timestampPrefix)
	close := bytes.IndexByte(body[i:], '"')
	if close < 0 || bytes.IndexByte(body[i:i+close], '\\') >= 0 {
		return 0, 0, false
	}
	i += close + 1
	if !bytes.HasPrefix(body[i:], ordinalMember) {
		return 0, 0, false
	}
	start = i + len(ordinalMember)
	end = start
	for end < len(body) && body[end] >= '0' && body[end] <= '9' {
		end++
	}
	if end == start || end-start > 18 || end == len(body) || (body[end] != ',' && body[end] != '}') {
		return 0, 0, false
	}
	if body[start] == '0' && end-start > 1 {
		return 0, 0, false
	}
	if bytes.Contains(body[end:], ordinalKey) {
		return 0, 0, false
	}
	return start, end, true
}

// ordinalSpan finds the value of the last top-level "ordinal" member of a
// line by parsing it, as LineOrdinal does.
func ordinalSpan(body []byte) (start, end int, ok bool, err error) {
	if _, _, err := LineOrdinal(body); err != nil {
		return 0, 0, false, err
	}
	s := scanner{buf: body}
	s.skipSpace()
	s.members(func(key []byte, escaped bool) {
		name := string(key)
		if escaped {
			name = decodeString(key)
		}
		from := s.pos
		s.value()
		if name == "ordinal" && s.err == nil {
			start, end, ok = from, s.pos, true
		}
	})
	if s.err != nil {
		return 0, 0, false, fmt.Errorf("%w: %v", ErrInvalidJSON, s.err)
	}
	return start, end, ok, nil
}

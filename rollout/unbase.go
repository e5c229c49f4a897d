package rollout

import (
	"bytes"
	"fmt"
)

// WithoutHistoryBase returns a session_meta line (newline optional) with
// every "history_base" member of its payload removed and every other byte
// kept: the meta of a history that no longer continues another thread's
// (a reference fork made self-contained). The result ends in one newline.
// A line without one is returned as it is. It fails with ErrInvalidJSON or
// ErrNotObject for a line that is not a JSON object.
func WithoutHistoryBase(line []byte) ([]byte, error) {
	body := bytes.TrimSuffix(line, []byte{'\n'})
	type span struct{ from, to int }
	var cut []span
	s := scanner{buf: body}
	s.skipSpace()
	if s.pos >= len(body) || body[s.pos] != '{' {
		return nil, fmt.Errorf("without history base: %w", ErrNotObject)
	}
	s.members(func(key []byte, escaped bool) {
		if keyName(key, escaped) != "payload" || s.pos >= len(body) || body[s.pos] != '{' {
			s.value()
			return
		}
		s.members(func(key []byte, escaped bool) {
			keyStart := cap(body) - cap(key) - 1 // the key's opening quote
			s.value()
			if memberName(key, escaped) == "history_base" && s.err == nil {
				cut = append(cut, span{keyStart, s.pos})
			}
		})
	})
	if s.err == nil {
		s.skipSpace()
		if s.pos < len(body) {
			s.fail("unexpected data after top-level value")
		}
	}
	if s.err != nil {
		return nil, fmt.Errorf("without history base: %w: %v", ErrInvalidJSON, s.err)
	}
	out := make([]byte, 0, len(body)+1)
	last := 0
	for _, c := range cut {
		from, to := c.from, c.to
		// Take the comma that separates the member from its neighbour:
		// the one before it, or for a first member the one after it.
		before := from - 1
		for before >= 0 && isSpace(body[before]) {
			before--
		}
		if body[before] == ',' {
			from = before
		} else {
			after := to
			for after < len(body) && isSpace(body[after]) {
				after++
			}
			if after < len(body) && body[after] == ',' {
				to = after + 1
			}
		}
		out = append(out, body[last:from]...)
		last = to
	}
	out = append(out, body[last:]...)
	return append(out, '\n'), nil
}

// memberName returns a member's key, decoded when it holds escapes.
func memberName(key []byte, escaped bool) string {
	if escaped {
		return decodeString(key)
	}
	return string(key)
}

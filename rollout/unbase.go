package rollout

import (
	"bytes"
	"encoding/json"
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
	spans, err := payloadMembers(body, "history_base")
	if err != nil {
		return nil, fmt.Errorf("without history base: %w", err)
	}
	out := make([]byte, 0, len(body)+1)
	last := 0
	for _, c := range spans {
		from, to := c.key, c.end
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

// WithForkPoint returns a session_meta line (newline optional) whose
// payload's "spool_fork_point" members hold fp, every other byte kept; a
// payload without one gets it as its last member (a reference fork Codex
// wrote, made self-contained). The result ends in one newline. It fails
// with ErrInvalidJSON or ErrNotObject for a line that is not a JSON object,
// and with ErrNotObject when its payload is not one.
func WithForkPoint(line []byte, fp ForkPoint) ([]byte, error) {
	body := bytes.TrimSuffix(line, []byte{'\n'})
	p, err := payloadLayout(body, "spool_fork_point")
	if err == nil && p.close < 0 {
		err = ErrNotObject
	}
	if err != nil {
		return nil, fmt.Errorf("with fork point: %w", err)
	}
	value, err := json.Marshal(fp)
	if err != nil {
		return nil, fmt.Errorf("with fork point: %w", err)
	}
	out := make([]byte, 0, len(body)+len(value)+len(`,"spool_fork_point":`)+1)
	if len(p.spans) == 0 {
		out = append(out, body[:p.close]...)
		if p.members > 0 {
			out = append(out, ',')
		}
		out = append(append(append(out, `"spool_fork_point":`...), value...), body[p.close:]...)
		return append(out, '\n'), nil
	}
	last := 0
	for _, c := range p.spans {
		out = append(append(out, body[last:c.value]...), value...)
		last = c.end
	}
	out = append(out, body[last:]...)
	return append(out, '\n'), nil
}

// memberSpan is where a member of a JSON object lies in its text: the
// key's opening quote, the value's first byte and the byte past it.
type memberSpan struct{ key, value, end int }

// payloadMembers returns the spans of the members named name of the
// "payload" object of body, a JSON object, in order. It fails with
// ErrNotObject or ErrInvalidJSON.
func payloadMembers(body []byte, name string) ([]memberSpan, error) {
	p, err := payloadLayout(body, name)
	return p.spans, err
}

// payload is the layout of the "payload" object of a line: the spans of
// its members of one name, where its closing brace is (-1 when the line
// has no payload object) and how many members it has.
type payload struct {
	spans   []memberSpan
	close   int
	members int
}

// payloadLayout returns the layout of the "payload" object of body, a JSON
// object: the spans of the members named name of every payload object it
// holds (encoding/json merges duplicates), and the closing brace and
// member count of the last one. It fails with ErrNotObject or
// ErrInvalidJSON.
func payloadLayout(body []byte, name string) (payload, error) {
	p := payload{close: -1}
	s := scanner{buf: body}
	s.skipSpace()
	if s.pos >= len(body) || body[s.pos] != '{' {
		return payload{}, ErrNotObject
	}
	s.members(func(key []byte, escaped bool) {
		if keyName(key, escaped) != "payload" || s.pos >= len(body) || body[s.pos] != '{' {
			s.value()
			return
		}
		p.members = 0
		s.members(func(key []byte, escaped bool) {
			p.members++
			span := memberSpan{key: cap(body) - cap(key) - 1, value: s.pos} // the key's opening quote
			s.value()
			if memberName(key, escaped) == name && s.err == nil {
				span.end = s.pos
				p.spans = append(p.spans, span)
			}
		})
		p.close = s.pos - 1 // members leaves the position past the closing brace
	})
	if s.err == nil {
		s.skipSpace()
		if s.pos < len(body) {
			s.fail("unexpected data after top-level value")
		}
	}
	if s.err != nil {
		return payload{}, fmt.Errorf("%w: %v", ErrInvalidJSON, s.err)
	}
	return p, nil
}

// memberName returns a member's key, decoded when it holds escapes.
func memberName(key []byte, escaped bool) string {
	if escaped {
		return decodeString(key)
	}
	return string(key)
}

package rollout

import (
	"bytes"
	"unicode/utf8"
)

// prunePayload returns line, a JSON object the scanner accepts, without the
// members that decoding it into a struct of one field payload, itself of
// the fields named fields, would skip: top-level members other than
// payload, and members of an object payload other than fields. Decoding
// the result with encoding/json gives what decoding line gives, without
// reading the skipped bytes twice (its validation, then its skip): a
// session_meta line is mostly base_instructions, which the index never
// reads.
//
// A member is left out only when its name is ASCII, unescaped and
// equal under ASCII case folding to none of the names: encoding/json
// matches names case-insensitively, escapes and non-ASCII letters (the
// Kelvin sign folds to k) included, so any other member is kept for it to
// decide. Duplicate members are kept in their order, for encoding/json to
// merge as it does. When line is not such an object, prunePayload returns
// it as it is, for the decoder to fail on.
func prunePayload(line []byte, fields []string) []byte {
	s := scanner{buf: line}
	s.skipSpace()
	if s.pos >= len(line) || line[s.pos] != '{' {
		return line
	}
	out := make([]byte, 0, 512)
	out = append(out, '{')
	top := memberWriter{out: out}
	s.members(func(key []byte, escaped bool) {
		if !mayName(key, escaped, payloadField...) {
			s.value()
			return
		}
		top.key(key)
		if s.pos >= len(s.buf) || s.buf[s.pos] != '{' {
			start := s.pos
			s.value()
			top.out = append(top.out, s.buf[start:s.pos]...)
			return
		}
		inner := memberWriter{out: append(top.out, '{')}
		s.members(func(key []byte, escaped bool) {
			start := s.pos
			s.value()
			if mayName(key, escaped, fields...) {
				inner.key(key)
				inner.out = append(inner.out, s.buf[start:s.pos]...)
			}
		})
		top.out = append(inner.out, '}')
	})
	if s.err != nil {
		return line
	}
	return append(top.out, '}')
}

// payloadField is the envelope member prunePayload keeps.
var payloadField = []string{"payload"}

// memberWriter appends the members of an object being rebuilt, each
// after a comma but the first.
type memberWriter struct {
	out []byte
	n   int
}

// key appends the name of a member (its body as it was in the line, escapes
// and all) and its colon.
func (w *memberWriter) key(body []byte) {
	if w.n > 0 {
		w.out = append(w.out, ',')
	}
	w.n++
	w.out = append(w.out, '"')
	w.out = append(w.out, body...)
	w.out = append(w.out, '"', ':')
}

// mayName reports whether encoding/json may match a member named key (its
// body in the line) to one of names: when the key is escaped or not
// ASCII, or folds to one of them in ASCII.
func mayName(key []byte, escaped bool, names ...string) bool {
	if escaped || !isASCII(key) {
		return true
	}
	for _, name := range names {
		if len(key) == len(name) && bytes.EqualFold(key, []byte(name)) {
			return true
		}
	}
	return false
}

func isASCII(b []byte) bool {
	for _, c := range b {
		if c >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

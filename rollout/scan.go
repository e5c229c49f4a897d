package rollout

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// maxNestingDepth matches encoding/json, which rejects documents nested more
// deeply than this, so that the scanner and json.Valid agree.
const maxNestingDepth = 10000

// scanResult is what one pass of the scanner learns about a line.
//
// Duplicate keys follow encoding/json's map semantics: the last member with
// a given name wins wholesale. Type is the last top-level "type" member when
// it is a string ("" when that member is not a string); PayloadType is the
// last "type" member of the last top-level "payload" member when that
// payload is an object; Role likewise for payload.role.
type scanResult struct {
	Type         string
	PayloadType  string
	Role         string
	HasTimestamp bool // a top-level "timestamp" member exists (any value)
	HasOrdinal   bool // a top-level "ordinal" member exists (any value)
	payloads     int  // top-level members whose name folds to "payload"
	open         int  // index of the top-level object's '{'
	depth        int  // the deepest nesting of the line, its own object being 1

	// turn is payload.turn_id as far as the scanner can tell it without
	// encoding/json (see Line.PayloadTurnID).
	turn turnIDScan
}

// turnIDScan is what the scanner saw of payload.turn_id.
type turnIDScan struct {
	// plain: no top-level member whose name folds to "payload", or one
	// named exactly so (unescaped) holding an object with at most one
	// member whose name folds to "turn_id", named exactly so, unescaped,
	// whose value is null or a valid UTF-8 string without escapes. Only
	// then is [start, end) meaningful; otherwise encoding/json decides.
	plain bool
	// start and end delimit the turn_id string's body in the line (empty
	// for none or null), so that scanning allocates nothing.
	start, end int
}

// scanError describes where a line stops being valid JSON.
type scanError struct {
	pos int
	msg string
}

func (e *scanError) Error() string { return fmt.Sprintf("%s at byte %d", e.msg, e.pos) }

// scanner validates one JSON text in a single pass, without allocating for
// valid input except for unusual type strings.
type scanner struct {
	buf      []byte
	pos      int
	depth    int
	maxDepth int // the deepest depth reached
	err      *scanError

	quoteSearches int // how many times str looked for a closing quote
}

// scanLine validates b as one JSON text (RFC 8259, as json.Valid does,
// including its acceptance of invalid UTF-8 inside strings) and, when it is
// an object, extracts the envelope fields. Errors wrap ErrInvalidJSON or
// ErrNotObject.
func scanLine(b []byte) (scanResult, error) {
	s := scanner{buf: b}
	var res scanResult
	s.skipSpace()
	isObject := s.pos < len(b) && b[s.pos] == '{'
	if isObject {
		res.open = s.pos
		s.topObject(&res)
	} else {
		s.value()
	}
	if s.err == nil {
		s.skipSpace()
		if s.pos < len(b) {
			s.fail("unexpected data after top-level value")
		}
	}
	if s.err != nil {
		return scanResult{}, fmt.Errorf("%w: %v", ErrInvalidJSON, s.err)
	}
	if !isObject {
		return scanResult{}, ErrNotObject
	}
	res.depth = s.maxDepth
	return res, nil
}

// validJSON reports whether b is one valid JSON text, like json.Valid.
func validJSON(b []byte) bool {
	s := scanner{buf: b}
	s.skipSpace()
	s.value()
	if s.err != nil {
		return false
	}
	s.skipSpace()
	return s.pos == len(b)
}

// eachElement calls fn with each element of raw, a JSON array that
// encoding/json accepted, in order, and stops at fn's first error, which
// it returns. raw may also be empty or null, an array of nothing; any other
// value is an error.
func eachElement(raw []byte, fn func(elem []byte) error) error {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return nil
	}
	if raw[0] != '[' {
		return errNotArray
	}
	s := scanner{buf: raw, pos: 1}
	s.skipSpace()
	if s.pos < len(raw) && raw[s.pos] == ']' {
		return nil
	}
	for {
		start := s.pos
		s.value()
		if s.err != nil {
			return fmt.Errorf("%w: %v", ErrInvalidJSON, s.err)
		}
		if err := fn(raw[start:s.pos]); err != nil {
			return err
		}
		s.skipSpace()
		if s.pos < len(raw) && raw[s.pos] == ',' {
			s.pos++
			s.skipSpace()
			continue
		}
		if s.pos < len(raw) && raw[s.pos] == ']' {
			return nil
		}
		return fmt.Errorf("%w: expected ',' or ']' in array at byte %d", ErrInvalidJSON, s.pos)
	}
}

// errNotArray is eachElement's error for a value that is not an array.
var errNotArray = errors.New("rollout: not a JSON array")

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

func (s *scanner) fail(msg string) {
	if s.err == nil {
		s.err = &scanError{pos: s.pos, msg: msg}
	}
}

func (s *scanner) skipSpace() {
	for s.pos < len(s.buf) && isSpace(s.buf[s.pos]) {
		s.pos++
	}
}

// topObject scans the top-level object, noting type, timestamp and payload.
func (s *scanner) topObject(res *scanResult) {
	payloads := 0 // members whose name folds to "payload", as encoding/json matches them
	plainPayload := false
	s.members(func(key []byte, keyEscaped bool) {
		name := keyName(key, keyEscaped)
		if foldsTo(key, keyEscaped, name, "payload") {
			payloads++
		}
		switch name {
		case "type":
			res.Type = s.stringMember()
		case "timestamp":
			res.HasTimestamp = true
			s.value()
		case "ordinal":
			res.HasOrdinal = true
			s.value()
		case "payload":
			res.PayloadType, res.Role = "", ""
			if s.pos < len(s.buf) && s.buf[s.pos] == '{' {
				plainPayload = s.payloadObject(res) && !keyEscaped
			} else {
				plainPayload = false
				s.value()
			}
		default:
			s.value()
		}
	})
	res.payloads = payloads
	res.turn.plain = payloads == 0 || payloads == 1 && plainPayload
}

// foldsTo reports whether a member key (name as keyName returned it) is
// one encoding/json would match to a field named field: equal under
// case folding. field has no letter that a non-ASCII rune folds to (k,
// s), so an unescaped key must be ASCII of the same length.
func foldsTo(key []byte, escaped bool, name, field string) bool {
	if escaped {
		return strings.EqualFold(name, field)
	}
	return len(key) == len(field) && bytes.EqualFold(key, []byte(field))
}

// payloadObject scans the payload object, noting its type, role and
// turn_id. It reports whether turn_id is plain (see turnIDScan).
func (s *scanner) payloadObject(res *scanResult) bool {
	res.turn = turnIDScan{}
	turnIDs, plain := 0, true
	s.members(func(key []byte, keyEscaped bool) {
		name := keyName(key, keyEscaped)
		if foldsTo(key, keyEscaped, name, "turn_id") {
			turnIDs++
			if keyEscaped || string(key) != "turn_id" {
				plain = false
			}
		}
		switch name {
		case "type":
			res.PayloadType = s.stringMember()
		case "role":
			res.Role = s.stringMember()
		case "turn_id":
			switch {
			case s.pos < len(s.buf) && s.buf[s.pos] == '"':
				body, escaped := s.str()
				if escaped || !utf8.Valid(body) { // encoding/json would decode or replace
					plain = false
				}
				res.turn.end = s.pos - 1 // the closing quote
				res.turn.start = res.turn.end - len(body)
			case bytes.HasPrefix(s.buf[s.pos:], []byte("null")):
				s.value()
				res.turn.start, res.turn.end = 0, 0
			default:
				plain = false
				s.value()
			}
		default:
			s.value()
		}
	})
	return plain && turnIDs <= 1
}

// keyName returns the decoded key when it may be one of the few names the
// scanner looks for, and "" otherwise (avoiding an allocation per key).
func keyName(key []byte, escaped bool) string {
	if escaped {
		return decodeString(key)
	}
	switch string(key) {
	case "type":
		return "type"
	case "timestamp":
		return "timestamp"
	case "payload":
		return "payload"
	case "role":
		return "role"
	case "turn_id":
		return "turn_id"
	case "ordinal":
		return "ordinal"
	}
	return ""
}

// stringMember scans a member value and returns it when it is a string, or
// "" for any other kind of value.
func (s *scanner) stringMember() string {
	if s.pos < len(s.buf) && s.buf[s.pos] == '"' {
		body, escaped := s.str()
		if s.err != nil {
			return ""
		}
		if escaped {
			return decodeString(body)
		}
		return internString(body)
	}
	s.value()
	return ""
}

// members scans an object starting at '{' and calls member for each member
// with s positioned at the start of its value; member must scan the value.
func (s *scanner) members(member func(key []byte, escaped bool)) {
	if !s.push() {
		return
	}
	s.pos++ // '{'
	s.skipSpace()
	if s.pos < len(s.buf) && s.buf[s.pos] == '}' {
		s.pos++
		s.depth--
		return
	}
	for {
		if s.pos >= len(s.buf) || s.buf[s.pos] != '"' {
			s.fail("expected object key")
			return
		}
		key, escaped := s.str()
		if s.err != nil {
			return
		}
		s.skipSpace()
		if s.pos >= len(s.buf) || s.buf[s.pos] != ':' {
			s.fail("expected ':' after object key")
			return
		}
		s.pos++
		s.skipSpace()
		member(key, escaped)
		if s.err != nil {
			return
		}
		s.skipSpace()
		if s.pos >= len(s.buf) {
			s.fail("unexpected end in object")
			return
		}
		switch s.buf[s.pos] {
		case ',':
			s.pos++
			s.skipSpace()
		case '}':
			s.pos++
			s.depth--
			return
		default:
			s.fail("expected ',' or '}' in object")
			return
		}
	}
}

func (s *scanner) push() bool {
	s.depth++
	s.maxDepth = max(s.maxDepth, s.depth)
	if s.depth > maxNestingDepth {
		s.fail("exceeded max nesting depth")
		return false
	}
	return true
}

// value scans any JSON value starting at s.pos (no leading space).
func (s *scanner) value() {
	if s.pos >= len(s.buf) {
		s.fail("unexpected end of input")
		return
	}
	switch c := s.buf[s.pos]; {
	case c == '"':
		s.str()
	case c == '{':
		s.members(func([]byte, bool) { s.value() })
	case c == '[':
		s.array()
	case c == '-' || (c >= '0' && c <= '9'):
		s.number()
	case c == 't':
		s.literal("true")
	case c == 'f':
		s.literal("false")
	case c == 'n':
		s.literal("null")
	default:
		s.fail("invalid character looking for a value")
	}
}

func (s *scanner) array() {
	if !s.push() {
		return
	}
	s.pos++ // '['
	s.skipSpace()
	if s.pos < len(s.buf) && s.buf[s.pos] == ']' {
		s.pos++
		s.depth--
		return
	}
	for {
		s.value()
		if s.err != nil {
			return
		}
		s.skipSpace()
		if s.pos >= len(s.buf) {
			s.fail("unexpected end in array")
			return
		}
		switch s.buf[s.pos] {
		case ',':
			s.pos++
			s.skipSpace()
		case ']':
			s.pos++
			s.depth--
			return
		default:
			s.fail("expected ',' or ']' in array")
			return
		}
	}
}

func (s *scanner) literal(lit string) {
	if !bytes.HasPrefix(s.buf[s.pos:], []byte(lit)) {
		s.fail("invalid literal")
		return
	}
	s.pos += len(lit)
}

func (s *scanner) number() {
	b := s.buf
	i := s.pos
	if b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && b[i] >= '1' && b[i] <= '9':
		for i < len(b) && isDigit(b[i]) {
			i++
		}
	default:
		s.pos = i
		s.fail("invalid number")
		return
	}
	if i < len(b) && b[i] == '.' {
		i++
		if i >= len(b) || !isDigit(b[i]) {
			s.pos = i
			s.fail("invalid number fraction")
			return
		}
		for i < len(b) && isDigit(b[i]) {
			i++
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if i >= len(b) || !isDigit(b[i]) {
			s.pos = i
			s.fail("invalid number exponent")
			return
		}
		for i < len(b) && isDigit(b[i]) {
			i++
		}
	}
	s.pos = i
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// str scans a string starting at its opening quote and returns its body
// (between the quotes) and whether it holds escapes. Bodies are skipped with
// bytes.IndexByte; control characters are found eight bytes at a time.
func (s *scanner) str() (body []byte, escaped bool) {
	b := s.buf
	start := s.pos + 1
	i := start
	// quote is the next '"' at or after i; it is searched for again only
	// once an escape has moved i past it, so that strings with many
	// escapes are still scanned in linear time.
	quote := -1
	for {
		if quote < i {
			s.quoteSearches++
			q := bytes.IndexByte(b[i:], '"')
			if q < 0 {
				s.pos = len(b)
				s.fail("unterminated string")
				return nil, false
			}
			quote = i + q
		}
		seg := b[i:quote]
		bs := bytes.IndexByte(seg, '\\')
		if bs < 0 {
			if c := indexControl(seg); c >= 0 {
				s.pos = i + c
				s.fail("control character in string")
				return nil, false
			}
			s.pos = quote + 1
			return b[start:quote], escaped
		}
		if c := indexControl(seg[:bs]); c >= 0 {
			s.pos = i + c
			s.fail("control character in string")
			return nil, false
		}
		escaped = true
		// i moves to the escaped character, which exists: i <= quote.
		i += bs + 1
		switch b[i] {
		case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			i++
		case 'u':
			if i+5 > len(b) || !isHex(b[i+1]) || !isHex(b[i+2]) || !isHex(b[i+3]) || !isHex(b[i+4]) {
				s.pos = i
				s.fail("invalid \\u escape")
				return nil, false
			}
			i += 5
		default:
			s.pos = i
			s.fail("invalid escape")
			return nil, false
		}
	}
}

func isHex(c byte) bool {
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')
}

const (
	lsb8 = 0x0101010101010101
	msb8 = 0x8080808080808080
)

// indexControl returns the index of the first byte < 0x20 in b, or -1.
func indexControl(b []byte) int {
	i := 0
	for ; i+8 <= len(b); i += 8 {
		x := binary.LittleEndian.Uint64(b[i:])
		// Standard "has a byte less than n" test: exact for n <= 128.
		if (x-lsb8*0x20)&^x&msb8 != 0 {
			break
		}
	}
	for ; i < len(b); i++ {
		if b[i] < 0x20 {
			return i
		}
	}
	return -1
}

// decodeString decodes a string body holding escapes (or anything unusual)
// exactly as encoding/json does. The body has already been validated.
func decodeString(body []byte) string {
	quoted := make([]byte, 0, len(body)+2)
	quoted = append(quoted, '"')
	quoted = append(quoted, body...)
	quoted = append(quoted, '"')
	var v string
	if err := json.Unmarshal(quoted, &v); err != nil {
		return ""
	}
	return v
}

// knownStrings are the envelope and payload type values seen on nearly every
// line; returning the constant avoids an allocation per line.
var knownStrings = func() map[string]string {
	m := make(map[string]string)
	for _, s := range []string{
		TypeSessionMeta, TypeResponseItem, TypeEventMsg, TypeTurnContext, TypeCompacted,
		"message", "reasoning", "function_call", "function_call_output",
		"custom_tool_call", "custom_tool_call_output", "local_shell_call",
		"web_search_call", "image_generation_call", "ghost_snapshot", "compaction",
		"user_message", "agent_message", "agent_reasoning", "token_count",
		"task_started", "task_complete", "turn_aborted", "thread_name_updated",
		"context_compacted", "thread_rolled_back", "undo_completed",
		"user", "assistant", "developer", "system",
		contentInputText, contentInputImage, contentInputAudio, contentOutputText,
	} {
		m[s] = s
	}
	return m
}()

// internString returns body as a string, without allocating for common
// values. Bodies with bytes >= 0x80 go through decodeString so that invalid
// UTF-8 is replaced exactly as encoding/json replaces it.
func internString(body []byte) string {
	if s, ok := knownStrings[string(body)]; ok {
		return s
	}
	for _, c := range body {
		if c >= 0x80 {
			return decodeString(body)
		}
	}
	return string(body)
}

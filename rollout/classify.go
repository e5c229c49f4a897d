package rollout

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"unicode/utf8"
)

// Kind says what a line means to the thread's index.
type Kind int

// The kinds of line the index cares about; everything else is KindOther.
const (
	KindOther       Kind = iota
	KindSessionMeta      // a session_meta line
	KindUserMessage      // a counted user message (a fork point)
	KindRollback         // an event_msg thread_rolled_back marker
	KindNameUpdate       // an event_msg thread_name_updated
)

// String returns the kind's name, for messages and golden files.
func (k Kind) String() string {
	switch k {
	case KindOther:
		return "other"
	case KindSessionMeta:
		return "session_meta"
	case KindUserMessage:
		return "user_message"
	case KindRollback:
		return "rollback"
	case KindNameUpdate:
		return "name_update"
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

// Classified is what Classify learned from one line.
type Classified struct {
	Kind Kind
	// Text is the user message's input_text parts joined with "\n"
	// (KindUserMessage only).
	Text string
	// RollbackTurns is num_turns of a rollback marker (KindRollback only).
	RollbackTurns int
	// Name is the new thread name (KindNameUpdate only).
	Name string
	// ThreadID is the thread_id the rename event names, "" when it names
	// none (KindNameUpdate only). A fork copies its parent's rename events;
	// they name the parent, not the fork.
	ThreadID string
}

// Payload types and the role that Classify looks at.
const (
	payloadMessage          = "message"
	payloadThreadRolledBack = "thread_rolled_back"
	payloadThreadNameUpdate = "thread_name_updated"
	roleUser                = "user"
	contentInputText        = "input_text"
	contentInputImage       = "input_image"
	contentInputAudio       = "input_audio"
	contentOutputText       = "output_text"
)

// contextMarkers are the start and end of the input_text parts that Codex
// injects as context, compared exactly (case-sensitively) after trimming
// space. Codex 0.169's rollback counting was checked against each of them:
// "<SKILL>…</SKILL>" or "# agents.md instructions…" are user text to it. The
// AGENTS.md start has no " for <dir>": Codex also writes it standalone.
var contextMarkers = [...]struct{ start, end string }{
	{"# AGENTS.md instructions", "</INSTRUCTIONS>"},
	{"<environment_context>", "</environment_context>"},
	{"<skill>", "</skill>"},
	{"<user_shell_command>", "</user_shell_command>"},
	{"<turn_aborted>", "</turn_aborted>"},
	{"<subagent_notification>", "</subagent_notification>"},
	{"<recommended_plugins>", "</recommended_plugins>"},
	{"<goal_context>", "</goal_context>"},
	// Any source attribute, or none: Codex 0.169 does not check it.
	{"<codex_internal_context", "</codex_internal_context>"},
}

// legacyWarnings are texts Codex no longer writes but still recognises as
// context in old threads: a required prefix and, when set, suffix of the
// trimmed text.
var legacyWarnings = [...]struct{ prefix, suffix string }{
	{"Warning: The maximum number of unified exec processes you can keep open is", ""},
	{"Warning: apply_patch was requested via exec_command.", "Use the apply_patch tool instead of exec_command."},
	{"Warning: Your account was flagged for potentially high-risk cyber activity", ""},
}

// isContextText reports whether an input_text part is context that Codex
// injects (setup, notices, hook prompts) rather than something the user
// typed, as Codex 0.169 decides it (docs/CODEX.md lists the checks).
func isContextText(text string) bool {
	t := strings.TrimSpace(text)
	for _, m := range contextMarkers {
		if len(t) >= len(m.start)+len(m.end) && strings.HasPrefix(t, m.start) && strings.HasSuffix(t, m.end) {
			return true
		}
	}
	for _, w := range legacyWarnings {
		if strings.HasPrefix(t, w.prefix) && strings.HasSuffix(t, w.suffix) {
			return true
		}
	}
	return isExternalContext(t) || isHookPrompt(t)
}

// isExternalContext matches <external_KEY> … </external_KEY>: KEY is
// everything up to the first '>' (it may be empty or hold spaces) and the
// end tag must repeat it.
func isExternalContext(t string) bool {
	const open = "<external_"
	if !strings.HasPrefix(t, open) {
		return false
	}
	key, _, ok := strings.Cut(t[len(open):], ">")
	if !ok {
		return false
	}
	end := "</external_" + key + ">"
	return len(t) >= len(open)+len(key)+1+len(end) && strings.HasSuffix(t, end)
}

// isHookPrompt matches a hook prompt fragment as Codex 0.169 does: the
// text starts with an XML element named hook_prompt (in any case) that has
// a non-empty hook_run_id attribute and holds only text; what follows that
// element is not looked at (checked against the binary, docs/CODEX.md).
func isHookPrompt(t string) bool {
	if !hasPrefixFold(t, "<hook_prompt") || !hasSuffixFold(t, "</hook_prompt>") {
		return false
	}
	d := xml.NewDecoder(strings.NewReader(t))
	tok, err := d.Token()
	start, ok := tok.(xml.StartElement)
	if err != nil || !ok || !strings.EqualFold(start.Name.Local, "hook_prompt") {
		return false
	}
	runID := ""
	for _, a := range start.Attr {
		if a.Name.Local == "hook_run_id" {
			runID = a.Value
		}
	}
	if strings.TrimSpace(runID) == "" {
		return false
	}
	for {
		tok, err := d.Token()
		if err != nil {
			return false
		}
		switch tok.(type) {
		case xml.EndElement:
			return true
		case xml.StartElement:
			return false
		}
	}
}

func hasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}

func hasSuffixFold(s, suffix string) bool {
	return len(s) >= len(suffix) && strings.EqualFold(s[len(s)-len(suffix):], suffix)
}

// messageLine is the part of a response_item message line Classify decodes.
// Timestamp is raw so that a line without a string timestamp can be told
// apart; Codex cannot decode such a line.
type messageLine struct {
	Timestamp json.RawMessage `json:"timestamp"`
	Payload   struct {
		Role    string          `json:"role"`
		Phase   json.RawMessage `json:"phase"`
		Content contentParts    `json:"content"`
	} `json:"payload"`
}

// contentParts is the content array of a message line, undecoded: its
// parts are decoded one at a time by decodePart, so that a message of
// millions of tiny parts costs memory in proportion to its text (decoded
// as one slice of structs, two million parts of one letter took 800 MB for
// a 60 MB line).
type contentParts []byte

// UnmarshalJSON keeps data, the content member's value, without copying
// it (json.Unmarshal passes a part of its input, the line, which outlives
// the decoding) and without decoding it: its reader walks it, and fails
// where decoding it into a slice of parts would fail (a value that is
// neither an array nor null, an element decodePart refuses). A content
// member that a later one replaces is walked here, as encoding/json would
// have decoded it too, so that one it refuses fails the line.
func (c *contentParts) UnmarshalJSON(data []byte) error {
	if *c != nil {
		if err := eachElement(*c, func(elem []byte) error {
			if _, ok := decodePart(elem); !ok {
				return errPartType
			}
			return nil
		}); err != nil {
			return err
		}
	}
	*c = data
	return nil
}

// errPartType is contentParts' error for a part of the wrong type.
var errPartType = errors.New("rollout: content part of the wrong type")

// decodable reports whether Codex can decode the message line m apart from
// its parts: a string timestamp and a known phase (or none).
func (m *messageLine) decodable() bool {
	if len(m.Timestamp) == 0 || m.Timestamp[0] != '"' {
		return false
	}
	switch string(bytes.TrimSpace(m.Payload.Phase)) {
	case "", "null", `"commentary"`, `"final_answer"`:
		return true
	}
	return false
}

// messagePart is one element of a message line's content, as decodePart
// reads it: what encoding/json would decode into
// struct{ Type, Text string; ImageURL json.RawMessage } (json tags type,
// text, image_url), with the text left undecoded until it is asked for.
type messagePart struct {
	Type        string
	ImageURL    []byte // the raw value, nil when absent
	text        []byte // the last string given as text: its body, or with its quotes when escaped
	textEscaped bool
}

// Text returns the part's text, decoded as encoding/json decodes it.
func (p *messagePart) Text() string {
	switch {
	case p.textEscaped:
		var text string
		if err := json.Unmarshal(p.text, &text); err != nil {
			return ""
		}
		return text
	case !utf8.Valid(p.text):
		return decodeString(p.text)
	}
	return string(p.text)
}

// decodable reports whether Codex can decode the content part p: one of
// the types it knows, an input_image with an image_url.
func (p *messagePart) decodable() bool {
	switch p.Type {
	case contentInputText, contentInputAudio, contentOutputText:
		return true
	case contentInputImage:
		url := bytes.TrimSpace(p.ImageURL)
		return len(url) > 0 && string(url) != "null"
	}
	return false
}

// decodePart decodes elem, one element of a content array that
// encoding/json accepted, as json.Unmarshal would decode it into a
// messagePart: member names matched under case folding, the last of a
// name winning, null leaving a field as it was. It reports false where
// json.Unmarshal would fail (an element or a type or text that is neither
// a string nor null). It allocates nothing but an unusual type's string.
func decodePart(elem []byte) (messagePart, bool) {
	var p messagePart
	switch {
	case string(elem) == "null":
		return p, true
	case len(elem) == 0 || elem[0] != '{':
		return p, false
	}
	ok := true
	s := scanner{buf: elem}
	s.members(func(key []byte, keyEscaped bool) {
		var name string
		if keyEscaped {
			name = decodeString(key)
		}
		switch {
		case foldsTo(key, keyEscaped, name, "type"), foldsTo(key, keyEscaped, name, "text"):
			isType := foldsTo(key, keyEscaped, name, "type")
			switch {
			case s.pos < len(s.buf) && s.buf[s.pos] == '"':
				start := s.pos
				body, escaped := s.str()
				switch {
				case isType && escaped:
					p.Type = decodeString(body)
				case isType:
					p.Type = internString(body)
				case escaped:
					// Decoded from the line itself, not a quoted copy.
					p.text, p.textEscaped = s.buf[start:s.pos], true
				default:
					p.text, p.textEscaped = body, false
				}
			case bytes.HasPrefix(s.buf[s.pos:], []byte("null")):
				s.value()
			default:
				ok = false
				s.value()
			}
		case foldsTo(key, keyEscaped, name, "image_url"):
			start := s.pos
			s.value()
			p.ImageURL = s.buf[start:s.pos]
		default:
			s.value()
		}
	})
	return p, ok && s.err == nil
}

// eventLine is the part of a rollback or rename event Classify decodes.
type eventLine struct {
	Payload struct {
		NumTurns   *uint32 `json:"num_turns"`
		ThreadName *string `json:"thread_name"`
		ThreadID   string  `json:"thread_id"`
	} `json:"payload"`
}

// IsRollbackLine reports whether raw is a thread_rolled_back event (as
// Line.IsRollbackMarker), scanning it only when it holds the event's name:
// a check for every line an append writes.
func IsRollbackLine(raw []byte) bool {
	return bytes.Contains(raw, []byte(payloadThreadRolledBack)) && NewLine(raw, 0, 0).IsRollbackMarker()
}

// IsRollbackMarker reports whether l is a thread_rolled_back event, which
// Classify counts only in a legacy history.
func (l *Line) IsRollbackMarker() bool {
	if !l.scanned {
		l.scan()
	}
	return l.Err == nil && l.Type == TypeEventMsg && l.PayloadType == payloadThreadRolledBack
}

// Classify tells what l means for the user-message count, as Codex 0.169
// counts (checked against the binary; docs/CODEX.md): only response_item
// messages with role "user" that Codex can decode count, unless one of
// their input_text parts is context Codex injects (AGENTS.md instructions,
// environment_context, skill, user_shell_command, turn_aborted,
// subagent_notification, recommended_plugins, goal_context,
// codex_internal_context, external_KEY, three legacy warnings, a hook
// prompt with a hook_run_id), tags compared case-sensitively. A
// <user_instructions> message counts. It decodes the payload only for the
// few line kinds that need it. A malformed line is KindOther, and so is a
// line whose payload does not have the shape Codex would need to read it
// or that is nested deeper than CodexMaxDepth (Codex skips such lines),
// and a rollback marker in a paginated history.
func Classify(l *Line) Classified {
	if !l.scanned {
		l.scan()
	}
	if l.Err != nil {
		return Classified{}
	}
	switch {
	case l.Type == TypeSessionMeta:
		return Classified{Kind: KindSessionMeta}
	case l.depth > CodexMaxDepth:
		return Classified{} // Codex cannot decode it
	case l.Type == TypeResponseItem && l.PayloadType == payloadMessage && l.role == roleUser:
		return classifyUserMessage(l.Raw)
	case l.IsRollbackMarker():
		if _, paginated, _ := LineOrdinal(l.Raw); paginated {
			// Codex rejects a rollback in a paginated history (whose
			// lines carry ordinals) and shows every turn past a marker
			// there: the line counts for nothing (docs/CODEX.md).
			return Classified{}
		}
		var ev eventLine
		if err := json.Unmarshal(l.Raw, &ev); err != nil || ev.Payload.NumTurns == nil {
			return Classified{}
		}
		return Classified{Kind: KindRollback, RollbackTurns: clampTurns(*ev.Payload.NumTurns)}
	case l.Type == TypeEventMsg && l.PayloadType == payloadThreadNameUpdate:
		var ev eventLine
		if err := json.Unmarshal(l.Raw, &ev); err != nil {
			return Classified{}
		}
		c := Classified{Kind: KindNameUpdate, ThreadID: ev.Payload.ThreadID}
		if ev.Payload.ThreadName != nil {
			c.Name = *ev.Payload.ThreadName
		}
		return c
	}
	return Classified{}
}

// clampTurns converts num_turns to an int without overflow on 32-bit
// platforms.
func clampTurns(n uint32) int {
	const maxInt = int(^uint(0) >> 1)
	if uint64(n) > uint64(maxInt) {
		return maxInt
	}
	return int(n)
}

func classifyUserMessage(raw []byte) Classified {
	var msg messageLine
	if err := json.Unmarshal(raw, &msg); err != nil || msg.Payload.Role != roleUser || !msg.decodable() {
		return Classified{}
	}
	// Any part Codex cannot decode, or context it injected, makes the
	// line count for nothing (as a content encoding/json refuses): the
	// walk stops at the first. The texts are joined with newlines; the
	// usual one text is kept as it was decoded.
	var first string
	var joined strings.Builder
	texts := 0
	err := eachElement(msg.Payload.Content, func(elem []byte) error {
		part, ok := decodePart(elem)
		if !ok || !part.decodable() {
			return errNotCounted
		}
		if part.Type != contentInputText {
			return nil
		}
		partText := part.Text()
		if isContextText(partText) {
			return errNotCounted
		}
		switch texts {
		case 0:
			first = partText
		case 1:
			joined.WriteString(first)
			fallthrough
		default:
			joined.WriteByte('\n')
			joined.WriteString(partText)
		}
		texts++
		return nil
	})
	if err != nil {
		return Classified{}
	}
	if texts > 1 {
		first = joined.String()
	}
	return Classified{Kind: KindUserMessage, Text: first}
}

// errNotCounted stops classifyUserMessage's walk of the parts of a message
// that does not count.
var errNotCounted = errors.New("rollout: message not counted")

// UserMessage is a counted user message of a thread.
type UserMessage struct {
	Ordinal int    // 0-based position among counted user messages
	Offset  int64  // byte offset of its line
	Line    int64  // 0-based line number of its line
	Text    string // its text (see Classified.Text)
	// CutOffset is where a fork before this message is cut. Counter sets
	// it to Offset; TurnTracker moves it before the start lines of the
	// message's turn, so the fork keeps no part of that turn.
	CutOffset int64
	// TurnID is the id of the turn holding the message ("" outside any
	// turn, and always from Counter).
	TurnID string
}

// Counter folds classified lines into the list of counted user messages,
// applying rollback markers as Codex does (a rollback of k removes the last
// k counted messages; more than exist removes all). The zero value is ready
// to use.
type Counter struct {
	messages []UserMessage
}

// Observe folds one line into the count and returns its classification.
func (c *Counter) Observe(l *Line) Classified {
	cl := Classify(l)
	switch cl.Kind {
	case KindUserMessage:
		c.messages = append(c.messages, UserMessage{
			Ordinal:   len(c.messages),
			Offset:    l.Offset,
			Line:      l.Number,
			Text:      cl.Text,
			CutOffset: l.Offset,
		})
	case KindRollback:
		keep := max(len(c.messages)-cl.RollbackTurns, 0)
		clear(c.messages[keep:])
		c.messages = c.messages[:keep]
	}
	return cl
}

// Messages returns a copy of the counted user messages so far, in order.
func (c *Counter) Messages() []UserMessage { return slices.Clone(c.messages) }

// CountUserMessages reads a whole rollout stream and returns its counted
// user messages. It is a convenience over Reader and Counter.
func CountUserMessages(r io.Reader) ([]UserMessage, error) {
	rd := NewReader(r, 0, 0)
	var c Counter
	for rd.Next() {
		c.Observe(rd.Line())
	}
	if err := rd.Err(); err != nil {
		return nil, fmt.Errorf("count user messages: %w", err)
	}
	return c.Messages(), nil
}

// CodexMaxDepth is the deepest nesting of a rollout line Codex's JSON
// reader takes (serde_json's recursion limit), the line's own object being
// level 1. Codex skips a line nested deeper as one it cannot decode
// (compat: TestClassifierAgreesWithCodex), so Classify counts it for
// nothing.
const CodexMaxDepth = 127

// TooDeep reports whether l is nested deeper than CodexMaxDepth: Codex
// skips such a line, so it means nothing to a thread (no user message,
// turn start or end, rollback or rename).
func (l *Line) TooDeep() bool {
	if !l.scanned {
		l.scan()
	}
	return l.depth > CodexMaxDepth
}

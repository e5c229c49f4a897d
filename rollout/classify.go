package rollout

import (
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
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
)

// setupMarkers are the start and end of the input_text parts that Codex
// injects as session setup; a user message holding one is not counted.
// Both ends are compared case-insensitively after trimming space.
var setupMarkers = [...]struct{ start, end string }{
	{"# AGENTS.md instructions for ", "</INSTRUCTIONS>"},
	{"<environment_context>", "</environment_context>"},
	{"<skill>", "</skill>"},
	{"<user_shell_command>", "</user_shell_command>"},
	{"<turn_aborted>", "</turn_aborted>"},
	{"<subagent_notification>", "</subagent_notification>"},
	{"<user_instructions>", "</user_instructions>"},
	// A hook prompt's opening tag carries attributes: <hook_prompt ...>.
	{"<hook_prompt", "</hook_prompt>"},
}

// isSetupText reports whether an input_text part is session setup or a hook
// prompt rather than something the user typed.
func isSetupText(text string) bool {
	t := strings.TrimSpace(text)
	for _, m := range setupMarkers {
		if hasPrefixFold(t, m.start) && hasSuffixFold(t, m.end) {
			return true
		}
	}
	return false
}

func hasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}

func hasSuffixFold(s, suffix string) bool {
	return len(s) >= len(suffix) && strings.EqualFold(s[len(s)-len(suffix):], suffix)
}

// messageLine is the part of a response_item message line Classify decodes.
type messageLine struct {
	Payload struct {
		Role    string `json:"role"`
		Content []struct {
			Type string `json:"type"`
			Text string `json:"text"`
		} `json:"content"`
	} `json:"payload"`
}

// eventLine is the part of a rollback or rename event Classify decodes.
type eventLine struct {
	Payload struct {
		NumTurns   *uint32 `json:"num_turns"`
		ThreadName *string `json:"thread_name"`
		ThreadID   string  `json:"thread_id"`
	} `json:"payload"`
}

// Classify tells what l means for the user-message count, following
// ROLLOUT_FORMAT.md exactly: only response_item messages with role "user"
// count, unless one of their input_text parts is session setup (AGENTS.md
// instructions, environment_context, skill, user_shell_command,
// turn_aborted, subagent_notification, user_instructions) or a hook prompt.
// It decodes the payload only for the few line kinds that need it. A
// malformed line is KindOther, and so is a line whose payload does not have
// the shape Codex would need to read it (Codex skips such lines).
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
	case l.Type == TypeResponseItem && l.PayloadType == payloadMessage && l.role == roleUser:
		return classifyUserMessage(l.Raw)
	case l.Type == TypeEventMsg && l.PayloadType == payloadThreadRolledBack:
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
	if err := json.Unmarshal(raw, &msg); err != nil || msg.Payload.Role != roleUser {
		return Classified{}
	}
	var texts []string
	for _, part := range msg.Payload.Content {
		if part.Type != contentInputText {
			continue
		}
		if isSetupText(part.Text) {
			return Classified{}
		}
		texts = append(texts, part.Text)
	}
	return Classified{Kind: KindUserMessage, Text: strings.Join(texts, "\n")}
}

// UserMessage is a counted user message of a thread.
type UserMessage struct {
	Ordinal int    // 0-based position among counted user messages
	Offset  int64  // byte offset of its line
	Line    int64  // 0-based line number of its line
	Text    string // its text (see Classified.Text)
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
			Ordinal: len(c.messages),
			Offset:  l.Offset,
			Line:    l.Number,
			Text:    cl.Text,
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

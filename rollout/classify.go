package rollout

import "io"

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
}

// Classify tells what l means for the user-message count, following
// ROLLOUT_FORMAT.md exactly: only response_item messages with role "user"
// count, unless one of their input_text parts is session setup (AGENTS.md
// instructions, environment_context, skill, user_shell_command,
// turn_aborted, subagent_notification, user_instructions) or a hook prompt.
// It decodes the payload only for the few line kinds that need it. A
// malformed line is KindOther.
func Classify(l *Line) Classified { panic("unimplemented") }

// UserMessage is a counted user message of a thread.
type UserMessage struct {
	Ordinal int    // 0-based position among counted user messages
	Offset  int64  // byte offset of its line
	Line    int64  // 0-based line number of its line
	Text    string // its text (see Classified.Text)
}

// Counter folds classified lines into the list of counted user messages,
// applying rollback markers as Codex does (a rollback of k removes the last
// k counted messages; more than exist removes all).
type Counter struct {
	// fields are the implementation's
}

// Observe folds one line into the count and returns its classification.
func (c *Counter) Observe(l *Line) Classified { panic("unimplemented") }

// Messages returns the counted user messages so far, in order.
func (c *Counter) Messages() []UserMessage { panic("unimplemented") }

// CountUserMessages reads a whole rollout stream and returns its counted
// user messages. It is a convenience over Reader and Counter.
func CountUserMessages(r io.Reader) ([]UserMessage, error) { panic("unimplemented") }

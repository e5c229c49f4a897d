package rollout

import "encoding/json"

// SessionMeta is the payload of a session_meta line, reduced to the fields
// spool indexes. Source is normalised: a string source as is, an object
// source as its compact JSON text, and "vscode" when missing.
type SessionMeta struct {
	ID            string   `json:"id"`
	ForkedFromID  string   `json:"forked_from_id,omitempty"`
	Timestamp     string   `json:"timestamp"`
	Cwd           string   `json:"cwd"`
	Originator    string   `json:"originator"`
	CLIVersion    string   `json:"cli_version"`
	Source        string   `json:"source"`
	ModelProvider string   `json:"model_provider,omitempty"`
	Git           *GitInfo `json:"git,omitempty"`
	// ForkPoint is spool's record of where a fork was cut (nil for threads
	// that are not forks, and for forks that Codex wrote).
	ForkPoint *ForkPoint `json:"spool_fork_point,omitempty"`
}

// GitInfo is the optional git object of a session_meta payload.
type GitInfo struct {
	CommitHash    string `json:"commit_hash,omitempty"`
	Branch        string `json:"branch,omitempty"`
	RepositoryURL string `json:"repository_url,omitempty"`
}

// ForkPoint records where a fork was cut from its parent: before the
// parent's user message UserMessage (-1 for a whole copy) at byte offset
// ParentOffset of the parent's file.
type ForkPoint struct {
	UserMessage  int   `json:"user_message"`
	ParentOffset int64 `json:"parent_offset"`
}

// ParseSessionMeta decodes the payload of a session_meta line (the whole
// line, envelope included). It fails when the line is not a session_meta
// line or its id is not a UUID.
func ParseSessionMeta(line []byte) (SessionMeta, error) { panic("unimplemented") }

// MetaPayload is what NewSessionMetaLine writes: the fields of a new
// thread's first line. Extra holds further payload members to write
// verbatim (e.g. base_instructions); it may be nil.
type MetaPayload struct {
	SessionMeta
	BaseInstructions string
	Extra            map[string]json.RawMessage
}

// NewSessionMetaLine returns the first line of a new thread (newline
// included) with the envelope timestamp ts (TimestampLayout) and the
// payload fields of m, in Codex's member order. base_instructions is
// {"text":...} when m.BaseInstructions is set, else null.
func NewSessionMetaLine(ts string, m MetaPayload) ([]byte, error) { panic("unimplemented") }

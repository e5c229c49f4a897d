// Package api holds the JSON bodies of spool's HTTP API as the OpenAPI
// document (server/openapi.json) describes them: what spoold writes and
// its clients read. The server converts the manager's types into these,
// the Go client converts these into its own; neither imports the other.
// A field without omitempty is a required property of its schema and
// every property is a field (server.TestOpenAPISchemasMatchTypes).
//
// The package imports nothing of spool. Times are Unix milliseconds, 0 for
// none; offsets are byte positions in a thread's history.
package api

import "encoding/json"

// Thread is the Thread schema.
type Thread struct {
	ID               string `json:"id"`
	RolloutPath      string `json:"rollout_path"`
	CreatedAt        int64  `json:"created_at"`
	UpdatedAt        int64  `json:"updated_at"`
	Cwd              string `json:"cwd"`
	Source           string `json:"source"`
	Originator       string `json:"originator"`
	CLIVersion       string `json:"cli_version"`
	ModelProvider    string `json:"model_provider"`
	GitCommit        string `json:"git_commit,omitempty"`
	GitBranch        string `json:"git_branch,omitempty"`
	GitOrigin        string `json:"git_origin,omitempty"`
	Name             string `json:"name"`
	Preview          string `json:"preview"`
	Archived         bool   `json:"archived"`
	ArchivedAt       int64  `json:"archived_at,omitempty"`
	ParentID         string `json:"parent_id,omitempty"`
	ForkUserMessage  int    `json:"fork_user_message"`
	ForkOffset       int64  `json:"fork_offset"`
	LineCount        int64  `json:"line_count"`
	UserMessageCount int    `json:"user_message_count"`
	IndexedSize      int64  `json:"indexed_size"`
	HistorySize      int64  `json:"history_size"`
	HistoryMode      string `json:"history_mode"`
	BaseID           string `json:"base_id,omitempty"`
	BaseSize         int64  `json:"base_size,omitempty"`
}

// Page is the Page schema: a page of threads (GET /v1/threads).
type Page struct {
	Threads    []Thread `json:"threads"`
	NextCursor string   `json:"next_cursor,omitempty"`
}

// Item is the Item schema: one rollout line to append.
type Item struct {
	Timestamp string          `json:"timestamp,omitempty"`
	Type      string          `json:"type"`
	Payload   json.RawMessage `json:"payload"`
}

// AppendResult is the AppendResult schema.
type AppendResult struct {
	Offsets []int64 `json:"offsets"`
	Thread  Thread  `json:"thread"`
}

// UserMessage is the UserMessage schema: a counted user message (GET
// .../turns without view=full).
type UserMessage struct {
	Ordinal   int    `json:"ordinal"`
	Offset    int64  `json:"offset"`
	Line      int64  `json:"line"`
	Preview   string `json:"preview"`
	CutOffset int64  `json:"cut_offset"`
	TurnID    string `json:"turn_id,omitempty"`
}

// Relative is the Relative schema; Thread is absent for a deleted
// relative.
type Relative struct {
	ID     string  `json:"id"`
	Depth  int     `json:"depth"`
	Thread *Thread `json:"thread,omitempty"`
}

// Ancestors is the answer of GET .../ancestors.
type Ancestors struct {
	Ancestors []Relative `json:"ancestors"`
}

// Descendants is the answer of GET .../descendants.
type Descendants struct {
	Descendants []Relative `json:"descendants"`
}

// Spawns is the answer of GET .../spawns.
type Spawns struct {
	SpawnedBy []Relative `json:"spawned_by"`
	Spawns    []Relative `json:"spawns"`
}

// Tree is the answer of GET .../tree. Root holds only an id when the
// tree's root was deleted.
type Tree struct {
	Root    Thread     `json:"root"`
	Members []Relative `json:"members"`
}

// SearchHit is the SearchHit schema.
type SearchHit struct {
	ThreadID string  `json:"thread_id"`
	Ordinal  int     `json:"ordinal"`
	Snippet  string  `json:"snippet"`
	Rank     float64 `json:"rank"`
	Name     string  `json:"name"`
}

// SearchPage is the answer of GET /v1/search.
type SearchPage struct {
	Hits       []SearchHit `json:"hits"`
	NextCursor string      `json:"next_cursor,omitempty"`
}

// Event is the Event schema: one record of GET /v1/events.
type Event struct {
	Seq      uint64  `json:"seq"`
	Type     string  `json:"type"`
	ThreadID string  `json:"thread_id"`
	Size     int64   `json:"size,omitempty"`
	Offsets  []int64 `json:"offsets,omitempty"`
	Thread   *Thread `json:"thread,omitempty"`
}

// StreamEnd is the StreamEnd schema: the last record of a stream the
// server ends.
type StreamEnd struct {
	Type   string `json:"type"` // "stream_end"
	Reason string `json:"reason"`
}

// TurnItem is the TurnItem schema: one decoded line of a turn. Type is
// user_message, agent_message, reasoning, tool_call, tool_output, or the
// payload type of another response_item (web_search_call, ...), which
// carries its payload.
type TurnItem struct {
	Type   string `json:"type"`
	Offset int64  `json:"offset"`
	// Timestamp is the line's envelope timestamp.
	Timestamp string `json:"timestamp,omitempty"`
	// Text of a user or agent message (its text parts joined by newlines),
	// or of a reasoning item's summary.
	Text string `json:"text,omitempty"`
	// Name, CallID and Arguments of a tool call (Arguments is the call's
	// arguments or input text); CallID and Output of a tool output.
	Name      string          `json:"name,omitempty"`
	CallID    string          `json:"call_id,omitempty"`
	Arguments string          `json:"arguments,omitempty"`
	Output    json.RawMessage `json:"output,omitempty"`
	// Payload is the line's payload, for item types not decoded above.
	Payload json.RawMessage `json:"payload,omitempty"`
}

// FullTurn is the FullTurn schema: one turn with its items, the lines from
// user message Ordinal (at Offset) up to the next user message (End) or
// the thread's end.
type FullTurn struct {
	Ordinal int        `json:"ordinal"`
	Offset  int64      `json:"offset"`
	End     int64      `json:"end"`
	Items   []TurnItem `json:"items"`
}

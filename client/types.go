package client

import (
	"encoding/json"
	"time"

	"github.com/spoolhq/spool/api"
)

// Thread is a conversation thread as the server's index knows it.
type Thread struct {
	ID string
	// RolloutPath is the thread's file, slash-separated, relative to the
	// server's root.
	RolloutPath   string
	CreatedAt     time.Time
	UpdatedAt     time.Time // the newest timestamp in the file
	Cwd           string
	Source        string // "cli", "vscode", ... or a JSON object text
	Originator    string
	CLIVersion    string
	ModelProvider string
	Git           GitInfo
	Name          string
	Preview       string // the first counted user message, shortened
	Archived      bool
	ArchivedAt    time.Time // zero when not archived
	// ParentID is the thread this one was forked from, "" for none. It
	// stays set after the parent is deleted.
	ParentID string
	// ForkUserMessage is the parent's user message the fork was cut
	// before; -1 for a fork of the whole thread or a thread that is not a
	// fork.
	ForkUserMessage int
	// ForkOffset is the cut's position in the parent's history, -1 when
	// not a fork.
	ForkOffset       int64
	LineCount        int64
	UserMessageCount int
	// IndexedSize is the end of the last complete line indexed in the
	// thread's own file.
	IndexedSize int64
	// HistoryMode is "paginated" (Codex 0.169's default) or "legacy".
	HistoryMode string
	// BaseID is the thread whose history this one's continues (a reference
	// fork's base), "" for none; BaseSize is how many bytes of history come
	// before the thread's own file.
	BaseID   string
	BaseSize int64
}

// HistorySize is the size of the history GET items streams: the base's
// part and the thread's own indexed file (the API's history_size), and
// what AppendOptions.ExpectedSize names.
func (t Thread) HistorySize() int64 { return t.BaseSize + t.IndexedSize }

// GitInfo is the git state recorded when a thread started.
type GitInfo struct {
	CommitHash    string `json:"commit_hash,omitempty"`
	Branch        string `json:"branch,omitempty"`
	RepositoryURL string `json:"repository_url,omitempty"`
}

func millis(ms int64) time.Time {
	if ms == 0 {
		return time.Time{}
	}
	return time.UnixMilli(ms).UTC()
}

func toMillis(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

// MarshalJSON writes t in the API's shape (api.Thread).
func (t Thread) MarshalJSON() ([]byte, error) {
	return json.Marshal(api.Thread{
		ID: t.ID, RolloutPath: t.RolloutPath,
		CreatedAt: toMillis(t.CreatedAt), UpdatedAt: toMillis(t.UpdatedAt),
		Cwd: t.Cwd, Source: t.Source, Originator: t.Originator, CLIVersion: t.CLIVersion, ModelProvider: t.ModelProvider,
		GitCommit: t.Git.CommitHash, GitBranch: t.Git.Branch, GitOrigin: t.Git.RepositoryURL,
		Name: t.Name, Preview: t.Preview, Archived: t.Archived, ArchivedAt: toMillis(t.ArchivedAt),
		ParentID: t.ParentID, ForkUserMessage: t.ForkUserMessage, ForkOffset: t.ForkOffset,
		LineCount: t.LineCount, UserMessageCount: t.UserMessageCount, IndexedSize: t.IndexedSize,
		HistorySize: t.HistorySize(), HistoryMode: t.HistoryMode, BaseID: t.BaseID, BaseSize: t.BaseSize,
	})
}

// UnmarshalJSON reads a Thread in the API's shape (api.Thread).
func (t *Thread) UnmarshalJSON(data []byte) error {
	w := api.Thread{ForkUserMessage: -1, ForkOffset: -1}
	if err := json.Unmarshal(data, &w); err != nil {
		return err
	}
	*t = Thread{
		ID: w.ID, RolloutPath: w.RolloutPath,
		CreatedAt: millis(w.CreatedAt), UpdatedAt: millis(w.UpdatedAt),
		Cwd: w.Cwd, Source: w.Source, Originator: w.Originator, CLIVersion: w.CLIVersion, ModelProvider: w.ModelProvider,
		Git:  GitInfo{CommitHash: w.GitCommit, Branch: w.GitBranch, RepositoryURL: w.GitOrigin},
		Name: w.Name, Preview: w.Preview, Archived: w.Archived, ArchivedAt: millis(w.ArchivedAt),
		ParentID: w.ParentID, ForkUserMessage: w.ForkUserMessage, ForkOffset: w.ForkOffset,
		LineCount: w.LineCount, UserMessageCount: w.UserMessageCount, IndexedSize: w.IndexedSize,
		HistoryMode: w.HistoryMode, BaseID: w.BaseID, BaseSize: w.BaseSize,
	}
	return nil
}

// Page is one page of a listing; NextCursor is "" on the last page.
type Page struct {
	Threads    []Thread `json:"threads"`
	NextCursor string   `json:"next_cursor,omitempty"`
}

// ArchivedFilter selects threads by their archive state.
type ArchivedFilter string

// The archive filters. The zero value leaves the choice to the server:
// live threads for listings, all threads for searches.
const (
	LiveOnly     ArchivedFilter = "false"
	ArchivedOnly ArchivedFilter = "true"
	AllThreads   ArchivedFilter = "all"
)

// SpawnedFilter selects threads by whether a thread spawned them (Codex's
// sub-agents).
type SpawnedFilter string

// The spawn filters. The zero value lists both, as the server does.
const (
	NotSpawned  SpawnedFilter = "false" // what Codex's thread/list shows by default
	SpawnedOnly SpawnedFilter = "true"
	AnySpawn    SpawnedFilter = "all"
)

// SortField is the time a listing is ordered by.
type SortField string

// The sort fields; the zero value is SortUpdated.
const (
	SortUpdated SortField = "updated"
	SortCreated SortField = "created"
)

// ListOptions select and order threads. Zero fields take the server's
// defaults (50 live threads, most recently updated first).
type ListOptions struct {
	Limit         int // 1..1000 threads per page
	Cursor        string
	Sort          SortField
	Ascending     bool
	Archived      ArchivedFilter
	Spawned       SpawnedFilter
	Cwd           string
	Source        string
	ModelProvider string
	ParentID      string // direct forks of this thread
	Text          string // case-insensitive substring of the name or preview
}

// CreateOptions describe a new thread; every field is optional.
type CreateOptions struct {
	Cwd        string `json:"cwd,omitempty"`
	Source     string `json:"source,omitempty"` // default "vscode" on the server
	Originator string `json:"originator,omitempty"`
	CLIVersion string `json:"cli_version,omitempty"`
	// ModelProvider and BaseInstructions go to the session_meta line;
	// the server's ModelProvider defaults to "openai", as Codex's does.
	ModelProvider    string   `json:"model_provider,omitempty"`
	BaseInstructions string   `json:"base_instructions,omitempty"`
	Name             string   `json:"name,omitempty"`
	Git              *GitInfo `json:"git,omitempty"`
	// HistoryMode is "paginated" (the server's default, as Codex 0.169
	// starts threads) or "legacy".
	HistoryMode string `json:"history_mode,omitempty"`
	// IdempotencyKey, when not empty, names the start (the Idempotency-Key
	// header): a retry with the same key and options creates nothing and
	// returns the thread the first made, as it is now; other options with
	// the key fail with ErrIdempotencyKeyReused. The server keeps keys in
	// its index for a day, with their thread.
	IdempotencyKey string `json:"-"`
}

// Item is one rollout line to append: a type ("response_item",
// "event_msg", ...) and a JSON object payload. An empty Timestamp is
// stamped by the server.
type Item = api.Item

// AppendResult is where appended lines landed: the position of each line
// in the thread's history (a reference fork's history continues its
// base's bytes, so this is not an offset in its own file), and the thread
// after the append.
type AppendResult struct {
	Offsets []int64 `json:"offsets"`
	Thread  Thread  `json:"thread"`
}

// Line is one line of a thread's history as streamed by the server.
type Line struct {
	// Offset is where the line starts, counted from the start of the
	// stream. Add the position the stream started at (0 for a whole
	// history, Turn.Offset for one starting at a user message) to get
	// its position in the thread's history.
	Offset int64
	// Timestamp, Type and Payload are the line's envelope; they are
	// empty for a line that is not a JSON object (which the server
	// streams verbatim).
	Timestamp string
	Type      string
	Payload   json.RawMessage
	// Raw is the line as stored, without its newline.
	Raw []byte
}

// Turn is a counted user message of a thread (the API's UserMessage):
// where its line starts, as a position in the thread's history (Offset)
// and as a line number counted from 0 with blank lines (Line), and a
// preview of its text. Turn k runs from user message k to user message
// k+1.
type Turn struct {
	Ordinal int    `json:"ordinal"`
	Offset  int64  `json:"offset"`
	Line    int64  `json:"line"`
	Preview string `json:"preview"`
	// CutOffset is where a fork before this message cuts the history:
	// before the opening lines of the Codex turn it opens; 0 means at
	// Offset.
	CutOffset int64 `json:"cut_offset"`
	// TurnID is the Codex turn that holds the message, the id
	// ForkOptions.BeforeTurnID, ForkOptions.LastTurnID and
	// RevertOptions.BeforeTurnID take; "" when unknown.
	TurnID string `json:"turn_id,omitempty"`
}

// TurnsPage is a page of a thread's counted user messages; NextCursor is
// empty on the last.
type TurnsPage struct {
	Turns      []Turn `json:"turns"`
	NextCursor string `json:"next_cursor,omitempty"`
}

// Spawns is a thread's sub-agent lineage. SpawnedBy is the chain of
// threads that spawned it, nearest first; a spawner no longer indexed has
// a nil Thread, and the chain stops there. Spawns is every sub-agent it
// or its sub-agents spawned, by depth then id.
type Spawns struct {
	SpawnedBy []Relative `json:"spawned_by"`
	Spawns    []Relative `json:"spawns"`
}

// ForkOptions describe a fork; the zero value forks the whole thread (by
// reference or by copy, as Mode says).
type ForkOptions struct {
	// BeforeUserMessage, when set, keeps every line strictly before the
	// parent's counted user message n (0-based).
	BeforeUserMessage *int `json:"before_user_message,omitempty"`
	// BeforeTurnID forks before the Codex turn with that id instead.
	BeforeTurnID string `json:"before_turn_id,omitempty"`
	// LastTurnID keeps everything through the end of the Codex turn with
	// that id (Codex's lastTurnId); a turn in progress fails with
	// ErrTurnInProgress.
	LastTurnID string `json:"last_turn_id,omitempty"`
	Name       string `json:"name,omitempty"`
	Cwd        string `json:"cwd,omitempty"`
	// Source is the fork's source, the client that forks (cli, vscode,
	// exec, mcp, ...), as Codex's thread/fork gives a fork its own
	// process's; without one the fork keeps its parent's.
	Source string `json:"source,omitempty"`
	// Mode is "reference" (O(1): the fork points into its parent's
	// history; a paginated parent's default), "copy" (a legacy parent's
	// default) or "".
	Mode string `json:"mode,omitempty"`
	// IdempotencyKey names the fork as CreateOptions.IdempotencyKey names
	// a start; the keys of forks are their parent's.
	IdempotencyKey string `json:"-"`
}

// Relative is a thread related by forking, at Depth forks away. Thread is
// nil for a relative that was deleted.
type Relative struct {
	ID     string  `json:"id"`
	Depth  int     `json:"depth"`
	Thread *Thread `json:"thread,omitempty"`
}

// Tree is a fork tree: its oldest ancestor still in the index and all of
// that ancestor's descendants. Root holds only an ID when it was deleted.
type Tree struct {
	Root    Thread     `json:"root"`
	Members []Relative `json:"members"`
}

// SearchOptions select full-text search results.
type SearchOptions struct {
	// Query is in the query language of docs/API.md: words (all must
	// match), "phrases", prefix*, OR, NOT or -word, parentheses.
	Query    string
	Limit    int // 1..200, default 20
	Archived ArchivedFilter
	Cwd      string // exact match
	Source   string // exact match
	ThreadID string // only hits in this thread
	Cursor   string // NextCursor of the previous page
}

// SearchPage is a page of search hits, best first; NextCursor is empty
// on the last.
type SearchPage = api.SearchPage

// SearchHit is a user message that matched a search: its thread, its
// ordinal there, a snippet of its text, its bm25 rank (lower is better)
// and the thread's name.
type SearchHit = api.SearchHit

// TurnSpan is where a Codex turn lies in its thread's history (positions
// in the history), from the Turn-* headers of /turns/by-id/{turn_id}.
type TurnSpan struct {
	Offset      int64  // position of its first line
	End         int64  // position just past its last line
	Status      string // completed, aborted or in_progress
	UserMessage int    // ordinal of its first counted user message
}

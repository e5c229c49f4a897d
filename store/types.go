// Package store is spool's SQLite index of threads, their counted user
// messages, fork lineage and full-text search. It is a cache of the rollout
// files: everything in it can be rebuilt from them. The package knows SQL
// and nothing of rollout files, the manager or HTTP.
package store

import "errors"

// Sentinel errors returned (wrapped) by Store methods.
var (
	// ErrNotFound reports an unknown thread id or user-message ordinal.
	ErrNotFound = errors.New("not found")
	// ErrExists reports an insert of a thread id or rollout path already indexed.
	ErrExists = errors.New("already exists")
	// ErrBadCursor reports a pagination cursor that does not decode or was
	// made for another sort order.
	ErrBadCursor = errors.New("invalid cursor")
	// ErrSchemaTooNew reports an index written by a newer spool (its schema
	// version is above the newest migration this binary knows).
	ErrSchemaTooNew = errors.New("index schema is newer than this binary")
	// ErrCorrupt reports an index file that is not a usable SQLite database.
	ErrCorrupt = errors.New("index file is corrupt")
	// ErrUnmigratable reports an index this binary cannot bring up to
	// date: it lacks migrations older than its version (a build made
	// between two of them). Nothing in it is lost by a rebuild.
	ErrUnmigratable = errors.New("index cannot be migrated")
	// ErrNotIndex reports an index path that names another program's
	// SQLite database (tables, none of them spool's schema record), such
	// as a Codex home's state_5.sqlite: spool neither migrates into it nor
	// moves it aside.
	ErrNotIndex = errors.New("not a spool index")
	// ErrWriteLocked reports a write that waited out the busy timeout for the
	// index's write lock, held by another connection: a write transaction
	// left open in the sqlite3 shell, say. Nothing was written; retry.
	ErrWriteLocked = errors.New("index is locked by another connection")
)

// Thread is one row of the threads table: everything listing and the API
// need, read from the index alone. Times are Unix milliseconds.
type Thread struct {
	ID            string `db:"id" json:"id"`
	RolloutPath   string `db:"rollout_path" json:"rollout_path"` // slash-separated, relative to the root
	CreatedAt     int64  `db:"created_at" json:"created_at"`
	UpdatedAt     int64  `db:"updated_at" json:"updated_at"`
	Cwd           string `db:"cwd" json:"cwd"`
	Source        string `db:"source" json:"source"`
	Originator    string `db:"originator" json:"originator"`
	CLIVersion    string `db:"cli_version" json:"cli_version"`
	ModelProvider string `db:"model_provider" json:"model_provider"`
	GitCommit     string `db:"git_commit" json:"git_commit,omitempty"`
	GitBranch     string `db:"git_branch" json:"git_branch,omitempty"`
	GitOrigin     string `db:"git_origin" json:"git_origin,omitempty"`
	Name          string `db:"name" json:"name"`
	Preview       string `db:"preview" json:"preview"` // the thread's preview as Codex shows it (rollout.Preview), truncated
	Archived      bool   `db:"archived" json:"archived"`
	ArchivedAt    int64  `db:"archived_at" json:"archived_at,omitempty"` // 0 when not archived
	// ParentID is the thread this one was forked from ("" for none). It
	// stays set when the parent is deleted.
	ParentID string `db:"parent_id" json:"parent_id,omitempty"`
	// ForkUserMessage is the parent's user-message ordinal the fork was cut
	// before, -1 for a whole copy or when unknown.
	ForkUserMessage int `db:"fork_user_message" json:"fork_user_message"`
	// ForkOffset is the byte offset of the cut in the parent's file, -1
	// when unknown or not a fork.
	ForkOffset       int64 `db:"fork_offset" json:"fork_offset"`
	LineCount        int64 `db:"line_count" json:"line_count"`                 // lines up to IndexedSize, blank ones included
	UserMessageCount int   `db:"user_message_count" json:"user_message_count"` // counted user messages after rollbacks
	IndexedSize      int64 `db:"indexed_size" json:"indexed_size"`             // end of the last complete line indexed
	FileSize         int64 `db:"file_size" json:"-"`                           // file identity at last index: size
	FileMtime        int64 `db:"file_mtime" json:"-"`                          // and modification time (Unix ns)
	// HistoryMode is "" or "legacy" for a legacy thread, or "paginated"
	// (Codex 0.169's default).
	HistoryMode string `db:"history_mode" json:"history_mode"`
	// BaseID is the thread whose history prefixes this one's (a reference
	// fork's history_base), "" for none; BaseSize is how many bytes of
	// history come before the thread's own file. User-message offsets are
	// positions in the whole history; IndexedSize, LineCount and FileSize
	// are positions in the own file.
	BaseID   string `db:"base_id" json:"base_id,omitempty"`
	BaseSize int64  `db:"base_size" json:"base_size,omitempty"`
	// NextOrdinal is the ordinal of the next line of a paginated thread's
	// own file.
	NextOrdinal int64 `db:"next_ordinal" json:"-"`
	// TurnOffset and TurnID describe the turn open at the end of the
	// history (rollout.OpenTurn, canonical): TurnOffset > 0 is where the
	// open turn starts while it has no counted user message yet (a fork
	// before its first message is cut there), -1 once it has one, 0 for
	// no open turn (a history starts with its meta line, never with a
	// turn), with TurnID "" then.
	TurnOffset int64  `db:"turn_offset" json:"-"`
	TurnID     string `db:"turn_id" json:"-"`
	// InheritedMessages is how many of the thread's first user messages
	// are its parent's. A reference fork (BaseID set) holds no rows for
	// them: they resolve through its base, so Messages of its Record start
	// at this ordinal. A copy fork holds copied rows, whose search text is
	// kept only while its parent is not indexed.
	InheritedMessages int `db:"inherited_messages" json:"-"`
	// PreviewOffset is the position in the thread's history of the line
	// that gave Preview (the first that gives one: rollout.Preview); it
	// means nothing while Preview is "". A fork keeps its parent's preview
	// when its cut is after that line.
	PreviewOffset int64 `db:"preview_offset" json:"-"`
	// TailSum fingerprints the end of the indexed part of the thread's
	// file, the bytes of its last indexed line up to IndexedSize (at most
	// TailBytes of them), as TailSumOf makes it; 0 when unknown. A
	// catch-up that finds other bytes there knows the file was rewritten,
	// not appended to.
	TailSum int64 `db:"tail_sum" json:"-"`
	// NewestAt is the newest envelope timestamp of the thread's history,
	// unbounded (UpdatedAt is it bounded by the file's mtime, migration
	// 00005): what the next update's newest is taken from. Read from the
	// index; a row built elsewhere leaves it 0 (then UpdatedAt stands in).
	NewestAt int64 `db:"newest_at" json:"-"`
}

// FirstOwnMessage is the ordinal of the first user message the thread's
// index rows hold: InheritedMessages for a reference fork, else 0.
func (t Thread) FirstOwnMessage() int {
	if t.BaseID != "" {
		return t.InheritedMessages
	}
	return 0
}

// HistorySize is the size of the thread's indexed history: its base and
// the indexed part of its own file.
func (t Thread) HistorySize() int64 { return t.BaseSize + t.IndexedSize }

// UserMessage is one row of user_messages: a counted user message of a
// thread and where its line starts.
type UserMessage struct {
	ThreadID string `db:"thread_id" json:"-"`
	Ordinal  int    `db:"ordinal" json:"ordinal"`
	Offset   int64  `db:"byte_offset" json:"offset"`
	Line     int64  `db:"line_number" json:"line"`
	Preview  string `db:"preview" json:"preview"`
	// CutOffset is where a fork before this message is cut: before its
	// turn's start lines when it is the turn's first message; 0 means at
	// Offset (rows indexed before it was recorded hold 0). See Cut.
	CutOffset int64  `db:"cut_offset" json:"cut_offset"`
	TurnID    string `db:"turn_id" json:"turn_id,omitempty"`
	// Text is the full message text, indexed for search. It is written by
	// inserts and not read back by UserMessages.
	Text string `db:"-" json:"-"`
}

// Cut returns where a fork before m is cut.
func (m UserMessage) Cut() int64 {
	if m.CutOffset <= 0 {
		return m.Offset
	}
	return m.CutOffset
}

// Record is a thread with its user messages and ancestry, as one unit to
// insert or replace.
type Record struct {
	Thread Thread
	// Messages are the user messages the thread's rows hold, ordinals from
	// Thread.FirstOwnMessage() on.
	Messages []UserMessage
	// Ancestors are the thread's fork ancestors, nearest first (parent at
	// depth 1). They may include ids not in the index (deleted threads).
	Ancestors []string
	// SpawnParentID is the thread that spawned this one as a sub-agent
	// ("" for none): a row of thread_spawns. See Store.Spawns.
	SpawnParentID string
	// Segments are the thread's other files when it spans several (a
	// reverted thread; Thread is its newest file), in order. A record
	// replaces the thread's segments with these.
	Segments []Segment
	// Rewritten says the thread's history was laid out anew (a purge made
	// it self-contained): its lines moved, so Replace forgets its
	// idempotency keys, whose answers are positions from before.
	Rewritten bool
	// RolledBack are the user messages the thread's rollbacks dropped
	// (see Store.MessagesAt); a record replaces the thread's with these.
	RolledBack []RolledBack
	// Key, when not nil, is the idempotency key of the start or fork that
	// creates the thread: Insert and InsertFork record it with the row
	// (its ThreadID is set to the thread's), or fail with ErrKeyTaken.
	Key *CreationKey
	// StatedKey is the idempotency key the thread's file states it was
	// created with (rollout.CreationKey), nil for none: Insert, InsertFork
	// and Replace record it, unless a key of its scope and name that
	// expires no earlier is recorded already. Its ThreadID is ignored.
	StatedKey *CreationKey
}

// RolledBack is a user message that a rollback dropped, and the history
// position of the rollback's line (At): a fork cut at or before At, or a
// revert to such a position, still holds it.
type RolledBack struct {
	UserMessage
	At int64
}

// Drop is a rollback that dropped indexed user messages: those at
// ordinals Keep and up that were counted before it, at history position
// At.
type Drop struct {
	Keep int
	At   int64
}

// Relative is a thread related by forking, with its distance. ID may name a
// thread no longer in the index (Thread is then nil).
type Relative struct {
	ID     string  `json:"id"`
	Depth  int     `json:"depth"`
	Thread *Thread `json:"thread,omitempty"`
}

// Progress is an update to a thread after lines were appended to its file:
// the new messages, rollbacks, name and sizes, applied in one transaction.
type Progress struct {
	ID string
	// KeepUserMessages is how many of the existing counted user messages
	// remain after rollbacks in the new lines (the thread's old count when
	// there were none).
	KeepUserMessages int
	// NewMessages follow the kept ones; their ordinals start at
	// KeepUserMessages.
	NewMessages []UserMessage
	// Name, when non-nil, is the new thread name.
	Name *string
	// Preview, when non-nil, is the preview the lines gave a thread that
	// had none, from the line at history position PreviewOffset.
	Preview       *string
	PreviewOffset int64
	LineCount     int64
	IndexedSize   int64
	TailSum       int64 // Thread.TailSum at IndexedSize
	FileSize      int64
	FileMtime     int64
	UpdatedAt     int64
	// NextOrdinal, TurnOffset and TurnID are the thread's state after the
	// lines (see Thread).
	NextOrdinal int64
	TurnOffset  int64
	TurnID      string
	// Idempotency, when non-nil, is the idempotency key of the append
	// that wrote the lines, recorded in the same transaction (see
	// Store.IdempotencyKey); its ThreadID is ID.
	Idempotency *IdempotencyKey
	// Drops are the rollbacks among the lines that dropped messages
	// counted before them, in order (their Keep decreasing); RolledBack
	// are the messages of the lines that a later one of them dropped.
	// The store keeps both (see Store.MessagesAt).
	Drops      []Drop
	RolledBack []RolledBack
}

// SortField is a column threads can be listed by.
type SortField string

// Sort fields for ListOptions.
const (
	SortUpdated SortField = "updated_at"
	SortCreated SortField = "created_at"
)

// ListOptions select and order a page of threads. Zero values mean no
// filter; Limit defaults to 50 and is capped at 1000.
type ListOptions struct {
	Limit     int
	Cursor    string    // opaque, from a previous Page.NextCursor
	SortBy    SortField // default SortUpdated
	Ascending bool      // default newest first
	// Archived selects archived (true) or live (false) threads; nil
	// lists both. The HTTP API and its client list live threads unless
	// told otherwise, as Codex's thread/list does.
	Archived      *bool
	Cwd           string
	Source        string
	ModelProvider string
	ParentID      string
	// Text filters by a case-insensitive substring of the name or preview.
	Text string
	// Spawned selects spawned sub-agents (true), the threads no thread
	// spawned (false: what Codex's thread/list shows by default), or both
	// (nil).
	Spawned *bool
}

// Page is one page of threads and the cursor of the next ("" at the end).
type Page struct {
	Threads    []Thread `json:"threads"`
	NextCursor string   `json:"next_cursor,omitempty"`
}

// SearchOptions select full-text search results.
type SearchOptions struct {
	Query    string // the query language of ParseQuery
	Limit    int    // default 20, capped at 200
	Archived *bool
	Cwd      string // exact match
	Source   string // exact match
	ThreadID string // only hits in this thread
	Cursor   string // NextCursor of the previous page
}

// SearchHit is a user message that matched a search, best first.
type SearchHit struct {
	ThreadID string  `json:"thread_id"`
	Ordinal  int     `json:"ordinal"`
	Snippet  string  `json:"snippet"`
	Rank     float64 `json:"rank"` // bm25; lower is better
	Name     string  `json:"name"` // the thread's name
}

// SearchPage is one page of search hits; NextCursor is empty on the last.
type SearchPage struct {
	Hits       []SearchHit `json:"hits"`
	NextCursor string      `json:"next_cursor,omitempty"`
}

// FileState is the file identity the index holds for a thread, used to find
// files that changed since they were indexed.
type FileState struct {
	ID          string `db:"id"`
	RolloutPath string `db:"rollout_path"`
	IndexedSize int64  `db:"indexed_size"`
	LineCount   int64  `db:"line_count"`
	FileSize    int64  `db:"file_size"`
	FileMtime   int64  `db:"file_mtime"`
	TailSum     int64  `db:"tail_sum"` // see Thread.TailSum
}

// Stats are counts over the whole index.
type Stats struct {
	Threads      int64 `json:"threads"`
	Archived     int64 `json:"archived"`
	UserMessages int64 `json:"user_messages"`
	IndexBytes   int64 `json:"index_bytes"` // size of the database file
}

package manager

import (
	"time"

	"github.com/spoolhq/spool/rollout"
	"github.com/spoolhq/spool/store"
)

// Thread is a conversation thread as the manager knows it: the facts of
// its rollout file that listing, forking and reading need, as of the last
// line indexed. It is a value: a later change to the thread does not
// change a Thread already returned.
type Thread struct {
	ID string
	// RolloutPath is the thread's file, slash-separated, relative to the
	// root.
	RolloutPath string
	CreatedAt   time.Time
	// UpdatedAt is the newest timestamp of the thread's lines, never later
	// than a minute past the file's modification time.
	UpdatedAt     time.Time
	Cwd           string
	Source        string // "cli", "vscode", "exec", "mcp", ... or a JSON object text
	Originator    string
	CLIVersion    string
	ModelProvider string
	Git           rollout.GitInfo // zero when the thread recorded none
	Name          string
	Preview       string // the first counted user message, shortened
	Archived      bool
	ArchivedAt    time.Time // zero when not archived
	// ParentID is the thread this one was forked from, "" for none. It
	// stays set after the parent is deleted.
	ParentID string
	// ForkUserMessage is the parent's user-message ordinal the fork was cut
	// before, -1 for a whole copy or when unknown.
	ForkUserMessage int
	// ForkOffset is the cut's position in the parent's history (its
	// bases' bytes included), -1 when unknown or not a fork.
	ForkOffset       int64
	LineCount        int64 // lines of the own file up to IndexedSize, blank ones included
	UserMessageCount int   // counted user messages, after rollbacks
	// IndexedSize is the end of the last complete line indexed in the
	// thread's own file: the offset in it the next append starts at.
	// HistorySize, which adds the base's part, is the position in the
	// history, and the size AppendOptions.ExpectedSize names.
	IndexedSize int64
	// HistoryMode is "paginated" (Codex 0.169's default) or "legacy" (a
	// 2025-style rollout, whose meta may name no mode).
	HistoryMode string
	// BaseID is the thread whose history this one's continues (a
	// reference fork's base), "" for none; BaseSize is how many bytes of
	// history come before the thread's own file.
	BaseID   string
	BaseSize int64
}

// HistorySize is the size of the thread's history: its base's part and
// the indexed part of its own file. Offsets of user messages and of
// appended lines are positions in it.
func (t Thread) HistorySize() int64 { return t.BaseSize + t.IndexedSize }

// UserMessage is a counted user message of a thread: where its line starts
// in the history (Offset, and Line, counted from 0 with blank lines) and a
// preview of its text. Turn k of a thread runs from user message k to user
// message k+1.
type UserMessage struct {
	Ordinal int
	Offset  int64
	Line    int64
	Preview string
	// CutOffset is where a fork before this message is cut: before its
	// turn's start lines when it opens its turn; 0 means at Offset. Cut
	// resolves it.
	CutOffset int64
	TurnID    string // the Codex turn holding it, "" when unknown
}

// Cut returns where a fork before m is cut.
func (m UserMessage) Cut() int64 {
	if m.CutOffset <= 0 {
		return m.Offset
	}
	return m.CutOffset
}

// Relative is a thread related by forking or spawning, Depth steps away.
// Thread is nil for a relative no longer in the index (deleted).
type Relative struct {
	ID     string
	Depth  int
	Thread *Thread
}

// Page is one page of a listing and the cursor of the next ("" on the
// last page).
type Page struct {
	Threads    []Thread
	NextCursor string
}

// SearchHit is a user message that matched a search.
type SearchHit struct {
	ThreadID string
	Ordinal  int     // the user message's ordinal in its thread
	Snippet  string  // its text around the match
	Rank     float64 // bm25; lower is better
	Name     string  // the thread's name
}

// SearchPage is one page of search hits, best first; NextCursor is "" on
// the last page.
type SearchPage struct {
	Hits       []SearchHit
	NextCursor string
}

// IndexStats are counts over the whole index.
type IndexStats struct {
	Threads      int64
	Archived     int64
	UserMessages int64
	IndexBytes   int64 // size of the index file
}

// ListOptions select and order a page of threads (see store.ListOptions).
type ListOptions = store.ListOptions

// SearchOptions select a page of search hits (see store.SearchOptions).
type SearchOptions = store.SearchOptions

// SortField is a time threads can be listed by.
type SortField = store.SortField

// The sort fields of ListOptions.SortBy.
const (
	SortUpdated = store.SortUpdated
	SortCreated = store.SortCreated
)

// millis returns the time of Unix milliseconds ms, the zero Time for 0.
func millis(ms int64) time.Time {
	if ms == 0 {
		return time.Time{}
	}
	return time.UnixMilli(ms).UTC()
}

// threadOf returns the manager's view of an index row.
func threadOf(row store.Thread) Thread {
	return Thread{
		ID: row.ID, RolloutPath: row.RolloutPath,
		CreatedAt: millis(row.CreatedAt), UpdatedAt: millis(row.UpdatedAt),
		Cwd: row.Cwd, Source: row.Source, Originator: row.Originator, CLIVersion: row.CLIVersion, ModelProvider: row.ModelProvider,
		Git:  rollout.GitInfo{CommitHash: row.GitCommit, Branch: row.GitBranch, RepositoryURL: row.GitOrigin},
		Name: row.Name, Preview: row.Preview, Archived: row.Archived, ArchivedAt: millis(row.ArchivedAt),
		ParentID: row.ParentID, ForkUserMessage: row.ForkUserMessage, ForkOffset: row.ForkOffset,
		LineCount: row.LineCount, UserMessageCount: row.UserMessageCount, IndexedSize: row.IndexedSize,
		HistoryMode: historyMode(row.HistoryMode), BaseID: row.BaseID, BaseSize: row.BaseSize,
	}
}

// historyMode is the mode a row records as callers see it: "" (the index
// keeps what the meta says, and a 2025-style meta says nothing) is legacy.
func historyMode(recorded string) string {
	if recorded == "" {
		return string(rollout.HistoryLegacy)
	}
	return recorded
}

// threadResult converts the row of a call that returns a thread.
func threadResult(row store.Thread, err error) (Thread, error) {
	if err != nil {
		return Thread{}, err
	}
	return threadOf(row), nil
}

func userMessagesOf(rows []store.UserMessage) []UserMessage {
	if rows == nil {
		return nil
	}
	msgs := make([]UserMessage, len(rows))
	for i, r := range rows {
		msgs[i] = UserMessage{Ordinal: r.Ordinal, Offset: r.Offset, Line: r.Line, Preview: r.Preview, CutOffset: r.CutOffset, TurnID: r.TurnID}
	}
	return msgs
}

func relativesOf(rows []store.Relative) []Relative {
	if rows == nil {
		return nil
	}
	rels := make([]Relative, len(rows))
	for i, r := range rows {
		rels[i] = Relative{ID: r.ID, Depth: r.Depth}
		if r.Thread != nil {
			t := threadOf(*r.Thread)
			rels[i].Thread = &t
		}
	}
	return rels
}

func threadsOf(rows []store.Thread) []Thread {
	if rows == nil {
		return nil
	}
	threads := make([]Thread, len(rows))
	for i, r := range rows {
		threads[i] = threadOf(r)
	}
	return threads
}

func searchHitsOf(rows []store.SearchHit) []SearchHit {
	if rows == nil {
		return nil
	}
	hits := make([]SearchHit, len(rows))
	for i, h := range rows {
		hits[i] = SearchHit(h)
	}
	return hits
}

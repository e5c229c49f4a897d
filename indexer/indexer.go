// Package indexer turns rollout files into index rows: it scans a whole
// file into a store.Record, catches a thread up from its indexed offset,
// and rebuilds, verifies or repairs a whole root. It is the one place that
// knows both the rollout format and the store.
package indexer

import (
	"context"

	"spool/rollout"
	"spool/store"
)

// PreviewRunes is how many runes of a user message a preview keeps.
const PreviewRunes = 200

// Preview shortens a user message's text for the threads.preview and
// user_messages.preview columns.
func Preview(text string) string { panic("unimplemented") }

// Problem is a line the indexer could not use: malformed, or a torn tail.
type Problem struct {
	Path   string `json:"path"`
	Offset int64  `json:"offset"`
	Line   int64  `json:"line"`
	Kind   string `json:"kind"` // "malformed" or "torn"
	Detail string `json:"detail"`
}

// ScanFile reads the whole rollout file at root/relPath (relPath slash
// separated) and returns the record the index should hold for it: the
// thread from its first session_meta, its counted user messages, its
// ancestry from the chain of leading session_meta lines (a fork file starts
// with its own meta, then its parent's, and so on), the name from
// thread_name_updated events, and sizes. A file without a session_meta
// line, or whose meta id disagrees with the id in its name, is an error
// wrapping ErrNoMeta or ErrIDMismatch. Malformed lines and a torn tail are
// returned as problems, not errors.
func ScanFile(ctx context.Context, root, relPath string) (store.Record, []Problem, error) {
	panic("unimplemented")
}

// Tracker folds lines appended after a thread's indexed state into a
// store.Progress: counted user messages (ordinals continuing from the
// thread's count), rollbacks (which may remove indexed messages), name
// updates, the preview when the first message changes, line count and size.
type Tracker struct {
	// fields are the implementation's
}

// NewTracker starts tracking from the indexed state of t.
func NewTracker(t store.Thread) *Tracker { panic("unimplemented") }

// Observe folds one line (read from or appended at or after t's indexed size).
func (tr *Tracker) Observe(l *rollout.Line) { panic("unimplemented") }

// Progress returns the update to apply; FileSize, FileMtime and UpdatedAt
// are left for the caller to fill in.
func (tr *Tracker) Progress() store.Progress { panic("unimplemented") }

// CatchUp reads root/t.RolloutPath from t.IndexedSize on and returns the
// progress to apply, plus problems met (a torn tail is reported, not read).
// When the file is now shorter than t.IndexedSize it returns ErrShrunk: the
// caller rescans the whole file.
func CatchUp(ctx context.Context, root string, t store.Thread) (store.Progress, []Problem, error) {
	panic("unimplemented")
}

package manager

import (
	"context"
	"io"

	"spool/rollout"
	"spool/store"
)

// Manager owns a store root. It is safe for concurrent use.
type Manager struct{}

// Open takes the root's lock (ErrLocked / *LockedError when another process
// holds it), opens the index, and reconciles threads whose files changed
// since they were indexed.
func Open(ctx context.Context, o Options) (*Manager, error) { panic("unimplemented") }

// Close flushes and closes every live thread, the index and the lock.
func (m *Manager) Close() error { panic("unimplemented") }

// Root returns the store root.
func (m *Manager) Root() string { panic("unimplemented") }

// Start creates a thread: its first session_meta line and its index row.
func (m *Manager) Start(ctx context.Context, o StartOptions) (Thread, error) { panic("unimplemented") }

// Append appends items to thread id in order, as one write.
func (m *Manager) Append(ctx context.Context, id string, items []rollout.Item) (AppendResult, error) {
	panic("unimplemented")
}

// AppendLines appends complete lines given by the caller (validated with
// rollout.EncodeLine).
func (m *Manager) AppendLines(ctx context.Context, id string, lines [][]byte) (AppendResult, error) {
	panic("unimplemented")
}

// Get returns the thread id from the index.
func (m *Manager) Get(ctx context.Context, id string) (Thread, error) { panic("unimplemented") }

// Resume makes thread id live (loading it if needed) and returns it.
func (m *Manager) Resume(ctx context.Context, id string) (Thread, error) { panic("unimplemented") }

// ResumePath resumes the thread whose rollout is at path (absolute, or
// relative to the root), indexing the file first if it is not indexed.
func (m *Manager) ResumePath(ctx context.Context, path string) (Thread, error) {
	panic("unimplemented")
}

// ReadFrom returns the thread's complete lines from its counted user
// message k on (k = 0 and no messages: the whole history; k <= -1: the
// whole history), as a reader of raw JSONL bytes. The caller closes it.
func (m *Manager) ReadFrom(ctx context.Context, id string, k int) (io.ReadCloser, error) {
	panic("unimplemented")
}

// ReadTurn returns the lines of turn k: from user message k up to user
// message k+1 (or the end).
func (m *Manager) ReadTurn(ctx context.Context, id string, k int) (io.ReadCloser, error) {
	panic("unimplemented")
}

// UserMessages returns the thread's counted user messages with offsets.
func (m *Manager) UserMessages(ctx context.Context, id string) ([]store.UserMessage, error) {
	panic("unimplemented")
}

// Fork creates a new thread from id (see ForkOptions).
func (m *Manager) Fork(ctx context.Context, id string, o ForkOptions) (Thread, error) {
	panic("unimplemented")
}

// List returns a page of threads from the index.
func (m *Manager) List(ctx context.Context, o store.ListOptions) (store.Page, error) {
	panic("unimplemented")
}

// Search runs a full-text search over user messages.
func (m *Manager) Search(ctx context.Context, o store.SearchOptions) ([]store.SearchHit, error) {
	panic("unimplemented")
}

// Ancestors returns id's fork ancestors, nearest first.
func (m *Manager) Ancestors(ctx context.Context, id string) ([]store.Relative, error) {
	panic("unimplemented")
}

// Descendants returns every thread forked (transitively) from id.
func (m *Manager) Descendants(ctx context.Context, id string) ([]store.Relative, error) {
	panic("unimplemented")
}

// Tree returns the root of id's fork tree and all the root's descendants.
func (m *Manager) Tree(ctx context.Context, id string) (root Thread, members []store.Relative, err error) {
	panic("unimplemented")
}

// Rename sets the thread's name in its rollout (a thread_name_updated
// event), in session_index.jsonl, and in the index.
func (m *Manager) Rename(ctx context.Context, id, name string) (Thread, error) {
	panic("unimplemented")
}

// Archive moves the thread's file to archived_sessions/.
func (m *Manager) Archive(ctx context.Context, id string) (Thread, error) { panic("unimplemented") }

// Unarchive moves the thread's file back to its date folder.
func (m *Manager) Unarchive(ctx context.Context, id string) (Thread, error) { panic("unimplemented") }

// Delete removes the thread's file and rows; its forks keep their lineage.
func (m *Manager) Delete(ctx context.Context, id string) error { panic("unimplemented") }

// Evict closes the thread if it is live (flushing its file) and drops it
// from memory; a later use rehydrates it.
func (m *Manager) Evict(ctx context.Context, id string) error { panic("unimplemented") }

// Stats returns live-thread counts.
func (m *Manager) Stats() Stats { panic("unimplemented") }

// IndexStats returns index-wide counts.
func (m *Manager) IndexStats(ctx context.Context) (store.Stats, error) { panic("unimplemented") }

package store

import "context"

// Store is an open index. It is safe for concurrent use: writes go through
// one connection (transactions begin IMMEDIATE), reads through a pool.
type Store struct {
	// fields are the implementation's
}

// Open opens (creating it if needed) the index at path, applies the
// embedded migrations, and checks that WAL mode is on. It returns an error
// wrapping ErrSchemaTooNew or ErrCorrupt when the file cannot be used.
func Open(ctx context.Context, path string) (*Store, error) { panic("unimplemented") }

// Close closes both connection pools.
func (s *Store) Close() error { panic("unimplemented") }

// Path returns the index file path.
func (s *Store) Path() string { panic("unimplemented") }

// Insert adds a new thread with its messages and ancestry in one
// transaction. It fails with ErrExists when the id or path is indexed.
func (s *Store) Insert(ctx context.Context, r Record) error { panic("unimplemented") }

// Replace inserts or fully replaces each record (thread row, messages,
// search text and ancestry) in one transaction; reindex uses it in batches.
func (s *Store) Replace(ctx context.Context, rs []Record) error { panic("unimplemented") }

// Get returns the thread id, or ErrNotFound.
func (s *Store) Get(ctx context.Context, id string) (Thread, error) { panic("unimplemented") }

// GetByPath returns the thread whose rollout path is path, or ErrNotFound.
func (s *Store) GetByPath(ctx context.Context, path string) (Thread, error) {
	panic("unimplemented")
}

// Advance applies p in one transaction: drops user messages at ordinals
// >= p.KeepUserMessages, adds p.NewMessages, and updates counts, sizes,
// name, preview and updated time. ErrNotFound when the thread is unknown.
func (s *Store) Advance(ctx context.Context, p Progress) error { panic("unimplemented") }

// SetName sets the thread's name and updated time.
func (s *Store) SetName(ctx context.Context, id, name string, updatedAt int64) error {
	panic("unimplemented")
}

// SetArchived records that the thread's file moved to path and whether it is
// archived now (archivedAt is 0 when unarchiving).
func (s *Store) SetArchived(ctx context.Context, id string, archived bool, path string, archivedAt int64) error {
	panic("unimplemented")
}

// SetFileState records the file identity (size, mtime) of a thread whose
// indexed content did not change.
func (s *Store) SetFileState(ctx context.Context, id string, size, mtime int64) error {
	panic("unimplemented")
}

// Delete removes the thread, its messages, search text and its own
// ancestry rows. Its descendants keep their ancestry (and parent_id).
// ErrNotFound when unknown.
func (s *Store) Delete(ctx context.Context, id string) error { panic("unimplemented") }

// List returns one page of threads by keyset pagination (never OFFSET).
// Pages are stable when many threads share a timestamp (ties break by id).
func (s *Store) List(ctx context.Context, o ListOptions) (Page, error) { panic("unimplemented") }

// Search runs an FTS5 query over user message text, best matches first.
func (s *Store) Search(ctx context.Context, o SearchOptions) ([]SearchHit, error) {
	panic("unimplemented")
}

// UserMessages returns the counted user messages of a thread in order
// (ErrNotFound for an unknown thread).
func (s *Store) UserMessages(ctx context.Context, id string) ([]UserMessage, error) {
	panic("unimplemented")
}

// UserMessage returns message ordinal of thread id, or ErrNotFound.
func (s *Store) UserMessage(ctx context.Context, id string, ordinal int) (UserMessage, error) {
	panic("unimplemented")
}

// Ancestors returns the fork ancestors of id, nearest first, with depth.
func (s *Store) Ancestors(ctx context.Context, id string) ([]Relative, error) {
	panic("unimplemented")
}

// Descendants returns every thread forked (transitively) from id, by depth
// then id.
func (s *Store) Descendants(ctx context.Context, id string) ([]Relative, error) {
	panic("unimplemented")
}

// Root returns the farthest known ancestor of id (id itself when it has none).
func (s *Store) Root(ctx context.Context, id string) (string, error) { panic("unimplemented") }

// FileStates returns the file identity of every thread (for reconciliation
// and incremental reindex), ordered by rollout path.
func (s *Store) FileStates(ctx context.Context) ([]FileState, error) { panic("unimplemented") }

// IDs returns every indexed thread id, ordered.
func (s *Store) IDs(ctx context.Context) ([]string, error) { panic("unimplemented") }

// Stats returns counts over the whole index.
func (s *Store) Stats(ctx context.Context) (Stats, error) { panic("unimplemented") }

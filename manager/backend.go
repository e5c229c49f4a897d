package manager

import (
	"context"
	"errors"
	"io"

	"github.com/spoolhq/spool/rollout"
)

// ErrNotSupported: the backend serving the call does not offer it (see
// the optional interfaces beside Backend).
var ErrNotSupported = errors.New("not supported by this backend")

// Backend serves threads: what the HTTP server and the CLI need of a store
// of threads. Two implement it: *Manager (rollout files under one root and
// a SQLite index, the embedded default) and pgbackend.Backend (PostgreSQL
// as the commit point and object storage for sealed segments, for several
// spoold processes on one database). Codex splits its ThreadStore the same
// way. backendtest holds the conformance suite both pass.
//
// Offsets are positions in a thread's history; Thread.IndexedSize is the
// size of the thread's own part, and Thread.HistorySize that of the whole
// history, the size AppendOptions.ExpectedSize names.
// Errors wrap ErrNotFound, ErrInvalidArgument, ErrOutOfRange, ErrReferenced,
// *SizeMismatchError and the other sentinels of this package.
type Backend interface {
	// Start creates a thread.
	Start(ctx context.Context, o StartOptions) (Thread, error)
	// Get returns a thread.
	Get(ctx context.Context, id string) (Thread, error)
	// List returns a page of threads.
	List(ctx context.Context, o ListOptions) (Page, error)
	// AppendWith appends items, each becoming one line; AppendLinesWith
	// appends complete lines as given (without newlines).
	AppendWith(ctx context.Context, id string, items []rollout.Item, o AppendOptions) (AppendResult, error)
	AppendLinesWith(ctx context.Context, id string, lines [][]byte, o AppendOptions) (AppendResult, error)
	// Fork creates a thread whose history starts with the parent's up to
	// the cut ForkOptions names.
	Fork(ctx context.Context, id string, o ForkOptions) (Thread, error)
	// UserMessages returns the thread's counted user messages in order.
	UserMessages(ctx context.Context, id string) ([]UserMessage, error)
	// UserMessagesBetween returns those with ordinals in [lo, hi), and how
	// many the thread has, reading no others.
	UserMessagesBetween(ctx context.Context, id string, lo, hi int) ([]UserMessage, int, error)
	// ReadFrom streams the history from user message k to its end (all
	// of it for k < 0, or k = 0 on a thread without user messages);
	// ReadTurn streams turn k (user message k up to k+1); ReadAfter
	// streams from position from and reports the end it will stop at.
	ReadFrom(ctx context.Context, id string, k int) (io.ReadCloser, error)
	ReadTurn(ctx context.Context, id string, k int) (io.ReadCloser, error)
	ReadAfter(ctx context.Context, id string, from int64) (io.ReadCloser, int64, error)
	// Rename, Archive and Unarchive change a thread and return it.
	Rename(ctx context.Context, id, name string) (Thread, error)
	Archive(ctx context.Context, id string) (Thread, error)
	Unarchive(ctx context.Context, id string) (Thread, error)
	// Delete removes a thread; one that another uses as its base is
	// refused (ErrReferenced).
	Delete(ctx context.Context, id string) error
	// IndexStats counts threads and messages.
	IndexStats(ctx context.Context) (IndexStats, error)
	// Close waits for calls in flight and releases the backend.
	Close() error
}

// Optional capabilities: a Backend offers each when it implements the
// interface; the server answers 501 not_supported otherwise.
type (
	// Searcher searches user messages.
	Searcher interface {
		SearchPage(ctx context.Context, o SearchOptions) (SearchPage, error)
	}
	// Lineage walks fork ancestry.
	Lineage interface {
		Ancestors(ctx context.Context, id string) ([]Relative, error)
		Descendants(ctx context.Context, id string) ([]Relative, error)
		Tree(ctx context.Context, id string) (root Thread, members []Relative, err error)
	}
	// SpawnLineage walks sub-agent spawns.
	SpawnLineage interface {
		Spawns(ctx context.Context, id string) ([]Relative, error)
		SpawnedBy(ctx context.Context, id string) ([]Relative, error)
	}
	// Publisher delivers change events (follow streams, /v1/events).
	Publisher interface {
		Subscribe(buffer int) *Subscription
	}
	// TurnWriter appends whole Codex turns.
	TurnWriter interface {
		AppendTurn(ctx context.Context, id string, o TurnOptions) (AppendResult, error)
	}
	// Purger deletes a thread after making the threads whose history
	// continues it self-contained.
	Purger interface {
		Purge(ctx context.Context, id string) error
	}
	// Reverter cuts a thread back as Codex's thread/revert does.
	Reverter interface {
		Revert(ctx context.Context, id string, o RevertOptions) (Thread, error)
	}
	// TurnReader reads Codex turns by their ids.
	TurnReader interface {
		ReadTurnByID(ctx context.Context, id, turnID string) (io.ReadCloser, TurnSpan, error)
	}
	// LiveStats reports threads held live in memory.
	LiveStats interface {
		Stats() Stats
	}
)

// The local backend offers everything.
var (
	_ Backend      = (*Manager)(nil)
	_ Searcher     = (*Manager)(nil)
	_ Lineage      = (*Manager)(nil)
	_ SpawnLineage = (*Manager)(nil)
	_ Publisher    = (*Manager)(nil)
	_ TurnWriter   = (*Manager)(nil)
	_ LiveStats    = (*Manager)(nil)
	_ Purger       = (*Manager)(nil)
	_ Reverter     = (*Manager)(nil)
	_ TurnReader   = (*Manager)(nil)
)

// Package manager is spool's thread manager, the Go counterpart of Codex's
// ThreadManager: it starts, appends to, resumes, forks, lists, archives,
// renames and deletes threads, backed by rollout files (the truth) and the
// store (the index). It holds a bounded set of live threads in memory and
// rehydrates any other from the index on demand.
package manager

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/spoolhq/spool/indexer"
	"github.com/spoolhq/spool/lockfile"
	"github.com/spoolhq/spool/rollout"
	"github.com/spoolhq/spool/rolloutfs"
	"github.com/spoolhq/spool/store"
)

// Errors returned (wrapped) by Manager methods; test them with errors.Is.
var (
	ErrNotFound        = store.ErrNotFound                  // unknown thread id or ordinal
	ErrInvalidID       = rollout.ErrInvalidID               // not a canonical UUID
	ErrInvalidPath     = errors.New("invalid rollout path") // outside the root or not a rollout name
	ErrInvalidItem     = errors.New("invalid item")         // an item or line that cannot be appended
	ErrInvalidArgument = errors.New("invalid argument")     // a bad option: source, name, ...
	ErrOutOfRange      = errors.New("user message out of range")
	ErrArchived        = errors.New("thread is archived")     // append to an archived thread
	ErrNotArchived     = errors.New("thread is not archived") // unarchive of a live thread
	ErrLocked          = lockfile.ErrLocked                   // another process owns the root (*LockedError)
	ErrClosed          = errors.New("manager is closed")
	ErrBusy            = errors.New("thread has another writer") // Codex holds its writer lock (wraps a *codexlock.HeldError), or session_index.jsonl.lock past rolloutfs.Local.LockWait
	// ErrPaginatedRollback refuses a thread_rolled_back marker for a
	// paginated thread: Codex rejects a rollback there and shows every
	// turn past such a marker (docs/CODEX.md); revert the thread instead.
	ErrPaginatedRollback = fmt.Errorf("%w: a paginated thread is not rolled back by a marker (Codex ignores one): revert it", ErrInvalidItem)
	ErrTornTail          = errors.New("thread ends with an unfinished line") // its writer may still finish it (*TornTailError)
	ErrBrokenChain       = errors.New("thread's history refers to a base that is missing or does not hold it")
	ErrDamaged           = rolloutfs.ErrDamaged                                       // a compressed rollout that does not decode: restore it, or delete the thread
	ErrReferenced        = errors.New("thread is the base of other threads' history") // delete of a base (*ReferencedError)
	ErrCompressed        = errors.New("thread is compressed")                         // append to a read-only .jsonl.zst rollout; fork it to continue
	ErrUnavailable       = errors.New("storage unavailable")                          // a backend's database or object store cannot be reached; retry later
	// ErrStorageLocked reports a call that waited longer than its backend
	// allows for a lock another session of its database holds (a
	// transaction left open, a table being rewritten): the step that
	// waited wrote nothing (an append, nothing at all); retry later. It
	// wraps ErrUnavailable.
	ErrStorageLocked = fmt.Errorf("%w: a lock another session holds", ErrUnavailable)
	// ErrUnwalked refuses a delete or purge while no walk of the whole
	// root has succeeded since the open (a Background open's walk failed:
	// an unreadable folder under sessions/, a full disk): the forks the
	// index cannot read are recorded by a walk only. Nothing is removed;
	// retry once a sync succeeds. It wraps ErrUnavailable.
	ErrUnwalked = fmt.Errorf("%w: no walk of the root has succeeded since the open", ErrUnavailable)
	// ErrIndexDrift reports index rows that contradict each other (a row
	// edited by hand): the files are intact, the index needs a rebuild.
	ErrIndexDrift = errors.New("the index disagrees with itself (edited by hand?): run reindex --verify, then reindex --full")

	// The index's errors a caller of List, SearchPage and Import meets,
	// named here so that it need not import store to test them.
	ErrBadCursor  = store.ErrBadCursor  // a cursor not from a previous page of the same list or search
	ErrBadQuery   = store.ErrBadQuery   // a search query that does not parse
	ErrEmptyQuery = store.ErrEmptyQuery // a search query with nothing to look for
	ErrExists     = store.ErrExists     // Import of a thread id already present
)

// ReferencedError reports a delete refused because other threads' history
// continues this thread's (reference forks): deleting it would leave them
// unreadable. Delete the forks first, as Codex 0.169 requires. It wraps
// ErrReferenced.
type ReferencedError struct {
	ID    string
	Forks []string // the threads whose base it is
	// Unindexed are the files among the forks' that the index could not
	// read (store.UnindexedFork): they hold the thread as Codex counts
	// it, and only go by hand or through Codex.
	Unindexed []string
}

func (e *ReferencedError) Error() string {
	msg := fmt.Sprintf("thread %s is the base of %d reference fork(s) (%s): delete them first", e.ID, len(e.Forks), strings.Join(e.Forks, ", "))
	if len(e.Unindexed) > 0 {
		msg += fmt.Sprintf("; not indexed (see reindex --verify): %s", strings.Join(e.Unindexed, ", "))
	}
	return msg
}

func (e *ReferencedError) Unwrap() error { return ErrReferenced }

// TornTailError reports an append refused because the thread's file ends
// with a line some writer has not finished, younger than the grace period
// (Options.TornGrace): the writer may still complete it. Retry after
// RetryAfter; the line is then either complete or cut off. It wraps
// ErrTornTail.
type TornTailError struct {
	ID         string
	RetryAfter time.Duration
}

func (e *TornTailError) Error() string {
	return fmt.Sprintf("thread %s ends with an unfinished line; retry in %s", e.ID, e.RetryAfter.Round(time.Millisecond))
}

func (e *TornTailError) Unwrap() error { return ErrTornTail }

// LineError reports a line of an append (AppendLines) that cannot be
// appended. Line counts from 1, as editors and the server's messages about
// an NDJSON body do; Err says what is wrong and wraps ErrInvalidItem.
type LineError struct {
	Line int
	Err  error
}

func (e *LineError) Error() string { return fmt.Sprintf("line %d: %v", e.Line, e.Err) }

func (e *LineError) Unwrap() error { return e.Err }

// InvalidLineError reports that the line at index (from 0) of an append
// is not a valid item, for why: a *LineError numbering it from 1, whose
// Err wraps both ErrInvalidItem and why. Backends other than the
// Manager use it so that one bad line reads the same from every backend.
func InvalidLineError(index int, why error) *LineError {
	return &LineError{Line: index + 1, Err: fmt.Errorf("%w: %w", ErrInvalidItem, why)}
}

// OutOfRangeError reports a fork or read point past the thread's user
// messages; it wraps ErrOutOfRange.
type OutOfRangeError struct {
	ID        string
	Requested int
	Count     int // how many user messages the thread has
}

func (e *OutOfRangeError) Error() string {
	switch e.Count {
	case 0:
		return fmt.Sprintf("thread %s has no user messages; %d is out of range", e.ID, e.Requested)
	case 1:
		return fmt.Sprintf("thread %s has 1 user message (0); %d is out of range", e.ID, e.Requested)
	}
	return fmt.Sprintf("thread %s has %d user messages (0 to %d); %d is out of range", e.ID, e.Count, e.Count-1, e.Requested)
}

func (e *OutOfRangeError) Unwrap() error { return ErrOutOfRange }

// LockedError reports that another process holds the root's lock; it
// wraps ErrLocked and names the holder as written in the lock file.
type LockedError = lockfile.HeldError

// Options configure Open.
type Options struct {
	Root     string               // the store root (a Codex home layout); created if missing
	Capacity int                  // live threads held in memory; default 1000
	Sync     rolloutfs.SyncPolicy // default SyncAlways
	// OpenFiles bounds the file descriptors live threads hold: idle
	// threads past it (least recently used first) close their files and
	// reopen them on their next append. Default DefaultOpenFiles.
	OpenFiles int
	// TornGrace is how old an unfinished last line must be before an
	// append cuts it off (into a side file): younger, its writer may still
	// be finishing it. Default DefaultTornGrace.
	TornGrace time.Duration
	// FS stores the rollout files; default rolloutfs.Local{Root: Root}.
	// Tests inject failures through it.
	FS rolloutfs.FS
	// IndexPath is the index file; default Root/IndexFile. The lock file
	// goes beside it, so a Codex home can be served with its index (and
	// lock) elsewhere: then spool writes into the home only what it is
	// asked to (rollouts, session_index.jsonl, Codex's writer locks), and
	// leaves temporary files it finds there alone.
	IndexPath string
	// Background makes Open return as soon as the index is open: the
	// reconcile walk (see Open) runs in the background and Reconciled
	// reports its end. A thread used before the walk reaches it is caught
	// up on first use; List and Search answer from the index as it is.
	// An index that asks for a full rescan (a migration's request, once
	// after an upgrade) is rescanned before Open returns all the same:
	// rows an older release wrote would decide where forks cut.
	Background bool
	// Watch keeps the index up to date with files other processes (Codex)
	// create, grow, move and delete under the root while the manager runs:
	// an fsnotify watcher on sessions/ (every date folder), archived_sessions/
	// and the root, plus a full incremental sync every RescanInterval in
	// case events were lost. Without inotify (or past its limits) only
	// the periodic sync runs. See watch.go for what is noticed when.
	Watch bool
	// RescanInterval is how often a watching manager syncs the whole root;
	// default DefaultRescanInterval, or DefaultPollInterval when the
	// watcher could not start.
	RescanInterval time.Duration
	// OnSync, when set, is called after every background sync (the
	// reconcile of a Background open, a batch of watched changes, a
	// periodic rescan) from the one goroutine that runs them; it must not
	// call Close. It is never called once Close has returned.
	OnSync func(SyncReport)
	Logger *slog.Logger // default slog.Default()
	// Now returns the current time; default time.Now. Tests set it.
	Now func() time.Time
}

// SyncReport says what one background sync did.
type SyncReport struct {
	Cause   SyncCause
	Paths   []string        // the rollout paths synced (SyncEvents only)
	Summary indexer.Summary // what the sync did
	Err     error           // nil, or why it stopped
}

// SyncCause names why a background sync ran.
type SyncCause string

// The causes of a SyncReport.
const (
	SyncOpen   SyncCause = "open"   // the reconcile of a Background open
	SyncEvents SyncCause = "events" // files the watcher saw change
	SyncRescan SyncCause = "rescan" // the periodic full sync, or lost events
)

// DefaultRescanInterval is Options.RescanInterval of a manager whose
// watcher runs: a safety net only.
const DefaultRescanInterval = 5 * time.Minute

// DefaultPollInterval is Options.RescanInterval of a manager whose
// watcher could not start: the periodic sync is then all there is.
const DefaultPollInterval = 2 * time.Second

// WatchDebounce is how long the watcher gathers events after the first of
// a burst before it syncs them together.
const WatchDebounce = 20 * time.Millisecond

// DefaultTornGrace is Options.TornGrace when it is zero.
const DefaultTornGrace = 5 * time.Second

// DefaultOpenFiles is Options.OpenFiles when it is zero.
const DefaultOpenFiles = 128

// IndexFile is the name of the index database inside a root.
const IndexFile = "spool.db"

// LockFile is the name of the lock file inside a root.
const LockFile = lockfile.FileName

// DefaultModelProvider is the model provider of a thread started without
// one: Codex's default provider id, as Codex writes it into a thread it
// starts. Codex 0.169 refuses to resume a thread whose session_meta names
// no provider once its own cache (state_5.sqlite) exists.
const DefaultModelProvider = "openai"

// StartOptions describe a new thread. Source defaults to "vscode" and
// ModelProvider to DefaultModelProvider, as Codex starts threads.
type StartOptions struct {
	Cwd              string
	Source           string // "cli", "vscode", "exec", "mcp", ... or a JSON object text; default "vscode"
	Originator       string
	CLIVersion       string
	ModelProvider    string // default DefaultModelProvider
	BaseInstructions string
	Name             string
	Git              *rollout.GitInfo
	// HistoryMode is "paginated" (the default, as Codex 0.169 starts
	// threads) or "legacy".
	HistoryMode string
	// IdempotencyKey, when not empty, names the start: a later Start with
	// the same key and the same options (RequestHash) creates nothing and
	// returns the thread the first one created, as it is now; with other
	// options it fails with ErrIdempotencyKeyReused. The keys of starts
	// are one set per store. A key is recorded with its thread's row, in
	// one transaction, and kept for IdempotencyTTL; it goes with its
	// thread (a retry after a delete starts a new one) and with a rebuilt
	// index.
	IdempotencyKey string
}

// ForkOptions describe a fork. With no point the fork holds the whole
// history; BeforeUserMessage n keeps every line strictly before the
// parent's counted user message n (0-based). A fork names one point at the most
// (Points): BeforeUserMessage, BeforeTurnID or LastTurnID.
type ForkOptions struct {
	BeforeUserMessage *int
	// BeforeTurnID, instead of BeforeUserMessage, forks before the Codex
	// turn with that id (before its first counted user message: the cut
	// then goes before the turn's start lines, as Codex's own cut does).
	BeforeTurnID string
	// LastTurnID, instead of either, keeps everything through the end of
	// the Codex turn with that id (its task_complete or turn_aborted line),
	// as Codex's thread/fork lastTurnId does. A turn that has not ended
	// fails with ErrTurnInProgress, an unknown one with ErrNotFound.
	LastTurnID string
	// Name is the new thread's name; without one it is named as the
	// parent is at the fork, as Codex's thread/fork names a fork
	// (ForkName).
	Name string
	Cwd  string // optional cwd override for the new thread's meta
	// Source is the fork's source: the client that forks (cli, vscode,
	// exec, mcp, ...), as Codex's thread/fork gives a fork its own
	// process's. Without one the fork keeps its parent's (ForkSource).
	Source string
	// Mode is ForkReference, ForkCopy or "" (reference for a paginated
	// parent, copy for a legacy one).
	Mode string
	// IdempotencyKey, when not empty, names the fork as
	// StartOptions.IdempotencyKey names a start; the keys of forks are
	// their parent's, so a key names one fork of each thread.
	IdempotencyKey string

	key *creationKey // IdempotencyKey's, set by Fork
}

// Points returns how many fork points o names: BeforeUserMessage,
// BeforeTurnID and LastTurnID each count one when set. A fork with more
// than one fails with ErrInvalidArgument; none forks the whole thread.
func (o ForkOptions) Points() int {
	n := 0
	for _, set := range []bool{o.BeforeUserMessage != nil, o.BeforeTurnID != "", o.LastTurnID != ""} {
		if set {
			n++
		}
	}
	return n
}

// Fork modes.
const (
	// ForkReference writes only the child's meta, whose history_base
	// points into the parent's history: O(1) in the parent's size, and
	// what Codex 0.169 does for paginated threads.
	ForkReference = "reference"
	// ForkCopy copies the parent's history before the cut into the child's
	// file (the kernel copies the bytes), self-contained.
	ForkCopy = "copy"
)

// AppendResult reports where appended lines landed: the offset of each
// in the thread's history, and the thread after the append.
type AppendResult struct {
	Offsets []int64
	Thread  Thread
	// Replayed reports an append named by an idempotency key already
	// known: nothing was written, and the answer is the first append's.
	Replayed bool
}

// Stats describe the manager's live state and the work of its appends.
type Stats struct {
	Live     int // threads held live
	Capacity int // Options.Capacity
	// Syncs counts the group syncs of SyncBatch (zero under other policies).
	Syncs rolloutfs.SyncStats
	// Commits counts the batched index commits of appends.
	Commits CommitStats
	// Reconciled is whether the walk of Open that catches the index up
	// with the files has ended (Reconciled's channel is closed): until
	// then lists may miss threads, and a first index builds its list
	// indexes at the walk's end.
	Reconciled bool
}

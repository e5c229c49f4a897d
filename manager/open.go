package manager

import (
	"container/list"
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/spoolhq/spool/codexstate"
	"github.com/spoolhq/spool/indexer"
	"github.com/spoolhq/spool/lockfile"
	"github.com/spoolhq/spool/rolloutfs"
	"github.com/spoolhq/spool/store"
)

// DefaultCapacity is the number of live threads held when Options.Capacity
// is zero.
const DefaultCapacity = 1000

// Manager owns a store root: its lock, its index and the live threads. It
// is safe for concurrent use.
type Manager struct {
	opts  Options
	log   *slog.Logger
	lock  *lockfile.Lock
	fsys  rolloutfs.FS
	store *store.Store
	index *indexBatcher // batches the index updates of appends
	// unacked holds back from readers the lines of appends indexed before
	// their sync is done.
	unacked unackedSizes
	group   *rolloutfs.GroupSyncer // nil unless the policy is SyncBatch
	// codex is the thread cache a Codex sharing the root keeps, told of
	// the moves and names this manager makes (codexstate).
	codex codexstate.Cache
	// indexedBeforeSync, when set (by tests), is called once an append's
	// index update is done, before the append waits for its sync.
	indexedBeforeSync func()
	// materializedFile, when set (by tests), is called by materialize
	// once it replaced a thread's file and before it indexes the new one.
	materializedFile func(id string)

	// places orders a thread's moves (archive, unarchive) with reads that
	// open its file by the path in its row: a move holds its stripe for
	// writing, openRead for reading. Striped by thread id.
	places [64]sync.RWMutex

	mu        sync.Mutex // guards live, closed and the Add calls of ops
	live      lru
	closed    bool
	closeDone chan struct{}  // closed when the first Close returns
	ops       sync.WaitGroup // calls in flight; Close waits for them

	handles atomic.Int64 // file handles live threads hold: their appenders and writer-lock files

	events Bus // publishes changes to subscribers (events.go)

	// indexing serializes, per thread, whoever writes a row from a file
	// it read without the thread's lock: loading a thread, a background
	// sync of it, and the create of a new thread until its row exists.
	// Striped by thread id; taken before nothing else but the index.
	indexing [64]sync.Mutex
	// keying serializes, per idempotency key, the starts and forks named
	// by it (createOnce).
	keying [64]sync.Mutex

	backgroundCtx  context.Context    // the background goroutines' context
	stopBackground context.CancelFunc // stops the background goroutines
	background     sync.WaitGroup     // the background goroutines
	reconciled     chan struct{}      // closed when the open's reconcile ended
	watch          *watcher           // nil unless Options.Watch; set before the goroutines start
	walkSkipped    bool               // the open skipped its walk (cleanclose.go); set before the goroutines start
	walkedAtOpen   bool               // Open ran the reconcile itself; set before the goroutines start

	// layout is the root's layout as the open's walk found it (or as the
	// last clean close recorded it, when the walk was skipped), nil when
	// it cannot be trusted. Written by Open or by the background
	// reconcile, read by Close after the goroutines stopped.
	layout *layoutState

	// recent is what Delete's syncRecent last found of the date folders.
	recent recentDirs

	// walked is set once a walk of the whole root has succeeded since the
	// open (or the open skipped it after a clean close), walkErr holds the
	// last walk's error until then; both guarded by mu. A delete needs
	// the records only a walk writes (lookForForks).
	walked  bool
	walkErr error
	rewalk  sync.Mutex // held by a delete's walk of the root (walkAgain)
}

// Open takes the lock beside the index (an error wrapping ErrLocked, a
// *LockedError, when another process holds it), opens the index (an
// error wrapping store.ErrNotIndex for another program's database, after
// which the directories and lock file Open created are gone again), and
// reconciles threads whose files changed since they were indexed: files
// that grew are caught up from their indexed offset, new files are
// indexed, and rows whose file is gone are dropped. Unchanged files are
// only stat'ed, never read. After a clean Close, when no directory of the
// layout changed since, the walk is skipped and only the directories are
// stat'ed: files that merely grew are caught up on first use. When the
// lock is the root's, temporary files of starts and forks that a crash
// cut short are removed and counted in the log. With o.Background the reconcile runs after Open returned; with
// o.Watch the index then follows the files (see Options).
func Open(ctx context.Context, o Options) (*Manager, error) {
	if o.Root == "" {
		return nil, errors.New("open manager: no root")
	}
	root, err := filepath.Abs(o.Root)
	if err != nil {
		return nil, fmt.Errorf("open manager: %w", err)
	}
	o.Root = root
	if o.Capacity <= 0 {
		o.Capacity = DefaultCapacity
	}
	if o.OpenFiles <= 0 {
		o.OpenFiles = DefaultOpenFiles
	}
	if o.TornGrace <= 0 {
		o.TornGrace = DefaultTornGrace
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.FS == nil {
		o.FS = rolloutfs.Local{Root: root}
	}
	if o.IndexPath == "" {
		o.IndexPath = filepath.Join(root, IndexFile)
	}
	if o.IndexPath, err = filepath.Abs(o.IndexPath); err != nil {
		return nil, fmt.Errorf("open manager: %w", err)
	}
	// An open refused before the index is open (another program's
	// database named as the index, ErrNotIndex) leaves nothing it
	// created: its directories and lock file go again.
	var created []string
	removeCreated := func() {
		for _, dir := range slices.Backward(created) {
			os.Remove(dir) // only when still empty
		}
	}
	indexDir := filepath.Dir(o.IndexPath)
	for _, dir := range []string{root, indexDir} {
		made, err := mkdirAll(dir)
		created = append(created, made...)
		if err != nil {
			removeCreated()
			return nil, fmt.Errorf("open manager: %w", err)
		}
	}
	lock, err := lockfile.Acquire(filepath.Join(indexDir, LockFile))
	if err != nil {
		removeCreated()
		return nil, fmt.Errorf("open manager at %s: %w", root, err)
	}
	st, err := store.Open(ctx, o.IndexPath)
	if err != nil {
		lock.Discard()
		removeCreated()
		return nil, fmt.Errorf("open manager at %s: %w", root, err)
	}
	if mig := st.Migrated(); mig.Upgraded() {
		o.Logger.Info("migrated the index schema", "index", o.IndexPath, "from", mig.From, "to", mig.To, "duration", mig.Took)
	}
	m := &Manager{
		opts:  o,
		log:   o.Logger,
		lock:  lock,
		fsys:  o.FS,
		store: st,
		index: &indexBatcher{store: st},
		codex: codexstate.Cache{Home: root},
		live:  lru{byID: make(map[string]*liveThread), order: list.New()},

		reconciled:     make(chan struct{}),
		stopBackground: func() {},
	}
	if o.Sync == rolloutfs.SyncBatch {
		m.group = rolloutfs.NewGroupSyncer()
	}
	// Watch before the reconcile walks, so nothing changed in between is
	// missed.
	m.startWatching()
	if m.walkSkipped, err = m.skipWalk(ctx); err != nil {
		m.Close()
		return nil, fmt.Errorf("open manager at %s: %w", root, err)
	}
	// An index that asks for a full rescan holds rows an older release
	// wrote (a migration's request): until the rescan reaches a thread,
	// a fork of it would cut by those rows, into its file for good, and a
	// thread in use while the rescan runs is skipped by it. So that
	// rescan runs before Open returns, even with Background.
	rescan := false
	if !m.walkSkipped && o.Background {
		if rescan, _, err = st.RescanNeeded(ctx); err != nil {
			m.Close()
			return nil, fmt.Errorf("open manager at %s: %w", root, err)
		}
	}
	if m.walkSkipped {
		m.noteWalk(nil)
		close(m.reconciled)
	} else if !o.Background || rescan {
		if _, err := m.reconcile(ctx, time.Time{}, true); err != nil {
			m.Close()
			return nil, fmt.Errorf("open manager at %s: reconcile: %w", root, err)
		}
		m.noteWalk(nil)
		m.walkedAtOpen = true
		close(m.reconciled)
	}
	m.startBackground()
	return m, nil
}

// mkdirAll is os.MkdirAll of dir with rolloutfs.DefaultDirPerm that
// returns the directories missing before it, parents first: those it
// created, even when it fails.
func mkdirAll(dir string) (created []string, err error) {
	for d := dir; d != filepath.Dir(d); d = filepath.Dir(d) {
		if _, err := os.Lstat(d); !errors.Is(err, fs.ErrNotExist) {
			break
		}
		created = append(created, d)
	}
	slices.Reverse(created)
	return created, os.MkdirAll(dir, rolloutfs.DefaultDirPerm)
}

// Reconciled returns a channel closed once the reconcile of Open ended
// (at once unless Options.Background; in the background, it ends early
// on Close or on an error, which the log and OnSync report).
func (m *Manager) Reconciled() <-chan struct{} { return m.reconciled }

// Close waits for the calls in flight (new calls fail with ErrClosed),
// flushes and closes every live thread, records the layout's state for
// the next open when nothing under the root was created, removed or
// renamed since the open's walk, then closes the index and releases the
// lock: nothing can write to the root once another process may own it.
// Calls after the first wait for it, then return nil.
func (m *Manager) Close() error {
	m.mu.Lock()
	if m.closed {
		done := m.closeDone
		m.mu.Unlock()
		<-done
		return nil
	}
	m.closed = true
	m.closeDone = make(chan struct{})
	defer close(m.closeDone)
	m.mu.Unlock()
	m.stopBackground()
	m.background.Wait()
	m.ops.Wait()
	m.events.Close()

	m.mu.Lock()
	var all []*liveThread
	for e := m.live.order.Front(); e != nil; e = e.Next() {
		all = append(all, e.Value.(*liveThread))
	}
	m.live = lru{byID: map[string]*liveThread{}, order: list.New()}
	m.mu.Unlock()

	for _, lt := range all {
		m.closeLive(lt)
	}
	m.recordCleanClose(context.Background())
	var errs []error
	if m.group != nil {
		errs = append(errs, m.group.Close())
	}
	errs = append(errs, m.store.Close(), m.lock.Release())
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("close manager: %w", err)
	}
	return nil
}

// Root returns the absolute store root.
func (m *Manager) Root() string { return m.opts.Root }

// Stats returns live-thread counts and what appends' syncs and index
// commits have done since m opened.
func (m *Manager) Stats() Stats {
	st := Stats{Live: m.liveCount(), Capacity: m.opts.Capacity, Commits: m.index.stats()}
	select {
	case <-m.reconciled:
		st.Reconciled = true
	default:
	}
	if m.group != nil {
		st.Syncs = m.group.Stats()
	}
	return st
}

// IndexStats returns index-wide counts.
func (m *Manager) IndexStats(ctx context.Context) (IndexStats, error) {
	if err := m.begin(); err != nil {
		return IndexStats{}, err
	}
	defer m.ops.Done()
	st, err := m.store.Stats(ctx)
	return IndexStats(st), err
}

// placeLock returns the lock that orders thread id's moves with reads.
func (m *Manager) placeLock(id string) *sync.RWMutex {
	h := fnv.New32a()
	h.Write([]byte(id))
	return &m.places[h.Sum32()%uint32(len(m.places))]
}

// begin registers a call in flight, or fails with ErrClosed; the caller
// defers m.ops.Done().
func (m *Manager) begin() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return ErrClosed
	}
	m.ops.Add(1)
	return nil
}

// now returns the current time truncated to the millisecond, the
// precision of rollout timestamps and index times.
func (m *Manager) now() time.Time { return m.opts.Now().UTC().Truncate(time.Millisecond) }

// bases finds the bases of reference forks in the manager's index.
func (m *Manager) bases() indexer.Bases {
	return indexer.StoreBases{Store: m.store, ParentsMayBeMissing: true}
}

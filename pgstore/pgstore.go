// Package pgstore keeps threads in PostgreSQL: the commit point and the
// index of spool's distributed backend (docs/DISTRIBUTED.md). Any number of
// processes may share one database. An append is one transaction under a row
// lock on its thread, so offsets are contiguous whichever process appends,
// and the commit is the acknowledgement. Forks are references: a child
// records its base and how much of the base's history it keeps, and copies
// neither bytes nor user-message rows.
//
// Positions follow the local backend's model (docs/SCHEMA.md, "History
// chains"): a thread's history is its base's history up to BaseSize, then
// its own bytes; every offset this package returns is a position in that
// history.
package pgstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"

	"github.com/spoolhq/spool/objstore"
	"github.com/spoolhq/spool/pgstore/migrations"
	"github.com/spoolhq/spool/rollout"
)

// Errors callers test with errors.Is.
var (
	ErrNotFound     = errors.New("thread not found")
	ErrExists       = errors.New("thread already exists")
	ErrSizeMismatch = errors.New("thread size differs from the expected size")
	ErrInvalidLines = errors.New("not newline-terminated JSON object lines")
	ErrOutOfRange   = errors.New("user message out of range")
	ErrReferenced   = errors.New("thread is the base of another thread")
	ErrArchived     = errors.New("thread is archived")
	ErrNotArchived  = errors.New("thread is not archived")
	// ErrCutArchived refuses a reference fork whose cut lies in an
	// archived thread's bytes: Codex cannot load an archived thread, and
	// shows a reference into one without its turns. Fork by copy.
	ErrCutArchived  = errors.New("the cut lies in an archived thread, which Codex cannot load")
	ErrTurnNotFound = errors.New("turn not found")
	// ErrTurnExists refuses a turn whose given id names a turn with a
	// user message in the thread's history (inherited ones included).
	ErrTurnExists = errors.New("turn id is in the thread's history already")
	// ErrPaginatedRollback refuses a thread_rolled_back marker appended to
	// a paginated thread: Codex rejects a rollback there and shows every
	// turn past such a marker.
	ErrPaginatedRollback = errors.New("a paginated thread is not rolled back by a marker (Codex ignores one): revert it")
	// ErrCommitUnknown reports a write whose COMMIT was sent but whose
	// answer was lost (the connection broke): it may have been committed.
	// It is never retried; a caller retries safely only with an
	// idempotency key or an expected size. Appends ask PostgreSQL
	// whether their transaction committed first, and fail so only when
	// that cannot be told.
	ErrCommitUnknown = errors.New("the connection broke at commit: the write may have been committed")
)

// Store is a handle on one database. It is safe for concurrent use, also
// with Stores of other processes on the same database.
type Store struct {
	pool   *pgxpool.Pool
	bucket objstore.Bucket // nil: nothing is sealed
	batch  batcher
	now    func() time.Time
	logger *slog.Logger
	// queryTimeout bounds each statement (queryDeadline; 0: none).
	queryTimeout time.Duration
	// lockTimeout is the connections' lock_timeout (LockTimeout; 0:
	// none).
	lockTimeout time.Duration
}

// Options configure Open.
type Options struct {
	// Bucket holds sealed segments. Without one, Seal is refused and reads
	// of a sealed thread fail.
	Bucket objstore.Bucket
	// Logger hears what fails after a change was committed, which the
	// change's caller is not told (nil: nothing is logged).
	Logger *slog.Logger
}

// DefaultMaxConns is how many connections a Store's pool holds at most
// when the DSN does not say (pool_max_conns, which pgxpool reads): enough
// for a node's concurrent requests, few enough for several nodes within
// PostgreSQL's default max_connections of 100. A Store also holds one
// connection of its own while it listens (Listen).
const DefaultMaxConns = 24

// DefaultConnectTimeout bounds each new connection, from its dial to the
// end of its startup, when neither the DSN's connect_timeout nor
// PGCONNECT_TIMEOUT sets a bound: a server that accepts connections but
// does not answer (a frozen host, a stalled network) then fails the
// request waiting for one as unreachable, rather than holding it for as
// long as the silence lasts.
const DefaultConnectTimeout = 10 * time.Second

// poolConfig parses dsn and fills in spool's defaults where neither it
// nor the environment (PGCONNECT_TIMEOUT) sets a value: DefaultMaxConns,
// DefaultConnectTimeout and DefaultQueryTimeout. An explicit
// connect_timeout=0 or PGCONNECT_TIMEOUT=0, waiting for ever, is kept, as
// is spool_query_timeout=0.
func poolConfig(dsn string) (*pgxpool.Config, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("pgstore: %w", err)
	}
	if !strings.Contains(dsn, "pool_max_conns") {
		cfg.MaxConns = DefaultMaxConns
	}
	// pgx parses PGCONNECT_TIMEOUT=0, as connect_timeout=0, to the zero it
	// leaves for no setting: only their absence gets the default.
	if cfg.ConnConfig.ConnectTimeout == 0 && os.Getenv("PGCONNECT_TIMEOUT") == "" && !strings.Contains(dsn, "connect_timeout") {
		cfg.ConnConfig.ConnectTimeout = DefaultConnectTimeout
	}
	timeout, err := queryTimeout(cfg)
	if err != nil {
		return nil, err
	}
	if timeout > 0 {
		cfg.ConnConfig.Tracer = queryDeadline{timeout: timeout}
		setLockTimeout(cfg, timeout)
	}
	return cfg, nil
}

// Open connects to the database at dsn (a PostgreSQL URL or key=value
// string, which may set the pool's size with pool_max_conns and pgxpool's
// other pool_ parameters) and brings its schema up to date. Concurrent
// Opens on one database apply each migration once (goose's advisory-lock
// locker).
func Open(ctx context.Context, dsn string, o Options) (*Store, error) {
	cfg, err := poolConfig(dsn)
	if err != nil {
		return nil, err
	}
	if err := migrate(ctx, cfg.ConnConfig); err != nil {
		return nil, err
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("pgstore: connect: %w", err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("pgstore: connect: %w", err)
	}
	logger := o.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	s := &Store{pool: pool, bucket: o.Bucket, now: time.Now, logger: logger}
	if d, ok := cfg.ConnConfig.Tracer.(queryDeadline); ok {
		s.queryTimeout = d.timeout
	}
	if s.lockTimeout, err = readLockTimeout(ctx, pool); err != nil {
		pool.Close()
		return nil, fmt.Errorf("pgstore: connect: %w", err)
	}
	s.batch.s = s
	s.batch.waitSlots = make(chan struct{}, max(1, cfg.MaxConns/2))
	return s, nil
}

// migrate applies the embedded migrations through a database/sql handle,
// the only place this package uses one. Their statements have no query
// timeout: one may rewrite a large table.
func migrate(ctx context.Context, cfg *pgx.ConnConfig) error {
	cfg = cfg.Copy()
	cfg.Tracer = nil
	db := stdlib.OpenDB(*cfg)
	defer db.Close()
	locker, err := lock.NewPostgresSessionLocker()
	if err != nil {
		return fmt.Errorf("pgstore: migrate: %w", err)
	}
	p, err := goose.NewProvider(goose.DialectPostgres, db, migrations.FS,
		goose.WithDisableGlobalRegistry(true), goose.WithSessionLocker(locker))
	if err != nil {
		return fmt.Errorf("pgstore: migrate: %w", err)
	}
	if _, err := p.Up(ctx); err != nil {
		return fmt.Errorf("pgstore: migrate: %w", err)
	}
	return nil
}

// QueryTimeout returns the bound on each statement and each wait for a
// connection (DefaultQueryTimeout, or the DSN's spool_query_timeout; 0
// for none). A call cut off by it fails with an error that matches
// context.DeadlineExceeded.
func (s *Store) QueryTimeout() time.Duration { return s.queryTimeout }

// Close releases the connections.
func (s *Store) Close() { s.pool.Close() }

// Thread is one thread's row.
type Thread struct {
	ID       string
	ParentID string // fork parent; "" for a root
	// BaseID is the thread whose history this one's starts with ("" when
	// its history is only its own bytes), and BaseSize how many bytes of
	// that history it keeps.
	BaseID   string
	BaseSize int64
	// InheritedMessages counts the user messages that resolve through the
	// base; UserMessageCount counts all of them.
	InheritedMessages int
	UserMessageCount  int
	Size              int64 // own bytes committed
	// SealedSize is how many own bytes live in object-storage segments
	// (the rest are in chunk rows).
	SealedSize int64
	CreatedAt  time.Time
	UpdatedAt  time.Time
	// Preview is the thread's preview as Codex shows it (rollout.Preview,
	// shortened by indexer.Preview), "" for none yet, and PreviewOffset the
	// history position of the line that gave it.
	Preview       string
	PreviewOffset int64
	Name          string
	Cwd           string
	Archived      bool
	ArchivedAt    time.Time // zero when not archived
	LineCount     int64     // lines of the own bytes
	Facts
	// ForkUserMessage is the parent's user message the fork was cut
	// before (-1: whole, or not a fork); ForkOffset the cut's position (-1
	// when not a fork).
	ForkUserMessage int
	ForkOffset      int64
	// TurnOffset and TurnID are the open Codex turn of the own bytes: its
	// start (a history position) while it has no user message yet, -1
	// once it has, 0 when no turn is open (see queueAppend).
	TurnOffset int64
	TurnID     string
	// HistoryMode is "paginated" (every line carries a top-level ordinal;
	// NextOrdinal is the next line's) or "legacy".
	HistoryMode string
	NextOrdinal int64
	// Incarnation is the row's number, never reused: a thread deleted and
	// created again with the same id has another (migration 00012).
	Incarnation int64
}

// HistoryPaginated is the history mode of a thread whose lines carry
// ordinals (rollout.HistoryPaginated).
const HistoryPaginated = string(rollout.HistoryPaginated)

// Paginated reports whether t numbers its lines.
func (t Thread) Paginated() bool { return t.HistoryMode == HistoryPaginated }

// BaseThreadID is the thread whose history t's starts with, as the API
// names it: BaseID, or the thread a link (an earlier part of a reverted
// thread, see Revert) belongs to.
func (t Thread) BaseThreadID() string { return linkOwner(t.BaseID) }

// Facts are what a thread's session_meta says that listings show.
type Facts struct {
	Source, Originator, CLIVersion, ModelProvider string
	GitCommit, GitBranch, GitOrigin               string
}

// HistorySize is the size of the thread's history: base, then own bytes.
func (t Thread) HistorySize() int64 { return t.BaseSize + t.Size }

// Era names how a thread's history is laid out: its row's incarnation,
// its base, and where its own bytes start. Appends keep it, so positions
// found in the history stay where they are; a revert moves it (so does a
// purge's rewrite, and a delete and a new thread of the same id), after
// which a position found before may name other bytes.
type Era struct {
	Incarnation int64
	BaseID      string
	BaseSize    int64
}

// Era returns t's era.
func (t Thread) Era() Era {
	return Era{Incarnation: t.Incarnation, BaseID: t.BaseID, BaseSize: t.BaseSize}
}

// checkEra fails with ErrChanged unless t is in era (nil: any).
func checkEra(t Thread, era *Era) error {
	switch {
	case era == nil || t.Era() == *era:
		return nil
	case t.Incarnation != era.Incarnation:
		return fmt.Errorf("%w: %s was deleted and created again", ErrChanged, t.ID)
	}
	return fmt.Errorf("%w: %s was reverted or rewritten (its own bytes start at %d after %q, not %d after %q)",
		ErrChanged, t.ID, t.BaseSize, t.BaseID, era.BaseSize, era.BaseID)
}

const threadColumns = `id, parent_id, COALESCE(base_id, ''), base_size, inherited_messages,
	user_message_count, size, sealed_size, created_at, updated_at, preview, name, cwd, archived,
	archived_at, line_count, source, originator, cli_version, model_provider, git_commit, git_branch,
	git_origin, fork_user_message, fork_offset, turn_offset, turn_id, history_mode, next_ordinal, incarnation, preview_offset`

func scanThread(row pgx.Row) (Thread, error) {
	var t Thread
	var created, updated, archived int64
	err := row.Scan(&t.ID, &t.ParentID, &t.BaseID, &t.BaseSize, &t.InheritedMessages,
		&t.UserMessageCount, &t.Size, &t.SealedSize, &created, &updated, &t.Preview, &t.Name, &t.Cwd, &t.Archived,
		&archived, &t.LineCount, &t.Source, &t.Originator, &t.CLIVersion, &t.ModelProvider, &t.GitCommit,
		&t.GitBranch, &t.GitOrigin, &t.ForkUserMessage, &t.ForkOffset, &t.TurnOffset, &t.TurnID, &t.HistoryMode, &t.NextOrdinal, &t.Incarnation, &t.PreviewOffset)
	if errors.Is(err, pgx.ErrNoRows) || errors.Is(err, sql.ErrNoRows) {
		return Thread{}, ErrNotFound
	}
	if err != nil {
		return Thread{}, err
	}
	t.CreatedAt, t.UpdatedAt = time.UnixMilli(created), time.UnixMilli(updated)
	if archived != 0 {
		t.ArchivedAt = time.UnixMilli(archived)
	}
	return t, nil
}

// Get returns the thread id.
func (s *Store) Get(ctx context.Context, id string) (Thread, error) {
	t, err := getThread(ctx, s.pool, id, "")
	if err != nil {
		return Thread{}, fmt.Errorf("get %s: %w", id, err)
	}
	return t, nil
}

// querier is what a pool and a transaction share.
type querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// getThread reads a row, with lockClause ("FOR UPDATE", "FOR SHARE" or "")
// appended inside a transaction.
func getThread(ctx context.Context, q querier, id, lockClause string) (Thread, error) {
	return scanThread(q.QueryRow(ctx, `SELECT `+threadColumns+` FROM threads WHERE id = $1 `+lockClause, id))
}

// inTx runs fn, a write, in a transaction and commits it. A COMMIT whose
// answer was lost is settled (settleCommit): the transaction reads its id
// before it commits, a round trip more, so that a write PostgreSQL can
// tell committed or rolled back is answered so, not ErrCommitUnknown.
func (s *Store) inTx(ctx context.Context, fn func(pgx.Tx) error) error {
	return s.inTxWithID(ctx, func(tx pgx.Tx) (string, error) {
		if err := fn(tx); err != nil {
			return "", err
		}
		var xid string
		err := tx.QueryRow(ctx, `SELECT pg_current_xact_id()::text`).Scan(&xid)
		return xid, err
	})
}

// inTxWithID runs fn in a transaction and commits it; fn returns the
// transaction's id (pg_current_xact_id), with which a COMMIT whose answer
// was lost is settled, or "" to leave it unknown (ErrCommitUnknown).
func (s *Store) inTxWithID(ctx context.Context, fn func(pgx.Tx) (string, error)) error {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(ctx) //nolint:errcheck // a no-op after Commit
	xid, err := fn(tx)
	if err != nil {
		return err
	}
	err = commit(ctx, tx)
	if errors.Is(err, ErrCommitUnknown) && xid != "" {
		err = s.settleCommit(ctx, xid, err)
	}
	return err
}

// inTxRow runs fn in a transaction as inTx does and returns thread id's
// row as that transaction leaves it. A write is answered from its own
// transaction: a read after the commit could fail (the database gone
// meanwhile) and answer a committed write as failed, which invites the
// caller to write it again.
func (s *Store) inTxRow(ctx context.Context, id string, fn func(pgx.Tx) error) (Thread, error) {
	var t Thread
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		if err := fn(tx); err != nil {
			return err
		}
		var err error
		t, err = getThread(ctx, tx, id, "")
		return err
	})
	return t, err
}

// commit commits tx. An error PostgreSQL answered means the transaction
// was not committed; any other (the connection broke after the COMMIT
// was sent) leaves it unknown, and wraps ErrCommitUnknown.
//
// A FATAL answer is a refusal too: a session ended at its COMMIT before
// the commit record (a fast shutdown) is answered FATAL 57P01, and one
// ended after it, while the COMMIT waits for a synchronous standby, is
// not answered at all: PostgreSQL sends a WARNING that the transaction
// committed locally and closes the connection without the FATAL
// (SyncRepWaitForLSN sets whereToSendOutput to DestNone), which pgx
// reports as a closed connection, so ErrCommitUnknown (seen on 15.18 with
// synchronous_standby_names naming no standby and pg_terminate_backend).
// inTxWithID settles a lost answer with pg_xact_status (settleCommit).
func commit(ctx context.Context, tx pgx.Tx) error {
	if commitSentLost != nil {
		if err := commitSentLost(); err != nil {
			tx.Rollback(ctx) //nolint:errcheck // as the server rolls back a session that ended
			return &commitLostError{cause: err}
		}
	}
	err := tx.Commit(ctx)
	if err == nil && commitAnswerLost != nil {
		err = commitAnswerLost()
	}
	var pgErr *pgconn.PgError
	if err == nil || errors.As(err, &pgErr) || errors.Is(err, pgx.ErrTxClosed) {
		return err
	}
	return &commitLostError{cause: err}
}

// commitLostError is a COMMIT whose answer was lost: it matches
// ErrCommitUnknown, and unwraps to why the answer was lost.
type commitLostError struct{ cause error }

func (e *commitLostError) Error() string   { return ErrCommitUnknown.Error() + ": " + e.cause.Error() }
func (e *commitLostError) Unwrap() []error { return []error{ErrCommitUnknown, e.cause} }

// settleCommit returns the outcome of transaction xid (its
// pg_current_xact_id) whose COMMIT's answer was lost (err), as PostgreSQL
// tells it on another connection: nil when it committed; when it rolled
// back, an error that does not match ErrCommitUnknown (nothing was
// written); err itself when that cannot be told (the database cannot be
// reached, or the ended session's transaction is still in progress), and
// when it committed where commits wait for a synchronous standby: a
// session ended during that wait committed locally, and the standby may
// not have the write, which an answer of success would promise.
func (s *Store) settleCommit(ctx context.Context, xid string, err error) error {
	var lost *commitLostError
	if !errors.As(err, &lost) {
		return err
	}
	var status *string
	var syncRep bool
	var readErr error
	if xactStatusLost != nil {
		readErr = xactStatusLost()
	}
	// A COMMIT cut off by the query timeout is cancelled (pgx sends a
	// cancel request as it closes the connection): its transaction is in
	// progress until the cancel lands, so an answer of "in progress" is
	// asked again, for about a second.
	for wait := 10 * time.Millisecond; readErr == nil; wait *= 2 {
		readErr = s.pool.QueryRow(ctx, `SELECT pg_xact_status($1::xid8),
			current_setting('synchronous_standby_names') <> '' AND current_setting('synchronous_commit') NOT IN ('off', 'local')`,
			xid).Scan(&status, &syncRep)
		if readErr != nil || status == nil || *status != "in progress" || wait > time.Second {
			break
		}
		select {
		case <-ctx.Done():
			readErr = ctx.Err()
		case <-time.After(wait):
		}
	}
	if syncRepForced != nil {
		syncRep = syncRepForced()
	}
	switch {
	case readErr != nil || status == nil:
		return err
	case *status == "committed" && syncRep:
		return err
	case *status == "committed":
		return nil
	case *status == "aborted":
		return fmt.Errorf("transaction %s rolled back when the answer to its commit was lost: %w", xid, lost.cause)
	}
	return err
}

// commitSentLost, when set (by tests), is called before a commit, and an
// error it returns is returned as if the COMMIT had been lost on its way:
// the transaction is rolled back instead.
var commitSentLost func() error

// xactStatusLost, when set (by tests), is called before a lost commit's
// status is read, and its error is returned as the read's.
var xactStatusLost func() error

// syncRepForced, when set (by tests), says whether commits wait for a
// synchronous standby, instead of the server's settings.
var syncRepForced func() bool

// commitAnswerLost, when set (by tests), is called after a commit that
// succeeded, and its error is returned as if the answer had been lost.
var commitAnswerLost func() error

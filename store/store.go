package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/pressly/goose/v3"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/spoolhq/spool/migrations"
)

// busyTimeoutMs is how long a connection waits for a lock before SQLITE_BUSY.
const busyTimeoutMs = 10000

// Store is an open index. It is safe for concurrent use: writes go through
// one connection (transactions begin IMMEDIATE), reads through a pool.
type Store struct {
	path    string
	writer  *sqlx.DB // one connection; every write transaction goes here
	reader  *sqlx.DB // query_only pool for reads, concurrent with the writer under WAL
	advance *advanceStmts
	stmts   stmtCache     // statements prepared on first use, on either pool
	chains  chainCache    // history chains read, while no link changed
	ckpt    *checkpointer // nil for a read-only store
	pages   pageCache     // unused by a read-only store
	schema  Migration     // what Open did to the schema
}

// Migration is what Open did to the schema of the index it opened.
type Migration struct {
	From int64         // the schema version found: 0 for a new index
	To   int64         // the schema version now
	Took time.Duration // how long the migrations from From to To took
}

// Upgraded reports whether Open found an index an older release wrote and
// migrated it: not a new index, and not one already at this schema.
func (m Migration) Upgraded() bool { return m.From > 0 && m.To > m.From }

// writerDSN returns the file: URI of the writer connection for path. A bare
// path would make the driver drop the query string (see NOTES.md).
func writerDSN(path string) string {
	q := url.Values{}
	q.Set("_txlock", "immediate")
	q.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", busyTimeoutMs))
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "synchronous(NORMAL)")
	q.Add("_pragma", "foreign_keys(ON)")
	// Statement journals (every multi-row statement in a transaction
	// keeps one) stay in memory instead of a temporary file.
	q.Add("_pragma", "temp_store(MEMORY)")
	// Commits never checkpoint; the checkpointer does, off their path.
	q.Add("_pragma", "wal_autocheckpoint(0)")
	return fileURI(path, q)
}

// checkpointDSN returns the file: URI of the checkpointer's connection.
func checkpointDSN(path string) string {
	q := url.Values{}
	q.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", busyTimeoutMs))
	return fileURI(path, q)
}

// readerDSN returns the file: URI of the read-only pool for path.
func readerDSN(path string) string {
	q := url.Values{}
	q.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", busyTimeoutMs))
	q.Add("_pragma", "foreign_keys(ON)")
	q.Add("_pragma", "query_only(1)")
	return fileURI(path, q)
}

func fileURI(path string, q url.Values) string {
	u := url.URL{Scheme: "file", Path: filepath.ToSlash(path), RawQuery: q.Encode()}
	// url.URL renders an absolute path as file:///abs, which SQLite accepts.
	return u.String()
}

// Open opens (creating it if needed) the index at path, applies the
// embedded migrations, and checks that WAL mode is on. It returns an error
// wrapping ErrSchemaTooNew, ErrUnmigratable or ErrCorrupt when the file
// cannot be used.
//
// A missing index file is created with DefaultFileMode (see SetFileMode to
// choose another); an existing one keeps its mode.
//
// Open does not scan the whole file; call Check for a full integrity check.
func Open(ctx context.Context, path string) (*Store, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("open index %s: %w", path, err)
	}
	if err := createIndexFile(abs); err != nil {
		return nil, fmt.Errorf("open index %s: %w", path, err)
	}
	if err := checkNotForeign(ctx, abs); err != nil {
		return nil, fmt.Errorf("open index %s: %w", path, err)
	}
	migrated, err := migrate(ctx, abs)
	if err != nil {
		return nil, fmt.Errorf("open index %s: %w", path, classify(err))
	}
	s := &Store{path: path, schema: migrated}
	if s.writer, err = sqlx.Open("sqlite", writerDSN(abs)); err != nil {
		return nil, fmt.Errorf("open index %s: %w", path, err)
	}
	s.writer.SetMaxOpenConns(1)
	s.writer.SetMaxIdleConns(1)
	s.writer.SetConnMaxIdleTime(0)
	s.writer.SetConnMaxLifetime(0)

	var mode string
	if err := s.writer.GetContext(ctx, &mode, "PRAGMA journal_mode"); err != nil {
		s.writer.Close()
		return nil, fmt.Errorf("open index %s: %w", path, classify(err))
	}
	if !strings.EqualFold(mode, "wal") {
		s.writer.Close()
		return nil, fmt.Errorf("open index %s: journal mode is %q, want wal", path, mode)
	}

	if s.advance, err = prepareAdvance(ctx, s.writer); err != nil {
		s.writer.Close()
		return nil, fmt.Errorf("open index %s: %w", path, classify(err))
	}
	if err := s.prepareWriter(ctx); err != nil {
		s.advance.close()
		s.writer.Close()
		return nil, fmt.Errorf("open index %s: %w", path, classify(err))
	}

	if s.ckpt, err = startCheckpointer(ctx, abs, s.restartWAL); err != nil {
		s.advance.close()
		s.writer.Close()
		return nil, fmt.Errorf("open index %s: %w", path, classify(err))
	}
	if s.reader, err = sqlx.Open("sqlite", readerDSN(abs)); err != nil {
		s.ckpt.close()
		s.advance.close()
		s.writer.Close()
		return nil, fmt.Errorf("open index %s: %w", path, err)
	}
	readers := max(4, runtime.GOMAXPROCS(0))
	s.reader.SetMaxOpenConns(readers)
	s.reader.SetMaxIdleConns(readers)
	if err := s.reader.PingContext(ctx); err != nil {
		s.Close()
		return nil, fmt.Errorf("open index %s: %w", path, classify(err))
	}
	// The first commit into a WAL that the last close removed starts it
	// and fsyncs its header: make it here, not in the first append or fork.
	if err := s.restartWAL(ctx); err != nil {
		s.Close()
		return nil, fmt.Errorf("open index %s: %w", path, classify(err))
	}
	return s, nil
}

// Migrated returns what Open did to the schema: From equals To when the
// index was up to date.
func (s *Store) Migrated() Migration { return s.schema }

// checkNotForeign fails with ErrNotIndex when the existing file at path is
// an SQLite database with tables but without spool's schema record: another
// program's database, named as the index by mistake (-index
// ~/.codex/state_5.sqlite). It reads through a read-only connection, before
// anything writes: the writer's connection would switch the file to WAL and
// the migrations would add their record to it before failing on a table of
// the same name. An empty file, a spool index and a file SQLite cannot read
// pass: the open reports those as before.
func checkNotForeign(ctx context.Context, path string) error {
	if fi, err := os.Stat(path); err != nil || fi.Size() == 0 {
		return nil
	}
	q := url.Values{}
	q.Set("mode", "ro")
	if _, err := os.Stat(path + "-wal"); errors.Is(err, fs.ErrNotExist) {
		q.Set("immutable", "1") // no writer has it open: create no -wal or -shm
	}
	q.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", busyTimeoutMs))
	db, err := sql.Open("sqlite", fileURI(path, q))
	if err != nil {
		return nil
	}
	defer db.Close()
	tables, spool, err := tablesOf(ctx, db)
	if err != nil || spool || len(tables) == 0 {
		return nil
	}
	return foreignError(tables)
}

// tablesOf returns the names of db's own tables and whether one is spool's
// schema record.
func tablesOf(ctx context.Context, db interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}) (tables []string, spool bool, err error) {
	rows, err := db.QueryContext(ctx, `SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite\_%' ESCAPE '\' ORDER BY name`)
	if err != nil {
		return nil, false, err
	}
	defer rows.Close()
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			return nil, false, err
		}
		if name == goose.DefaultTablename {
			spool = true
		}
		tables = append(tables, name)
	}
	return tables, spool, rows.Err()
}

// foreignError is ErrNotIndex for a database holding tables, naming a few.
func foreignError(tables []string) error {
	names := tables
	if len(names) > 4 {
		names = append(names[:4:4], "...")
	}
	return fmt.Errorf("%w: the file is another program's SQLite database (tables %s), left as it is; give spool an index file of its own", ErrNotIndex, strings.Join(names, ", "))
}

// newMigrator returns a goose provider over db with the embedded migrations.
// Closing the provider closes db.
func newMigrator(db *sql.DB) (*goose.Provider, error) {
	return goose.NewProvider(goose.DialectSQLite3, db, migrations.FS, goose.WithDisableGlobalRegistry(true))
}

// migrate refuses a schema newer than the embedded migrations and applies
// the pending ones, on a connection of its own. It returns the versions
// before and after.
func migrate(ctx context.Context, path string) (mig Migration, err error) {
	db, err := sql.Open("sqlite", writerDSN(path))
	if err != nil {
		return mig, err
	}
	db.SetMaxOpenConns(1)
	p, err := newMigrator(db)
	if err != nil {
		db.Close()
		return mig, fmt.Errorf("load migrations: %w", err)
	}
	defer func() {
		if cerr := p.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("close migrator: %w", cerr)
		}
	}()

	// The first statement is where a file that is not a database shows.
	var hasVersions bool
	const q = `SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?)`
	if err := db.QueryRowContext(ctx, q, goose.DefaultTablename).Scan(&hasVersions); err != nil {
		return mig, err
	}
	if hasVersions {
		var dbVersion int64
		err := db.QueryRowContext(ctx, `SELECT COALESCE(MAX(version_id), 0) FROM `+goose.DefaultTablename).Scan(&dbVersion)
		if err != nil {
			return mig, fmt.Errorf("read schema version: %w", err)
		}
		mig.From, mig.To = dbVersion, dbVersion
		var known int64
		for _, src := range p.ListSources() {
			known = max(known, src.Version)
		}
		if dbVersion > known {
			return mig, fmt.Errorf("%w: index schema version %d, this binary knows up to %d; upgrade spool or rebuild the index with `reindex --full`",
				ErrSchemaTooNew, dbVersion, known)
		}
		if missing, err := missingBelow(ctx, p, dbVersion); err != nil {
			return mig, err
		} else if len(missing) > 0 {
			return mig, fmt.Errorf("%w: index schema version %d lacks the older migrations %v; rebuild it with `reindex --full`",
				ErrUnmigratable, dbVersion, missing)
		}
	}
	if err := restoreDeferredAtOpen(ctx, db); err != nil {
		return mig, fmt.Errorf("build the list indexes a first index left unbuilt: %w", err)
	}
	began := time.Now()
	applied, err := p.Up(ctx)
	if err != nil {
		return mig, fmt.Errorf("apply migrations: %w", err)
	}
	for _, r := range applied {
		mig.To = max(mig.To, r.Source.Version)
	}
	mig.Took = time.Since(began)
	return mig, nil
}

// missingBelow returns the migrations below version that the index has not
// applied: an index made by a build between two migrations' arrival.
func missingBelow(ctx context.Context, p *goose.Provider, version int64) ([]int64, error) {
	status, err := p.Status(ctx)
	if err != nil {
		return nil, fmt.Errorf("read schema status: %w", err)
	}
	var missing []int64
	for _, m := range status {
		if m.State == goose.StatePending && m.Source.Version < version {
			missing = append(missing, m.Source.Version)
		}
	}
	return missing, nil
}

// classify wraps err with ErrCorrupt when SQLite reports that the file is
// not a database or is damaged, with syscall.ENOSPC when it reports
// that the disk is full (SQLITE_FULL), so that a full disk is told apart
// in the same way whether a rollout or the index filled it, and with
// ErrWriteLocked when another connection kept the lock past the busy timeout.
func classify(err error) error {
	if err == nil || errors.Is(err, ErrCorrupt) || errors.Is(err, syscall.ENOSPC) {
		return err
	}
	if isCorruption(err) {
		return fmt.Errorf("%w (rebuild it with `reindex --full`): %w", ErrCorrupt, err)
	}
	if isFull(err) {
		return fmt.Errorf("%w (%w)", err, syscall.ENOSPC)
	}
	if isBusy(err) && !errors.Is(err, ErrWriteLocked) {
		return fmt.Errorf("%w: %w", ErrWriteLocked, err)
	}
	return err
}

// isBusy reports whether SQLite gave up waiting for a lock: SQLITE_BUSY.
func isBusy(err error) bool {
	var serr *sqlite.Error
	return errors.As(err, &serr) && serr.Code()&0xff == sqlite3.SQLITE_BUSY
}

// isFull reports whether SQLite found no room to write: SQLITE_FULL.
func isFull(err error) bool {
	var serr *sqlite.Error
	return errors.As(err, &serr) && serr.Code()&0xff == sqlite3.SQLITE_FULL
}

func isCorruption(err error) bool {
	var serr *sqlite.Error
	if !errors.As(err, &serr) {
		return false
	}
	switch serr.Code() & 0xff { // primary result code
	case sqlite3.SQLITE_NOTADB, sqlite3.SQLITE_CORRUPT:
		return true
	}
	return false
}

// isConstraint reports whether err is a primary-key or unique violation.
func isConstraint(err error) bool {
	var serr *sqlite.Error
	if !errors.As(err, &serr) {
		return false
	}
	switch serr.Code() {
	case sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY, sqlite3.SQLITE_CONSTRAINT_UNIQUE:
		return true
	}
	return false
}

// Check runs SQLite's quick_check over the whole file (slow on a big index)
// and returns an error wrapping ErrCorrupt when it finds damage.
func (s *Store) Check(ctx context.Context) error {
	var results []string
	if err := s.reader.SelectContext(ctx, &results, "PRAGMA quick_check"); err != nil {
		return fmt.Errorf("check index %s: %w", s.path, classify(err))
	}
	if len(results) != 1 || results[0] != "ok" {
		return fmt.Errorf("check index %s: %w (rebuild it with `reindex --full`): %s",
			s.path, ErrCorrupt, strings.Join(results, "; "))
	}
	return nil
}

// Close closes both connection pools.
func (s *Store) Close() error {
	errs := []error{s.stmts.close()}
	if s.reader != nil {
		errs = append(errs, s.reader.Close())
	}
	if s.advance != nil {
		errs = append(errs, s.advance.close())
	}
	errs = append(errs, s.ckpt.close())
	if s.writer != nil {
		// Let SQLite refresh planner statistics the session showed a need for.
		if _, err := s.writer.Exec("PRAGMA optimize"); err != nil {
			errs = append(errs, fmt.Errorf("optimize: %w", err))
		}
		errs = append(errs, s.writer.Close())
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("close index %s: %w", s.path, err)
	}
	return nil
}

// Path returns the index file path.
func (s *Store) Path() string { return s.path }

// Stats returns counts over the whole index.
func (s *Store) Stats(ctx context.Context) (Stats, error) {
	var st Stats
	const q = `SELECT
		(SELECT COUNT(*) FROM threads),
		(SELECT COUNT(*) FROM threads WHERE archived = 1),
		(SELECT COUNT(*) FROM user_messages),
		(SELECT page_count * page_size FROM pragma_page_count(), pragma_page_size())`
	err := s.reader.QueryRowContext(ctx, q).Scan(&st.Threads, &st.Archived, &st.UserMessages, &st.IndexBytes)
	if err != nil {
		return Stats{}, fmt.Errorf("index stats: %w", err)
	}
	return st, nil
}

// inTx runs fn in one write transaction (BEGIN IMMEDIATE), committing when
// fn returns nil and rolling back otherwise.
func (s *Store) inTx(ctx context.Context, fn func(tx *sqlx.Tx) error) error {
	if s.writer == nil {
		return ErrReadOnly
	}
	tx, err := s.writer.BeginTxx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin: %w", classify(err))
	}
	if err := fn(tx); err != nil {
		// A transaction whose context ended is rolled back by database/sql
		// already: ErrTxDone then says nothing went wrong with the rollback.
		if rerr := tx.Rollback(); rerr != nil && !errors.Is(rerr, sql.ErrTxDone) {
			return errors.Join(classify(err), fmt.Errorf("rollback: %w", rerr))
		}
		return classify(err)
	}
	err = tx.Commit()
	s.wrote()
	if errors.Is(err, sql.ErrTxDone) && ctx.Err() != nil {
		// The context ended after fn: database/sql rolled back for it.
		return ctx.Err()
	}
	if err != nil {
		return fmt.Errorf("commit: %w", classify(err))
	}
	return nil
}

// restartWAL rewrites the wal_restart row on the writer's connection (the
// checkpointer's restart: no page a reader sees changes).
func (s *Store) restartWAL(ctx context.Context) error {
	_, err := s.writer.ExecContext(ctx, `UPDATE wal_restart SET n = n + 1`)
	return err
}

// wrote records that the writer committed (or may have committed) a
// change: cached pages are stale, and the WAL grew.
func (s *Store) wrote() {
	s.pages.changed()
	s.ckpt.noted()
}

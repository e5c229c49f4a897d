package store

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"

	"github.com/jmoiron/sqlx"

	"github.com/spoolhq/spool/migrations"
)

// ErrReadOnly is returned (wrapped) by the writing methods of a store
// opened with OpenReadOnly.
var ErrReadOnly = errors.New("store: opened read-only")

// OpenReadOnly opens the index at path for reading only, beside a process
// that may be writing it (spoold). It creates nothing, applies no
// migration and takes no lock: the file must exist with the schema this
// binary knows, else the error wraps fs.ErrNotExist or ErrSchemaTooNew.
// When no writer has it open, it is read as an immutable file (SQLite then
// creates no -wal or -shm file either). Every read sees a consistent
// snapshot per query; two queries may see
// different snapshots while the writer commits. Writing methods fail.
func OpenReadOnly(ctx context.Context, path string) (*Store, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("open index %s: %w", path, err)
	}
	if _, err := os.Stat(abs); err != nil {
		return nil, fmt.Errorf("open index %s: %w", path, err)
	}
	q := url.Values{}
	q.Set("mode", "ro")
	if _, err := os.Stat(abs + "-wal"); errors.Is(err, fs.ErrNotExist) {
		// No writer has the index open (SQLite removes the WAL when its
		// last writer closes): read it as an immutable file, or SQLite
		// would create the -wal and -shm files beside it to read it.
		q.Set("immutable", "1")
	}
	q.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", busyTimeoutMs))
	q.Add("_pragma", "query_only(1)")
	s := &Store{path: path}
	if s.reader, err = sqlx.Open("sqlite", fileURI(abs, q)); err != nil {
		return nil, fmt.Errorf("open index %s: %w", path, err)
	}
	readers := max(4, runtime.GOMAXPROCS(0))
	s.reader.SetMaxOpenConns(readers)
	s.reader.SetMaxIdleConns(readers)
	if err := s.checkVersion(ctx); err != nil {
		s.reader.Close()
		return nil, fmt.Errorf("open index %s: %w", path, classify(err))
	}
	return s, nil
}

// checkVersion checks that the index has exactly the schema this binary
// migrates to: a read-only store cannot migrate an older one.
func (s *Store) checkVersion(ctx context.Context) error {
	known, err := knownVersion()
	if err != nil {
		return err
	}
	if tables, spool, err := tablesOf(ctx, s.reader); err == nil && !spool {
		if len(tables) == 0 {
			// Empty: a reindex that failed before its first write (a
			// full disk) leaves the file it created.
			return emptyIndexError{}
		}
		return foreignError(tables)
	}
	var applied []int64
	if err := s.reader.SelectContext(ctx, &applied, `SELECT DISTINCT version_id FROM goose_db_version WHERE version_id > 0 ORDER BY version_id`); err != nil {
		return fmt.Errorf("read schema version: %w", err)
	}
	var version int64
	if len(applied) > 0 {
		version = applied[len(applied)-1]
	}
	switch {
	case version <= known && int64(len(applied)) < version:
		// Migrations are numbered from 1 without gaps: some below the
		// index's version were never applied to it.
		return fmt.Errorf("%w: index schema version %d lacks %d older migrations; rebuild it with `reindex --full`",
			ErrUnmigratable, version, version-int64(len(applied)))
	case version > known:
		return fmt.Errorf("%w: index schema version %d, this binary knows up to %d", ErrSchemaTooNew, version, known)
	case version < known:
		return fmt.Errorf("index schema version %d is older than %d: open it once read-write (spoold or reindex) to migrate: %w", version, known, fs.ErrInvalid)
	}
	return nil
}

// knownVersion is the highest migration this binary holds (the number
// leading its file name).
func knownVersion() (int64, error) {
	entries, err := fs.ReadDir(migrations.FS, ".")
	if err != nil {
		return 0, fmt.Errorf("list migrations: %w", err)
	}
	var known int64
	for _, e := range entries {
		num, _, ok := strings.Cut(e.Name(), "_")
		if !ok || !strings.HasSuffix(e.Name(), ".sql") {
			continue
		}
		if v, err := strconv.ParseInt(num, 10, 64); err == nil {
			known = max(known, v)
		}
	}
	return known, nil
}

// emptyIndexError reports an index file that holds no table, which a
// read-only open treats as no index: it is fs.ErrNotExist to errors.Is,
// with a message that does not claim the file is missing.
type emptyIndexError struct{}

func (emptyIndexError) Error() string { return "the file is empty: it holds no index" }
func (emptyIndexError) Unwrap() error { return fs.ErrNotExist }

// Package storetest gives tests a new index without the cost of making
// one: migrating a new index parses its schema again after every
// migration, a third of a second under the race detector, and most tests
// start from one.
package storetest

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/spoolhq/spool/store"
)

// Write writes at path a new index with no rows, unless a file is there
// already or its folder is not: a copy of one store.Open made once per
// process, which an Open of path finds at the newest schema. It is what a
// new index is, except that its Migrated says it was not new.
func Write(tb testing.TB, path string) {
	tb.Helper()
	if _, err := os.Stat(filepath.Dir(path)); err != nil {
		return
	}
	if _, err := os.Lstat(path); !errors.Is(err, fs.ErrNotExist) {
		return
	}
	empty.once.Do(func() { empty.bytes, empty.err = migrated() })
	if empty.err != nil {
		tb.Fatal(empty.err)
	}
	if err := os.WriteFile(path, empty.bytes, 0o600); err != nil {
		tb.Fatal(err)
	}
}

// WriteForeign writes at path another program's SQLite database (a
// threads table, as Codex's state_5.sqlite has one), which store.Open
// refuses with store.ErrNotIndex.
func WriteForeign(tb testing.TB, path string) {
	tb.Helper()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		tb.Fatal(err)
	}
	_, err = db.ExecContext(context.Background(), `CREATE TABLE threads (id TEXT PRIMARY KEY)`)
	if cerr := db.Close(); err != nil || cerr != nil {
		tb.Fatal(err, cerr)
	}
}

// Open opens a new index with no rows in a directory of tb's, closed
// with the test.
func Open(tb testing.TB) *store.Store {
	tb.Helper()
	path := filepath.Join(tb.TempDir(), "spool.db")
	Write(tb, path)
	st, err := store.Open(context.Background(), path) // tb.Context is done in a cleanup
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if err := st.Close(); err != nil {
			tb.Errorf("close store: %v", err)
		}
	})
	return st
}

// empty holds the bytes of an index with no rows, made once per process.
var empty struct {
	once  sync.Once
	bytes []byte
	err   error
}

// migrated opens a new index, closes it (which leaves everything in its
// main file), and returns that file's bytes.
func migrated() ([]byte, error) {
	dir, err := os.MkdirTemp("", "storetest-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "empty.db")
	st, err := store.Open(context.Background(), path)
	if err != nil {
		return nil, err
	}
	if err := st.Close(); err != nil {
		return nil, err
	}
	if _, err := os.Stat(path + "-wal"); err == nil {
		return nil, fmt.Errorf("closed index %s left its WAL", path)
	}
	return os.ReadFile(path)
}

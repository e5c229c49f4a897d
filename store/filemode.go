package store

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// DefaultFileMode is the mode of an index file Open creates. The index holds
// the text of every user message, so by default only its owner may read it.
// SQLite gives the -wal and -shm files it creates the mode of the database
// file, so they follow.
const DefaultFileMode fs.FileMode = 0o600

// indexSuffixes are the files SQLite keeps next to an index in WAL mode.
var indexSuffixes = []string{"", "-wal", "-shm"}

// createIndexFile creates path with DefaultFileMode when it does not exist,
// so that SQLite (which would create it 0644 less the umask) opens a file
// whose mode is already right. An existing file keeps its mode.
func createIndexFile(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, DefaultFileMode)
	if errors.Is(err, fs.ErrExist) {
		return checkWritable(path)
	}
	if err != nil {
		return err
	}
	return f.Close()
}

// checkWritable fails, before SQLite opens anything, when the existing
// index at path, its directory, or its -wal or -shm file cannot be
// written: SQLite would create the -wal and -shm files read-only as the
// index is, and they would keep the index unusable after the index itself
// was made writable again; the error names the file that is read-only.
func checkWritable(path string) error {
	for _, p := range []string{path, filepath.Dir(path), path + "-wal", path + "-shm"} {
		err := writable(p)
		if errors.Is(err, fs.ErrNotExist) {
			continue // no -wal or -shm: SQLite makes them like the index
		}
		if err != nil {
			return fmt.Errorf("%s is not writable (reindex --verify reads the index without writing): %w", p, err)
		}
	}
	return nil
}

// writable reports whether this process may write p (access(2)); a
// variable for tests, which may run as root.
var writable = func(p string) error {
	if err := unix.Access(p, unix.W_OK); err != nil {
		return &fs.PathError{Op: "access", Path: p, Err: err}
	}
	return nil
}

// SetFileMode gives the index at path and its -wal and -shm files the
// permission bits mode, creating an empty index file with that mode when
// none exists (Open then keeps it). Call it before Open to make an index
// created by an older version private, or to share one with a group on
// purpose; files that do not exist are skipped, and SQLite creates later
// -wal and -shm files with the database file's mode.
func SetFileMode(path string, mode fs.FileMode) error {
	mode &= fs.ModePerm
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, mode)
	switch {
	case err == nil:
		if err := f.Close(); err != nil {
			return fmt.Errorf("set index file mode: %w", err)
		}
	case !errors.Is(err, fs.ErrExist):
		return fmt.Errorf("set index file mode: %w", err)
	default:
		// Another program's database, named by mistake, keeps its modes.
		if err := checkNotForeign(context.Background(), path); err != nil {
			return fmt.Errorf("index %s: %w", path, err)
		}
	}
	for _, suffix := range indexSuffixes {
		// Chmod is not subject to the umask, so the mode is exactly mode.
		if err := os.Chmod(path+suffix, mode); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("set index file mode: %w", err)
		}
	}
	return nil
}

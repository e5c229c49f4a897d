// Package flock holds the two steps every lock on a file spool keeps
// takes: flock(2), retried while a signal interrupts it, and the check
// that the locked descriptor is still the file a path names (a lock taken
// on a file someone removed or replaced meanwhile locks nothing anyone
// else will open).
package flock

import (
	"errors"
	"io/fs"
	"os"

	"golang.org/x/sys/unix"
)

// Flock calls flock(2) on f with how (unix.LOCK_EX, LOCK_SH, LOCK_UN,
// with LOCK_NB or not), again while a signal interrupts it.
func Flock(f *os.File, how int) error {
	for {
		err := unix.Flock(int(f.Fd()), how)
		if err != unix.EINTR {
			return err
		}
	}
}

// StillAt reports whether path still names the file open as f: false,
// without an error, when path names nothing or another file.
func StillAt(f *os.File, path string) (bool, error) {
	open, err := f.Stat()
	if err != nil {
		return false, err
	}
	named, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return os.SameFile(open, named), nil
}

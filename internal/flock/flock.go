// Package flock holds the two steps every lock on a file spool keeps
// takes: flock(2), retried while a signal interrupts it, and the check
// that the locked descriptor is still the file a path names (a lock taken
// on a file someone removed or replaced meanwhile locks nothing anyone
// else will open); and TryExclusive, which puts them together for a lock
// file other processes may remove.
package flock

import (
	"errors"
	"io/fs"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// ErrHeld reports a lock another open file description holds: another
// process, or another open of the file in this one.
var ErrHeld = errors.New("flock: lock held by another process")

// TryExclusive takes an exclusive flock(2) on the lock file at path
// without waiting, and returns the locked file; closing it releases the
// lock. The file is created with perm when missing; a symbolic link at
// path is refused, and a FIFO cannot hang the open. A lock another
// process holds fails with ErrHeld, unwrapped, so a caller that polls
// pays no allocation for it. When the holder removes or replaces the file
// between the open and the lock, TryExclusive opens the path again: a
// lock on a file the path no longer names excludes nobody.
func TryExclusive(path string, perm fs.FileMode) (*os.File, error) {
	for {
		f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, perm)
		if err != nil {
			return nil, err
		}
		err = Flock(f, unix.LOCK_EX|unix.LOCK_NB)
		if errors.Is(err, unix.EWOULDBLOCK) {
			f.Close()
			return nil, ErrHeld
		}
		if err != nil {
			f.Close()
			return nil, &fs.PathError{Op: "flock", Path: path, Err: err}
		}
		same, err := StillAt(f, path)
		if err != nil {
			f.Close()
			return nil, err
		}
		if same {
			return f, nil
		}
		f.Close()
	}
}

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

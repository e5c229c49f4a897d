// Package codexlock takes the per-thread writer locks of Codex 0.169, so
// that spool and a running Codex never append to one rollout at once.
//
// The protocol, as the Codex binary shows it (docs/CODEX.md): a thread's
// writer holds an exclusive flock(2) on
// $CODEX_HOME/thread-writer-locks/<thread id>.lock for as long as the
// thread is loaded in its process; a second writer that cannot take it
// gives up at once. The lock file may be removed by its holder when it
// exits and created again by the next writer, so a lock is only held once
// the locked descriptor still names the file at that path.
package codexlock

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"

	"github.com/spoolhq/spool/internal/flock"
)

// Dir is the directory of the lock files, relative to a Codex home.
const Dir = "thread-writer-locks"

// ErrHeld reports a thread whose writer lock another process holds.
var ErrHeld = errors.New("codexlock: thread has another writer")

// HeldError reports a held lock; it wraps ErrHeld.
type HeldError struct {
	Path string // the lock file
	PID  int    // the holder's process id; 0 when the system cannot tell
}

func (e *HeldError) Error() string {
	if e.PID == 0 {
		return fmt.Sprintf("%s is held by another process", e.Path)
	}
	return fmt.Sprintf("%s is held by process %d", e.Path, e.PID)
}

// Unwrap returns ErrHeld.
func (e *HeldError) Unwrap() error { return ErrHeld }

// Lock is a held writer lock.
type Lock struct{ f *os.File }

// TryLock takes the writer lock of thread id in the Codex home without
// waiting. A lock another process holds fails with a *HeldError naming
// the holder where the system can tell.
func TryLock(home, id string) (*Lock, error) {
	dir := filepath.Join(home, Dir)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	path := filepath.Join(dir, id+".lock")
	f, err := flock.TryExclusive(path, 0o600)
	if errors.Is(err, flock.ErrHeld) {
		var pid int
		if st, err := os.Lstat(path); err == nil {
			pid = holder(st)
		}
		return nil, &HeldError{Path: path, PID: pid}
	}
	if err != nil {
		return nil, fmt.Errorf("writer lock: %w", err)
	}
	return &Lock{f: f}, nil
}

// Unlock releases the lock. The lock file stays, as Codex leaves it while
// it runs.
func (l *Lock) Unlock() error { return l.f.Close() }

// Remove removes the lock file, while the lock is still held, and then
// releases the lock: for a thread that is gone, whose lock file nobody
// needs. A process that opened the file before it was removed takes a lock
// nobody else looks at, as TryLock tells; one that opens the path after
// creates a new file. Remove releases the lock even when the removal
// fails.
func (l *Lock) Remove() error {
	path := l.f.Name()
	same, err := flock.StillAt(l.f, path)
	if err == nil && same {
		err = os.Remove(path)
	}
	return errors.Join(err, l.f.Close())
}

// File is one thread's lock file, kept open between locks so that taking
// the lock again costs a flock and an lstat rather than a directory check,
// an open, two stats and a close. Holding it open takes no lock: between
// Lock and Unlock the thread is locked, and at no other time, so a Codex
// process can resume the thread whenever no append is under way.
//
// A File is not safe for concurrent use; its owner serialises its calls
// (spool holds the thread's mutex around them). The zero value is not
// usable: call OpenFile.
type File struct {
	home, id string
	f        *os.File    // nil until the first TryLock, and after Close
	opened   os.FileInfo // f's identity, taken when it was opened
	locked   bool
}

// OpenFile returns the lock file of thread id in the Codex home. It does
// no I/O: the file is opened by the first TryLock.
func OpenFile(home, id string) *File { return &File{home: home, id: id} }

// TryLock takes the writer lock without waiting, as the package's TryLock
// does, through the descriptor kept open since the last call when the
// path still names its file. Unlock releases it.
func (lf *File) TryLock() error {
	if lf.locked {
		return errors.New("codexlock: lock file already locked")
	}
	if lf.f != nil {
		path := filepath.Join(lf.home, Dir, lf.id+".lock")
		err := flock.Flock(lf.f, unix.LOCK_EX|unix.LOCK_NB)
		if errors.Is(err, unix.EWOULDBLOCK) {
			return &HeldError{Path: path, PID: holder(lf.opened)}
		}
		if err == nil {
			named, serr := os.Lstat(path)
			if serr == nil && os.SameFile(lf.opened, named) {
				lf.locked = true
				return nil
			}
			err = serr
		}
		// The file was removed (a Codex that exited) or cannot be
		// checked: start again from the path.
		lf.f.Close()
		lf.f = nil
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("lock %s: %w", path, err)
		}
	}
	l, err := TryLock(lf.home, lf.id)
	if err != nil {
		return err
	}
	opened, err := l.f.Stat()
	if err != nil {
		l.Unlock()
		return err
	}
	lf.f, lf.opened, lf.locked = l.f, opened, true
	return nil
}

// Unlock releases the lock taken by TryLock and keeps the file open.
func (lf *File) Unlock() error {
	if !lf.locked {
		return errors.New("codexlock: lock file not locked")
	}
	lf.locked = false
	if err := flock.Flock(lf.f, unix.LOCK_UN); err != nil {
		// A lock that cannot be released is released by closing.
		name := lf.f.Name()
		lf.f.Close()
		lf.f = nil
		return fmt.Errorf("unlock %s: %w", name, err)
	}
	return nil
}

// Open reports whether the file holds a descriptor.
func (lf *File) Open() bool { return lf.f != nil }

// Close closes the descriptor, releasing the lock if it is held. The File
// can be used again: the next TryLock opens the file anew.
func (lf *File) Close() error {
	if lf.f == nil {
		return nil
	}
	err := lf.f.Close()
	lf.f, lf.locked = nil, false
	return err
}

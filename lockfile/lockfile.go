// Package lockfile gives one process at a time ownership of a spool root.
// The lock is an advisory flock(2) on a small file whose content names the
// holder, so a second process can say who is in the way. The kernel drops
// the lock when its holder exits, however it exits, so a stale file left by
// a crash never blocks anyone.
package lockfile

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/spoolhq/spool/internal/flock"
)

// FileName is the lock file's name, kept in the directory of the index
// file (by default the root itself, next to spool.db).
const FileName = "spool.lock"

// ErrLocked reports that another open file description holds the lock.
var ErrLocked = errors.New("lock is held")

// HeldError reports a lock held by someone else; it wraps ErrLocked.
type HeldError struct {
	Path   string // the lock file
	Holder string // the file's content, e.g. "spoold (pid 42) on host since 2026-..."; "" when unreadable
}

func (e *HeldError) Error() string {
	holder := e.Holder
	if holder == "" {
		holder = "an unknown process"
	}
	return fmt.Sprintf("%s is held by %s", e.Path, holder)
}

// Unwrap returns ErrLocked.
func (e *HeldError) Unwrap() error { return ErrLocked }

// Lock is a held lock. Release it when done; exiting releases it too.
type Lock struct {
	path    string
	created bool // Acquire created the file (Discard removes it)

	mu sync.Mutex // guards f
	f  *os.File   // nil once released
}

// Acquire creates or opens the file at path and takes an exclusive,
// non-blocking flock on it, then records the holder ("pid <pid> on <host>
// since <RFC3339 time>") as its content. When another open file
// description holds the lock (another process, or another Acquire in this
// one) it returns a *HeldError wrapping ErrLocked. A file removed by its
// holder (Discard) while Acquire opened it is opened again, so that a lock
// is only ever held on the file at path.
func Acquire(path string) (*Lock, error) {
	for {
		l, err := acquire(path)
		if !errors.Is(err, errRemoved) {
			return l, err
		}
	}
}

// errRemoved reports a lock taken on a file no longer at its path.
var errRemoved = errors.New("lock file removed")

func acquire(path string) (*Lock, error) {
	const flags, perm = os.O_RDWR | os.O_CREATE, 0o600 // private, as the root is; spoold gives it -file-mode
	created := true
	f, err := os.OpenFile(path, flags|os.O_EXCL, perm)
	if errors.Is(err, fs.ErrExist) {
		created = false
		f, err = os.OpenFile(path, flags, perm)
	}
	if err != nil {
		return nil, fmt.Errorf("open lock: %w", err) // a *PathError: it names path
	}
	if err := flock.Flock(f, unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, &HeldError{Path: path, Holder: readHolder(path)}
		}
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	locked, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	atPath, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) || err == nil && !os.SameFile(locked, atPath) {
		f.Close() // its holder discarded it between the open and the flock
		return nil, errRemoved
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	if err := writeHolder(f); err != nil {
		if created {
			os.Remove(path) // while locked: Acquire locks only the file at path
		}
		f.Close() // closing drops the flock
		return nil, fmt.Errorf("write lock: %w", err)
	}
	return &Lock{path: path, created: created, f: f}, nil
}

func writeHolder(f *os.File) error {
	host, err := os.Hostname()
	if err != nil {
		host = "unknown host"
	}
	holder := fmt.Sprintf("%s (pid %d) on %s since %s\n", filepath.Base(os.Args[0]), os.Getpid(), host, time.Now().Format(time.RFC3339))
	if err := f.Truncate(0); err != nil {
		return err
	}
	if _, err := f.WriteAt([]byte(holder), 0); err != nil {
		return err
	}
	return nil
}

// readHolder returns the holder recorded in the lock file, or "" when it
// cannot be read (the holder may be between truncating and writing it).
func readHolder(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// Path returns the lock file's path.
func (l *Lock) Path() string { return l.path }

// Discard is Release for a holder that is giving up before it used the
// lock (an open that failed): it first removes the file when Acquire
// created it, so that nothing of the attempt stays. A file that was there
// before stays. Removing it while the lock is held is safe: Acquire locks
// only the file at path.
func (l *Lock) Discard() error {
	l.mu.Lock()
	held := l.f != nil
	l.mu.Unlock()
	if held && l.created {
		if err := os.Remove(l.path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return errors.Join(fmt.Errorf("remove lock: %w", err), l.Release())
		}
	}
	return l.Release()
}

// Release drops the lock and closes the file. The file itself stays (with
// its last holder's content): removing it would race with a process that
// has opened it and is about to lock it. Releasing twice is a no-op.
func (l *Lock) Release() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil {
		return nil
	}
	f := l.f
	l.f = nil
	unlockErr := unix.Flock(int(f.Fd()), unix.LOCK_UN)
	closeErr := f.Close()
	if unlockErr != nil {
		return fmt.Errorf("unlock %s: %w", l.path, unlockErr)
	}
	if closeErr != nil {
		return fmt.Errorf("close lock %s: %w", l.path, closeErr)
	}
	return nil
}

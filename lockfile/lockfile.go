// Package lockfile gives one process at a time ownership of a spool root.
// The lock is an advisory flock(2) on a small file whose content names the
// holder, so a second process can say who is in the way. The kernel drops
// the lock when its holder exits, however it exits, so a stale file left by
// a crash never blocks anyone.
package lockfile

import (
	"errors"
	"fmt"
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
	path string

	mu sync.Mutex // guards f
	f  *os.File   // nil once released
}

// Acquire creates or opens the file at path and takes an exclusive,
// non-blocking flock on it, then records the holder ("pid <pid> on <host>
// since <RFC3339 time>") as its content. When another open file
// description holds the lock (another process, or another Acquire in this
// one) it returns a *HeldError wrapping ErrLocked.
func Acquire(path string) (*Lock, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600) // private, as the root is; spoold gives it -file-mode
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
	if err := writeHolder(f); err != nil {
		f.Close() // closing drops the flock
		return nil, fmt.Errorf("write lock: %w", err)
	}
	return &Lock{path: path, f: f}, nil
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

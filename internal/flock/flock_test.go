package flock_test

import (
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/spoolhq/spool/internal/flock"
)

// TestTryExclusive takes a lock twice (flock locks belong to open files,
// so a second open in this process is as good as another process): the
// second attempt fails at once with ErrHeld, and succeeds once the first
// file is closed.
func TestTryExclusive(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.lock")
	first, err := flock.TryExclusive(path, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(path); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("lock file = %v, %v; want mode 0600", st, err)
	}
	if _, err := flock.TryExclusive(path, 0o600); err != flock.ErrHeld {
		t.Fatalf("second TryExclusive = %v, want ErrHeld", err)
	}
	first.Close()
	again, err := flock.TryExclusive(path, 0o600)
	if err != nil {
		t.Fatalf("TryExclusive after close: %v", err)
	}
	again.Close()
}

// TestTryExclusiveAfterReplace replaces the lock file while it is held,
// as a holder that removes its lock file and a process that creates it
// again do: the next lock is on the file the path names now, and a lock
// on the old file does not hold it back.
func TestTryExclusiveAfterReplace(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.lock")
	stale, err := flock.TryExclusive(path, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer stale.Close()
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	fresh, err := flock.TryExclusive(path, 0o600)
	if err != nil {
		t.Fatalf("TryExclusive on the new file: %v", err)
	}
	defer fresh.Close()
	if same, err := flock.StillAt(fresh, path); err != nil || !same {
		t.Fatalf("StillAt(new lock) = %v, %v; want true", same, err)
	}
	if same, err := flock.StillAt(stale, path); err != nil || same {
		t.Fatalf("StillAt(stale lock) = %v, %v; want false", same, err)
	}
}

// TestTryExclusiveRefusesSymlink names a symbolic link: it is refused,
// and its target not created.
func TestTryExclusiveRefusesSymlink(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(dir, "target")
	link := filepath.Join(dir, "link.lock")
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	if f, err := flock.TryExclusive(link, 0o600); !errors.Is(err, syscall.ELOOP) {
		if f != nil {
			f.Close()
		}
		t.Errorf("TryExclusive(symlink) = %v, want ELOOP", err)
	}
	if _, err := os.Lstat(target); err == nil {
		t.Errorf("the link's target was created")
	}
}

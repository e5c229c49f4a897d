package codexlock_test

import (
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/spoolhq/spool/codexlock"
)

// TestTryLock takes a thread's lock twice (flock locks belong to open
// files, so a second open in one process is as good as a second process):
// the second attempt fails at once naming this process, and succeeds once
// the first is released.
func TestTryLock(t *testing.T) {
	home := t.TempDir()
	const id = "019dab4f-6b3e-7c21-9a40-5d3e2f1a0b9c"
	first, err := codexlock.TryLock(home, id)
	if err != nil {
		t.Fatal(err)
	}
	_, err = codexlock.TryLock(home, id)
	var held *codexlock.HeldError
	if !errors.As(err, &held) || !errors.Is(err, codexlock.ErrHeld) {
		t.Fatalf("second TryLock = %v, want a *HeldError", err)
	}
	if runtime.GOOS == "linux" && held.PID != os.Getpid() {
		t.Errorf("holder pid = %d, want %d (this process)", held.PID, os.Getpid())
	}
	if want := filepath.Join(home, codexlock.Dir, id+".lock"); held.Path != want {
		t.Errorf("lock path = %s, want %s", held.Path, want)
	}
	other, err := codexlock.TryLock(home, "67e55044-10b1-426f-9247-bb680e5fe0c8")
	if err != nil {
		t.Fatalf("another thread's lock: %v", err)
	}
	other.Unlock()
	if err := first.Unlock(); err != nil {
		t.Fatal(err)
	}
	again, err := codexlock.TryLock(home, id)
	if err != nil {
		t.Fatalf("TryLock after Unlock: %v", err)
	}
	again.Unlock()
}

// TestTryLockAfterFileRemoved removes the lock file while it is held, as a
// Codex process does when it exits: the next TryLock locks a new file at
// the path.
func TestTryLockAfterFileRemoved(t *testing.T) {
	home := t.TempDir()
	const id = "019dab4f-6b3e-7c21-9a40-5d3e2f1a0b9c"
	stale, err := codexlock.TryLock(home, id)
	if err != nil {
		t.Fatal(err)
	}
	defer stale.Unlock()
	if err := os.Remove(filepath.Join(home, codexlock.Dir, id+".lock")); err != nil {
		t.Fatal(err)
	}
	fresh, err := codexlock.TryLock(home, id)
	if err != nil {
		t.Fatalf("TryLock of a re-created lock file: %v", err)
	}
	fresh.Unlock()
}

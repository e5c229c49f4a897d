package codexlock_test

import (
	"errors"
	"io/fs"
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

// TestLockRemove: Remove takes the lock file away and frees the lock; a
// file someone else put at the path after ours was removed stays.
func TestLockRemove(t *testing.T) {
	home := t.TempDir()
	const id = "019dab4f-6b3e-7c21-9a40-5d3e2f1a0b9c"
	path := filepath.Join(home, codexlock.Dir, id+".lock")
	held, err := codexlock.TryLock(home, id)
	if err != nil {
		t.Fatal(err)
	}
	if err := held.Remove(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(path); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("lock file after Remove: %v, want it gone", err)
	}

	stale, err := codexlock.TryLock(home, id)
	if err != nil {
		t.Fatalf("TryLock after Remove: %v", err)
	}
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := stale.Remove(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(path); err != nil {
		t.Fatalf("a lock file another process made: %v, want it kept", err)
	}
}

// TestFileKeepsNoLockBetweenAppends is the promise that lets a File stay
// open for as long as spool holds a thread live: between TryLock and
// Unlock another writer (a Codex resuming the thread) is refused, and
// after Unlock it gets the lock at once while the File is still open.
func TestFileKeepsNoLockBetweenAppends(t *testing.T) {
	home := t.TempDir()
	const id = "019dab4f-6b3e-7c21-9a40-5d3e2f1a0b9c"
	lf := codexlock.OpenFile(home, id)
	defer lf.Close()
	for round := range 3 {
		if err := lf.TryLock(); err != nil {
			t.Fatalf("round %d: TryLock: %v", round, err)
		}
		if !lf.Open() {
			t.Fatalf("round %d: File holds no descriptor while locked", round)
		}
		if _, err := codexlock.TryLock(home, id); !errors.Is(err, codexlock.ErrHeld) {
			t.Fatalf("round %d: another writer's TryLock while locked = %v, want ErrHeld", round, err)
		}
		if err := lf.Unlock(); err != nil {
			t.Fatalf("round %d: Unlock: %v", round, err)
		}
		if !lf.Open() {
			t.Fatalf("round %d: File closed its descriptor on Unlock", round)
		}
		codex, err := codexlock.TryLock(home, id)
		if err != nil {
			t.Fatalf("round %d: another writer's TryLock after Unlock: %v", round, err)
		}
		// While the other writer holds it, the File is refused.
		if err := lf.TryLock(); !errors.Is(err, codexlock.ErrHeld) {
			t.Fatalf("round %d: File.TryLock while another holds it = %v, want ErrHeld", round, err)
		}
		codex.Unlock()
	}
}

// TestFileAfterLockFileRemoved removes the lock file between two locks, as
// a Codex that exits may: the File must lock the file now at the path, not
// the removed one it still has open, or a Codex starting next would take
// the new file's lock while spool appends.
func TestFileAfterLockFileRemoved(t *testing.T) {
	home := t.TempDir()
	const id = "019dab4f-6b3e-7c21-9a40-5d3e2f1a0b9c"
	lf := codexlock.OpenFile(home, id)
	defer lf.Close()
	if err := lf.TryLock(); err != nil {
		t.Fatal(err)
	}
	if err := lf.Unlock(); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(home, codexlock.Dir, id+".lock")
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if err := lf.TryLock(); err != nil {
		t.Fatalf("TryLock after the file was removed: %v", err)
	}
	defer lf.Unlock()
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("lock file not created again: %v", err)
	}
	if _, err := codexlock.TryLock(home, id); !errors.Is(err, codexlock.ErrHeld) {
		t.Fatalf("another writer's TryLock of the new file = %v, want ErrHeld: the File locked the removed file", err)
	}
}

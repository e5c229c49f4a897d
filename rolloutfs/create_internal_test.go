package rolloutfs

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// TestCreateWhoseDirSyncFailsLeavesNothing: a durable Create whose
// directory fsync fails (EIO) reports the error, so the file must not be
// there: it promises the file whole or not at all. The file stayed, linked
// into place: a start or fork reported as failed showed up as a thread at
// the next sync, and a revert reported as failed had its segment taken
// for the thread's newest file.
func TestCreateWhoseDirSyncFailsLeavesNothing(t *testing.T) {
	for _, name := range []string{"r.jsonl", "sessions/2026/01/05/r.jsonl"} {
		t.Run(name, func(t *testing.T) {
			l := Local{Root: t.TempDir()}
			realSyncDir := syncDir
			syncDir = func(p string) error { return &fs.PathError{Op: "fsync", Path: p, Err: syscall.EIO} }
			t.Cleanup(func() { syncDir = realSyncDir })
			if _, err := l.Create(t.Context(), name, []Part{Bytes([]byte("{\"type\":\"a\"}\n"))}, true); !errors.Is(err, syscall.EIO) {
				t.Fatalf("Create with a failing directory fsync: %v, want EIO", err)
			}
			if _, err := os.Lstat(filepath.Join(l.Root, filepath.FromSlash(name))); !errors.Is(err, fs.ErrNotExist) {
				t.Fatalf("the file after a failed Create: %v, want it absent", err)
			}
		})
	}
}

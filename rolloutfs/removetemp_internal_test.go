package rolloutfs

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// TestCreateOutlivesAnEarlyRemoveTemp: a RemoveTemp that takes a
// temporary file between its creation and its writer's lock (another
// process cleaning up) makes the writer take another name; the Create
// completes and leaves no temporary file.
func TestCreateOutlivesAnEarlyRemoveTemp(t *testing.T) {
	l := Local{Root: t.TempDir()}
	removed := 0
	lockTemp = func(f *os.File) error {
		if removed == 0 {
			rel, err := filepath.Rel(l.Root, f.Name())
			if err != nil {
				return err
			}
			if err := l.RemoveTemp(t.Context(), filepath.ToSlash(rel)); err != nil {
				t.Errorf("RemoveTemp before the lock: %v", err)
			}
			removed++
		}
		return lockTempFile(f)
	}
	defer func() { lockTemp = lockTempFile }()
	if _, err := l.Create(t.Context(), "d/a.jsonl", []Part{Bytes([]byte("a\n"))}, true); err != nil {
		t.Fatalf("Create: %v", err)
	}
	if removed != 1 {
		t.Fatalf("%d temporary files removed before their lock, want 1", removed)
	}
	data, err := os.ReadFile(filepath.Join(l.Root, "d", "a.jsonl"))
	if err != nil || string(data) != "a\n" {
		t.Fatalf("the created file: %q, %v", data, err)
	}
	entries, err := os.ReadDir(filepath.Join(l.Root, "d"))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), TempSuffix) {
			t.Fatalf("temporary file left: %s", e.Name())
		}
	}
}

// TestCreateWhoseLockFailsLeavesNoTemp: a Create whose temporary file
// cannot be locked (flock's ENOLCK, as on an NFS mount whose lock daemon
// is gone) fails and removes the temporary file it made; before, each
// such Create left one behind.
func TestCreateWhoseLockFailsLeavesNoTemp(t *testing.T) {
	l := Local{Root: t.TempDir()}
	lockTemp = func(*os.File) error { return unix.ENOLCK }
	defer func() { lockTemp = lockTempFile }()
	for _, op := range []string{"create", "replace"} {
		var err error
		if op == "create" {
			_, err = l.Create(t.Context(), "d/a.jsonl", []Part{Bytes([]byte("a\n"))}, true)
		} else {
			if err := os.WriteFile(filepath.Join(l.Root, "d", "b.jsonl"), []byte("b\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err = l.Replace(t.Context(), "d/b.jsonl", []Part{Bytes([]byte("c\n"))}, true)
		}
		if !errors.Is(err, unix.ENOLCK) {
			t.Fatalf("%s: %v, want ENOLCK", op, err)
		}
		entries, err := os.ReadDir(filepath.Join(l.Root, "d"))
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			if strings.HasSuffix(e.Name(), TempSuffix) {
				t.Fatalf("%s: temporary file left: %s", op, e.Name())
			}
		}
	}
}

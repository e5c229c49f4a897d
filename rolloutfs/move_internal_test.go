package rolloutfs

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// TestMoveAcrossFileSystems: a Move whose link fails with EXDEV (the two
// directories on two file systems) copies the file with its modification
// time and removes the source, as a rename would have.
func TestMoveAcrossFileSystems(t *testing.T) {
	l := Local{Root: t.TempDir()}
	data := []byte("{\"type\":\"a\"}\n{\"type\":\"b\"}\n")
	if _, err := l.Create(t.Context(), "sessions/2026/01/05/r.jsonl", []Part{Bytes(data)}, true); err != nil {
		t.Fatal(err)
	}
	mtime := time.Unix(1767600000, 0)
	if err := l.SetModTime(t.Context(), "sessions/2026/01/05/r.jsonl", mtime); err != nil {
		t.Fatal(err)
	}
	real := link
	link = func(string, string) error { return &os.LinkError{Op: "link", Err: syscall.EXDEV} }
	t.Cleanup(func() { link = real })

	if err := l.Move(t.Context(), "sessions/2026/01/05/r.jsonl", "archived_sessions/r.jsonl"); err != nil {
		t.Fatalf("Move across file systems: %v", err)
	}
	got, err := os.ReadFile(filepath.Join(l.Root, "archived_sessions", "r.jsonl"))
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("moved file: %q, %v; want %q", got, err, data)
	}
	if info, err := l.Stat(t.Context(), "archived_sessions/r.jsonl"); err != nil || !info.ModTime.Equal(mtime) {
		t.Fatalf("moved file's mtime: %v, %v; want %v", info.ModTime, err, mtime)
	}
	if _, err := os.Stat(filepath.Join(l.Root, "sessions", "2026", "01", "05", "r.jsonl")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("the source after the move: %v, want it gone", err)
	}
	// An existing target fails, as a link would.
	if _, err := l.Create(t.Context(), "sessions/2026/01/05/s.jsonl", []Part{Bytes(data)}, true); err != nil {
		t.Fatal(err)
	}
	if err := l.Move(t.Context(), "sessions/2026/01/05/s.jsonl", "archived_sessions/r.jsonl"); !errors.Is(err, fs.ErrExist) {
		t.Fatalf("Move onto an existing file across file systems: %v, want fs.ErrExist", err)
	}
}

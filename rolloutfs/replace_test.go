package rolloutfs_test

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spoolhq/spool/rolloutfs"
)

// TestLocalReplace replaces a file whole: a reader holding the old file
// keeps its bytes, a new Open sees the new ones, parts of every kind
// (bytes, a range, a stream) land in order, and no temporary file stays.
func TestLocalReplace(t *testing.T) {
	l := newLocal(t)
	put(t, l.Root, "a/x.jsonl", []byte("old old old\n"))
	put(t, l.Root, "src", []byte("0123456789"))
	old, err := l.Open(t.Context(), "a/x.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	defer old.Close()
	src, err := l.Open(t.Context(), "src")
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	parts := []rolloutfs.Part{rolloutfs.Bytes([]byte("meta|")), rolloutfs.Stream(strings.NewReader("streamed|")), rolloutfs.Range(src, 2, 3)}
	info, err := l.Replace(t.Context(), "a/x.jsonl", parts, true)
	if err != nil {
		t.Fatal(err)
	}
	const want = "meta|streamed|234"
	if info.Size != int64(len(want)) {
		t.Fatalf("size = %d, want %d", info.Size, len(want))
	}
	got, err := os.ReadFile(filepath.Join(l.Root, "a", "x.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != want {
		t.Fatalf("replaced file = %q, want %q", got, want)
	}
	buf := make([]byte, old.Size())
	if _, err := old.ReadAt(buf, 0); err != nil || string(buf) != "old old old\n" {
		t.Fatalf("old reader = %q, %v; want the old bytes", buf, err)
	}
	entries, err := os.ReadDir(filepath.Join(l.Root, "a"))
	if err != nil || len(entries) != 1 {
		t.Fatalf("directory holds %v (%v), want only x.jsonl", entries, err)
	}
}

// TestLocalReplaceMissing refuses to replace a file that is not there and
// creates nothing.
func TestLocalReplaceMissing(t *testing.T) {
	l := newLocal(t)
	_, err := l.Replace(t.Context(), "a/x.jsonl", []rolloutfs.Part{rolloutfs.Bytes([]byte("x\n"))}, true)
	if !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Replace of a missing file: %v, want fs.ErrNotExist", err)
	}
	if _, err := os.Stat(filepath.Join(l.Root, "a")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Replace of a missing file left a directory: %v", err)
	}
}

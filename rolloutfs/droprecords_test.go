package rolloutfs_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/spoolhq/spool/internal/fixtures"
	"github.com/spoolhq/spool/rolloutfs"
)

// TestLocalDropRecords: DropRecords rewrites a journal without the lines
// it is told to drop, as Codex's thread/delete rewrites
// session_index.jsonl: the other lines byte for byte (a line that is not
// a record, and an unfinished last line, among them), in a new file (a
// new inode, so a reader holding the old one keeps it whole) with the old
// one's mode, the lock file left in place. A journal without such a line,
// or none at all, is left alone.
func TestLocalDropRecords(t *testing.T) {
	const name = "session_index.jsonl"
	dropB := func(line []byte) bool { return bytes.HasPrefix(line, []byte(`{"id":"b"`)) }
	tests := []struct {
		name        string
		journal     string // "" for none
		want        string
		wantDropped int
	}{
		{"drops every line of one", "{\"id\":\"a\"}\n{\"id\":\"b\",\"n\":1}\nnot json {\n{\"id\":\"b\",\"n\":2}\n{\"id\":\"c\"}\n\n{\"id\":\"a\"",
			"{\"id\":\"a\"}\nnot json {\n{\"id\":\"c\"}\n\n{\"id\":\"a\"", 2},
		{"an unfinished last line dropped", "{\"id\":\"a\"}\n{\"id\":\"b\"", "{\"id\":\"a\"}\n", 1},
		{"nothing to drop", "{\"id\":\"a\"}\n", "{\"id\":\"a\"}\n", 0},
		{"every line dropped", "{\"id\":\"b\"}\n", "", 1},
		{"no journal", "", "", 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			l := newLocal(t)
			p := filepath.Join(l.Root, name)
			var before os.FileInfo
			if tc.journal != "" {
				put(t, l.Root, name, []byte(tc.journal))
				if err := os.Chmod(p, 0o644); err != nil {
					t.Fatal(err)
				}
				var err error
				if before, err = os.Stat(p); err != nil {
					t.Fatal(err)
				}
			}
			dropped, err := l.DropRecords(t.Context(), name, dropB)
			if err != nil {
				t.Fatal(err)
			}
			if dropped != tc.wantDropped {
				t.Fatalf("dropped %d lines, want %d", dropped, tc.wantDropped)
			}
			noTemps(t, l.Root, ".")
			if tc.journal == "" {
				absent(t, l.Root, name)
				absent(t, l.Root, name+".lock")
				return
			}
			if got := string(get(t, l.Root, name)); got != tc.want {
				t.Fatalf("journal = %q, want %q", got, tc.want)
			}
			after, err := os.Stat(p)
			if err != nil {
				t.Fatal(err)
			}
			if after.Mode() != before.Mode() {
				t.Fatalf("mode = %v, want %v kept", after.Mode(), before.Mode())
			}
			if replaced := !os.SameFile(before, after); replaced != (tc.wantDropped > 0) {
				t.Fatalf("journal replaced = %v, want %v", replaced, tc.wantDropped > 0)
			}
		})
	}
}

// TestLocalDropRecordsTakesCodexLock: DropRecords waits for the journal's
// lock as AppendRecord does, until its context is done or LockWait has
// passed (ErrJournalLocked), and changes nothing meanwhile.
func TestLocalDropRecordsTakesCodexLock(t *testing.T) {
	const name = "session_index.jsonl"
	l := newLocal(t)
	l.LockWait = 50 * time.Millisecond
	put(t, l.Root, name, []byte("drop\nkeep\n"))
	held := fixtures.LockFile(t, filepath.Join(l.Root, name+".lock"))
	drop := func(line []byte) bool { return string(line) == "drop" }
	if _, err := l.DropRecords(t.Context(), name, drop); !errors.Is(err, rolloutfs.ErrJournalLocked) {
		t.Fatalf("DropRecords while Codex holds the lock: error = %v, want ErrJournalLocked", err)
	}
	if got := string(get(t, l.Root, name)); got != "drop\nkeep\n" {
		t.Fatalf("journal after a DropRecords that found the lock held = %q, want it unchanged", got)
	}
	if err := syscall.Flock(int(held.Fd()), syscall.LOCK_UN); err != nil {
		t.Fatal(err)
	}
	if n, err := l.DropRecords(t.Context(), name, drop); err != nil || n != 1 {
		t.Fatalf("DropRecords after the lock was released: %d, %v; want 1 line dropped", n, err)
	}
	if got := string(get(t, l.Root, name)); got != "keep\n" {
		t.Fatalf("journal = %q, want %q", got, "keep\n")
	}
	if err := syscall.Flock(int(held.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		t.Fatalf("the lock after DropRecords returned: %v, want it free", err)
	}
}

// TestLocalDropRecordsThroughLink: a journal linked into the root (kept
// with one's dotfiles) is rewritten where the link leads; the link stays.
func TestLocalDropRecordsThroughLink(t *testing.T) {
	const name = "session_index.jsonl"
	l := newLocal(t)
	elsewhere := t.TempDir()
	put(t, elsewhere, "names.jsonl", []byte("drop\nkeep\n"))
	if err := os.Symlink(filepath.Join(elsewhere, "names.jsonl"), filepath.Join(l.Root, name)); err != nil {
		t.Fatal(err)
	}
	if _, err := l.DropRecords(t.Context(), name, func(line []byte) bool { return string(line) == "drop" }); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Lstat(filepath.Join(l.Root, name)); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Fatalf("%s after DropRecords: %v, %v; want the link kept", name, fi, err)
	}
	if got := string(get(t, elsewhere, "names.jsonl")); got != "keep\n" {
		t.Fatalf("linked journal = %q, want %q", got, "keep\n")
	}
	noTemps(t, elsewhere, ".")
}

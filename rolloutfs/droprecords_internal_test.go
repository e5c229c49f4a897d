package rolloutfs

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// TestDropRecordsOnAFullDisk: a rewrite whose new file cannot be written
// (the disk is full) leaves the journal as it was, every line in it, and
// no temporary file.
func TestDropRecordsOnAFullDisk(t *testing.T) {
	const name = "session_index.jsonl"
	l := Local{Root: t.TempDir()}
	p := filepath.Join(l.Root, name)
	if err := os.WriteFile(p, []byte("drop\nkeep\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	writeJournal = func(f *os.File, b []byte) (int, error) {
		n, _ := f.Write(b[:len(b)/2])
		return n, syscall.ENOSPC
	}
	defer func() { writeJournal = (*os.File).Write }()
	if _, err := l.DropRecords(t.Context(), name, func(line []byte) bool { return string(line) == "drop" }); err == nil {
		t.Fatal("DropRecords on a full disk succeeded")
	}
	data, err := os.ReadFile(p)
	if err != nil || string(data) != "drop\nkeep\n" {
		t.Fatalf("journal after a failed rewrite = %q (%v), want it unchanged", data, err)
	}
	entries, err := os.ReadDir(l.Root)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), TempSuffix) {
			t.Fatalf("temporary file %s left behind", e.Name())
		}
	}
}

// TestDropRecordsKeepsALateAppend: a writer that does not take the
// journal's lock (an older Codex, another tool) appends a line while
// DropRecords copies the file. The line went to the old file, which the
// rename then replaced: it was lost, and with it a name the writer gave.
// It is carried over to the new file; a torn last line the writer then
// finishes is finished there too.
func TestDropRecordsKeepsALateAppend(t *testing.T) {
	const name = "session_index.jsonl"
	tests := []struct {
		name, journal, late, want string
	}{
		{"a whole line", "drop\nkeep\n", "late\n", "keep\nlate\n"},
		{"the end of a torn line", "drop\nkeep\nla", "te\nmore\n", "keep\nlate\nmore\n"},
		{"a line to drop", "drop\nkeep\n", "drop\nlate\n", "keep\nlate\n"},
		{"the end of a torn line dropped", "keep\ndrop", "\nlate\n", "keep\nlate\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			l := Local{Root: t.TempDir()}
			p := filepath.Join(l.Root, name)
			if err := os.WriteFile(p, []byte(tc.journal), 0o600); err != nil {
				t.Fatal(err)
			}
			appended := false
			writeJournal = func(f *os.File, b []byte) (int, error) {
				if appended {
					return f.Write(b)
				}
				appended = true
				old, err := os.OpenFile(p, os.O_WRONLY|os.O_APPEND, 0)
				if err != nil {
					return 0, err
				}
				defer old.Close()
				if _, err := old.WriteString(tc.late); err != nil {
					return 0, err
				}
				return f.Write(b)
			}
			defer func() { writeJournal = (*os.File).Write }()
			if _, err := l.DropRecords(t.Context(), name, func(line []byte) bool { return string(line) == "drop" }); err != nil {
				t.Fatal(err)
			}
			if data, err := os.ReadFile(p); err != nil || string(data) != tc.want {
				t.Fatalf("journal = %q (%v), want %q", data, err, tc.want)
			}
		})
	}
}

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

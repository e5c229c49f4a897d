package rolloutfs

import (
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// TestAppendRecordFailureLeavesJournal: a name record that cannot be
// written whole (a full disk) or made durable (EIO from fdatasync) is not
// recorded, so nothing of it may stay in the journal. Its bytes stayed:
// half a line, which the next record was glued after as a line of its
// own, or the whole name line, which Codex and a rebuilt index read as the
// thread's name although spool reported the rename as failed and cut its
// line from the rollout.
func TestAppendRecordFailureLeavesJournal(t *testing.T) {
	const (
		name   = "session_index.jsonl"
		before = "{\"id\":\"a\"}\n"
		record = "{\"id\":\"r\",\"thread_name\":\"new\"}\n"
	)
	tests := []struct {
		name  string
		write func(f *os.File, b []byte) (int, error)
		sync  func(f *os.File) error
		want  error
	}{
		{
			name: "write fails half way",
			write: func(f *os.File, b []byte) (int, error) {
				n, _ := f.Write(b[:len(b)/2])
				return n, syscall.ENOSPC
			},
			sync: fdatasync,
			want: syscall.ENOSPC,
		},
		{
			name:  "sync fails",
			write: (*os.File).Write,
			sync:  func(*os.File) error { return syscall.EIO },
			want:  syscall.EIO,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := Local{Root: t.TempDir()}
			p := filepath.Join(l.Root, name)
			if err := os.WriteFile(p, []byte(before), 0o600); err != nil {
				t.Fatal(err)
			}
			writeJournal, syncJournal = tt.write, tt.sync
			defer func() { writeJournal, syncJournal = (*os.File).Write, fdatasync }()
			if err := l.AppendRecord(t.Context(), name, []byte(record)); !errors.Is(err, tt.want) {
				t.Fatalf("AppendRecord error = %v, want %v", err, tt.want)
			}
			if got, err := os.ReadFile(p); err != nil || string(got) != before {
				t.Fatalf("journal after a failed record = %q (%v), want %q", got, err, before)
			}
		})
	}
}

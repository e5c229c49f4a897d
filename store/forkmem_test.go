package store

import (
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
)

// TestInsertForkCopyBoundedMemory copies the rows of a parent with many
// user messages: SQLite selected them all into an in-memory temporary
// table before inserting them into the same table, 64 MiB for 200,000
// short messages (a 1 GB Codex thread holds 179,201), and spoold's peak
// RSS for the fork of such a thread went from 33 to 156 MB.
func TestInsertForkCopyBoundedMemory(t *testing.T) {
	if raceEnabled {
		t.Skip("measures the peak RSS, which the race detector's shadow memory inflates; make test runs it without")
	}
	const n = 20000
	const bound = 4 << 20
	s := openTest(t)
	parent := newThread("p", 1)
	parent.UserMessageCount = n
	parent.IndexedSize = int64(1000 * (n + 1))
	mustInsert(t, s, Record{Thread: parent})
	// The parent's rows, made by SQLite: previews of 200 characters, as
	// the indexer cuts them, and a Codex turn id each.
	const fill = `WITH RECURSIVE seq(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM seq WHERE i < ?1 - 1)
		INSERT INTO user_messages (thread_id, ordinal, byte_offset, line_number, preview, text, cut_offset, turn_id)
		SELECT 'p', i, 1000 * (i + 1), 10 * (i + 1), printf('%.200c', 'p'), '', 0, printf('turn-%031d', i) FROM seq`
	if _, err := s.writer.ExecContext(t.Context(), fill, n); err != nil {
		t.Fatalf("fill the parent's user messages: %v", err)
	}
	child := newThread("c", 2)
	child.ParentID = "p"
	child.ForkOffset = parent.IndexedSize
	child.UserMessageCount = n
	runtime.GC()
	resetPeakRSS(t)
	before := peakRSS(t)
	if err := s.InsertFork(t.Context(), Record{Thread: child, Ancestors: []string{"p"}},
		ForkSource{ParentID: "p", Messages: n, OffsetShift: 100, LineShift: 1}); err != nil {
		t.Fatalf("InsertFork: %v", err)
	}
	if grew := peakRSS(t) - before; grew > bound {
		t.Errorf("copying %d user messages raised the peak RSS by %d MiB, want at most %d MiB", n, grew>>20, bound>>20)
	}
	msgs, err := s.UserMessagesBetween(t.Context(), "c", n-1, n)
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 1 || msgs[0].Offset != 1000*n+100 || msgs[0].Line != 10*n+1 {
		t.Fatalf("last copied message = %+v, want the parent's shifted by 100 bytes, 1 line", msgs)
	}
}

// resetPeakRSS sets the process's peak RSS (VmHWM) to its current RSS.
func resetPeakRSS(t *testing.T) {
	t.Helper()
	if err := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0); err != nil {
		t.Skipf("cannot reset the peak RSS: %v", err)
	}
}

// peakRSS returns the process's peak RSS (VmHWM) in bytes.
func peakRSS(t *testing.T) int64 {
	t.Helper()
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Skipf("no /proc/self/status: %v", err)
	}
	for line := range strings.Lines(string(b)) {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			if err != nil {
				t.Fatalf("parse VmHWM %q: %v", rest, err)
			}
			return kb << 10
		}
	}
	t.Fatal("no VmHWM in /proc/self/status")
	return 0
}

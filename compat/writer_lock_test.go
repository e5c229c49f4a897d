//go:build compat

package compat

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/spoolhq/spool/codexlock"
	"github.com/spoolhq/spool/manager"
	"github.com/spoolhq/spool/rollout"
)

// TestAppendRespectsCodexWriter: while Codex has a thread loaded (its
// writer lock held, see TestWriterLock), manager.Append to it is refused
// with ErrBusy, naming Codex's pid (so are an archive and a delete), and
// the file is left as it was; once
// Codex exits the same append is accepted at the file's end, spool holds
// the lock only during the append, and a new Codex loads the thread (and
// its lock) again, refusing spool in turn. A legacy thread, so the result
// does not depend on ordinals (docs/CODEX.md, TestPending item 5).
func TestAppendRespectsCodexWriter(t *testing.T) {
	home := newHome(t)
	st := newSpoolThread(t, rollout.HistoryLegacy, 1, 51)
	st.write(t, home)
	s := startCodex(t, home)
	call(t, s, "thread/resume", map[string]any{"threadId": st.ID, "excludeTurns": true}, nil)
	loaded := readBytes(t, st.Path) // Codex may write on resume

	m, err := manager.Open(t.Context(), manager.Options{Root: home})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	item := userItem("from spool")
	_, err = m.Append(t.Context(), st.ID, []rollout.Item{item})
	var held *codexlock.HeldError
	if !errors.Is(err, manager.ErrBusy) || !errors.As(err, &held) {
		t.Fatalf("append while Codex has the thread loaded: %v, want ErrBusy with a *codexlock.HeldError", err)
	}
	if held.PID != s.Pid() {
		t.Fatalf("holder pid = %d, want Codex's %d", held.PID, s.Pid())
	}
	// Codex would go on writing to the file it opened, moved or removed.
	if _, err := m.Archive(t.Context(), st.ID); !errors.Is(err, manager.ErrBusy) {
		t.Fatalf("archive while Codex has the thread loaded: %v, want ErrBusy", err)
	}
	if err := m.Delete(t.Context(), st.ID); !errors.Is(err, manager.ErrBusy) {
		t.Fatalf("delete while Codex has the thread loaded: %v, want ErrBusy", err)
	}
	if data := readBytes(t, st.Path); !bytes.Equal(data, loaded) {
		t.Fatalf("the refused append changed the file: %d bytes, %d before", len(data), len(loaded))
	}

	if err := s.Close(); err != nil {
		t.Fatalf("close Codex: %v", err)
	}
	end := int64(len(readBytes(t, st.Path)))
	res, err := m.Append(t.Context(), st.ID, []rollout.Item{item})
	if err != nil {
		t.Fatalf("append after Codex exited: %v", err)
	}
	if got, want := res.Offsets[0], end; got != want {
		t.Fatalf("appended at %d, want the old end %d", got, want)
	}
	lockPath := filepath.Join(home, "thread-writer-locks", st.ID+".lock")
	if _, err := os.Stat(lockPath); err == nil {
		if got := flockHolders(t, inode(t, lockPath)); len(got) != 0 {
			t.Fatalf("flocks on %s after the append = %v, want none", lockPath, got)
		}
	}

	again := startCodex(t, home)
	call(t, again, "thread/resume", map[string]any{"threadId": st.ID, "excludeTurns": true}, nil)
	if got := flockHolders(t, inode(t, lockPath)); len(got) != 1 || got[0] != fmt.Sprintf("WRITE %d", again.Pid()) {
		t.Fatalf("flocks after Codex loaded the thread again = %v, want Codex's", got)
	}
	_, err = m.Append(t.Context(), st.ID, []rollout.Item{item})
	if !errors.Is(err, manager.ErrBusy) {
		t.Fatalf("append while the second Codex has the thread loaded: %v, want ErrBusy", err)
	}
}

func readBytes(t *testing.T, path string) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

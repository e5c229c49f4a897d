//go:build compat

package compat

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spoolhq/spool/manager"
)

// TestSpoolRefusesToDeleteABaseItCannotIndexAForkOf: Codex forks a
// reverted thread through a turn of its revert segment (the fork's
// history_base names the segment by its uuid), then reverts the thread
// before that turn, which takes the segment out of the thread's history.
// Codex goes on showing the fork whole and refuses to delete the thread
// ("forked history still references it"). spool cannot index such a fork
// (docs/SCHEMA.md, "Not covered"), and its delete asked the index's rows
// alone: on an index rebuilt from the files it deleted every file of the
// thread, the fork's inherited turns with them. Its sync now records the
// fork it cannot read, and the delete refuses as Codex does.
func TestSpoolRefusesToDeleteABaseItCannotIndexAForkOf(t *testing.T) {
	home := newHome(t)
	start := mockedStarter(t, home)
	s := start()
	var th threadAnswer
	call(t, s, "thread/start", map[string]any{"cwd": "/tmp"}, &th)
	id := th.Thread.ID
	first := runTurn(t, s, id, "first")
	second := runTurn(t, s, id, "second")
	third := runTurn(t, s, id, "third")
	call(t, s, "thread/revert", map[string]any{"threadId": id, "beforeTurnId": third}, nil)
	inSegment := runTurn(t, s, id, "in the segment")
	runTurn(t, s, id, "after it")
	var fork threadAnswer
	call(t, s, "thread/fork", map[string]any{"threadId": id, "lastTurnId": inSegment, "excludeTurns": true}, &fork)
	own := runTurn(t, s, fork.Thread.ID, "the fork's own")
	call(t, s, "thread/revert", map[string]any{"threadId": id, "beforeTurnId": second}, nil)
	want := strings.Join([]string{first + ":completed", second + ":completed", inSegment + ":completed", own + ":completed"}, " ")
	if got := turnIDs(turnsOf(t, s, fork.Thread.ID)); got != want {
		t.Fatalf("Codex shows the fork as %s, want %s", got, want)
	}
	err := s.Call(t.Context(), "thread/delete", map[string]any{"threadId": id}, nil)
	if err == nil || !strings.Contains(err.Error(), "forked history still references it") {
		t.Fatalf("Codex's delete of the thread: %v, want its refusal", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	files := findFiles(t, home, id)

	m, err := manager.Open(t.Context(), manager.Options{Root: home, IndexPath: filepath.Join(t.TempDir(), "rebuilt.db")})
	if err != nil {
		t.Fatal(err)
	}
	err = m.Delete(t.Context(), id)
	if cerr := m.Close(); cerr != nil {
		t.Fatal(cerr)
	}
	if !errors.Is(err, manager.ErrReferenced) || !strings.Contains(err.Error(), fork.Thread.ID) {
		t.Fatalf("spool's delete of the thread, on a rebuilt index: %v, want ErrReferenced naming %s", err, fork.Thread.ID)
	}
	if got := findFiles(t, home, id); len(got) != len(files) {
		t.Fatalf("the thread's files after spool's refused delete: %v, want %v", got, files)
	}
	later := start()
	call(t, later, "thread/resume", map[string]any{"threadId": fork.Thread.ID, "excludeTurns": true}, nil)
	if got := turnIDs(turnsOf(t, later, fork.Thread.ID)); got != want {
		t.Fatalf("Codex shows the fork as %s after spool's delete, want %s", got, want)
	}
}

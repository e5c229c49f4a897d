//go:build compat

package compat

import (
	"path/filepath"
	"testing"

	"github.com/spoolhq/spool/manager"
)

// TestSpoolForkAtAFileBoundaryNamesAsCodex: a thread Codex reverted twice,
// the second time inside its first revert segment, is in three files.
// Codex's fork through the last turn of the first file names that file at
// its end (the thread's id, the segment's first ordinal); spool's named
// the first segment at offset 0. Both read the same turns, but spool's
// fork depended on a file it holds nothing of. spool's fork now names what
// Codex's does, and Codex shows it with the same turns.
func TestSpoolForkAtAFileBoundaryNamesAsCodex(t *testing.T) {
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
	runTurn(t, s, id, "in the segment")
	later := runTurn(t, s, id, "later in the segment")
	call(t, s, "thread/revert", map[string]any{"threadId": id, "beforeTurnId": later}, nil)
	var codexFork threadAnswer
	call(t, s, "thread/fork", map[string]any{"threadId": id, "lastTurnId": second, "excludeTurns": true}, &codexFork)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	codexBase := firstMeta(t, codexFork.Thread.Path).HistoryBase

	var fork manager.Thread
	withManager(t, home, func(m *manager.Manager) {
		var err error
		if fork, err = m.Fork(t.Context(), id, manager.ForkOptions{LastTurnID: second}); err != nil {
			t.Fatal(err)
		}
	})
	spoolBase := firstMeta(t, filepath.Join(home, filepath.FromSlash(fork.RolloutPath))).HistoryBase
	if spoolBase == nil || codexBase == nil || *spoolBase != *codexBase {
		t.Fatalf("fork through the first file's last turn: spool's history_base %+v, Codex's %+v", spoolBase, codexBase)
	}
	s = start()
	call(t, s, "thread/resume", map[string]any{"threadId": fork.ID, "excludeTurns": true}, nil)
	if got, want := turnIDs(turnsOf(t, s, fork.ID)), first+":completed "+second+":completed"; got != want {
		t.Fatalf("Codex shows spool's fork as %s, want %s", got, want)
	}
}

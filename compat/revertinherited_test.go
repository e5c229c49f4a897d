//go:build compat

package compat

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spoolhq/spool/manager"
	"github.com/spoolhq/spool/rollout"
)

// TestCodexRevertsAReferenceForkIntoWhatItInherits pins what Codex 0.169
// writes when it reverts a reference fork before a turn the fork inherits
// from its base: a revert segment of the fork whose history_base names
// the base thread at the cut (not the fork's own file), with
// forked_from_ordinal_exclusive moved to the cut. spool reads the result
// with Codex's turns. spool's own revert of that kind is refused
// (ErrInvalidArgument, both backends): a gap, docs/CODEX.md.
func TestCodexRevertsAReferenceForkIntoWhatItInherits(t *testing.T) {
	home := newHome(t)
	start := mockedStarter(t, home)
	s := start()
	var th threadAnswer
	call(t, s, "thread/start", map[string]any{"cwd": "/tmp"}, &th)
	base := th.Thread.ID
	first := runTurn(t, s, base, "first")
	second := runTurn(t, s, base, "second")
	third := runTurn(t, s, base, "third")
	var fork threadAnswer
	call(t, s, "thread/fork", map[string]any{"threadId": base, "lastTurnId": third, "excludeTurns": true}, &fork)
	runTurn(t, s, fork.Thread.ID, "the fork's own")
	call(t, s, "thread/revert", map[string]any{"threadId": fork.Thread.ID, "beforeTurnId": second}, nil)
	after := runTurn(t, s, fork.Thread.ID, "after the revert")
	codexTurns := turnIDs(turnsOf(t, s, fork.Thread.ID))
	if want := first + ":completed " + after + ":completed"; codexTurns != want {
		t.Fatalf("Codex shows the reverted fork as %s, want %s", codexTurns, want)
	}
	var segment string
	for _, f := range findFiles(t, home, fork.Thread.ID) {
		if _, _, _, err := rollout.ParseSegmentFileName(filepath.Base(f)); err == nil {
			segment = f
		}
	}
	if segment == "" {
		t.Fatal("Codex's revert wrote no segment of the fork")
	}
	meta := firstMeta(t, segment)
	if meta.HistoryBase == nil || meta.HistoryBase.ThreadID != base || meta.ForkedFromID != base ||
		meta.ForkedFromOrdinalExclusive == nil || *meta.ForkedFromOrdinalExclusive != meta.HistoryBase.EndOrdinalExclusive {
		t.Fatalf("the segment's meta: history_base %+v, forked_from %s at %v; want the base %s at the cut", meta.HistoryBase, meta.ForkedFromID, meta.ForkedFromOrdinalExclusive, base)
	}
	// A fresh fork for spool's own revert below.
	var fresh threadAnswer
	call(t, s, "thread/fork", map[string]any{"threadId": base, "lastTurnId": third, "excludeTurns": true}, &fresh)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	m, err := manager.Open(t.Context(), manager.Options{Root: home, IndexPath: filepath.Join(t.TempDir(), "spool.db")})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	msgs, err := m.UserMessages(t.Context(), fork.Thread.ID)
	if err != nil {
		t.Fatalf("spool's user messages of the fork Codex reverted: %v", err)
	}
	var got []string
	for _, msg := range msgs {
		got = append(got, msg.TurnID+":completed")
	}
	if strings.Join(got, " ") != codexTurns {
		t.Fatalf("spool shows the fork Codex reverted as %v, Codex as %s", got, codexTurns)
	}
	// The gap: spool does not write this revert itself.
	if _, err := m.Revert(t.Context(), fresh.Thread.ID, manager.RevertOptions{BeforeTurnID: second}); !errors.Is(err, manager.ErrInvalidArgument) {
		t.Fatalf("spool's revert of a reference fork before a turn it inherits: %v, want ErrInvalidArgument (not written by spool yet)", err)
	}
}

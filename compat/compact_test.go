//go:build compat

package compat

import (
	"slices"
	"testing"

	"github.com/spoolhq/spool/manager"
)

// TestCompactionTurnAgrees: a compaction Codex 0.169 runs (thread/compact/start,
// its model answered by mockresponses) writes a turn of its own, with a
// `compacted` line and no user message, between the turns around it.
// spool reads that turn as Codex shows it (same ids in the same order, the
// compaction turn without a counted user message), and what spool cuts
// around it is what Codex shows: a fork through the compaction turn ends
// with it, as Codex's own thread/fork with lastTurnId there does; a fork
// before it ends with the turn before; a revert before it (of a copy of
// the thread) leaves the turns before it.
func TestCompactionTurnAgrees(t *testing.T) {
	home := newHome(t)
	start := mockedStarter(t, home)
	s := start()
	var th threadAnswer
	call(t, s, "thread/start", map[string]any{"cwd": "/tmp"}, &th)
	id := th.Thread.ID
	completed := 0 // turns Codex has finished
	turn := func(method string, params map[string]any) {
		t.Helper()
		call(t, s, method, params, nil)
		completed++
		if _, err := s.WaitNotifications(t.Context(), "turn/completed", completed); err != nil {
			t.Fatal(err)
		}
	}
	prompt := func(text string) map[string]any {
		return map[string]any{"threadId": id, "input": []any{map[string]any{"type": "text", "text": text}}}
	}
	turn("turn/start", prompt("first question"))
	turn("thread/compact/start", map[string]any{"threadId": id})
	turn("turn/start", prompt("third question"))
	codexTurns := turnsOf(t, s, id)
	if len(codexTurns) != 3 || len(codexTurns[1].Items) != 1 || codexTurns[1].Items[0].Type != "contextCompaction" {
		t.Fatalf("Codex shows the compacted thread as %s, want a compaction turn between two turns", describe(codexTurns))
	}
	compaction := codexTurns[1].ID
	var own threadAnswer
	call(t, s, "thread/fork", map[string]any{"threadId": id, "lastTurnId": compaction, "excludeTurns": true}, &own)
	through := describe(turnsOf(t, s, own.Thread.ID))
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	h := history(t, th.Thread.Path)
	var spoolTurns []string
	for _, tn := range h.Turns {
		spoolTurns = append(spoolTurns, tn.ID+":"+tn.Status.String())
		if tn.ID == compaction && tn.UserMessages != 0 {
			t.Errorf("spool counts %d user messages in the compaction turn, want none", tn.UserMessages)
		}
	}
	var want []string
	for _, tn := range codexTurns {
		want = append(want, tn.ID+":"+tn.Status)
	}
	if !slices.Equal(spoolTurns, want) {
		t.Fatalf("spool reads the turns %v, Codex shows %v", spoolTurns, want)
	}

	var forkThrough, forkBefore, copied manager.Thread
	withManager(t, home, func(m *manager.Manager) {
		var err error
		if forkThrough, err = m.Fork(t.Context(), id, manager.ForkOptions{LastTurnID: compaction}); err != nil {
			t.Fatal(err)
		}
		if forkBefore, err = m.Fork(t.Context(), id, manager.ForkOptions{BeforeTurnID: compaction, Mode: manager.ForkCopy}); err != nil {
			t.Fatal(err)
		}
		// The thread is the base of reference forks now, which spool does
		// not revert under them: a whole copy of it is reverted below.
		if copied, err = m.Fork(t.Context(), id, manager.ForkOptions{Mode: manager.ForkCopy}); err != nil {
			t.Fatal(err)
		}
	})

	s = start()
	// Codex shows a paginated thread someone else wrote, and a revert
	// segment, from its projection, made when it loads the thread.
	for _, fid := range []string{id, forkBefore.ID, copied.ID} {
		call(t, s, "thread/resume", map[string]any{"threadId": fid, "excludeTurns": true}, nil)
	}
	if got := describe(turnsOf(t, s, forkThrough.ID)); got != through {
		t.Errorf("Codex shows spool's fork through the compaction turn as %s, its own as %s", got, through)
	}
	before := describe(codexTurns[:1])
	if got := describe(turnsOf(t, s, forkBefore.ID)); got != before {
		t.Errorf("Codex shows spool's fork before the compaction turn as %s, want %s", got, before)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	withManager(t, home, func(m *manager.Manager) {
		if _, err := m.Revert(t.Context(), copied.ID, manager.RevertOptions{BeforeTurnID: compaction}); err != nil {
			t.Fatal(err)
		}
	})
	s = start()
	call(t, s, "thread/resume", map[string]any{"threadId": copied.ID, "excludeTurns": true}, nil)
	if got := describe(turnsOf(t, s, copied.ID)); got != before {
		t.Errorf("Codex shows the thread spool reverted before the compaction turn as %s, want %s", got, before)
	}
}

//go:build compat

package compat

import (
	"testing"

	"github.com/spoolhq/spool/manager"
	"github.com/spoolhq/spool/rollout"
)

// TestForkThroughTurnMatchesCodex: a fork spool makes through a turn named
// by its id (manager.ForkOptions.LastTurnID, the API's last_turn_id) is
// shown by Codex with exactly the turns of Codex's own thread/fork with
// lastTurnId at that turn, for a paginated parent (a reference fork) and a
// legacy one (a copy).
func TestForkThroughTurnMatchesCodex(t *testing.T) {
	for i, mode := range []rollout.HistoryMode{rollout.HistoryPaginated, rollout.HistoryLegacy} {
		t.Run(string(mode), func(t *testing.T) {
			home := newHome(t)
			st := newSpoolThread(t, mode, 3, 71+i)
			st.write(t, home)
			through := st.Turns[1].TurnID

			m, err := manager.Open(t.Context(), manager.Options{Root: home})
			if err != nil {
				t.Fatal(err)
			}
			child, err := m.Fork(t.Context(), st.ID, manager.ForkOptions{LastTurnID: through})
			if err != nil {
				t.Fatal(err)
			}
			if err := m.Close(); err != nil {
				t.Fatal(err)
			}

			s := startCodex(t, home)
			// A reference fork's turns come from Codex's projection of its
			// base, made when Codex loads the base.
			call(t, s, "thread/resume", map[string]any{"threadId": st.ID, "excludeTurns": true}, nil)
			var own threadAnswer
			call(t, s, "thread/fork", map[string]any{"threadId": st.ID, "lastTurnId": through, "excludeTurns": true}, &own)
			want := describe(turnsOf(t, s, own.Thread.ID))
			got := describe(turnsOf(t, s, child.ID))
			if got != want || len(turnsOf(t, s, child.ID)) != 2 {
				t.Fatalf("Codex shows spool's fork through turn 1 as %s, its own as %s (want 2 turns, equal)", got, want)
			}
		})
	}
}

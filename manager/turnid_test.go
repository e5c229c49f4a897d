package manager

import (
	"bytes"
	"errors"
	"testing"

	"github.com/spoolhq/spool/rollout"
)

// threeTurns starts a thread in mode with complete turns turn-a, turn-b
// and turn-c, written as Codex writes them.
func threeTurns(t *testing.T, m *Manager, mode string) Thread {
	t.Helper()
	th, err := m.Start(t.Context(), StartOptions{Cwd: "/work", Source: "cli", HistoryMode: mode})
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"turn-a", "turn-b", "turn-c"} {
		res, err := m.AppendTurn(t.Context(), th.ID, TurnOptions{TurnID: id, Prompt: "prompt " + id, Answer: "answer " + id})
		if err != nil {
			t.Fatal(err)
		}
		th = res.Thread
	}
	return th
}

// historyTurns reads thread id's whole history through the manager and
// returns its turns as rollout.ScanTurns sees them.
func historyTurns(t *testing.T, m *Manager, id string) (rollout.History, []byte) {
	t.Helper()
	rc, err := m.ReadFrom(t.Context(), id, -1)
	data := readAll(t, rc, err)
	h, err := rollout.ScanTurns(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	return h, data
}

// TestForkLastTurnID forks through the end of a turn named by its id, as
// Codex's thread/fork lastTurnId does: the child holds the turns up to and
// including it, all completed, and is cut right after its task_complete.
func TestForkLastTurnID(t *testing.T) {
	for _, mode := range []string{"paginated", "legacy"} {
		t.Run(mode, func(t *testing.T) {
			m := openTest(t)
			th := threeTurns(t, m, mode)
			parent, _ := historyTurns(t, m, th.ID)
			child, err := m.Fork(t.Context(), th.ID, ForkOptions{LastTurnID: "turn-b"})
			if err != nil {
				t.Fatal(err)
			}
			if got, want := child.ForkOffset, parent.Turns[1].End; got != want {
				t.Fatalf("fork offset = %d, want %d (the end of turn-b's task_complete)", got, want)
			}
			if child.UserMessageCount != 2 {
				t.Fatalf("child has %d user messages, want 2", child.UserMessageCount)
			}
			h, _ := historyTurns(t, m, child.ID)
			if len(h.Turns) != 2 || h.Turns[0].ID != "turn-a" || h.Turns[1].ID != "turn-b" {
				t.Fatalf("child's turns = %+v, want turn-a and turn-b", h.Turns)
			}
			for _, turn := range h.Turns {
				if turn.Status != rollout.TurnCompleted {
					t.Fatalf("child's turn %s is %v, want completed", turn.ID, turn.Status)
				}
			}
			whole, err := m.Fork(t.Context(), th.ID, ForkOptions{LastTurnID: "turn-c"})
			if err != nil {
				t.Fatal(err)
			}
			if whole.UserMessageCount != 3 || whole.ForkOffset != parent.Turns[2].End {
				t.Fatalf("fork through the last turn: %d messages at %d, want 3 at %d", whole.UserMessageCount, whole.ForkOffset, parent.Turns[2].End)
			}
		})
	}
}

// TestForkByTurnIDRefuses: an unknown turn, a turn in progress and two
// fork points at once are refused, and nothing is created.
func TestForkByTurnIDRefuses(t *testing.T) {
	m := openTest(t)
	th := threeTurns(t, m, "paginated")
	open := item(rollout.TypeEventMsg, map[string]any{"type": "task_started", "turn_id": "turn-open"})
	if _, err := m.Append(t.Context(), th.ID, []rollout.Item{open, user("still thinking")}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		o    ForkOptions
		want error
	}{
		{"unknown turn", ForkOptions{LastTurnID: "no-such-turn"}, ErrNotFound},
		{"turn in progress", ForkOptions{LastTurnID: "turn-open"}, ErrTurnInProgress},
		{"two points", ForkOptions{LastTurnID: "turn-a", BeforeTurnID: "turn-b"}, ErrInvalidArgument},
		{"message and turn", ForkOptions{LastTurnID: "turn-a", BeforeUserMessage: intp(1)}, ErrInvalidArgument},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := m.Fork(t.Context(), th.ID, tc.o); !errors.Is(err, tc.want) {
				t.Fatalf("Fork(%+v) = %v, want %v", tc.o, err, tc.want)
			}
		})
	}
	desc, err := m.Descendants(t.Context(), th.ID)
	if err != nil || len(desc) != 0 {
		t.Fatalf("descendants after refused forks: %v, %v; want none", desc, err)
	}
}

// TestForkOptionsPoints: each of the three fork points counts one when
// set, and nothing else counts.
func TestForkOptionsPoints(t *testing.T) {
	tests := []struct {
		name string
		o    ForkOptions
		want int
	}{
		{"none", ForkOptions{Name: "n", Cwd: "/c", Mode: ForkCopy}, 0},
		{"before user message 0", ForkOptions{BeforeUserMessage: intp(0)}, 1},
		{"before turn", ForkOptions{BeforeTurnID: "turn-a"}, 1},
		{"last turn", ForkOptions{LastTurnID: "turn-a"}, 1},
		{"message and last turn", ForkOptions{BeforeUserMessage: intp(1), LastTurnID: "turn-a"}, 2},
		{"all three", ForkOptions{BeforeUserMessage: intp(1), BeforeTurnID: "turn-a", LastTurnID: "turn-b"}, 3},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.o.Points(); got != tc.want {
				t.Fatalf("Points() = %d, want %d", got, tc.want)
			}
		})
	}
}

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

// TestHolds finds a needle wherever it lies in a reader longer than one
// read, across the boundary of two reads too, and nowhere when it is not
// there whole.
func TestHolds(t *testing.T) {
	needle := []byte(`"turn-x"`)
	// holds reads holdsChunk+len(needle) bytes, then holdsChunk+1 more
	// after the len(needle)-1 it keeps.
	first := holdsChunk + len(needle)
	second := first + holdsChunk + 1
	at := func(off int) []byte {
		data := bytes.Repeat([]byte("a"), 2*holdsChunk+100)
		if off+len(needle) > len(data) {
			t.Fatalf("needle at %d is past the data", off)
		}
		copy(data[off:], needle)
		return data
	}
	tests := []struct {
		name string
		data []byte
		want bool
	}{
		{"at the start", at(0), true},
		{"across the first read's end", at(first - 3), true},
		{"across the second read's end", at(second - 3), true},
		{"at the end", at(2*holdsChunk + 100 - len(needle)), true},
		{"cut short at the end", at(2*holdsChunk + 100 - len(needle))[:2*holdsChunk+99], false},
		{"nowhere", at(0)[len(needle):], false},
		{"empty", nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := holds(t.Context(), bytes.NewReader(tt.data), needle)
			if err != nil || got != tt.want {
				t.Fatalf("holds = %v, %v; want %v", got, err, tt.want)
			}
		})
	}
}

//go:build distributed

package pgstore

import (
	"errors"
	"fmt"
	"testing"
)

// turnLine is a task_started, turn_context or task_complete line of turn id.
func turnLine(typ, kind, id string) []byte {
	return fmt.Appendf(nil, `{"timestamp":"2026-11-25T00:00:01.000Z","type":%q,"payload":{"type":%q,"turn_id":%q}}`+"\n", typ, kind, id)
}

// TestTurnIDs: each user message records its Codex turn and the first
// one its turn's start, however the turn's lines are split into appends
// (an open turn is carried on the row); a fork finds its inherited turns
// through its base and not those past its cut; Repair rebuilds the turn
// columns from the bytes.
func TestTurnIDs(t *testing.T) {
	turn := func(id, prompt string) [][]byte {
		return [][]byte{turnLine("event_msg", "task_started", id), turnLine("turn_context", "", id),
			userLine(prompt), userLine(prompt + " again"), turnLine("event_msg", "task_complete", id)}
	}
	lines := append(turn("turn-a", "a"), turn("turn-b", "b")...)
	for _, tc := range []struct {
		name  string
		split int // lines per append
	}{{"one append", len(lines)}, {"a line per append", 1}, {"three lines per append", 3}} {
		t.Run(tc.name, func(t *testing.T) {
			s := openStore(t, testDSN(t), nil)
			id := newID(t)
			th, err := s.Create(t.Context(), NewThread{ID: id, Lines: metaLine(id)})
			if err != nil {
				t.Fatal(err)
			}
			starts := map[string]int64{}
			at := th.HistorySize()
			for i := 0; i < len(lines); i += tc.split {
				var chunk []byte
				for j, l := range lines[i:min(i+tc.split, len(lines))] {
					if (i+j)%5 == 0 {
						starts[[]string{"turn-a", "turn-b"}[(i+j)/5]] = at + int64(len(chunk))
					}
					chunk = append(chunk, l...)
				}
				res, err := s.Append(t.Context(), id, chunk, -1)
				if err != nil {
					t.Fatal(err)
				}
				at = res.Size
			}
			check := func(id string) {
				t.Helper()
				for k, name := range []string{"turn-a", "turn-b"} {
					m, err := s.UserMessageOfTurn(t.Context(), id, name)
					if err != nil || m.Ordinal != 2*k || m.Cut() != starts[name] || m.TurnID != name {
						t.Fatalf("message of %s in %s: %+v, %v; want ordinal %d cut at %d", name, id, m, err, 2*k, starts[name])
					}
					second, err := s.UserMessage(t.Context(), id, 2*k+1)
					if err != nil || second.TurnID != name || second.Cut() != second.Offset {
						t.Fatalf("second message of %s: %+v, %v; want its turn, cut at its own line", name, second, err)
					}
				}
			}
			check(id)
			child, err := s.Fork(t.Context(), Fork{ParentID: id, ChildID: newID(t), BeforeUserMessage: 2, Lines: metaLine("child")})
			if err != nil {
				t.Fatal(err)
			}
			if child.BaseSize != starts["turn-b"] {
				t.Fatalf("fork before message 2 cut at %d, want before turn-b's start lines at %d", child.BaseSize, starts["turn-b"])
			}
			if m, err := s.UserMessageOfTurn(t.Context(), child.ID, "turn-a"); err != nil || m.Cut() != starts["turn-a"] {
				t.Fatalf("the fork's turn-a: %+v, %v", m, err)
			}
			if _, err := s.UserMessageOfTurn(t.Context(), child.ID, "turn-b"); !errors.Is(err, ErrTurnNotFound) {
				t.Fatalf("the fork's turn-b (past its cut): %v, want ErrTurnNotFound", err)
			}
			if _, err := s.pool.Exec(t.Context(), `UPDATE user_messages SET turn_id = '', cut_offset = 0`); err != nil {
				t.Fatal(err)
			}
			if repaired, problems, err := s.Repair(t.Context()); err != nil || len(problems) != 0 || len(repaired) != 1 || repaired[0] != id {
				t.Fatalf("Repair: %v, %v, %v; want %s repaired", repaired, problems, err, id)
			}
			check(id)
		})
	}
}

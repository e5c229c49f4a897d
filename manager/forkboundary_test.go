package manager

import (
	"bytes"
	"testing"

	"github.com/spoolhq/spool/rollout"
)

// TestForkAtTheEndOfAnEarlierFileNamesIt: a thread reverted twice, the
// second time inside its first revert segment, is in three files. A fork
// through the last turn of its first file is cut where that file ends and
// the first segment starts. Codex 0.169 names the first file there (the
// thread's id, the offset of the file's end, the segment's first ordinal),
// as linkAt's doc says; spool named the segment at offset 0, so the fork
// depended on a file it holds nothing of. Both read the same lines.
func TestForkAtTheEndOfAnEarlierFileNamesIt(t *testing.T) {
	ctx := t.Context()
	m := openTest(t)
	base := threeTurns(t, m, "paginated")
	h, _ := historyTurns(t, m, base.ID)
	firstEnd := h.Turns[1].End // turn-b's end: where the first revert cuts
	if _, err := m.Revert(ctx, base.ID, RevertOptions{BeforeTurnID: "turn-c"}); err != nil {
		t.Fatal(err)
	}
	for _, turn := range []string{"turn-q0", "turn-q1"} {
		if _, err := m.AppendTurn(ctx, base.ID, TurnOptions{TurnID: turn, Prompt: "prompt " + turn, Answer: "answer " + turn}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := m.Revert(ctx, base.ID, RevertOptions{BeforeTurnID: "turn-q1"}); err != nil {
		t.Fatal(err)
	}
	fork, err := m.Fork(ctx, base.ID, ForkOptions{LastTurnID: "turn-b"})
	if err != nil {
		t.Fatal(err)
	}
	line, _, _ := bytes.Cut(readFile(t, m, fork), []byte{'\n'})
	meta, err := rollout.ParseSessionMeta(line)
	if err != nil {
		t.Fatal(err)
	}
	if hb := meta.HistoryBase; hb == nil || hb.ThreadID != base.ID || hb.EndByteOffset != firstEnd {
		t.Fatalf("fork through the first file's last turn: history_base %+v, want %s at offset %d", hb, base.ID, firstEnd)
	}
	if got, _ := historyTurns(t, m, fork.ID); len(got.Turns) != 2 || got.Turns[1].ID != "turn-b" {
		t.Fatalf("the fork reads %d turns, want turn-a and turn-b", len(got.Turns))
	}
	compareRebuilds(t, m)
}

package indexer

import (
	"bytes"
	"os"
	"strings"
	"testing"

	"github.com/spoolhq/spool/rollout"
)

// TestTurnLinesNestedTooDeep: Codex skips a line nested deeper than
// rollout.CodexMaxDepth (compat: TestCodexSkipsLinesNestedTooDeep), so such
// a task_started starts no turn: the index cuts the message after it at
// its own line, outside any turn, as rollout.ScanTurns does, not before
// the skipped line.
func TestTurnLinesNestedTooDeep(t *testing.T) {
	root := t.TempDir()
	st := openStore(t)
	const id = "019dab90-0000-7000-8000-0000000d0001"
	ts := "2026-11-20T09:00:00.000Z"
	event := func(typ, turn string) string {
		return line(ts, "event_msg", map[string]any{"type": typ, "turn_id": turn})
	}
	arrays := rollout.CodexMaxDepth + 1 - 2
	deepStart := strings.TrimSuffix(event("task_started", "t2"), "}}\n") +
		`,"x":` + strings.Repeat("[", arrays) + strings.Repeat("]", arrays) + "}}\n"
	rel := "sessions/2026/11/20/rollout-2026-11-20T09-00-00-" + id + ".jsonl"
	abs := writeRollout(t, root, rel,
		metaLine(ts, id, ""),
		event("task_started", "t1"), userLine(ts, "u1"), event("task_complete", "t1"),
		deepStart, userLine(ts, "u2"), event("task_complete", "t2"))
	mustSync(t, st, root, SyncOptions{})

	data, err := os.ReadFile(abs)
	if err != nil {
		t.Fatal(err)
	}
	h, err := rollout.ScanTurns(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	msgs, err := st.UserMessages(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 2 || len(h.Messages) != 2 {
		t.Fatalf("index has %d messages, ScanTurns %d, want 2", len(msgs), len(h.Messages))
	}
	u2 := h.Messages[1]
	if u2.TurnID != "" || u2.CutOffset != u2.Offset {
		t.Fatalf("ScanTurns: u2 in turn %q cut at %d, want no turn and its own offset %d", u2.TurnID, u2.CutOffset, u2.Offset)
	}
	if got := msgs[1]; got.TurnID != u2.TurnID || got.Cut() != u2.CutOffset {
		t.Fatalf("index: u2 in turn %q cut at %d, want %q at %d as ScanTurns", got.TurnID, got.Cut(), u2.TurnID, u2.CutOffset)
	}
}

package manager

import (
	"fmt"
	"testing"

	"github.com/spoolhq/spool/rollout"
)

// TestRevertAwayFromAnEarlierSegmentsPreview: a paginated thread's
// prompts gave no preview (items without their echo) until a turn in its
// first revert segment; a second revert cut the history back into its
// first file, before that segment. The thread keeps the preview, as Codex
// lists it (no revert takes one back), and so must an index rebuilt from
// the files, in any order (random sequence 82878 rebuilt it with none).
func TestRevertAwayFromAnEarlierSegmentsPreview(t *testing.T) {
	ctx := t.Context()
	m := openTest(t)
	var items []rollout.Item
	for i := range 13 {
		items = append(items, user(fmt.Sprintf("prompt %d", i)))
	}
	th := startPaginated(t, m, items...)
	if _, err := m.Revert(ctx, th.ID, RevertOptions{BeforeUserMessage: intp(12)}); err != nil {
		t.Fatal(err)
	}
	if _, err := m.AppendTurn(ctx, th.ID, TurnOptions{TurnID: "turn-echoed", Prompt: "echoed prompt", Answer: "answer"}); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Revert(ctx, th.ID, RevertOptions{BeforeUserMessage: intp(9)}); err != nil {
		t.Fatal(err)
	}
	got, err := m.Get(ctx, th.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Preview != "echoed prompt" {
		t.Fatalf("live preview %q, want %q", got.Preview, "echoed prompt")
	}
	compareRebuilds(t, m, "prompt", "echoed")
}

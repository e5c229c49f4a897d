package manager

import (
	"context"
	"fmt"
	"testing"

	"github.com/spoolhq/spool/indexer"
	"github.com/spoolhq/spool/rollout"
)

// TestCopyForkCarriesTheOpenTurn: a copy of a legacy thread carries on the
// turn open at its cut (its row's turn_offset and turn_id), as a rebuild
// reading the copy does, so a message appended to the copy is cut and
// attributed to its turn the same way live and rebuilt.
func TestCopyForkCarriesTheOpenTurn(t *testing.T) {
	started := func(id string) rollout.Item {
		return item(rollout.TypeEventMsg, map[string]any{"type": "task_started", "turn_id": id})
	}
	two, three, eighteen := 2, 3, 18
	var loose []rollout.Item // more turnless messages than a copy fork once looked back for a turn
	for i := range 17 {
		loose = append(loose, user(fmt.Sprintf("loose %d", i)))
	}
	for _, tc := range []struct {
		name   string
		before []rollout.Item // appended after turns turn-a and turn-b
		fork   ForkOptions
	}{
		{"whole, after a whole turn", nil, ForkOptions{}},
		{"whole, inside an open turn", []rollout.Item{started("open-1")}, ForkOptions{}},
		{"whole, inside an open turn with a message", []rollout.Item{started("open-1"), user("inside")}, ForkOptions{}},
		{"before a message after turnless ones", []rollout.Item{user("loose one"), user("loose two")}, ForkOptions{BeforeUserMessage: &three}},
		{"before a later message of an open turn", []rollout.Item{started("open-1"), user("first"), user("second")}, ForkOptions{BeforeUserMessage: &three}},
		{"before the first message of an open turn", []rollout.Item{started("open-1"), user("first")}, ForkOptions{BeforeUserMessage: &two}},
		{"before a message after 17 turnless ones", loose, ForkOptions{BeforeUserMessage: &eighteen}},
		{"before a later message of a turn without id", []rollout.Item{started(""), user("first"), user("second")}, ForkOptions{BeforeUserMessage: &three}},
		{"whole, inside a turn without id with a message", []rollout.Item{started(""), user("first")}, ForkOptions{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			m := openTest(t)
			th := start(t, m)
			for _, id := range []string{"turn-a", "turn-b"} {
				if _, err := m.AppendTurn(ctx, th.ID, TurnOptions{TurnID: id, Prompt: "prompt " + id, Answer: "answer"}); err != nil {
					t.Fatal(err)
				}
			}
			if len(tc.before) > 0 {
				if _, err := m.Append(ctx, th.ID, tc.before); err != nil {
					t.Fatal(err)
				}
			}
			fork, err := m.Fork(ctx, th.ID, tc.fork)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := m.Append(ctx, fork.ID, []rollout.Item{user("the fork's own")}); err != nil {
				t.Fatal(err)
			}
			rep, err := indexer.Verify(ctx, m.store, m.fsys)
			if err != nil || !rep.Clean() {
				t.Fatalf("verify: %+v, %v", rep.Drifts, err)
			}
			compareRebuilds(t, m, "alpha", "beta", "archived")
		})
	}
}

package manager

import (
	"slices"
	"testing"

	"github.com/spoolhq/spool/internal/indextest"
	"github.com/spoolhq/spool/rollout"
)

// TestRebuildReadsAForkOfAForkOfARevertedThread: a reference fork (child)
// of a reference fork (fork) of a thread reverted twice (base, with two
// revert segments) was lost by a full rebuild in some orders of its
// workers (random sequence 77919): the later segment read first puts the
// thread's row there, the earlier one then waits for the last round, and
// both forks with it (their base's thread is still in the rounds); the last
// round read the child before the fork, found no base for it, and left it
// out ("dangling-base ... neither indexed nor in the root"). Every drawn
// order must give the live index's threads.
func TestRebuildReadsAForkOfAForkOfARevertedThread(t *testing.T) {
	ctx := t.Context()
	m := openTest(t)
	base := startPaginated(t, m, user("alpha one"), assistant("a1"), user("bravo two"), assistant("a2"),
		user("charlie three"), assistant("a3"), user("delta four"), assistant("a4"))
	for _, before := range []int{3, 2} {
		if _, err := m.Revert(ctx, base.ID, RevertOptions{BeforeUserMessage: intp(before)}); err != nil {
			t.Fatal(err)
		}
		if _, err := m.Append(ctx, base.ID, []rollout.Item{user("echo again"), assistant("a5")}); err != nil {
			t.Fatal(err)
		}
	}
	fork, err := m.Fork(ctx, base.ID, ForkOptions{Mode: ForkReference, BeforeUserMessage: intp(1)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Append(ctx, fork.ID, []rollout.Item{user("foxtrot own"), assistant("a6")}); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Fork(ctx, fork.ID, ForkOptions{Mode: ForkReference}); err != nil {
		t.Fatal(err)
	}
	want, err := m.store.IDs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for seed := uint64(1); seed <= 64; seed++ {
		rebuilt, batch := indextest.RebuildShuffled(t, m.Root(), seed)
		got, err := rebuilt.IDs(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got, want) {
			t.Fatalf("rebuild in the order of seed %d (batches of %d): threads %v, want %v", seed, batch, got, want)
		}
	}
}

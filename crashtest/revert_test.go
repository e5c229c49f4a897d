package crashtest

import (
	"context"
	"fmt"
	"testing"

	"github.com/spoolhq/spool/manager"
	"github.com/spoolhq/spool/rolloutfs"
	"github.com/spoolhq/spool/rolloutfs/faultfs"
)

// revertSetup starts a paginated thread T0 with three lines (user
// messages), forks it by reference before its message 1 (f, a line of
// its own), and starts T1 with three lines, reverted before its message 1
// (a thread in two files). Threads are w.md.order[0..2].
func revertSetup() []step {
	one := 1
	return []step{
		{"start T0", func(ctx context.Context, t *testing.T, w *faultWorld) error { return w.start(ctx) }},
		{"append T0", func(ctx context.Context, t *testing.T, w *faultWorld) error { return w.appendTo(ctx, w.md.order[0], 3) }},
		{"fork f", func(ctx context.Context, t *testing.T, w *faultWorld) error {
			pid := w.md.order[0]
			th, err := w.m.Fork(ctx, pid, manager.ForkOptions{BeforeUserMessage: &one})
			if err == nil {
				w.md.add(th.ID, append([][]byte(nil), w.md.threads[pid].lines[:1]...))
			}
			return err
		}},
		{"append f", func(ctx context.Context, t *testing.T, w *faultWorld) error { return w.appendTo(ctx, w.md.order[1], 1) }},
		{"start T1", func(ctx context.Context, t *testing.T, w *faultWorld) error { return w.start(ctx) }},
		{"append T1", func(ctx context.Context, t *testing.T, w *faultWorld) error { return w.appendTo(ctx, w.md.order[2], 3) }},
		revertOf(2, 1),
	}
}

// revertOf returns the step that reverts thread w.md.order[i] before its
// user message before. Its model keeps the lines before the cut.
func revertOf(i, before int) step {
	return step{fmt.Sprintf("revert %d before %d", i, before), func(ctx context.Context, t *testing.T, w *faultWorld) error {
		w.md.maybe.id, w.md.maybe.lines = "", nil
		id := w.md.order[i]
		_, err := w.m.Revert(ctx, id, manager.RevertOptions{BeforeUserMessage: &before})
		if err == nil {
			tm := w.md.threads[id]
			tm.lines = tm.lines[:before]
		}
		return err
	}}
}

// deleteOf returns the step that deletes thread w.md.order[i].
func deleteOf(i int) step { return removeOf("delete", i, (*manager.Manager).Delete) }

// TestRevertFaultPoints fails, one at a time, every fault point of a
// revert (of T0, below its fork's cut, and of T1 again, further back) and
// of the delete of a reverted thread (T1, in two files). After each
// failure the operation, called again without faults, succeeds; every
// other thread reads its lines unchanged, and the reopened store verifies
// clean and holds what the model says.
func TestRevertFaultPoints(t *testing.T) {
	c := crashCase{rolloutfs.SyncAlways, "paginated"}
	setup := revertSetup()
	covered := map[faultfs.Op]int{}
	for _, op := range []step{revertOf(0, 2), revertOf(2, 0), deleteOf(2)} {
		for kind, n := range sweepFaultPoints(t, c, setup, op, func(t *testing.T, w *faultWorld, opErr error) {
			if opErr != nil {
				if err := op.run(t.Context(), t, w); err != nil {
					t.Fatalf("%s again, without faults: %v", op.name, err)
				}
			}
			w.checkAll(t)
			w.reopenAndCheck(t, nil)
		}) {
			covered[kind] += n
		}
	}
	t.Logf("covered fault points: %v", covered)
	for _, op := range []faultfs.Op{faultfs.OpCreate, faultfs.OpRemove} {
		if covered[op] == 0 {
			t.Fatalf("no %s point reached: %v", op, covered)
		}
	}
}

// TestRevertPowerLoss cuts the power after an acknowledged revert and
// after the acknowledged delete of a reverted thread, under always and
// none: a revert and a delete are durable under every policy, so the
// reopened store holds exactly what the model says (under none, the
// appends since the last writeback aside).
func TestRevertPowerLoss(t *testing.T) {
	for _, policy := range []rolloutfs.SyncPolicy{rolloutfs.SyncAlways, rolloutfs.SyncNone} {
		c := crashCase{policy, "paginated"}
		for _, op := range []step{revertOf(0, 2), revertOf(2, 0), deleteOf(2)} {
			t.Run(fmt.Sprintf("%s/after-%s", c, op.name), func(t *testing.T) {
				ctx := t.Context()
				w := newFaultWorld(t, c)
				replay(ctx, t, w, revertSetup())
				var floor *model
				if policy == rolloutfs.SyncNone {
					w.fsys.Flush()
					floor = w.md.clone()
				}
				replay(ctx, t, w, []step{op})
				if floor != nil {
					// What the operation did is durable: the floor holds it.
					floor = w.md.clone()
				}
				if err := w.fsys.PowerLoss(); err != nil {
					t.Fatal(err)
				}
				w.m.Close()
				w.reopenAndCheck(t, floor)
			})
		}
	}
}

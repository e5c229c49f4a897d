package crashtest

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/spoolhq/spool/manager"
	"github.com/spoolhq/spool/rolloutfs"
	"github.com/spoolhq/spool/rolloutfs/faultfs"
)

// purgeSetup builds a chain of reference forks: a paginated thread T0, f1
// a fork of T0 before its user message 1 with lines of its own, f2 a
// whole fork of f1, f3 a fork of f2 before its user message 2 (whose base
// is f1, archived), and g a whole fork of T0. Threads are
// w.md.order[0..4].
func purgeSetup() []step {
	fork := func(parent int, before *int) func(ctx context.Context, t *testing.T, w *faultWorld) error {
		return func(ctx context.Context, t *testing.T, w *faultWorld) error {
			pid := w.md.order[parent]
			th, err := w.m.Fork(ctx, pid, manager.ForkOptions{BeforeUserMessage: before})
			if err != nil {
				return err
			}
			lines := w.md.threads[pid].lines
			if before != nil {
				lines = lines[:*before]
			}
			w.md.add(th.ID, append([][]byte(nil), lines...))
			return nil
		}
	}
	one, two := 1, 2
	return []step{
		{"start", func(ctx context.Context, t *testing.T, w *faultWorld) error { return w.start(ctx) }},
		{"append", func(ctx context.Context, t *testing.T, w *faultWorld) error { return w.appendTo(ctx, w.md.order[0], 3) }},
		{"fork f1", fork(0, &one)},
		{"append f1", func(ctx context.Context, t *testing.T, w *faultWorld) error { return w.appendTo(ctx, w.md.order[1], 2) }},
		{"fork f2", fork(1, nil)},
		{"fork f3", fork(2, &two)},
		{"fork g", fork(0, nil)},
		// An archived descendant: its rewrite sets the archive time back
		// on the new file, one more step that can fail.
		{"archive f3", func(ctx context.Context, t *testing.T, w *faultWorld) error {
			id := w.md.order[3]
			_, err := w.m.Archive(ctx, id)
			if err == nil {
				w.md.threads[id].archived = true
			}
			return err
		}},
	}
}

// purgeOf returns the step that purges thread w.md.order[i].
func purgeOf(i int) step {
	return removeOf("purge", i, (*manager.Manager).Purge)
}

// removeOf returns the step named verb that removes thread w.md.order[i]
// with remove (Delete or Purge), and marks it deleted in the model when
// it succeeds.
func removeOf(verb string, i int, remove func(*manager.Manager, context.Context, string) error) step {
	return step{fmt.Sprintf("%s %d", verb, i), func(ctx context.Context, t *testing.T, w *faultWorld) error {
		w.md.maybe.id, w.md.maybe.lines = "", nil
		id := w.md.order[i]
		err := remove(w.m, ctx, id)
		if err == nil {
			w.md.threads[id].deleted = true
		}
		return err
	}}
}

// TestPurgeFaultPoints fails, one at a time, every fault point a purge
// reaches (of the middle thread f1, whose descendants f2 and f3 must be
// made self-contained, and of the root, whose fork g must): after each
// failure every thread still reads its history unchanged, the purge
// succeeds when called again, and a reopened store verifies clean.
func TestPurgeFaultPoints(t *testing.T) {
	c := crashCase{rolloutfs.SyncAlways, "paginated"}
	setup := purgeSetup()
	covered := map[faultfs.Op]int{}
	for _, target := range []int{1, 0} {
		purge := purgeOf(target)
		for op, n := range sweepFaultPoints(t, c, setup, purge, func(t *testing.T, w *faultWorld, _ error) {
			w.checkAll(t)
			if !w.md.threads[w.md.order[target]].deleted {
				if err := purge.run(t.Context(), t, w); err != nil {
					t.Fatalf("purge again, without faults: %v", err)
				}
				w.checkAll(t)
			}
			w.reopenAndCheck(t, nil)
		}) {
			covered[op] += n
		}
	}
	t.Logf("covered fault points: %v", covered)
	for _, op := range []faultfs.Op{faultfs.OpReplace, faultfs.OpSetTime, faultfs.OpRemove} {
		if covered[op] == 0 {
			t.Fatalf("purge reached no %s point: %v", op, covered)
		}
	}
}

// checkAll checks every thread of the model that is not deleted reads its
// acknowledged lines exactly, and a deleted one is gone.
func (w *faultWorld) checkAll(t *testing.T) {
	t.Helper()
	for _, id := range w.md.order {
		tm := w.md.threads[id]
		if tm.deleted {
			if _, err := w.m.Get(t.Context(), id); !errors.Is(err, manager.ErrNotFound) {
				t.Errorf("purged thread %s: Get = %v, want ErrNotFound", id, err)
			}
			continue
		}
		w.checkLines(t, id, tm, len(tm.lines))
	}
}

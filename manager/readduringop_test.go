package manager

import (
	"context"
	"errors"
	"io"
	"sync"
	"testing"

	"github.com/spoolhq/spool/indexer"
	"github.com/spoolhq/spool/rollout"
)

// readLoop reads thread id through every kind of read (freshen, openFresh
// and a chain) until stop closes, and reports the first error that is not
// allowed (ok says which are).
func readLoop(ctx context.Context, m *Manager, id string, stop <-chan struct{}, ok func(error) bool) error {
	for {
		select {
		case <-stop:
			return nil
		default:
		}
		if _, err := m.UserMessages(ctx, id); err != nil && !ok(err) {
			return err
		}
		rc, err := m.ReadFrom(ctx, id, 0)
		if err == nil {
			_, err = io.Copy(io.Discard, rc)
			rc.Close()
		}
		if err != nil && !ok(err) {
			return err
		}
		if _, err := m.Get(ctx, id); err != nil && !ok(err) {
			return err
		}
	}
}

// TestReadsDuringSpoolMoves: reads of a thread while spool archives and
// unarchives it (a reverted thread, so its earlier files move too), with
// a capacity of one so that the thread drops out of memory between
// moves, never fail and never drop or misplace its row.
func TestReadsDuringSpoolMoves(t *testing.T) {
	ctx := t.Context()
	m := openTest(t, func(o *Options) { o.Capacity = 1 })
	th := threeTurns(t, m, "paginated")
	res, err := m.Revert(ctx, th.ID, RevertOptions{BeforeTurnID: "turn-c"})
	if err != nil {
		t.Fatal(err)
	}
	th = res
	other := start(t, m, user("other"))

	stop := make(chan struct{})
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for range 2 {
		wg.Go(func() {
			errs <- readLoop(ctx, m, th.ID, stop, func(error) bool { return false })
		})
	}
	for i := range 60 {
		if _, err := m.Archive(ctx, th.ID); err != nil {
			t.Fatalf("archive %d: %v", i, err)
		}
		if _, err := m.Get(ctx, other.ID); err != nil { // evicts th
			t.Fatal(err)
		}
		if _, err := m.Append(ctx, other.ID, []rollout.Item{user("evict")}); err != nil {
			t.Fatal(err)
		}
		if _, err := m.Unarchive(ctx, th.ID); err != nil {
			t.Fatalf("unarchive %d: %v", i, err)
		}
	}
	close(stop)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("read during moves: %v", err)
		}
	}
	got, err := m.Get(ctx, th.ID)
	if err != nil || got.Archived || indexer.IsArchivedPath(got.RolloutPath) {
		t.Fatalf("after the moves: %+v, %v; want live", got, err)
	}
	rep, err := indexer.Verify(ctx, m.store, m.fsys)
	if err != nil || !rep.Clean() {
		t.Fatalf("verify: %+v %+v, %v", rep.Drifts, rep.Problems, err)
	}
	compareIndexes(t, m.store, rebuildIndex(t, m))
}

// TestReadsDuringSpoolDelete: reads of a thread while spool deletes it
// fail with ErrNotFound at most, and leave nothing of it in the index.
func TestReadsDuringSpoolDelete(t *testing.T) {
	ctx := t.Context()
	m := openTest(t, func(o *Options) { o.Capacity = 1 })
	for i := range 30 {
		th := threeTurns(t, m, "paginated")
		if i%2 == 1 {
			if _, err := m.Revert(ctx, th.ID, RevertOptions{BeforeTurnID: "turn-b"}); err != nil {
				t.Fatal(err)
			}
		}
		if i%3 == 0 {
			if _, err := m.Archive(ctx, th.ID); err != nil {
				t.Fatal(err)
			}
		}
		stop := make(chan struct{})
		errs := make(chan error, 1)
		go func() {
			errs <- readLoop(ctx, m, th.ID, stop, func(err error) bool {
				return errors.Is(err, ErrNotFound) || errors.Is(err, ErrBrokenChain)
			})
		}()
		if err := m.Delete(ctx, th.ID); err != nil {
			t.Fatalf("delete %d: %v", i, err)
		}
		close(stop)
		if err := <-errs; err != nil {
			t.Errorf("read during delete %d: %v", i, err)
		}
		if _, err := m.Get(ctx, th.ID); !errors.Is(err, ErrNotFound) {
			t.Fatalf("deleted thread %d: %v, want ErrNotFound", i, err)
		}
	}
	rep, err := indexer.Verify(ctx, m.store, m.fsys)
	if err != nil || !rep.Clean() {
		t.Fatalf("verify: %+v %+v, %v", rep.Drifts, rep.Problems, err)
	}
	compareIndexes(t, m.store, rebuildIndex(t, m))
}

// TestReadsDuringRevertAndPurge: reads of a thread while spool reverts it
// (a new segment file) and while a purge of its base rewrites it in place
// never fail, and the index ends as a rebuild has it.
func TestReadsDuringRevertAndPurge(t *testing.T) {
	ctx := t.Context()
	m := openTest(t, func(o *Options) { o.Capacity = 1 })
	for i := range 15 {
		base := threeTurns(t, m, "paginated")
		fork, err := m.Fork(ctx, base.ID, ForkOptions{Cwd: "/work", BeforeTurnID: "turn-c"})
		if err != nil {
			t.Fatal(err)
		}
		for _, turn := range []string{"f-a", "f-b"} {
			if _, err := m.AppendTurn(ctx, fork.ID, TurnOptions{TurnID: turn, Prompt: "p " + turn, Answer: "a " + turn}); err != nil {
				t.Fatal(err)
			}
		}
		stop := make(chan struct{})
		errs := make(chan error, 1)
		go func() {
			errs <- readLoop(ctx, m, fork.ID, stop, func(error) bool { return false })
		}()
		if _, err := m.Revert(ctx, fork.ID, RevertOptions{BeforeTurnID: "f-b"}); err != nil {
			t.Fatalf("revert %d: %v", i, err)
		}
		if err := m.Purge(ctx, base.ID); err != nil {
			t.Fatalf("purge %d: %v", i, err)
		}
		close(stop)
		if err := <-errs; err != nil {
			t.Errorf("read during revert and purge %d: %v", i, err)
		}
	}
	rep, err := indexer.Verify(ctx, m.store, m.fsys)
	if err != nil || !rep.Clean() {
		t.Fatalf("verify: %+v %+v, %v", rep.Drifts, rep.Problems, err)
	}
	compareIndexes(t, m.store, rebuildIndex(t, m))
}

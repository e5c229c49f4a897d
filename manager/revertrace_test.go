package manager

import (
	"bytes"
	"errors"
	"testing"
)

// TestRevertBesideAReferenceFork: a reference fork past the cut made while
// a revert runs (after its look for such forks, before the segment is
// indexed) makes the revert fail with ErrReferenced, as one made before
// does, and the fork keeps reading its history. Revert opens the thread's
// file twice before it writes: its read of the history, then its read of
// the meta (segmentPayload), after its look for forks.
func TestRevertBesideAReferenceFork(t *testing.T) {
	t.Run("fork after the revert looked", revertThenFork)
	t.Run("revert after the fork read its parent", forkThenRevert)
}

func revertThenFork(t *testing.T) {
	ctx := t.Context()
	m, fsys := openOnOpen(t)
	th := threeTurns(t, m, "paginated")
	var fork Thread
	var forkErr error
	fsys.name, fsys.n = th.RolloutPath, 2
	fsys.run = func() {
		fork, forkErr = m.Fork(ctx, th.ID, ForkOptions{LastTurnID: "turn-c"})
	}
	_, err := m.Revert(ctx, th.ID, RevertOptions{BeforeTurnID: "turn-b"})
	if fsys.run != nil {
		t.Fatal("the hook never ran")
	}
	if forkErr != nil {
		t.Fatalf("fork during the revert: %v", forkErr)
	}
	if !errors.Is(err, ErrReferenced) {
		t.Errorf("revert with a fork past its cut made meanwhile: %v, want ErrReferenced", err)
	}
	h := historyOf(t, m, fork.ID)
	if !bytes.Contains(h, []byte("turn-c")) {
		t.Fatalf("the fork's history lacks turn-c:\n%s", h)
	}
	verifyClean(t, m)
}

// forkThenRevert: a revert that runs whole after a reference fork past
// its cut read the parent, and before the fork writes, leaves no fork
// whose base does not hold its history: the fork reads the parent again
// and fails (turn-c is gone), or reads it whole.
func forkThenRevert(t *testing.T) {
	ctx := t.Context()
	m, fsys := openOnOpen(t)
	th := threeTurns(t, m, "paginated")
	var revertErr error
	fsys.name, fsys.n = th.RolloutPath, 1 // the fork's read of its parent
	fsys.run = func() {
		_, revertErr = m.Revert(ctx, th.ID, RevertOptions{BeforeTurnID: "turn-b"})
	}
	fork, err := m.Fork(ctx, th.ID, ForkOptions{LastTurnID: "turn-c"})
	if fsys.run != nil {
		t.Fatal("the hook never ran")
	}
	if revertErr != nil {
		t.Fatalf("revert during the fork: %v", revertErr)
	}
	if err == nil {
		if h := historyOf(t, m, fork.ID); !bytes.Contains(h, []byte("turn-c")) {
			t.Fatalf("the fork's history lacks turn-c:\n%s", h)
		}
	} else if !errors.Is(err, ErrNotFound) {
		t.Fatalf("fork of a parent reverted meanwhile: %v, want success or ErrNotFound", err)
	}
	verifyClean(t, m)
}

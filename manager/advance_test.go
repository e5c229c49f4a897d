package manager

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"testing/synctest"

	"github.com/spoolhq/spool/store"
)

// fakeIndex records the batches an indexBatcher commits.
type fakeIndex struct {
	mu      sync.Mutex
	batches [][]string // guarded by mu: the thread ids of each commit
	failing string     // AdvanceAll fails on a batch holding this id, Advance on it alone
}

var errFakeIndex = errors.New("fake index refuses")

func (f *fakeIndex) Advance(_ context.Context, p store.Progress) error {
	return f.AdvanceAll(context.Background(), []store.Progress{p})
}

func (f *fakeIndex) AdvanceAll(_ context.Context, ps []store.Progress) error {
	var ids []string
	for _, p := range ps {
		if p.ID == f.failing {
			return errFakeIndex
		}
		ids = append(ids, p.ID)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.batches = append(f.batches, ids)
	return nil
}

func (f *fakeIndex) committed() [][]string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([][]string(nil), f.batches...)
}

// TestIndexBatcherWaitsForGathered checks that a leader commits nothing
// before its batch is gathered (under SyncBatch: its lines' group sync has
// begun), and that the updates queued meanwhile then share one commit.
func TestIndexBatcherWaitsForGathered(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		idx := &fakeIndex{}
		b := &indexBatcher{store: idx}
		gathered := make(chan struct{})
		const n = 8
		errs := make(chan error, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				errs <- b.advance(t.Context(), store.Progress{ID: fmt.Sprint("t", i)}, gathered)
			})
		}
		synctest.Wait() // every call is queued; the leader waits for gathered
		if got := idx.committed(); len(got) != 0 {
			t.Fatalf("committed %v before the batch was gathered", got)
		}
		close(gathered)
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatalf("advance: %v", err)
			}
		}
		if got := idx.committed(); len(got) != 1 || len(got[0]) != n {
			t.Fatalf("commits %v, want one of all %d updates", got, n)
		}
	})
}

// TestIndexBatcherGatheredAtOnce checks the other policies' case: with a
// closed channel each call commits at once, and a batch that fails is
// applied update by update, so only the failing caller sees the error.
func TestIndexBatcherGatheredAtOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		idx := &fakeIndex{failing: "bad"}
		b := &indexBatcher{store: idx}
		now := make(chan struct{})
		close(now)
		if err := b.advance(t.Context(), store.Progress{ID: "alone"}, now); err != nil {
			t.Fatalf("advance: %v", err)
		}
		if got := idx.committed(); len(got) != 1 {
			t.Fatalf("commits %v after one call, want one", got)
		}

		gathered := make(chan struct{})
		results := make(map[string]chan error)
		var wg sync.WaitGroup
		for _, id := range []string{"a", "bad", "b"} {
			r := make(chan error, 1)
			results[id] = r
			wg.Go(func() { r <- b.advance(t.Context(), store.Progress{ID: id}, gathered) })
		}
		synctest.Wait()
		close(gathered)
		wg.Wait()
		for id, r := range results {
			err := <-r
			if want := id == "bad"; errors.Is(err, errFakeIndex) != want {
				t.Errorf("advance of %s: %v, want the index's error: %t", id, err, want)
			}
		}
		if got := idx.committed(); len(got) != 3 {
			t.Fatalf("commits %v, want the first and then a and b alone", got)
		}
	})
}

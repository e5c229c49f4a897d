package crashtest

import (
	"context"
	"errors"
	"io"
	"sync"
	"sync/atomic"
	"testing"
)

// TestReadAndForkDuringArchive reads and forks a thread while it is
// archived and unarchived over and over. Moving the file is not an error a
// reader or a forker may see: each call must succeed, whichever side of the
// move it lands on. (Found by TestCrash as intermittent 500s from
// GET /v1/threads/{id}/items and POST /v1/threads/{id}/fork.)
func TestReadAndForkDuringArchive(t *testing.T) {
	const (
		minToggles = 60    // at least this many moves
		maxToggles = 20000 // bound on the run, should readers starve
		minEach    = 20    // reads and forks that must land among the moves
		maxErrors  = 5
	)
	root := t.TempDir()
	m, _ := openManager(t, root)
	th := startThread(t, m, "one", "two")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	var (
		wg           sync.WaitGroup
		reads, forks atomic.Int64
		readErrs     atomic.Int64
		forkErrs     atomic.Int64
	)
	report := func(counter *atomic.Int64, format string, args ...any) {
		if counter.Add(1) <= maxErrors {
			t.Errorf(format, args...)
		}
	}
	toggles := 0
	wg.Go(func() {
		defer cancel()
		for i := 0; i < maxToggles && (i < minToggles || reads.Load() < minEach || forks.Load() < minEach); i++ {
			toggles++
			var err error
			if i%2 == 0 {
				_, err = m.Archive(ctx, th.ID)
			} else {
				_, err = m.Unarchive(ctx, th.ID)
			}
			if err != nil {
				t.Errorf("toggle %d: %v", i, err)
				return
			}
		}
	})
	wg.Go(func() {
		for ctx.Err() == nil {
			rc, err := m.ReadFrom(ctx, th.ID, -1)
			if err != nil {
				if ctx.Err() == nil {
					report(&readErrs, "ReadFrom during archive: %v", err)
				}
				continue
			}
			_, err = io.Copy(io.Discard, rc)
			rc.Close()
			if err != nil {
				report(&readErrs, "read during archive: %v", err)
			}
			reads.Add(1)
		}
	})
	wg.Go(func() {
		one := 1
		for ctx.Err() == nil {
			_, err := m.Fork(ctx, th.ID, forkAt(&one))
			if err != nil {
				if ctx.Err() == nil && !errors.Is(err, context.Canceled) {
					report(&forkErrs, "Fork during archive: %v", err)
				}
				continue
			}
			forks.Add(1)
		}
	})
	wg.Wait()
	if reads.Load() < minEach || forks.Load() < minEach {
		t.Errorf("only %d reads and %d forks completed during %d moves, want %d each", reads.Load(), forks.Load(), toggles, minEach)
	}
	t.Logf("%d toggles, %d reads, %d forks; %d read errors, %d fork errors",
		toggles, reads.Load(), forks.Load(), readErrs.Load(), forkErrs.Load())
}

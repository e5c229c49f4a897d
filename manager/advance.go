package manager

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/spoolhq/spool/store"
)

// indexBatcher groups the index updates of concurrent appenders into one
// store transaction (group commit for the index). The first caller to find
// no batch running becomes the leader and commits what is pending, its own
// update included. Callers that arrive meanwhile form the next batch; when
// the leader is done it hands the lead to the first of them and returns.
// So a caller waits for at most the batch in flight when it arrived and
// its own, never for later ones. No goroutine outlives a call.
//
// Under SyncBatch a leader first waits for its own lines' group sync to
// begin (a sync runs at most once at a time, and never waits for the
// index): by then every append that shares that sync has written its lines
// and queued its update, so one commit takes them all, and the commit runs
// while the sync does. Without that wait a batch held what arrived during
// the last commit, a fraction of a sync's group.
type indexBatcher struct {
	store progressIndex

	mu      sync.Mutex // guards pending and running
	pending []*indexUpdate
	running bool // a leader is committing; pending waits for the next lead

	commits, updates, busyNanos, gatherNanos atomic.Int64 // what stats reports
}

// CommitStats counts the index commits of appends' updates (indexBatcher)
// since the Manager opened.
type CommitStats struct {
	Commits int64         // transactions committed (a failed batch's updates then commit one by one)
	Updates int64         // appends' updates committed
	Busy    time.Duration // time spent committing
	// Gathering is the time leaders waited for their lines' group sync to
	// begin before committing (SyncBatch), while later updates queued.
	Gathering time.Duration
}

func (b *indexBatcher) stats() CommitStats {
	return CommitStats{
		Commits:   b.commits.Load(),
		Updates:   b.updates.Load(),
		Busy:      time.Duration(b.busyNanos.Load()),
		Gathering: time.Duration(b.gatherNanos.Load()),
	}
}

// progressIndex is where an indexBatcher commits: *store.Store.
type progressIndex interface {
	Advance(ctx context.Context, p store.Progress) error
	AdvanceAll(ctx context.Context, ps []store.Progress) error
}

type indexUpdate struct {
	progress store.Progress
	done     chan error    // buffered: the leader never blocks on it
	lead     chan struct{} // buffered: this caller now leads the next batch
}

// advance applies p to the index, batched with concurrent calls, and
// returns once it is committed. gathered is closed when the batch p joins
// may be committed: when the sync of p's lines has begun (see above), or
// at once. Its lines are in the file, so the update is made whatever
// happens to the caller: ctx must not be cancelled (context.WithoutCancel).
func (b *indexBatcher) advance(ctx context.Context, p store.Progress, gathered <-chan struct{}) error {
	u := &indexUpdate{progress: p, done: make(chan error, 1), lead: make(chan struct{}, 1)}
	b.mu.Lock()
	b.pending = append(b.pending, u)
	if b.running {
		b.mu.Unlock()
		select {
		case err := <-u.done:
			return err
		case <-u.lead:
		}
		b.mu.Lock()
	}
	b.running = true
	b.mu.Unlock()
	waitStart := time.Now()
	<-gathered
	b.gatherNanos.Add(int64(time.Since(waitStart)))
	b.mu.Lock()
	batch := b.pending // u is in it: only a leader takes pending
	b.pending = nil
	b.mu.Unlock()

	b.commit(ctx, batch)

	b.mu.Lock()
	if len(b.pending) > 0 {
		b.pending[0].lead <- struct{}{}
	} else {
		b.running = false
	}
	b.mu.Unlock()
	return <-u.done
}

// commit applies a batch in one transaction. If that fails, each update is
// applied alone, so one thread's error (say, deleted meanwhile) is that
// caller's only.
func (b *indexBatcher) commit(ctx context.Context, batch []*indexUpdate) {
	start := time.Now()
	errs := b.apply(ctx, batch)
	// Counted before the answers, so that a caller who has its answer
	// finds its commit in the stats.
	b.busyNanos.Add(int64(time.Since(start)))
	b.updates.Add(int64(len(batch) - countErrors(errs)))
	for i, u := range batch {
		u.done <- errs[i]
	}
}

func countErrors(errs []error) int {
	n := 0
	for _, err := range errs {
		if err != nil {
			n++
		}
	}
	return n
}

// apply applies a batch in one transaction, or, if that fails, each
// update alone, and returns each update's error.
func (b *indexBatcher) apply(ctx context.Context, batch []*indexUpdate) []error {
	errs := make([]error, len(batch))
	if len(batch) > 1 {
		ps := make([]store.Progress, len(batch))
		for i, u := range batch {
			ps[i] = u.progress
		}
		if b.store.AdvanceAll(ctx, ps) == nil {
			b.commits.Add(1)
			return errs
		}
	}
	for i, u := range batch {
		if errs[i] = b.store.Advance(ctx, u.progress); errs[i] == nil {
			b.commits.Add(1)
		}
	}
	return errs
}

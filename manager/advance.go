package manager

import (
	"context"
	"sync"

	"github.com/spoolhq/spool/store"
)

// indexBatcher groups the index updates of concurrent appenders into one
// store transaction (group commit for the index). The first caller to find
// no batch running becomes the leader: it commits what is pending, then
// whatever arrived meanwhile, until nothing is left. No goroutine outlives
// a call.
type indexBatcher struct {
	store *store.Store

	mu      sync.Mutex // guards pending and running
	pending []*indexUpdate
	running bool
}

type indexUpdate struct {
	progress store.Progress
	done     chan error // buffered: the leader never blocks on it
}

// advance applies p to the index, batched with concurrent calls, and
// returns once it is committed.
func (b *indexBatcher) advance(ctx context.Context, p store.Progress) error {
	u := &indexUpdate{progress: p, done: make(chan error, 1)}
	b.mu.Lock()
	b.pending = append(b.pending, u)
	if b.running {
		b.mu.Unlock()
		return <-u.done
	}
	b.running = true
	for len(b.pending) > 0 {
		batch := b.pending
		b.pending = nil
		b.mu.Unlock()
		b.commit(ctx, batch)
		b.mu.Lock()
	}
	b.running = false
	b.mu.Unlock()
	return <-u.done
}

// commit applies a batch in one transaction. If that fails, each update is
// applied alone, so one thread's error (say, deleted meanwhile) is that
// caller's only.
func (b *indexBatcher) commit(ctx context.Context, batch []*indexUpdate) {
	if len(batch) > 1 {
		ps := make([]store.Progress, len(batch))
		for i, u := range batch {
			ps[i] = u.progress
		}
		if b.store.AdvanceAll(ctx, ps) == nil {
			for _, u := range batch {
				u.done <- nil
			}
			return
		}
	}
	for _, u := range batch {
		u.done <- b.store.Advance(ctx, u.progress)
	}
}

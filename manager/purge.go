package manager

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/spoolhq/spool/store"
)

// Purge deletes thread id as Delete does, also when other threads'
// history continues it (reference forks, where Delete fails with a
// *ReferencedError as Codex 0.169 does). First every thread whose history
// passes through id's bytes (its reference forks, theirs, and so on) is
// made self-contained, deepest first and one at a time, each atomically:
// it keeps its id, path, name, parent and ancestry, and reads the same
// lines as before (its meta, without history_base, and its ancestors'
// metas down to the chain's first file come first), with the ordinals
// renumbered. Then id's file and index rows, its search text
// included, are removed.
//
// A failure stops the purge: the threads made self-contained so far stay
// so, the others and id are unchanged, and every thread reads as before.
// Purge may be called again.
func (m *Manager) Purge(ctx context.Context, id string) error {
	id, err := parseID("purge", id)
	if err != nil {
		return err
	}
	if err := m.begin(); err != nil {
		return err
	}
	defer m.ops.Done()
	if err := m.lookForForks(ctx); err != nil {
		return threadErr(id, err, "purge")
	}
	for attempt := 0; ; attempt++ {
		dependents, err := m.dependents(ctx, id)
		if err != nil {
			return threadErr(id, err, "purge")
		}
		if err := m.refuseUnindexed(ctx, append(dependents, id)); err != nil {
			return threadErr(id, err, "purge")
		}
		for _, d := range dependents {
			var row store.Thread
			if err := m.withThread(ctx, d, func(lt *liveThread) error {
				err := m.materialize(ctx, lt)
				row = lt.row
				return err
			}); err != nil {
				return threadErr(id, fmt.Errorf("make %s self-contained: %w", d, err), "purge")
			}
			// Its history was laid out anew (the meta first, its lines
			// renumbered): positions a reader holds name other bytes, as
			// after a revert.
			m.publishThread(EventReverted, row)
		}
		err = m.Delete(ctx, id)
		// A reference fork made meanwhile refers to id again: once more.
		if errors.Is(err, ErrReferenced) && attempt < 3 {
			continue
		}
		return err
	}
}

// refuseUnindexed fails with a *ReferencedError when a fork the index
// cannot read (unindexedReferrers) continues one of ids: a purge cannot
// make such a fork self-contained, and would rewrite or remove the bytes
// it names.
func (m *Manager) refuseUnindexed(ctx context.Context, ids []string) error {
	for _, id := range ids {
		forks, files, err := m.unindexedReferrers(ctx, id)
		if err != nil {
			return err
		}
		if len(forks) > 0 {
			return &ReferencedError{ID: id, Forks: forks, Unindexed: files}
		}
	}
	return nil
}

// dependents returns the threads whose history passes through thread id's
// bytes, children after their descendants: each can be rewritten while
// every thread that still refers to it reads through it unchanged.
func (m *Manager) dependents(ctx context.Context, id string) ([]string, error) {
	if _, err := m.store.Get(ctx, id); err != nil {
		return nil, err
	}
	return Dependents(ctx, id, m.store.Referrers)
}

// Dependents returns the threads whose history passes through thread id's
// bytes, directly or through one another (referrers lists those that refer
// to a thread directly), each after every thread that refers to it: the
// order in which a purge makes them self-contained, so that each can be
// rewritten while the threads that still refer to it read through it
// unchanged. More than maxChain of them fails with ErrBrokenChain.
func Dependents(ctx context.Context, id string, referrers func(context.Context, string) ([]string, error)) ([]string, error) {
	var order []string
	seen := map[string]bool{id: true}
	for queue := []string{id}; len(queue) > 0; queue = queue[1:] {
		if len(order) > maxChain {
			return nil, fmt.Errorf("threads continuing %s: more than %d: %w", id, maxChain, ErrBrokenChain)
		}
		refs, err := referrers(ctx, queue[0])
		if err != nil {
			return nil, err
		}
		for _, r := range refs {
			if !seen[r] {
				seen[r] = true
				order = append(order, r)
				queue = append(queue, r)
			}
		}
	}
	// Breadth first, reversed: every thread comes after all that refer to it.
	slices.Reverse(order)
	return order, nil
}

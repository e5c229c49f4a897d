package manager

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/spoolhq/spool/rolloutfs"
	"github.com/spoolhq/spool/store"
)

// history is a byte range of a rollout file, closed with the file.
type history struct {
	*io.SectionReader
	f rolloutfs.ReadFile
}

func (h *history) Close() error { return h.f.Close() }

// ReadFrom returns the thread's complete lines from its counted user
// message k on, as raw JSONL bytes; k < 0, or k = 0 on a thread without
// user messages, returns the whole history. It seeks to the indexed offset
// and never reads the lines before it. The range ends at the indexed size
// when the call is made: lines appended later are not included. A k past
// the last user message fails with an *OutOfRangeError. The caller closes
// the reader.
func (m *Manager) ReadFrom(ctx context.Context, id string, k int) (io.ReadCloser, error) {
	id, err := parseID("read", id)
	if err != nil {
		return nil, err
	}
	rc, err := m.readRange(ctx, id, k, false)
	if err != nil {
		if k < 0 {
			return nil, threadErr(id, err, "read")
		}
		return nil, threadErr(id, err, "read from user message %d", k)
	}
	return rc, nil
}

// ReadTurn returns the lines of turn k: from user message k up to user
// message k+1, or to the end for the last turn.
func (m *Manager) ReadTurn(ctx context.Context, id string, k int) (io.ReadCloser, error) {
	id, err := parseID("read turn of", id)
	if err != nil {
		return nil, err
	}
	rc, err := m.readRange(ctx, id, k, true)
	if err != nil {
		return nil, threadErr(id, err, "read turn %d", k)
	}
	return rc, nil
}

// readStep, when set (by tests), is called as readRange passes its steps:
// "opened" once it has read the thread's row and opened its files.
var readStep func(step string)

func (m *Manager) readRange(ctx context.Context, id string, k int, oneTurn bool) (io.ReadCloser, error) {
	if err := m.begin(); err != nil {
		return nil, err
	}
	defer m.ops.Done()
	row, f, chain, err := m.openChain(ctx, id)
	if err != nil {
		return nil, err
	}
	if readStep != nil {
		readStep("opened")
	}
	// message k of the history: looked up in the thread of the chain that
	// holds it when openChain read the chain, else walked again.
	message := func(k int) (store.UserMessage, error) {
		if chain != nil {
			return m.store.ChainUserMessage(ctx, chain, k)
		}
		return m.store.UserMessage(ctx, id, k)
	}
	start, end := int64(0), row.HistorySize()
	whole := k < 0 && !oneTurn || k == 0 && row.UserMessageCount == 0 && !oneTurn
	if !whole {
		if k >= row.UserMessageCount {
			// Not in the history as read (row is clamped to what is
			// acknowledged): the index may hold the row of an append
			// not acknowledged yet, past the history.
			f.Close()
			return nil, &OutOfRangeError{ID: id, Requested: k, Count: row.UserMessageCount}
		}
		msg, err := message(k)
		if errors.Is(err, store.ErrNotFound) {
			f.Close()
			// The row said the thread has message k: unless it still
			// exists, it was deleted since (its rows went), which is
			// what the caller is told.
			if _, err := m.store.Get(ctx, id); err != nil {
				return nil, err
			}
			return nil, &OutOfRangeError{ID: id, Requested: k, Count: row.UserMessageCount}
		}
		if err != nil {
			f.Close()
			return nil, err
		}
		start = msg.Offset
		// The turn of the row's last message ends at the end of the
		// history: a message appended since lies past what is read.
		if oneTurn && k+1 < row.UserMessageCount {
			next, err := message(k + 1)
			switch {
			case err == nil:
				end = next.Offset
			case !errors.Is(err, store.ErrNotFound):
				f.Close()
				return nil, err
			}
		}
	}
	// Bytes below the indexed size never change, but a rollback appended
	// after the row was read can move message k past it: read nothing then.
	end = max(min(end, row.HistorySize()), start)
	return &history{SectionReader: io.NewSectionReader(f, start, end-start), f: f}, nil
}

// UserMessages returns the thread's counted user messages with their
// offsets, line numbers and previews, after catching the index up with
// lines another process appended (as reads do).
func (m *Manager) UserMessages(ctx context.Context, id string) ([]UserMessage, error) {
	if err := m.begin(); err != nil {
		return nil, err
	}
	defer m.ops.Done()
	id, err := parseID("list user messages of", id)
	if err != nil {
		return nil, err
	}
	if err := m.freshen(ctx, id); err != nil {
		return nil, threadErr(id, err, "list user messages")
	}
	msgs, err := m.store.UserMessages(ctx, id)
	if err == nil {
		err = m.chainIntact(ctx, id)
	}
	if err != nil {
		return nil, threadErr(id, err, "list user messages")
	}
	return userMessagesOf(m.unacked.clampMessages(id, msgs)), nil
}

// UserMessagesBetween returns the thread's counted user messages with
// ordinals in [lo, hi), as UserMessages gives them, and how many counted
// user messages the thread has. It reads the rows of the range alone: a
// page of a long thread's turns costs what the page holds. The count is
// read first: a message appended meanwhile may come at or past it.
func (m *Manager) UserMessagesBetween(ctx context.Context, id string, lo, hi int) ([]UserMessage, int, error) {
	if err := m.begin(); err != nil {
		return nil, 0, err
	}
	defer m.ops.Done()
	id, err := parseID("list user messages of", id)
	if err != nil {
		return nil, 0, err
	}
	if err := m.freshen(ctx, id); err != nil {
		return nil, 0, threadErr(id, err, "list user messages")
	}
	row, err := m.store.Get(ctx, id)
	var msgs []store.UserMessage
	if err == nil {
		msgs, err = m.store.UserMessagesBetween(ctx, id, lo, hi)
	}
	if err == nil {
		err = m.chainIntact(ctx, id)
	}
	if err != nil {
		return nil, 0, threadErr(id, err, "list user messages")
	}
	return userMessagesOf(m.unacked.clampMessages(id, msgs)), m.unacked.clamp(row).UserMessageCount, nil
}

// chainIntact fails with ErrBrokenChain when the history of thread id
// continues a base that is not indexed (its file was removed by hand):
// what the index answers through the bases, such as inherited user
// messages, is missing then, as a read of the history fails.
func (m *Manager) chainIntact(ctx context.Context, id string) error {
	chain, err := m.store.BaseChain(ctx, id)
	if err != nil || len(chain) == 0 {
		return err
	}
	last := chain[len(chain)-1]
	if last.BaseID == "" || last.BaseID == last.ID {
		return nil
	}
	// The chain stops at a base not indexed, or at the store's depth.
	if _, err := m.store.Get(ctx, last.BaseID); !errors.Is(err, store.ErrNotFound) {
		return err
	}
	return fmt.Errorf("base %s of %s: %w", last.BaseID, last.ID, ErrBrokenChain)
}

// List returns a page of threads from the index; no rollout file is read.
// A cursor that is not a previous page's NextCursor fails with an error
// wrapping ErrBadCursor and ErrInvalidArgument.
func (m *Manager) List(ctx context.Context, o ListOptions) (Page, error) {
	if err := m.begin(); err != nil {
		return Page{}, err
	}
	defer m.ops.Done()
	if o.ParentID != "" {
		id, err := parseID("list forks of", o.ParentID)
		if err != nil {
			return Page{}, err
		}
		o.ParentID = id
	}
	page, err := m.store.List(ctx, o) // its errors say "list threads"
	if err != nil {
		return Page{}, markInvalid(err)
	}
	for i, row := range page.Threads {
		page.Threads[i] = m.unacked.clamp(row)
	}
	return Page{Threads: threadsOf(page.Threads), NextCursor: page.NextCursor}, nil
}

// Search runs a full-text search over user messages and returns the first
// page of hits, best matches first: o.Limit of them at most (20 when 0).
// SearchPage returns the NextCursor that gets the next page.
func (m *Manager) Search(ctx context.Context, o SearchOptions) ([]SearchHit, error) {
	if err := m.begin(); err != nil {
		return nil, err
	}
	defer m.ops.Done()
	hits, err := m.store.Search(ctx, o) // its errors name the query
	if err != nil {
		return nil, markInvalid(err)
	}
	return searchHitsOf(m.unacked.clampHits(hits)), nil
}

// invalidArgument is an error of the index about a caller's argument (a
// cursor, a query), marked as ErrInvalidArgument with its text unchanged.
type invalidArgument struct{ error }

func (e invalidArgument) Unwrap() []error { return []error{e.error, ErrInvalidArgument} }

// markInvalid marks err as ErrInvalidArgument when it says a cursor or a
// search query was bad.
func markInvalid(err error) error {
	if errors.Is(err, store.ErrBadCursor) || errors.Is(err, store.ErrEmptyQuery) || errors.Is(err, store.ErrBadQuery) {
		return invalidArgument{err}
	}
	return err
}

// Ancestors returns id's fork ancestors, nearest first. Ancestors that were
// deleted are listed by id with a nil Thread.
func (m *Manager) Ancestors(ctx context.Context, id string) ([]Relative, error) {
	return m.relatives(ctx, "ancestors of", id, m.store.Ancestors)
}

// Descendants returns every thread forked (transitively) from id.
func (m *Manager) Descendants(ctx context.Context, id string) ([]Relative, error) {
	return m.relatives(ctx, "descendants of", id, m.store.Descendants)
}

func (m *Manager) relatives(ctx context.Context, op, id string, query func(context.Context, string) ([]store.Relative, error)) ([]Relative, error) {
	if err := m.begin(); err != nil {
		return nil, err
	}
	defer m.ops.Done()
	id, err := parseID(op, id)
	if err != nil {
		return nil, err
	}
	if _, err := m.store.Get(ctx, id); err != nil {
		return nil, err
	}
	rel, err := query(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", op, id, err)
	}
	return relativesOf(m.unacked.clampRelatives(rel)), nil
}

// Tree returns the root of id's fork tree and all of the root's
// descendants. When the root was deleted, root holds only its ID.
func (m *Manager) Tree(ctx context.Context, id string) (root Thread, members []Relative, err error) {
	if err := m.begin(); err != nil {
		return Thread{}, nil, err
	}
	defer m.ops.Done()
	id, err = parseID("tree of", id)
	if err != nil {
		return Thread{}, nil, err
	}
	if _, err := m.store.Get(ctx, id); err != nil {
		return Thread{}, nil, err
	}
	rootID, err := m.store.Root(ctx, id)
	if err != nil {
		return Thread{}, nil, threadErr(id, err, "tree")
	}
	rels, err := m.store.Descendants(ctx, rootID)
	if err != nil {
		return Thread{}, nil, threadErr(id, err, "tree")
	}
	members = relativesOf(m.unacked.clampRelatives(rels))
	row, err := m.store.Get(ctx, rootID)
	if errors.Is(err, store.ErrNotFound) {
		return Thread{ID: rootID}, members, nil // deleted: the root holds its id alone
	} else if err != nil {
		return Thread{}, nil, threadErr(id, err, "tree")
	}
	return threadOf(m.unacked.clamp(row)), members, nil
}

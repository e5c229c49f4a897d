package pgstore

import (
	"context"
	"fmt"
	"io"
	"math"

	"github.com/jackc/pgx/v5"
)

// UserMessages returns every user message of thread id's history in
// order: those it inherits through its base chain, then its own.
func (s *Store) UserMessages(ctx context.Context, id string) ([]UserMessage, error) {
	msgs, _, err := s.UserMessagesBetween(ctx, id, 0, math.MaxInt)
	return msgs, err
}

// UserMessagesBetween returns the user messages of thread id's history
// with ordinals in [lo, hi), in order, and how many the thread has. It
// reads the chain down only as far as the base holding message lo, in one
// snapshot: a revert meanwhile moves the rows of the threads it read.
func (s *Store) UserMessagesBetween(ctx context.Context, id string, lo, hi int) ([]UserMessage, int, error) {
	var msgs []UserMessage
	var count int
	err := s.inReadTx(ctx, func(tx pgx.Tx) error {
		t, err := getThread(ctx, tx, id, "")
		if err != nil {
			return err
		}
		count = t.UserMessageCount
		msgs, err = messagesBetween(ctx, tx, t, max(lo, 0), min(hi, count))
		return err
	})
	if err != nil {
		return nil, 0, fmt.Errorf("user messages of %s: %w", id, err)
	}
	return msgs, count, nil
}

// messagesBetween returns the user messages of t's history with ordinals
// in [lo, hi), one query per thread of the chain it reaches.
func messagesBetween(ctx context.Context, q querier, t Thread, lo, hi int) ([]UserMessage, error) {
	var msgs []UserMessage
	if lo >= hi {
		return msgs, nil
	}
	own := lo
	if t.InheritedMessages > 0 && t.BaseID != "" {
		if lo < t.InheritedMessages {
			base, err := getThread(ctx, q, t.BaseID, "")
			if err != nil {
				return nil, fmt.Errorf("base %s: %w", t.BaseID, err)
			}
			if msgs, err = messagesBetween(ctx, q, base, lo, min(hi, t.InheritedMessages)); err != nil {
				return nil, err
			}
		}
		if hi <= t.InheritedMessages {
			return msgs, nil
		}
		own = max(lo, t.InheritedMessages)
	}
	if beforeMessageRows != nil {
		beforeMessageRows(t.ID)
	}
	rows, err := q.Query(ctx, `SELECT `+messageColumns+` FROM user_messages
		WHERE thread_id = $1 AND ordinal >= $2 AND ordinal < $3 ORDER BY ordinal`, t.ID, own, hi)
	if err != nil {
		return nil, err
	}
	ownRows, err := pgx.CollectRows(rows, pgx.RowToStructByPos[UserMessage])
	if err != nil {
		return nil, err
	}
	return append(msgs, ownRows...), nil
}

// OpenHistory returns a reader of thread id's history from position from
// to position to (the end of the history as of the call when to < 0), and
// where it ends. The bytes are read a piece at a time, each in a short
// transaction of its own, so a caller that stops reading holds no
// database connection; a thread reverted or rewritten before its last
// piece is read fails the read with ErrChanged. Close the reader to stop
// early.
func (s *Store) OpenHistory(ctx context.Context, id string, from, to int64) (io.ReadCloser, int64, error) {
	return s.openHistory(ctx, id, nil, from, to)
}

// OpenHistoryIn is OpenHistory of positions the caller found in thread
// id's history in era: a thread reverted or rewritten since fails with
// ErrChanged, when it is opened or when its bytes are read.
func (s *Store) OpenHistoryIn(ctx context.Context, id string, era Era, from, to int64) (io.ReadCloser, int64, error) {
	return s.openHistory(ctx, id, &era, from, to)
}

func (s *Store) openHistory(ctx context.Context, id string, era *Era, from, to int64) (io.ReadCloser, int64, error) {
	t, err := s.Get(ctx, id)
	if err == nil {
		err = checkEra(t, era)
	}
	if err != nil {
		return nil, 0, err
	}
	if to < 0 || to > t.HistorySize() {
		to = t.HistorySize()
	}
	if from < 0 || from > to {
		return nil, 0, fmt.Errorf("read %s: %w: from %d of %d", id, ErrOutOfRange, from, to)
	}
	return &historyReader{ctx: ctx, s: s, id: t.ID, era: t.Era(), pos: from, end: to}, to, nil
}

// Relative is a thread related by forking, Depth steps away.
type Relative struct {
	ID    string
	Depth int
}

// Ancestors returns thread id's fork ancestors, the parent first.
func (s *Store) Ancestors(ctx context.Context, id string) ([]Relative, error) {
	return s.relatives(ctx, "ancestors", id, `SELECT ancestor_id, depth FROM thread_lineage
		WHERE thread_id = $1 ORDER BY depth`)
}

// Descendants returns the threads forked from thread id, directly or not,
// nearest first.
func (s *Store) Descendants(ctx context.Context, id string) ([]Relative, error) {
	if _, err := s.Get(ctx, id); err != nil {
		return nil, fmt.Errorf("descendants: %w", err)
	}
	return s.TreeMembers(ctx, id)
}

// TreeMembers returns the descendants of root, which may have been
// deleted (its descendants keep it as their ancestor), nearest first.
func (s *Store) TreeMembers(ctx context.Context, root string) ([]Relative, error) {
	return s.relativesOf(ctx, "descendants", root, `SELECT thread_id, depth FROM thread_lineage
		WHERE ancestor_id = $1 ORDER BY depth, thread_id`)
}

func (s *Store) relatives(ctx context.Context, op, id, query string) ([]Relative, error) {
	if _, err := s.Get(ctx, id); err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	return s.relativesOf(ctx, op, id, query)
}

func (s *Store) relativesOf(ctx context.Context, op, id, query string) ([]Relative, error) {
	rows, err := s.pool.Query(ctx, query, id)
	if err != nil {
		return nil, fmt.Errorf("%s of %s: %w", op, id, err)
	}
	rel, err := pgx.CollectRows(rows, pgx.RowToStructByPos[Relative])
	if err != nil {
		return nil, fmt.Errorf("%s of %s: %w", op, id, err)
	}
	return rel, nil
}

// Counts are totals over the database.
type Counts struct {
	Threads, Archived, UserMessages, Bytes int64
}

// countsSQL counts threads (links are not), archived threads, the user
// messages of every history (a link's messages past the point its thread
// reads it to, which a revert cut away, are not) and the database's size.
const countsSQL = `SELECT (SELECT COUNT(*) FROM threads WHERE link_of IS NULL),
	(SELECT COUNT(*) FROM threads WHERE archived AND link_of IS NULL),
	(SELECT COUNT(*) FROM user_messages) - (SELECT COUNT(*) FROM threads l
		JOIN threads r ON r.base_id = l.id AND COALESCE(r.link_of, r.id) = l.link_of
		JOIN user_messages m ON m.thread_id = l.id AND m.ordinal >= r.inherited_messages
		WHERE l.link_of IS NOT NULL),
	pg_database_size(current_database())`

// Counts counts threads, archived threads, user messages and the
// database's size.
func (s *Store) Counts(ctx context.Context) (Counts, error) {
	var c Counts
	err := s.pool.QueryRow(ctx, countsSQL).Scan(&c.Threads, &c.Archived, &c.UserMessages, &c.Bytes)
	if err != nil {
		return Counts{}, fmt.Errorf("counts: %w", err)
	}
	return c, nil
}

// Spawns returns the sub-agent threads spawned by id, directly (depth 1)
// or by its sub-agents, by depth then id.
func (s *Store) Spawns(ctx context.Context, id string) ([]Relative, error) {
	return s.relatives(ctx, "spawns", id, `WITH RECURSIVE walk (id, depth) AS (
			SELECT id, 1 FROM threads WHERE spawn_parent_id = $1
			UNION ALL
			SELECT t.id, w.depth + 1 FROM threads t JOIN walk w ON t.spawn_parent_id = w.id WHERE w.depth < 10000)
		SELECT id, depth FROM walk ORDER BY depth, id`)
}

// SpawnedBy returns the chain of threads that spawned id, nearest first;
// a spawner that is gone ends it.
func (s *Store) SpawnedBy(ctx context.Context, id string) ([]Relative, error) {
	return s.relatives(ctx, "spawners", id, `WITH RECURSIVE walk (id, depth) AS (
			SELECT spawn_parent_id, 1 FROM threads WHERE id = $1 AND spawn_parent_id IS NOT NULL
			UNION ALL
			SELECT t.spawn_parent_id, w.depth + 1 FROM walk w JOIN threads t ON t.id = w.id
			WHERE t.spawn_parent_id IS NOT NULL AND w.depth < 10000)
		SELECT id, depth FROM walk ORDER BY depth`)
}

package pgstore

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"

	"github.com/jackc/pgx/v5"

	"github.com/spoolhq/spool/objstore"
	"github.com/spoolhq/spool/rollout"
)

// ErrChanged reports a thread that changed between reading it and
// rewriting it (an append, or another rewrite): read it again.
var ErrChanged = errors.New("thread changed meanwhile")

// referrersSQL selects the threads other than $1 whose history continues
// thread $1's bytes: whose base, or whose link's base, is $1 or a link of
// $1.
const referrersSQL = `SELECT DISTINCT COALESCE(link_of, id) AS referrer FROM threads
	WHERE base_id IN (SELECT id FROM threads WHERE id = $1 OR link_of = $1)
		AND COALESCE(link_of, id) <> $1`

// Referrers returns the threads whose base is thread id (or, for a
// reverted thread, one of its links), by id.
func (s *Store) Referrers(ctx context.Context, id string) ([]string, error) {
	rows, err := s.pool.Query(ctx, referrersSQL+` ORDER BY referrer`, id)
	if err != nil {
		return nil, fmt.Errorf("referrers of %s: %w", id, err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("referrers of %s: %w", id, err)
	}
	return ids, nil
}

// Was is what a rewrite expects a thread's row to say: its base and its
// own size when its history was read.
type Was struct {
	BaseID string
	Size   int64
}

// MakeSelfContained replaces thread id's own bytes with what content
// yields, a self-contained history (its first line its session_meta
// without history_base), and clears its base, in one transaction under its
// row lock: its chunks, segment rows and user-message rows are replaced by
// those of content, which must hold as many user messages as the thread
// counts, and its idempotency keys are forgotten (their answers are
// positions from before: a retry with one is a new append). content is read in chunks as they are written (appendFrom), so
// the rewrite holds a chunk, not the history; appends to the thread wait
// for it. Its id, name, parent, lineage, archive state and times are kept.
// A row that no longer says was fails with ErrChanged and changes nothing;
// so does content failing to read, and a thread others continue (their
// base is it or one of its links: Referrers), with a *ReferencedError.
// After the commit the objects of its old segments are deleted (a read
// that began before may then fail; the bytes are the point; objects the
// bucket does not delete are logged and left to CollectOrphans).
func (s *Store) MakeSelfContained(ctx context.Context, id string, was Was, content io.Reader) error {
	br := bufio.NewReader(content)
	first, err := rollout.ReadLine(nil, br)
	if err != nil && err != io.EOF {
		return fmt.Errorf("make %s self-contained: %w", id, err)
	}
	var keys []string
	err = s.inTx(ctx, func(tx pgx.Tx) error {
		t, err := getThread(ctx, tx, id, "FOR UPDATE")
		if err != nil {
			return err
		}
		if t.BaseThreadID() != was.BaseID || t.Size != was.Size {
			return fmt.Errorf("%w: base %q and %d own bytes, read with base %q and %d", ErrChanged, t.BaseThreadID(), t.Size, was.BaseID, was.Size)
		}
		// A thread that continues this one's history keeps positions in
		// it, which the rewrite moves: a fork made since the caller made
		// the referrers self-contained stops it. The row lock waits for a
		// fork being made (its base's key is share-locked).
		if err := refuseReferrers(ctx, tx, id, referrersSQL+` ORDER BY referrer`, id); err != nil {
			return err
		}
		if keys, err = familyKeys(ctx, tx, id); err != nil {
			return err
		}
		var b pgx.Batch
		b.Queue(`DELETE FROM chunks WHERE thread_id = $1`, id)
		b.Queue(`DELETE FROM segments WHERE thread_id = $1`, id)
		b.Queue(`DELETE FROM user_messages WHERE thread_id = $1`, id)
		// Every line moves: the keys' answers would be positions from before.
		b.Queue(`DELETE FROM idempotency_keys WHERE thread_id = $1`, id)
		// What it inherited from its parent it now holds as copies, as a
		// copy fork holds its parent's (search finds them in the oldest
		// thread that has them, once). A reverted thread's inherited
		// messages are its own earlier ones, not copies: none then (found
		// twice rather than not at all).
		b.Queue(`UPDATE threads SET base_id = NULL, base_size = 0,
			copied_messages = CASE WHEN base_id IN (SELECT l.id FROM threads l WHERE l.link_of = $1) THEN 0 ELSE inherited_messages END,
			inherited_messages = 0, sealed_size = 0, next_ordinal = 0 WHERE id = $1`, id)
		// Its links' bytes are in the rewrite (a fork of one would have
		// been made self-contained first: Referrers names it).
		b.Queue(`DELETE FROM threads WHERE link_of = $1`, id)
		if err := tx.SendBatch(ctx, &b).Close(); err != nil {
			return err
		}
		fresh := Thread{ID: id, UpdatedAt: t.UpdatedAt, HistoryMode: t.HistoryMode}
		if err := appendFrom(ctx, tx, &fresh, first, br, 0, nil, ""); err != nil {
			return err
		}
		if fresh.UserMessageCount != t.UserMessageCount {
			return fmt.Errorf("the self-contained history holds %d user messages, want %d", fresh.UserMessageCount, t.UserMessageCount)
		}
		// It keeps its name, whatever rename lines the rewrite read. It
		// says what it said, but its history is laid out anew: announced
		// as reverted, as the local backend's purge announces it.
		var nb pgx.Batch
		nb.Queue(`UPDATE threads SET name = $2 WHERE id = $1`, id, t.Name)
		queueNotice(&nb, "reverted", id, fresh.HistorySize())
		return tx.SendBatch(ctx, &nb).Close()
	})
	if err != nil {
		return fmt.Errorf("make %s self-contained: %w", id, err)
	}
	// The rewrite is committed: objects left behind are orphans for
	// CollectOrphans, not a failure (a caller told so would rewrite again).
	if err := s.dropObjects(ctx, keys); err != nil {
		s.logger.Warn("self-contained: segments left for the collector", slog.String("thread", id), slog.Any("err", err))
	}
	return nil
}

// Purge removes thread id as Delete does (a base of another thread is
// refused with ErrReferenced), then deletes the objects of its segments:
// its bytes and search rows are gone once it returns (objects the bucket
// does not delete then are logged and left to CollectOrphans: the purge is
// done, and is not reported as failed).
func (s *Store) Purge(ctx context.Context, id string) error {
	keys, err := s.deleteThread(ctx, id)
	if err != nil {
		return fmt.Errorf("purge %s: %w", id, err)
	}
	// The thread is gone: objects left behind are orphans for
	// CollectOrphans, not a failure (a retry would answer not found).
	if err := s.dropObjects(ctx, keys); err != nil {
		s.logger.Warn("purge: segments left for the collector", slog.String("thread", id), slog.Any("err", err))
	}
	return nil
}

// familyKeys returns the object keys of the segments of thread id and of
// its links.
func familyKeys(ctx context.Context, q querier, id string) ([]string, error) {
	rows, err := q.Query(ctx, `SELECT object_key FROM segments
		WHERE thread_id IN (SELECT id FROM threads WHERE id = $1 OR link_of = $1)`, id)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowTo[string])
}

// segmentKeys returns the object keys of thread id's segments.
func segmentKeys(ctx context.Context, q querier, id string) ([]string, error) {
	rows, err := q.Query(ctx, `SELECT object_key FROM segments WHERE thread_id = $1`, id)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowTo[string])
}

// dropObjects deletes the objects of keys that no segment row names (a
// sealer's retry may have named one again).
func (s *Store) dropObjects(ctx context.Context, keys []string) error {
	if len(keys) == 0 {
		return nil
	}
	if s.bucket == nil {
		return ErrNoBucket
	}
	rows, err := s.pool.Query(ctx, `SELECT object_key FROM segments WHERE object_key = ANY($1)`, keys)
	if err != nil {
		return err
	}
	named, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return err
	}
	keep := make(map[string]bool, len(named))
	for _, k := range named {
		keep[k] = true
	}
	for _, k := range keys {
		if keep[k] {
			continue
		}
		if err := s.bucket.Delete(ctx, k); err != nil && !errors.Is(err, objstore.ErrNotFound) {
			return fmt.Errorf("delete segment %s: %w", k, err)
		}
	}
	return nil
}

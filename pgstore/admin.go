package pgstore

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/spoolhq/spool/objstore"
)

// SetArchived archives or unarchives thread id and returns its row as the
// change left it. An archived thread keeps its bytes and its place in
// lineage; List shows it only when asked for archived threads.
func (s *Store) SetArchived(ctx context.Context, id string, archived bool) (Thread, error) {
	typ, already := "unarchived", ErrNotArchived
	if archived {
		typ, already = "archived", ErrArchived
	}
	t, err := s.inTxRow(ctx, id, func(tx pgx.Tx) error {
		// The check and the change in one statement: of two nodes
		// archiving at once, one does, the other is told it is done.
		tag, err := tx.Exec(ctx, `UPDATE threads SET archived = $2,
			archived_at = CASE WHEN $2 THEN (extract(epoch FROM clock_timestamp()) * 1000)::bigint ELSE 0 END
			WHERE id = $1 AND archived <> $2`, id, archived)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			if _, err := getThread(ctx, tx, id, ""); err != nil {
				return err
			}
			return already
		}
		var b pgx.Batch
		queueNotice(&b, typ, id, 0)
		return tx.SendBatch(ctx, &b).Close()
	})
	if err != nil {
		return Thread{}, fmt.Errorf("archive %s: %w", id, err)
	}
	return t, nil
}

// Problem is one inconsistency Verify found. Nothing is changed to report
// it.
type Problem struct {
	ThreadID string
	Detail   string
}

func (p Problem) String() string { return p.ThreadID + ": " + p.Detail }

// Verify checks every thread: its base exists, its chain has no cycle and
// ends inside each base's history, a link belongs to a thread and is read
// through, its segments and chunks cover its own
// bytes exactly and each segment's object holds bytes of the recorded
// hash, and its user messages are numbered without gaps. It reads only,
// in one snapshot of the database: nodes appending and sealing meanwhile
// (a seal moves a thread's chunks into a segment) show no drift that is not
// there, nor does a segment whose object is gone when no row names it any
// longer (dropped by a revert, a rewrite or a delete since).
func (s *Store) Verify(ctx context.Context) ([]Problem, error) {
	tx, err := s.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return nil, fmt.Errorf("verify: %w", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	rows, err := tx.Query(ctx, `SELECT `+threadColumns+` FROM threads ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("verify: %w", err)
	}
	threads, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Thread, error) { return scanThread(r) })
	if err != nil {
		return nil, fmt.Errorf("verify: %w", err)
	}
	byID := make(map[string]Thread, len(threads))
	based := map[string]bool{} // ids some row uses as its base
	for _, t := range threads {
		byID[t.ID] = t
		based[t.BaseID] = true
	}
	var problems []Problem
	for _, t := range threads {
		for _, d := range s.verifyThread(ctx, tx, t, byID) {
			problems = append(problems, Problem{ThreadID: t.ID, Detail: d})
		}
		if d := verifyLink(t, byID, based); d != "" {
			problems = append(problems, Problem{ThreadID: t.ID, Detail: d})
		}
	}
	return problems, nil
}

// verifyLink returns what is wrong with t when it is a link of a
// reverted thread: a link whose thread is gone, or that nothing reads
// through (a revert deletes the links it goes back past).
func verifyLink(t Thread, byID map[string]Thread, based map[string]bool) string {
	owner := linkOwner(t.ID)
	switch {
	case owner == t.ID:
		return ""
	case byID[owner].ID == "":
		return fmt.Sprintf("link of %s, which does not exist", owner)
	case !based[t.ID]:
		return fmt.Sprintf("link of %s that no history reads through", owner)
	}
	return ""
}

// verifyThread returns what is wrong with t.
func (s *Store) verifyThread(ctx context.Context, q querier, t Thread, byID map[string]Thread) []string {
	var bad []string
	seen := map[string]bool{t.ID: true}
	for c := t; c.BaseID != ""; {
		base, ok := byID[c.BaseID]
		switch {
		case !ok:
			return append(bad, fmt.Sprintf("base %s of %s does not exist", c.BaseID, c.ID))
		case seen[base.ID]:
			return append(bad, fmt.Sprintf("base chain has a cycle through %s", base.ID))
		case c.BaseSize > base.HistorySize():
			bad = append(bad, fmt.Sprintf("%s keeps %d bytes of %s, which has %d", c.ID, c.BaseSize, base.ID, base.HistorySize()))
		}
		seen[base.ID] = true
		c = base
	}
	covered, err := s.verifySegments(ctx, q, t)
	if err != nil {
		bad = append(bad, err.Error())
	}
	if covered != t.SealedSize {
		bad = append(bad, fmt.Sprintf("segments cover %d bytes, sealed size is %d", covered, t.SealedSize))
	}
	var chunkEnd, gaps int64
	err = q.QueryRow(ctx, `SELECT COALESCE(MAX(start_offset + octet_length(data)), $2),
		COUNT(*) FILTER (WHERE start_offset <> prev_end)
		FROM (SELECT start_offset, data, COALESCE(LAG(start_offset + octet_length(data)) OVER (ORDER BY start_offset), $2) AS prev_end
		      FROM chunks WHERE thread_id = $1) c`, t.ID, t.SealedSize).Scan(&chunkEnd, &gaps)
	if err != nil {
		bad = append(bad, "chunks: "+err.Error())
	} else if chunkEnd != t.Size || gaps != 0 {
		bad = append(bad, fmt.Sprintf("chunks end at %d with %d gaps, size is %d", chunkEnd, gaps, t.Size))
	}
	var own, lo, hi int
	err = q.QueryRow(ctx, `SELECT COUNT(*), COALESCE(MIN(ordinal), $2), COALESCE(MAX(ordinal), $2 - 1)
		FROM user_messages WHERE thread_id = $1`, t.ID, t.InheritedMessages).Scan(&own, &lo, &hi)
	if err != nil {
		bad = append(bad, "user messages: "+err.Error())
	} else if lo != t.InheritedMessages || hi != t.UserMessageCount-1 || own != hi-lo+1 {
		bad = append(bad, fmt.Sprintf("user messages %d..%d (%d rows), want %d..%d", lo, hi, own, t.InheritedMessages, t.UserMessageCount-1))
	}
	return bad
}

// beforeSegmentCheck, when set (by tests), is called before Verify reads
// the objects of thread id's segments.
var beforeSegmentCheck func(id string)

// verifySegments checks that t's segments are contiguous from 0 and that
// each object has its recorded size (a ranged read of its last byte), and
// returns where they end.
func (s *Store) verifySegments(ctx context.Context, q querier, t Thread) (int64, error) {
	rows, err := q.Query(ctx, `SELECT start_offset, end_offset, object_key FROM segments
		WHERE thread_id = $1 ORDER BY start_offset`, t.ID)
	if err != nil {
		return 0, err
	}
	segs, err := pgx.CollectRows(rows, pgx.RowToStructByPos[segmentRow])
	if err != nil {
		return 0, err
	}
	if beforeSegmentCheck != nil {
		beforeSegmentCheck(t.ID)
	}
	var next int64
	for _, g := range segs {
		if g.Start != next {
			return next, fmt.Errorf("segment %s starts at %d, want %d", g.Key, g.Start, next)
		}
		if s.bucket == nil {
			return next, errors.New("sealed segments and no bucket to check them")
		}
		if _, err := s.bucket.ReadRange(ctx, g.Key, g.End-g.Start-1, 1); err != nil {
			if errors.Is(err, objstore.ErrNotFound) && !s.segmentNamed(ctx, g.Key) {
				// Dropped since the snapshot (a revert, a rewrite, a
				// delete), and the object after the commit.
				next = g.End
				continue
			}
			return next, fmt.Errorf("segment %s: %w", g.Key, err)
		}
		next = g.End
	}
	return next, nil
}

// segmentNamed reports whether a segment row names object key now,
// outside Verify's snapshot (true when that cannot be told).
func (s *Store) segmentNamed(ctx context.Context, key string) bool {
	var named bool
	if err := s.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM segments WHERE object_key = $1)`, key).Scan(&named); err != nil {
		return true
	}
	return named
}

// CollectOrphans deletes segment objects that no segments row names and
// that are older than grace (a sealer writes its object before its row, so
// a younger object may be about to be named). It returns the keys deleted.
// Objects of live rows are never touched: a base's segments stay while any
// thread refers to it, because a referenced thread cannot be deleted.
//
// The grace is not what keeps a slow seal's object: a seal's key is
// pending (pending_segments) from before its object is written until its
// row is recorded, and an object with a pending key is deleted only once
// this takes the key away, older than grace, in a transaction of its own;
// the seal then records nothing. Pending keys older than grace whose
// objects were never written (a seal that failed) are dropped too.
func (s *Store) CollectOrphans(ctx context.Context, grace time.Duration) ([]string, error) {
	if s.bucket == nil {
		return nil, fmt.Errorf("collect: %w", ErrNoBucket)
	}
	objects, err := s.bucket.List(ctx, "segments/")
	if err != nil {
		return nil, fmt.Errorf("collect: %w", err)
	}
	rows, err := s.pool.Query(ctx, `SELECT object_key FROM segments`)
	if err != nil {
		return nil, fmt.Errorf("collect: %w", err)
	}
	named, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("collect: %w", err)
	}
	slices.Sort(named)
	if afterNamedRead != nil {
		afterNamedRead()
	}
	cutoff := s.now().Add(-grace)
	var deleted []string
	for _, o := range objects {
		if _, ok := slices.BinarySearch(named, o.Key); ok || o.Modified.After(cutoff) || !strings.HasPrefix(o.Key, "segments/") {
			continue
		}
		orphan, err := s.takeOrphan(ctx, o.Key, cutoff)
		if err != nil {
			return deleted, fmt.Errorf("collect: %w", err)
		}
		if !orphan {
			continue
		}
		if err := s.bucket.Delete(ctx, o.Key); err != nil && !errors.Is(err, objstore.ErrNotFound) {
			return deleted, fmt.Errorf("collect: %w", err)
		}
		deleted = append(deleted, o.Key)
	}
	if _, err := s.pool.Exec(ctx, `DELETE FROM pending_segments WHERE created_at < $1`, cutoff.UnixMilli()); err != nil {
		return deleted, fmt.Errorf("collect: %w", err)
	}
	return deleted, nil
}

// takeOrphan reports whether the object key, which no row named when the
// collection began, may be deleted: its seal's pending key, older than
// cutoff, is taken away now (the seal will record nothing), or there is
// none and no row names the object now. Each step is a statement of its
// own: the second sees what a seal that held the pending key committed.
func (s *Store) takeOrphan(ctx context.Context, key string, cutoff time.Time) (bool, error) {
	tag, err := s.pool.Exec(ctx, `DELETE FROM pending_segments WHERE object_key = $1 AND created_at < $2`,
		key, cutoff.UnixMilli())
	if err != nil {
		return false, err
	}
	if tag.RowsAffected() == 1 {
		return true, nil
	}
	var kept bool
	err = s.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pending_segments WHERE object_key = $1)
		OR EXISTS (SELECT 1 FROM segments WHERE object_key = $1)`, key).Scan(&kept)
	return !kept, err
}

// afterNamedRead, when set (by tests), is called after CollectOrphans read
// the keys segment rows name, before it deletes the objects no key named.
var afterNamedRead func()

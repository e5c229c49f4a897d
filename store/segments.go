package store

import (
	"context"
	"fmt"
	"path"

	"github.com/jmoiron/sqlx"

	"github.com/spoolhq/spool/rollout"
)

// A Segment is one file of a thread that spans several files (a thread
// Codex's thread/revert cut back), other than the file its threads row
// names (the head). See docs/SCHEMA.md, History chains.
type Segment struct {
	ThreadID    string `db:"thread_id"`
	Seq         int    `db:"seq"`
	RolloutPath string `db:"rollout_path"`
	// BaseID and BaseSize are the file's own base, as a thread row's are:
	// its bytes start at position BaseSize of the history.
	BaseID   string `db:"base_id"`
	BaseSize int64  `db:"base_size"`
	// Length is how many bytes of the file the history holds; -1 for a
	// file no longer in the history (a later revert went back past it).
	Length int64 `db:"length"`
	// FirstOrdinal is the ordinal of the file's first line.
	FirstOrdinal int64 `db:"first_ordinal"`
}

// InChain reports whether the segment's bytes are part of the history.
func (s Segment) InChain() bool { return s.Length >= 0 }

// Segments returns thread id's other files in seq order: the chain links
// that precede the head, oldest first, and the files out of the history.
// A thread in one file has none.
func (s *Store) Segments(ctx context.Context, id string) ([]Segment, error) {
	segs := []Segment{}
	const q = `SELECT thread_id, seq, rollout_path, base_id, base_size, length, first_ordinal
		FROM thread_segments WHERE thread_id = ? ORDER BY seq`
	if err := sqlx.SelectContext(ctx, s.cached(), &segs, q, id); err != nil {
		return nil, fmt.Errorf("segments of thread %s: %w", id, err)
	}
	return segs, nil
}

// LostChains returns the reverted threads (base_id their own id) whose rows
// no longer record the files their history runs through: the links of a
// reverted thread's history (thread_segments rows with a length) start
// with its first file (a link that does not continue the thread itself),
// each later link starts where one before it ends, and the thread's own
// file starts where a link ends. A thread that breaks one of these lost
// rows to a hand edit (the sqlite3 shell); Sync reads it again from its
// first file.
func (s *Store) LostChains(ctx context.Context) ([]string, error) {
	ids := []string{}
	const q = `SELECT t.id FROM threads t WHERE t.base_id = t.id AND (
		NOT EXISTS (SELECT 1 FROM thread_segments s WHERE s.thread_id = t.id AND s.length >= 0
			AND s.base_size + s.length = t.base_size)
		OR NOT EXISTS (SELECT 1 FROM thread_segments s WHERE s.thread_id = t.id AND s.length >= 0
			AND s.base_id != t.id)
		OR EXISTS (SELECT 1 FROM thread_segments s WHERE s.thread_id = t.id AND s.length >= 0 AND s.base_id = t.id
			AND NOT EXISTS (SELECT 1 FROM thread_segments p WHERE p.thread_id = t.id AND p.length >= 0
				AND p.seq < s.seq AND p.base_size + p.length = s.base_size)))`
	if err := s.reader.SelectContext(ctx, &ids, q); err != nil {
		return nil, fmt.Errorf("reverted threads with lost segments: %w", err)
	}
	return ids, nil
}

// SegmentOwner returns the thread one of whose files, its head or a
// segment, Codex named by segmentID (a revert segment's uuid, the last part
// of the file's name), or ErrNotFound. The names are matched by their end,
// which no index holds: it reads every row, for the rare history_base that
// names a segment of a thread no longer reached through its file's parent.
func (s *Store) SegmentOwner(ctx context.Context, segmentID string) (string, error) {
	var rows []struct {
		ThreadID    string `db:"thread_id"`
		RolloutPath string `db:"rollout_path"`
	}
	const q = `SELECT id AS thread_id, rollout_path FROM threads WHERE instr(rollout_path, ?) > 0
		UNION ALL SELECT thread_id, rollout_path FROM thread_segments WHERE instr(rollout_path, ?) > 0`
	suffix := "_" + segmentID
	if err := s.reader.SelectContext(ctx, &rows, q, suffix, suffix); err != nil {
		return "", fmt.Errorf("owner of segment %s: %w", segmentID, err)
	}
	for _, r := range rows {
		if _, sid, _, err := rollout.ParseRolloutName(path.Base(r.RolloutPath)); err == nil && sid == segmentID {
			return r.ThreadID, nil
		}
	}
	return "", fmt.Errorf("owner of segment %s: %w", segmentID, ErrNotFound)
}

// SegmentByPath returns the segment stored at rollout path rel, or
// ErrNotFound.
func (s *Store) SegmentByPath(ctx context.Context, rel string) (Segment, error) {
	var segs []Segment
	const q = `SELECT thread_id, seq, rollout_path, base_id, base_size, length, first_ordinal
		FROM thread_segments WHERE rollout_path = ?`
	if err := sqlx.SelectContext(ctx, s.cached(), &segs, q, rel); err != nil {
		return Segment{}, fmt.Errorf("segment at %s: %w", rel, err)
	}
	if len(segs) == 0 {
		return Segment{}, fmt.Errorf("segment at %s: %w", rel, ErrNotFound)
	}
	return segs[0], nil
}

// KeptMessages returns the counted user messages of thread id at
// positions below end as the thread held them at end, with their text:
// what a revert of the thread to end keeps as its own. Those a rollback
// after end dropped are among them (RolledBackBelow).
func (s *Store) KeptMessages(ctx context.Context, id string, end int64) ([]UserMessage, error) {
	const q = `SELECT thread_id, ordinal, byte_offset, line_number, preview, cut_offset, turn_id, text
		FROM user_messages WHERE thread_id = ? AND byte_offset < ? ORDER BY ordinal`
	held, err := selectMessages(ctx, s.cached(), q, id, end)
	if err != nil {
		return nil, fmt.Errorf("user messages of thread %s before %d: %w", id, end, err)
	}
	dropped, err := s.RolledBackBelow(ctx, id, end)
	if err != nil {
		return nil, err
	}
	return mergeByOrdinal(held, dropped), nil
}

// MoveSegments records that thread id's segment files moved: moved maps
// each old rollout path to its new one. All in one transaction.
func (s *Store) MoveSegments(ctx context.Context, id string, moved map[string]string) error {
	err := s.inTx(ctx, func(tx *sqlx.Tx) error {
		for from, to := range moved {
			const q = `UPDATE thread_segments SET rollout_path = ? WHERE thread_id = ? AND rollout_path = ?`
			if _, err := tx.ExecContext(ctx, q, to, id, from); err != nil {
				return fmt.Errorf("%s to %s: %w", from, to, err)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("move segments of thread %s: %w", id, err)
	}
	return nil
}

// AddSegment records file rel as a file of thread id out of its history
// (length -1), after its other segments, unless a segment is at rel
// already: an earlier file found after the thread was indexed from a
// later one. A non-nil preview becomes the thread's, from history position
// previewAt, in the same transaction: the earlier file gave it first.
func (s *Store) AddSegment(ctx context.Context, id, rel string, preview *string, previewAt int64) error {
	const q = `INSERT INTO thread_segments (thread_id, seq, rollout_path, base_id, base_size, length, first_ordinal)
		SELECT ?, IFNULL(MAX(seq), -1) + 1, ?, '', 0, -1, 0 FROM thread_segments WHERE thread_id = ?
		ON CONFLICT (rollout_path) DO NOTHING`
	err := s.inTx(ctx, func(tx *sqlx.Tx) error {
		if _, err := tx.ExecContext(ctx, q, id, rel, id); err != nil {
			return err
		}
		if preview == nil {
			return nil
		}
		_, err := tx.ExecContext(ctx, `UPDATE threads SET preview = ?, preview_offset = ? WHERE id = ?`, *preview, previewAt, id)
		return err
	})
	if err != nil {
		return fmt.Errorf("add segment %s of thread %s: %w", rel, id, classify(err))
	}
	return nil
}

// segments replaces thread id's segments with segs. A thread that was not
// indexed has none (they go with its row), so indexed false skips the delete.
func (w *recordWriter) segments(ctx context.Context, id string, segs []Segment, indexed bool) error {
	if indexed {
		if _, err := w.exec(ctx, `DELETE FROM thread_segments WHERE thread_id = ?`, id); err != nil {
			return fmt.Errorf("drop segments: %w", err)
		}
	}
	const insert = `INSERT INTO thread_segments (thread_id, seq, rollout_path, base_id, base_size, length, first_ordinal)
		VALUES (?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (rollout_path) DO UPDATE SET thread_id = excluded.thread_id, seq = excluded.seq,
		base_id = excluded.base_id, base_size = excluded.base_size, length = excluded.length,
		first_ordinal = excluded.first_ordinal`
	for i, sg := range segs {
		if _, err := w.exec(ctx, insert, id, i, sg.RolloutPath, sg.BaseID, sg.BaseSize, sg.Length, sg.FirstOrdinal); err != nil {
			return fmt.Errorf("insert segment %s: %w", sg.RolloutPath, err)
		}
	}
	return nil
}

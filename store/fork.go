package store

import (
	"context"
	"errors"
	"fmt"

	"github.com/jmoiron/sqlx"
)

// ErrParentChanged reports that a fork's parent no longer holds the user
// messages the fork copied (a rollback or delete happened since its row
// was read); the caller may read the parent again and retry.
var ErrParentChanged = errors.New("fork parent changed")

// ForkSource says which user messages a fork inherits from its parent and
// how their positions move in the fork's file.
type ForkSource struct {
	// ParentID is the thread forked from.
	ParentID string
	// Messages is how many of the parent's first user messages the fork
	// copied (ordinals 0 to Messages-1).
	Messages int
	// OffsetShift and LineShift are added to each copied message's byte
	// offset and line number: the fork's file starts with its own meta line.
	OffsetShift int64
	LineShift   int64
}

// InsertFork is Insert for a fork: in the same transaction it copies the
// parent's first src.Messages user messages (and their search text) to the
// new thread, shifted by src.OffsetShift and src.LineShift, without reading
// them into Go. r.Messages, if any, follow with ordinals from src.Messages;
// r.Thread.UserMessageCount must count both.
//
// Every copied message must lie below the fork's cut, r.Thread.ForkOffset
// in the parent's file; when one does not (the parent rolled back since
// the fork read it) or the parent is gone, InsertFork fails with
// ErrParentChanged. It fails with ErrExists like Insert.
func (s *Store) InsertFork(ctx context.Context, r Record, src ForkSource) error {
	if err := checkRecord(r); err != nil {
		return fmt.Errorf("insert fork: %w", err)
	}
	id := r.Thread.ID
	if want := src.Messages + len(r.Messages); r.Thread.UserMessageCount != want {
		return fmt.Errorf("insert fork %s: user message count %d, want %d copied and new",
			id, r.Thread.UserMessageCount, want)
	}
	err := s.inTx(ctx, func(tx *sqlx.Tx) error {
		var below int
		const q = `SELECT COUNT(*) FROM user_messages
			WHERE thread_id = ? AND ordinal < ? AND byte_offset < ?`
		if err := tx.GetContext(ctx, &below, q, src.ParentID, src.Messages, r.Thread.ForkOffset); err != nil {
			return fmt.Errorf("read parent user messages: %w", err)
		}
		if below != src.Messages {
			return fmt.Errorf("%w: parent %s has %d of %d user messages below offset %d",
				ErrParentChanged, src.ParentID, below, src.Messages, r.Thread.ForkOffset)
		}
		if _, err := tx.NamedExecContext(ctx, insertThread, r.Thread); err != nil {
			if isConstraint(err) {
				return ErrExists
			}
			return err
		}
		const copyMessages = `INSERT INTO user_messages
			(thread_id, ordinal, byte_offset, line_number, preview, text, cut_offset, turn_id)
			SELECT ?, ordinal, byte_offset + ?, line_number + ?, preview, '',
				IIF(cut_offset <= 0, 0, cut_offset + ?), turn_id
			FROM user_messages WHERE thread_id = ? AND ordinal < ? ORDER BY ordinal`
		if _, err := tx.ExecContext(ctx, copyMessages, id, src.OffsetShift, src.LineShift, src.OffsetShift,
			src.ParentID, src.Messages); err != nil {
			return fmt.Errorf("copy user messages of parent %s: %w", src.ParentID, err)
		}
		w, err := newRecordWriter(ctx, tx)
		if err != nil {
			return err
		}
		defer w.close()
		if err := w.messages(ctx, id, src.Messages, r.Messages); err != nil {
			return err
		}
		return w.ancestry(ctx, r)
	})
	if err != nil {
		return fmt.Errorf("insert fork %s of %s: %w", id, src.ParentID, err)
	}
	return nil
}

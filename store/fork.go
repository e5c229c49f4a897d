package store

import (
	"context"
	"errors"
	"fmt"

	"github.com/jmoiron/sqlx"
)

// ForkSource says which of a parent's user-message rows a fork inherits and
// how their positions shift: the fork's file holds its own meta line, then
// the parent's bytes, so every copied offset moves by the meta's length and
// every line number by one.
type ForkSource struct {
	ParentID    string
	Messages    int   // the parent's ordinals [0, Messages) are copied
	OffsetShift int64 // added to byte_offset
	LineShift   int64 // added to line_number
}

// ErrParentChanged reports a fork whose parent's user messages changed
// (a rollback) between the caller reading them and InsertFork copying them.
// Nothing was written; the caller may read the parent again and retry.
var ErrParentChanged = errors.New("parent changed during fork")

// InsertFork adds a forked thread in one transaction: its row, the user
// messages it inherits from its parent (copied row by row inside SQLite,
// search text included, never passing through Go), and its ancestry. The
// copied rows must number exactly r.Thread.UserMessageCount, or the fork is
// refused with ErrParentChanged. It fails with ErrExists when the id or path is indexed.
func (s *Store) InsertFork(ctx context.Context, r Record, src ForkSource) error {
	if err := checkRecord(r); err != nil {
		return fmt.Errorf("insert fork: %w", err)
	}
	err := s.inTx(ctx, func(tx *sqlx.Tx) error {
		if _, err := tx.NamedExecContext(ctx, insertThread, r.Thread); err != nil {
			if isConstraint(err) {
				return ErrExists
			}
			return err
		}
		const copyMessages = `INSERT INTO user_messages
			(thread_id, ordinal, byte_offset, line_number, preview, text)
			SELECT ?, ordinal, byte_offset + ?, line_number + ?, preview, text
			FROM user_messages WHERE thread_id = ? AND ordinal < ? ORDER BY ordinal`
		res, err := tx.ExecContext(ctx, copyMessages, r.Thread.ID, src.OffsetShift, src.LineShift, src.ParentID, src.Messages)
		if err != nil {
			return fmt.Errorf("copy user messages of %s: %w", src.ParentID, err)
		}
		if n, err := res.RowsAffected(); err != nil || n != int64(r.Thread.UserMessageCount) {
			return fmt.Errorf("copied %d user messages of %s, want %d: %w", n, src.ParentID, r.Thread.UserMessageCount, errors.Join(ErrParentChanged, err))
		}
		w, err := newRecordWriter(ctx, tx)
		if err != nil {
			return err
		}
		defer w.close()
		return w.ancestry(ctx, r)
	})
	if err != nil {
		return fmt.Errorf("insert fork %s of %s: %w", r.Thread.ID, src.ParentID, err)
	}
	return nil
}

package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/jmoiron/sqlx"
)

// ErrParentChanged reports that a fork's parent no longer holds the user
// messages the fork inherits (a rollback or delete happened since its row
// was read); the caller may read the parent again and retry.
var ErrParentChanged = errors.New("fork parent changed")

// ForkSource says which user messages a fork inherits from its parent and
// how their positions move in the fork's history.
type ForkSource struct {
	// ParentID is the thread forked from.
	ParentID string
	// Messages is how many of the parent's first user messages the fork
	// inherits (ordinals 0 to Messages-1).
	Messages int
	// OffsetShift and LineShift are added to each copied message's byte
	// offset and line number: a copy fork's file starts with its own meta
	// line. A reference fork (a Record with a BaseID) copies no rows.
	OffsetShift int64
	LineShift   int64
}

// InsertFork is Insert for a fork that inherits the parent's first
// src.Messages user messages; r.Messages, if any, follow with ordinals
// from src.Messages, and r.Thread.UserMessageCount must count both.
//
// A reference fork (r.Thread.BaseID set) stores no rows for the inherited
// messages: they resolve through its base, at the same positions, and the
// insert costs the same whatever their number. A copy fork gets the
// parent's rows (without their search text: the parent's rows find them),
// shifted by src.OffsetShift and src.LineShift, copied in SQL without
// reading them into Go. Either way r.Thread.InheritedMessages is set to
// src.Messages.
//
// Every inherited message must lie below the fork's cut, r.Thread.ForkOffset
// in the parent's history; when one does not (the parent rolled back since
// the fork read it) or the parent is gone, InsertFork fails with
// ErrParentChanged. It fails with ErrExists like Insert.
func (s *Store) InsertFork(ctx context.Context, r Record, src ForkSource) error {
	if err := checkRecord(r); err != nil {
		return fmt.Errorf("insert fork: %w", err)
	}
	id := r.Thread.ID
	if want := src.Messages + len(r.Messages); r.Thread.UserMessageCount != want {
		return fmt.Errorf("insert fork %s: user message count %d, want %d inherited and new",
			id, r.Thread.UserMessageCount, want)
	}
	r.Thread.InheritedMessages = src.Messages
	err := s.inTx(ctx, func(tx *sqlx.Tx) error {
		w, err := s.newRecordWriter(ctx, tx)
		if err != nil {
			return err
		}
		defer w.close()
		if err := s.checkInherited(ctx, tx, src, r.Thread.ForkOffset); err != nil {
			return err
		}
		if _, err := w.exec(ctx, insertThread, threadArgs(&r.Thread)...); err != nil {
			if isConstraint(err) {
				return ErrExists
			}
			return err
		}
		if r.Thread.BaseID == "" && src.Messages > 0 {
			if err := copyMessages(ctx, tx, id, src); err != nil {
				return fmt.Errorf("copy user messages of parent %s: %w", src.ParentID, err)
			}
		}
		if r.Thread.BaseID == "" {
			// The copied lines hold the rollbacks before the cut: what
			// they dropped is the copy's, as a rebuild reads its file,
			// without text (they are the parent's prompts).
			const copyRolledBack = `INSERT INTO rolled_back_messages
				(thread_id, dropped_at, ordinal, byte_offset, line_number, preview, text, cut_offset, turn_id)
				SELECT ?2, dropped_at + ?4, ordinal, byte_offset + ?4, line_number + ?5, preview, '',
					IIF(cut_offset <= 0, 0, cut_offset + ?4), turn_id
				FROM rolled_back_messages WHERE thread_id = ?1 AND dropped_at < ?3`
			if _, err := tx.ExecContext(ctx, copyRolledBack, src.ParentID, id, r.Thread.ForkOffset,
				src.OffsetShift, src.LineShift); err != nil {
				return fmt.Errorf("copy rolled back user messages of parent %s: %w", src.ParentID, err)
			}
		}
		if err := w.messages(ctx, id, src.Messages, r.Messages); err != nil {
			return err
		}
		if err := w.ancestry(ctx, r); err != nil {
			return err
		}
		if err := putCreationKey(ctx, tx, r.threadKey()); err != nil {
			return err
		}
		return stateCreationKey(ctx, txExec(tx), id, r.StatedKey)
	})
	if err != nil {
		return fmt.Errorf("insert fork %s of %s: %w", id, src.ParentID, err)
	}
	return nil
}

// copyBatch is how many user messages copyMessages copies per statement.
// SQLite reads the rows an INSERT selects from its own table into a
// temporary table first, held in memory (temp_store): one statement for
// all of a parent's messages held every one of them at once (64 MiB for
// 200,000), a batch holds at most this many.
const copyBatch = 4096

// copyMessages copies the parent's first src.Messages user messages, as
// the fork's rows without their search text, in batches of copyBatch.
func copyMessages(ctx context.Context, tx *sqlx.Tx, id string, src ForkSource) error {
	q := `INSERT INTO user_messages
		(thread_id, ordinal, byte_offset, line_number, preview, text, cut_offset, turn_id)
		SELECT ?4, ordinal, byte_offset + ?5, line_number + ?6, preview, '',
			IIF(cut_offset <= 0, 0, cut_offset + ?5), turn_id
		FROM (` + messagesBetweenSQL + `)`
	stmt, err := tx.PrepareContext(ctx, q)
	if err != nil {
		return err
	}
	defer stmt.Close()
	for lo := 0; lo < src.Messages; lo += copyBatch {
		hi := min(lo+copyBatch, src.Messages)
		if _, err := stmt.ExecContext(ctx, src.ParentID, lo, hi, id, src.OffsetShift, src.LineShift); err != nil {
			return err
		}
	}
	return nil
}

// checkInherited checks that the parent still has exactly src.Messages
// user messages below cut: its message src.Messages-1 lies below, and its
// message src.Messages, if any, does not. Two look-ups, whatever the
// number of messages.
func (s *Store) checkInherited(ctx context.Context, tx *sqlx.Tx, src ForkSource, cut int64) error {
	exists, err := s.txStmt(ctx, tx, threadExistsSQL)
	if err != nil {
		return err
	}
	var found bool
	if err := exists.GetContext(ctx, &found, src.ParentID); err != nil {
		return fmt.Errorf("read parent: %w", err)
	}
	if !found {
		return fmt.Errorf("%w: parent %s is gone", ErrParentChanged, src.ParentID)
	}
	offsetOf := func(ordinal int) (int64, bool, error) {
		m, err := messageAt(ctx, func(q string) (*sqlx.Stmt, error) { return s.txStmt(ctx, tx, q) }, src.ParentID, ordinal)
		if errors.Is(err, sql.ErrNoRows) {
			return 0, false, nil
		}
		if err != nil {
			return 0, false, fmt.Errorf("read user message %d of parent %s: %w", ordinal, src.ParentID, err)
		}
		return m.Offset, true, nil
	}
	if src.Messages > 0 {
		last, ok, err := offsetOf(src.Messages - 1)
		if err != nil {
			return err
		}
		if !ok || last >= cut {
			return fmt.Errorf("%w: parent %s has fewer than %d user messages below offset %d",
				ErrParentChanged, src.ParentID, src.Messages, cut)
		}
	}
	next, ok, err := offsetOf(src.Messages)
	if err != nil {
		return err
	}
	if ok && next < cut {
		return fmt.Errorf("%w: parent %s has more than %d user messages below offset %d",
			ErrParentChanged, src.ParentID, src.Messages, cut)
	}
	return nil
}

package store

import (
	"context"
	"fmt"
	"slices"

	"github.com/jmoiron/sqlx"
)

// insertRolledBack writes one row of rolled_back_messages; a row already
// there (the same message dropped by the same rollback) is kept.
const insertRolledBack = `INSERT OR IGNORE INTO rolled_back_messages
	(thread_id, dropped_at, ordinal, byte_offset, line_number, preview, text, cut_offset, turn_id)
	VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`

// rolledBackBelowSQL: the rolled back messages of thread ?1 at positions
// below ?2 that a rollback at or after ?2 dropped.
const rolledBackBelowSQL = `SELECT thread_id, ordinal, byte_offset, line_number, preview, cut_offset, turn_id, text
	FROM rolled_back_messages WHERE thread_id = ?1 AND byte_offset < ?2 AND dropped_at >= ?2 ORDER BY ordinal`

// execer is what writes a row: a transaction or a record writer.
type execer func(ctx context.Context, query string, args ...any) error

// txExec is the execer of tx.
func txExec(tx *sqlx.Tx) execer {
	return func(ctx context.Context, query string, args ...any) error {
		_, err := tx.ExecContext(ctx, query, args...)
		return err
	}
}

// writeRolledBack records msgs as thread id's rolled back messages.
func writeRolledBack(ctx context.Context, exec execer, id string, msgs []RolledBack) error {
	for _, m := range msgs {
		if err := exec(ctx, insertRolledBack, id, m.At, m.Ordinal, m.Offset, m.Line, m.Preview, m.Text, m.CutOffset, m.TurnID); err != nil {
			return fmt.Errorf("keep rolled back user message %d of thread %s: %w", m.Ordinal, id, err)
		}
	}
	return nil
}

// messagesFromSQL: the messages of thread ?1 from ordinal ?2 on, in order.
var messagesFromSQL = fmt.Sprintf(chainMessages, maxChainDepth, "1", "", "m.ordinal >= ?2") + ` ORDER BY m.ordinal`

// dropping returns the messages of thread id from ordinal keep on, which
// a rollback is about to drop, and the search text id's own rows hold of
// them by ordinal: none for a message it inherits, an empty one for a
// copy whose parent holds it. It reads them before they go.
func dropping(ctx context.Context, tx *sqlx.Tx, id string, keep int) ([]UserMessage, map[int]string, error) {
	var msgs []UserMessage
	if err := tx.SelectContext(ctx, &msgs, messagesFromSQL, id, keep); err != nil {
		return nil, nil, fmt.Errorf("read the messages a rollback drops: %w", err)
	}
	var own []struct {
		Ordinal int    `db:"ordinal"`
		Text    string `db:"text"`
	}
	const q = `SELECT ordinal, text FROM user_messages WHERE thread_id = ? AND ordinal >= ?`
	if err := tx.SelectContext(ctx, &own, q, id, keep); err != nil {
		return nil, nil, fmt.Errorf("read the texts a rollback drops: %w", err)
	}
	texts := make(map[int]string, len(own))
	for _, o := range own {
		texts[o.Ordinal] = o.Text
	}
	return msgs, texts, nil
}

// rolledBackTexts returns the texts a rollback of thread id keeps of the
// messages it drops, from texts, their rows' texts: none for a copy fork's
// copies, which are its parent's prompts, even when the row was handed
// the text (the parent deleted first), as a rebuild of the fork's file
// gives (indexer).
func rolledBackTexts(ctx context.Context, tx *sqlx.Tx, id string, texts map[int]string) (map[int]string, error) {
	var copies int
	const q = `SELECT IIF(base_id IS NULL AND parent_id IS NOT NULL, inherited_messages, 0) FROM threads WHERE id = ?`
	if err := tx.GetContext(ctx, &copies, q, id); err != nil {
		return nil, fmt.Errorf("copies of %s: %w", id, err)
	}
	if copies == 0 {
		return texts, nil
	}
	kept := make(map[int]string, len(texts))
	for k, t := range texts {
		if k >= copies {
			kept[k] = t
		}
	}
	return kept, nil
}

// keepDropped records msgs, the messages of thread p.ID counted before p
// that p's rollbacks drop, with their texts (dropping): each of p.Drops
// drops the ordinals from its Keep up to the one before it.
func keepDropped(ctx context.Context, tx *sqlx.Tx, p Progress, count int, msgs []UserMessage, texts map[int]string) error {
	above := count
	for _, d := range p.Drops {
		var dropped []RolledBack
		for _, m := range msgs {
			if m.Ordinal >= d.Keep && m.Ordinal < above {
				m.Text = texts[m.Ordinal]
				dropped = append(dropped, RolledBack{UserMessage: m, At: d.At})
			}
		}
		if err := writeRolledBack(ctx, txExec(tx), p.ID, dropped); err != nil {
			return err
		}
		above = min(above, d.Keep)
	}
	return nil
}

// RolledBackBelow returns the user messages of thread id at positions
// below end that a rollback at or after end dropped, in order, with their
// text: with the messages it holds below end (UserMessagesBefore), its
// history's messages as they stood at end. A fork cut at end inherits
// them, and a revert to end keeps them.
func (s *Store) RolledBackBelow(ctx context.Context, id string, end int64) ([]UserMessage, error) {
	msgs, err := selectMessages(ctx, s.cached(), rolledBackBelowSQL, id, end)
	if err != nil {
		return nil, fmt.Errorf("rolled back user messages of thread %s below %d: %w", id, end, err)
	}
	return msgs, nil
}

// selectMessages runs query, which selects thread_id, ordinal,
// byte_offset, line_number, preview, cut_offset, turn_id and text, and
// returns its rows.
func selectMessages(ctx context.Context, q sqlx.QueryerContext, query string, args ...any) ([]UserMessage, error) {
	msgs := []UserMessage{}
	rows, err := q.QueryxContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var m UserMessage
		if err := rows.Scan(&m.ThreadID, &m.Ordinal, &m.Offset, &m.Line, &m.Preview, &m.CutOffset, &m.TurnID, &m.Text); err != nil {
			return nil, err
		}
		msgs = append(msgs, m)
	}
	return msgs, rows.Err()
}

// mergeByOrdinal returns a and b, each in ordinal order, as one list in
// ordinal order.
func mergeByOrdinal(a, b []UserMessage) []UserMessage {
	out := append(slices.Clip(a), b...)
	slices.SortStableFunc(out, func(x, y UserMessage) int { return x.Ordinal - y.Ordinal })
	return out
}

// detachFromReplaced gives each thread that continues thread id's
// history rows of its own for the messages it inherits that id no longer
// holds below its cut, from id's rolled back messages, and lowers its
// inherited_messages to what id still holds there: what a live rollback
// in id gives it (detachForks). It runs after a record replaced id's
// rows: a rebuild that read a fork before the revert segment of its base
// that rolls back what the fork inherits. A thread whose missing messages
// id did not keep is left as it is.
func detachFromReplaced(ctx context.Context, tx *sqlx.Tx, id string) error {
	var kept bool
	const rolledBack = `SELECT EXISTS (SELECT 1 FROM rolled_back_messages WHERE thread_id = ?)`
	if err := tx.GetContext(ctx, &kept, rolledBack, id); err != nil || !kept {
		return err
	}
	var forks []struct {
		ID        string `db:"id"`
		Inherited int    `db:"inherited_messages"`
		Cut       int64  `db:"cut"`
	}
	if err := tx.SelectContext(ctx, &forks, continuersSQL, id); err != nil {
		return fmt.Errorf("find threads continuing %s: %w", id, err)
	}
	for _, f := range forks {
		// Most bases rolled nothing back below a fork's cut: one seek
		// says so, before any count.
		dropped, err := selectMessages(ctx, tx, rolledBackBelowSQL, id, f.Cut)
		if err != nil {
			return fmt.Errorf("rolled back messages of %s below %d: %w", id, f.Cut, err)
		}
		if len(dropped) == 0 {
			continue
		}
		var held int
		if err := tx.GetContext(ctx, &held, `SELECT count(*) FROM (`+messagesBeforeSQL+`)`, id, f.Cut); err != nil {
			return fmt.Errorf("count messages of %s below %d: %w", id, f.Cut, err)
		}
		if held >= f.Inherited {
			continue
		}
		dropped = slices.DeleteFunc(dropped, func(m UserMessage) bool { return m.Ordinal < held || m.Ordinal >= f.Inherited })
		if len(dropped) != f.Inherited-held {
			continue
		}
		for _, m := range dropped {
			if _, err := tx.ExecContext(ctx, insertUserMessage, f.ID, m.Ordinal, m.Offset, m.Line, m.Preview,
				m.Text, m.CutOffset, m.TurnID); err != nil {
				return fmt.Errorf("detach user message %d of %s: %w", m.Ordinal, f.ID, err)
			}
		}
		if _, err := tx.ExecContext(ctx, `UPDATE threads SET inherited_messages = ? WHERE id = ?`, held, f.ID); err != nil {
			return fmt.Errorf("detach %s: %w", f.ID, err)
		}
	}
	return nil
}

// RolledBack returns every rolled back message of thread id, with its
// text, by position of the rollback that dropped it, then by ordinal.
func (s *Store) RolledBack(ctx context.Context, id string) ([]RolledBack, error) {
	const q = `SELECT thread_id, ordinal, byte_offset, line_number, preview, cut_offset, turn_id, text, dropped_at
		FROM rolled_back_messages WHERE thread_id = ? ORDER BY dropped_at, ordinal`
	rows, err := s.cached().QueryxContext(ctx, q, id)
	if err != nil {
		return nil, fmt.Errorf("rolled back user messages of thread %s: %w", id, err)
	}
	defer rows.Close()
	msgs := []RolledBack{}
	for rows.Next() {
		var m RolledBack
		if err := rows.Scan(&m.ThreadID, &m.Ordinal, &m.Offset, &m.Line, &m.Preview, &m.CutOffset, &m.TurnID, &m.Text, &m.At); err != nil {
			return nil, fmt.Errorf("rolled back user messages of thread %s: %w", id, err)
		}
		msgs = append(msgs, m)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("rolled back user messages of thread %s: %w", id, err)
	}
	return msgs, nil
}

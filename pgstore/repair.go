package pgstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/jackc/pgx/v5"

	"github.com/spoolhq/spool/rollout"
)

// Repair rebuilds, from each thread's own bytes (the truth), the index
// parts that can drift from them: its own user-message rows (with their
// Codex turn ids and cuts), its count, preview, line count and open turn. A thread whose rows already agree is left alone.
// A thread is repaired after its base, whose preview it may keep.
// It returns the threads it rewrote; bytes that cannot be read (a missing
// segment, a chunk gap) are reported by Verify and left as they are, and
// a thread's problem does not stop the others.
func (s *Store) Repair(ctx context.Context) (repaired []string, problems []Problem, err error) {
	rows, err := s.pool.Query(ctx, `SELECT id, COALESCE(base_id, '') FROM threads ORDER BY id`)
	if err != nil {
		return nil, nil, fmt.Errorf("repair: %w", err)
	}
	type idBase struct{ ID, Base string }
	all, err := pgx.CollectRows(rows, pgx.RowToStructByPos[idBase])
	if err != nil {
		return nil, nil, fmt.Errorf("repair: %w", err)
	}
	for _, id := range basesFirst(all, func(r idBase) (string, string) { return r.ID, r.Base }) {
		if beforeRepairThread != nil {
			beforeRepairThread(id)
		}
		changed, err := s.repairThread(ctx, id)
		switch {
		case errors.Is(err, ErrNotFound):
			// Deleted since it was listed (a link a revert dropped, a
			// thread deleted): nothing of it to repair.
		case err != nil:
			problems = append(problems, Problem{ThreadID: id, Detail: err.Error()})
		case changed:
			repaired = append(repaired, id)
		}
	}
	return repaired, problems, nil
}

// beforeRepairThread, when set (by tests), is called before Repair
// repairs thread id.
var beforeRepairThread func(id string)

// repairThread rewrites thread id's rows from its own bytes, under its row
// lock (no append or seal moves them meanwhile), if they differ.
func (s *Store) repairThread(ctx context.Context, id string) (bool, error) {
	changed := false
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		t, err := getThread(ctx, tx, id, "FOR UPDATE")
		if err != nil {
			return err
		}
		var own bytes.Buffer
		if _, err := s.writeSpan(ctx, tx, &own, span{threadID: t.ID, lo: 0, hi: t.Size, sealed: t.SealedSize}); err != nil {
			return err
		}
		marks, err := scanLines(own.Bytes())
		if err != nil {
			return err
		}
		// The own bytes read from the start: the messages inherited
		// before them, no turn open (a fork is never cut inside a turn's
		// start lines).
		inherited := t.InheritedMessages + rolledBackInherited(t, marks)
		fresh := Thread{ID: t.ID, BaseSize: t.BaseSize, UserMessageCount: inherited, InheritedMessages: inherited}
		// The preview from before the own bytes is the base's, if the
		// line that gave it lies before them (as a fork takes it).
		if fresh.Preview, fresh.PreviewOffset, err = previewBefore(ctx, tx, t); err != nil {
			return err
		}
		want, keep := observe(&fresh, marks)
		fresh.InheritedMessages = min(inherited, keep)
		have, err := ownMessages(ctx, tx, t.ID)
		if err != nil {
			return err
		}
		lines := int64(bytes.Count(own.Bytes(), []byte{'\n'}))
		next, err := nextOrdinal(t, own.Bytes())
		if err != nil {
			return err
		}
		if slices.Equal(have, want) && t.UserMessageCount == fresh.UserMessageCount && t.Preview == fresh.Preview && t.PreviewOffset == fresh.PreviewOffset &&
			t.LineCount == lines && t.TurnOffset == fresh.TurnOffset && t.TurnID == fresh.TurnID && t.NextOrdinal == next &&
			t.InheritedMessages == fresh.InheritedMessages {
			return nil
		}
		var b pgx.Batch
		b.Queue(`DELETE FROM user_messages WHERE thread_id = $1`, t.ID)
		for _, m := range want {
			b.Queue(`INSERT INTO user_messages (thread_id, ordinal, history_offset, text, line, cut_offset, turn_id)
				VALUES ($1, $2, $3, $4, $5, $6, $7)`, t.ID, m.Ordinal, m.Offset, m.Text, m.Line, m.CutOffset, m.TurnID)
		}
		b.Queue(`UPDATE threads SET user_message_count = $2, preview = $3, line_count = $4, turn_offset = $5, turn_id = $6,
			next_ordinal = $7, inherited_messages = $8, preview_offset = $9 WHERE id = $1`,
			t.ID, fresh.UserMessageCount, fresh.Preview, lines, fresh.TurnOffset, fresh.TurnID, next, fresh.InheritedMessages,
			fresh.PreviewOffset)
		changed = true
		return tx.SendBatch(ctx, &b).Close()
	})
	if err != nil {
		return false, fmt.Errorf("repair: %w", err)
	}
	return changed, nil
}

// rolledBackInherited returns how many of the messages t inherits its own
// rollbacks (marks, of its own bytes) dropped: its row counts what is
// left (inherited_messages), so the count before them is that plus this.
// It is read off the bytes alone, by observing them after more inherited
// messages than any rollback can reach; the rows of t's base, which a
// repair may be about to rewrite, are not used.
func rolledBackInherited(t Thread, marks []lineMark) int {
	reach := 0
	for _, m := range marks {
		reach += m.turns
	}
	sim := Thread{UserMessageCount: reach}
	_, keep := observe(&sim, marks)
	return reach - keep
}

// ownMessages returns thread id's own user-message rows in order.
func ownMessages(ctx context.Context, q querier, id string) ([]UserMessage, error) {
	rows, err := q.Query(ctx, `SELECT `+messageColumns+` FROM user_messages
		WHERE thread_id = $1 ORDER BY ordinal`, id)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowToStructByPos[UserMessage])
}

// nextOrdinal returns the ordinal the next line of t gets, from own, its
// own bytes: the ordinal of their last line plus one for a paginated
// thread (whose own bytes start with a numbered meta line).
func nextOrdinal(t Thread, own []byte) (int64, error) {
	if !t.Paginated() || len(own) == 0 {
		return t.NextOrdinal, nil
	}
	body := own[:len(own)-1]
	last := body[bytes.LastIndexByte(body, '\n')+1:]
	n, ok, err := rollout.LineOrdinal(last)
	if err != nil || !ok {
		return 0, fmt.Errorf("the last line of a paginated thread has no ordinal (%v)", err)
	}
	return n + 1, nil
}

// previewBefore returns the preview thread t's history gives before its own
// bytes, and its position: its base's, when the line that gave it lies
// before t's cut; none for a thread without a base. A revert keeps the
// thread's preview (Revert), even one its cut left behind: a link of the
// thread itself as base gives the thread's own.
func previewBefore(ctx context.Context, tx pgx.Tx, t Thread) (string, int64, error) {
	if t.BaseID == "" {
		return "", 0, nil
	}
	if linkOwner(t.BaseID) == linkOwner(t.ID) {
		return t.Preview, t.PreviewOffset, nil
	}
	base, err := getThread(ctx, tx, t.BaseID, "")
	if err != nil {
		return "", 0, fmt.Errorf("base %s: %w", t.BaseID, err)
	}
	if base.Preview != "" && base.PreviewOffset < t.BaseSize {
		return base.Preview, base.PreviewOffset, nil
	}
	return "", 0, nil
}

// basesFirst returns the ids of rows (id and base of each, by idBase) in
// their order, but each after its base among them.
func basesFirst[R any](rows []R, idBase func(R) (id, base string)) []string {
	baseOf := make(map[string]string, len(rows))
	for _, r := range rows {
		id, base := idBase(r)
		baseOf[id] = base
	}
	done := make(map[string]bool, len(rows))
	out := make([]string, 0, len(rows))
	for _, r := range rows {
		id, _ := idBase(r)
		// Walk up to the first base not placed yet, then place the chain
		// from there down (a cycle, which Verify reports, stops the walk).
		var chain []string
		for at := id; at != "" && !done[at] && !slices.Contains(chain, at); at = baseOf[at] {
			if _, ok := baseOf[at]; !ok {
				break
			}
			chain = append(chain, at)
		}
		for i := len(chain) - 1; i >= 0; i-- {
			done[chain[i]] = true
			out = append(out, chain[i])
		}
	}
	return out
}

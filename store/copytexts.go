package store

import (
	"context"
	"fmt"
	"slices"

	"github.com/jmoiron/sqlx"
)

// The search text of copy forks' copied rows: blank while the parent
// holds the message (docs/SCHEMA.md, History chains), handed over when it
// stops holding it.

// held is what a parent holds of a copy fork's copies below the fork's
// cut: its text of each copied ordinal, and below unknownBelow those it
// holds whose text is not at hand (it inherits them).
type held struct {
	texts        map[int]string
	unknownBelow int
}

// holds reports whether the parent holds the copy of text at ordinal.
func (h held) holds(ordinal int, text string) bool {
	if ordinal < h.unknownBelow {
		return true
	}
	t, ok := h.texts[ordinal]
	return ok && t == text
}

// heldByRecord returns what record parent holds below position cut of
// its history of a copy's first copies messages. Those it inherits lie
// below its own file.
func heldByRecord(parent Record, cut int64, copies int) held {
	th := parent.Thread
	h := held{texts: map[int]string{}}
	if th.BaseID != "" {
		h.unknownBelow = th.InheritedMessages
		if cut < th.BaseSize {
			h.unknownBelow = min(th.InheritedMessages, copies)
			return h
		}
	}
	for _, m := range parent.Messages {
		if m.Offset < cut && m.Ordinal < copies {
			h.texts[m.Ordinal] = m.Text
		}
	}
	return h
}

// heldByIndexed returns what indexed thread id holds below position cut
// of its history of a copy's first copies messages, with their texts as a
// search resolves them.
func (w *recordWriter) heldByIndexed(ctx context.Context, id string, cut int64, copies int) (held, error) {
	var below []int
	q := `SELECT ordinal FROM (` + messagesBeforeSQL + `) WHERE ordinal < ?3`
	if err := w.tx.SelectContext(ctx, &below, q, id, cut, copies); err != nil {
		return held{}, fmt.Errorf("messages of %s below %d: %w", id, cut, err)
	}
	texts, err := messageTexts(ctx, w.tx, id, 0, copies)
	if err != nil {
		return held{}, err
	}
	h := held{texts: make(map[int]string, len(below))}
	for _, k := range below {
		t, ok := texts[k]
		if !ok {
			t = unresolved
		}
		h.texts[k] = t
	}
	return h, nil
}

// pendingHandOvers sets in texts, the texts of thread id's first messages
// as messageTexts resolves them, the text of each blank copy that its
// parent parentID, replaced earlier in the batch, is to hand it once the
// batch is written (unblankCopies): the copy stands for the text the
// parent held of it before, which the parent's rows, replaced, no longer
// resolve. Live, the parent's revert handed it over before id was
// replaced, so id's copy forks are handed it in turn when id stops
// holding it.
func (w *recordWriter) pendingHandOvers(ctx context.Context, id, parentID string, texts map[int]string, idents map[int]identity) error {
	parentOld := w.replaced[parentID]
	copied, ok := w.copiedBefore[id]
	if len(parentOld) == 0 || !ok || copied == 0 {
		return nil
	}
	// A revert of id that cut into its copies left it fewer: the rows
	// past them are its own (its segments are still those from before).
	kept, err := copiesKept(ctx, w.tx, id, copied)
	if err != nil {
		return err
	}
	var blank []int
	const q = `SELECT ordinal FROM user_messages WHERE thread_id = ? AND text = '' AND ordinal < ?`
	if err := w.tx.SelectContext(ctx, &blank, q, id, kept); err != nil {
		return fmt.Errorf("copied messages of %s: %w", id, err)
	}
	for _, k := range blank {
		m, row := parentOld[k], idents[k]
		if m.text == "" || m.preview != "" && m.preview != row.preview || m.turnID != "" && m.turnID != row.turnID {
			continue // as handOver: no copy of that message
		}
		texts[k] = m.text
	}
	return nil
}

// unresolved stands for a text messageTexts could not resolve: no copy's
// text equals it.
const unresolved = "\x00unresolved"

// keepReplacedTexts notes, before a record replaces thread id's rows, the
// texts and previews of its messages that its copy forks copied, and how
// many of them lay below each fork's cut, for unblankCopies: the record
// may cut id's history back before a cut (a revert of id), and a fork
// reverted in the same batch, before or after id, counts its copies in
// id's history (countRevertedCopies). parentID is id's parent: its
// replacement earlier in the batch may owe id's copies their texts
// (pendingHandOvers).
func (w *recordWriter) keepReplacedTexts(ctx context.Context, id, parentID string) error {
	var forks []copyFork
	q := `SELECT ` + copyForkColumns + ` FROM threads t WHERE t.parent_id = ? AND ` + isCopyFork
	if err := w.tx.SelectContext(ctx, &forks, q, id); err != nil {
		return fmt.Errorf("find copy forks of %s: %w", id, err)
	}
	copies := 0
	for _, f := range forks {
		if !f.Reverted {
			copies = max(copies, f.Copies)
		}
		if f.Cut < 0 {
			continue // unblankCopies leaves these: id holds them all
		}
		below, err := parentMessagesBelow(ctx, w.tx, id, f.Cut)
		if err != nil {
			return err
		}
		if w.copiedBefore == nil {
			w.copiedBefore = map[string]int{}
		}
		w.copiedBefore[f.ID] = below
		copies = max(copies, below)
	}
	if copies == 0 {
		return nil
	}
	texts, err := messageTexts(ctx, w.tx, id, 0, copies)
	if err != nil {
		return err
	}
	idents, err := identitiesOf(ctx, w.tx, id, copies)
	if err != nil {
		return err
	}
	if err := w.pendingHandOvers(ctx, id, parentID, texts, idents); err != nil {
		return err
	}
	old := make(map[int]replacedMessage, len(texts))
	for k, t := range texts {
		old[k] = replacedMessage{text: t, identity: idents[k]}
	}
	if w.replaced == nil {
		w.replaced = map[string]map[int]replacedMessage{}
	}
	w.replaced[id] = old
	return nil
}

// unblankCopies gives the copies in thread id's copy forks that hold no
// text the text they stand for when id, whose rows a record replaced,
// no longer holds it (a revert cut it off): search then finds them in
// the copies, as a rebuild leaves them (copiedTexts). It returns the
// forks it gave text to: their own copy forks may hold the same text
// (written while the fork's row was blank), so the caller blanks those.
func (w *recordWriter) unblankCopies(ctx context.Context, id string) ([]string, error) {
	old := w.replaced[id]
	if len(old) == 0 {
		return nil, nil
	}
	forks, err := copyForksOf(ctx, w.tx, id, -1)
	if err != nil {
		return nil, err
	}
	var given []string
	for _, f := range forks {
		if f.Cut < 0 {
			continue // a copy whose cut is not known: its parent holds them all
		}
		if before, ok := w.copiedBefore[f.ID]; ok && f.Reverted {
			// id's history may end before the cut now: the copies are
			// counted in it as it was.
			kept, err := copiesKept(ctx, w.tx, f.ID, before)
			if err != nil {
				return nil, err
			}
			f.Copies = max(f.Copies, kept)
		}
		if f.Copies == 0 {
			continue
		}
		var blank []int
		const bq = `SELECT ordinal FROM user_messages WHERE thread_id = ? AND text = '' AND ordinal < ?`
		if err := w.tx.SelectContext(ctx, &blank, bq, f.ID, f.Copies); err != nil {
			return nil, fmt.Errorf("copied messages of %s: %w", f.ID, err)
		}
		if len(blank) == 0 {
			continue
		}
		h, err := w.heldByIndexed(ctx, id, f.Cut, f.Copies)
		if err != nil {
			return nil, err
		}
		gave := false
		for _, k := range blank {
			m := old[k]
			if m.text == "" || h.holds(k, m.text) {
				continue
			}
			ok, err := handOver(ctx, w.tx, f.ID, k, m.text, m.identity)
			if err != nil {
				return nil, err
			}
			gave = gave || ok
		}
		if gave {
			given = append(given, f.ID)
		}
	}
	return given, nil
}

// textedRow is a user_messages row with its search text.
type textedRow struct {
	Ordinal int    `db:"ordinal"`
	Offset  int64  `db:"byte_offset"`
	Preview string `db:"preview"`
	TurnID  string `db:"turn_id"`
	Text    string `db:"text"`
}

// earlierRows returns, for record r of a reverted fork (a revert segment)
// about to replace its thread's rows, the rows of its earlier files (at
// positions below r's BaseSize), by ordinal; nil for any other record.
// r read those messages from the index, texts and all, when it was
// scanned (a revert segment continues its own thread's rows), but a copy
// fork's copies are handed their texts, or blanked again, as its parent
// changes: a parent's revert written after the scan and before r left
// r's copies blank, and the parent no longer holds them (withTextsOf).
func (w *recordWriter) earlierRows(ctx context.Context, r Record) (map[int]textedRow, error) {
	th := r.Thread
	if th.BaseID != th.ID || th.ParentID == "" || r.Rewritten {
		return nil, nil
	}
	var rows []textedRow
	const q = `SELECT ordinal, byte_offset, preview, turn_id, text FROM user_messages WHERE thread_id = ? AND byte_offset < ?`
	if err := w.tx.SelectContext(ctx, &rows, q, th.ID, th.BaseSize); err != nil {
		return nil, fmt.Errorf("messages of %s below %d: %w", th.ID, th.BaseSize, err)
	}
	byOrdinal := make(map[int]textedRow, len(rows))
	for _, row := range rows {
		byOrdinal[row.Ordinal] = row
	}
	return byOrdinal, nil
}

// withTextsOf returns msgs with the text of the row of earlier, rows a
// record replaces (earlierRows), that is the same message: the same
// ordinal, position, preview and turn id. The rows hold the texts as the
// copy rules left them since the record was read.
func withTextsOf(msgs []UserMessage, earlier map[int]textedRow) []UserMessage {
	if len(earlier) == 0 {
		return msgs
	}
	out, cloned := msgs, false // msgs may be the record's own
	for i, m := range msgs {
		row, ok := earlier[m.Ordinal]
		if !ok || row.Text == m.Text || row.Offset != m.Offset || row.Preview != m.Preview || row.TurnID != m.TurnID {
			continue
		}
		if !cloned {
			out, cloned = slices.Clone(msgs), true
		}
		out[i].Text = row.Text
	}
	return out
}

// handOverDropped gives the copies of msgs, messages of thread id that a
// rollback drops, in id's copy forks the search text they stand for: id
// no longer holds them, so search finds them in the copies (as
// copiedTexts leaves them on a rebuild).
func handOverDropped(ctx context.Context, tx *sqlx.Tx, id string, msgs []UserMessage, texts map[int]string) error {
	if len(msgs) == 0 {
		return nil
	}
	forks, err := copyForksOf(ctx, tx, id, msgs[0].Ordinal)
	if err != nil {
		return err
	}
	for _, f := range forks {
		for _, m := range msgs {
			if m.Ordinal >= f.Copies || m.Offset >= f.Cut && f.Cut >= 0 || texts[m.Ordinal] == "" {
				continue
			}
			if _, err := handOver(ctx, tx, f.ID, m.Ordinal, texts[m.Ordinal], identity{m.Preview, m.TurnID}); err != nil {
				return err
			}
		}
	}
	return nil
}

// copyFork is a copy fork of thread Parent: how many messages it copied,
// and where in its parent's history it was cut (-1 when not known).
type copyFork struct {
	ID       string `db:"id"`
	Parent   string `db:"parent_id"`
	Copies   int    `db:"inherited_messages"`
	Cut      int64  `db:"fork_offset"`
	Reverted bool   `db:"reverted"`
}

// isCopyFork is the condition on threads row t for a copy fork: a fork
// whose rows hold copies of its parent's messages below its cut. A copy
// fork reverted since (its base_id is its own id, its first file a copy)
// still is one; its row counts its copies among its own rows, so
// countRevertedCopies counts them by its parent.
const isCopyFork = `(t.base_id IS NULL AND t.inherited_messages > 0
	OR t.base_id = t.id AND t.fork_offset >= 0 AND (` + inheritedBaseOfT + `) IS NULL)`

// copyForkColumns are the columns of a copyFork, from threads row t.
const copyForkColumns = `t.id, t.parent_id, t.inherited_messages, t.fork_offset, t.base_id IS NOT NULL AS reverted`

// countRevertedCopies sets the Copies of each reverted fork of forks: the
// parent's messages below the fork's cut (those the fork copied when it
// was made) that the fork's history still holds (copiesKept).
func countRevertedCopies(ctx context.Context, tx *sqlx.Tx, forks []copyFork) error {
	for i, f := range forks {
		if !f.Reverted {
			continue
		}
		// Rows in ordinal order lie in position order: those below both
		// bounds are min(copied, kept), read through (thread_id, ordinal).
		q := `SELECT COUNT(*) FROM user_messages m
			WHERE m.thread_id = ?3 AND m.ordinal < (SELECT COUNT(*) FROM (` + messagesBeforeSQL + `))
			AND ` + inFirstFileOfFork
		if err := tx.GetContext(ctx, &forks[i].Copies, q, f.Parent, f.Cut, f.ID); err != nil {
			return fmt.Errorf("copies of reverted fork %s: %w", f.ID, err)
		}
	}
	return nil
}

// copiesKept returns how many of the first copied messages of reverted
// copy fork id its history still holds: a revert of the fork that cut
// into its first file, the copy, cut off the copies past the cut, and the
// rows at their ordinals are the fork's own prompts now, asked in a later
// file, also when one is a copied prompt asked again.
func copiesKept(ctx context.Context, tx *sqlx.Tx, id string, copied int) (int, error) {
	var kept int
	q := `SELECT COUNT(*) FROM user_messages m WHERE m.thread_id = ?3 AND m.ordinal < ?1 AND ` + inFirstFileOfFork
	if err := tx.GetContext(ctx, &kept, q, copied, nil, id); err != nil {
		return 0, fmt.Errorf("copies of reverted fork %s: %w", id, err)
	}
	return kept, nil
}

// inFirstFileOfFork is the condition on user_messages row m of reverted
// thread ?3 that it lies in the thread's first file. A row that says
// reverted before its segments are written (a revert's replacement,
// midway: keepReplacedTexts reads the rows it replaces) has no first file
// yet: its rows are those from before, all kept.
const inFirstFileOfFork = `m.byte_offset < IFNULL((SELECT s.base_size + s.length FROM thread_segments s
	WHERE s.thread_id = ?3 AND s.seq = 0), 9223372036854775807)`

// parentMessagesBelow counts thread id's messages at positions below cut.
func parentMessagesBelow(ctx context.Context, tx *sqlx.Tx, id string, cut int64) (int, error) {
	var n int
	if err := tx.GetContext(ctx, &n, `SELECT COUNT(*) FROM (`+messagesBeforeSQL+`)`, id, cut); err != nil {
		return 0, fmt.Errorf("messages of %s below %d: %w", id, cut, err)
	}
	return n, nil
}

// copyForksOf returns the copy forks of thread id that copied more than
// above of its messages.
func copyForksOf(ctx context.Context, tx *sqlx.Tx, id string, above int) ([]copyFork, error) {
	var forks []copyFork
	q := `SELECT ` + copyForkColumns + ` FROM threads t WHERE t.parent_id = ? AND ` + isCopyFork
	if err := tx.SelectContext(ctx, &forks, q, id); err != nil {
		return nil, fmt.Errorf("find copy forks of %s: %w", id, err)
	}
	if err := countRevertedCopies(ctx, tx, forks); err != nil {
		return nil, err
	}
	return slices.DeleteFunc(forks, func(f copyFork) bool { return f.Copies <= above }), nil
}

// identity is what a message's copy has of it too: its preview and its
// Codex turn id (a revert's new prompt may start as the one it cut off
// did, but it is another turn).
type identity struct {
	preview, turnID string
}

// handOver gives copy fork forkID's blank copy of message ordinal, with
// identity of, its text, and reports whether it did. A row with another
// preview or turn id is no copy of that message (a revert put another
// message at its ordinal before the fork copied it) and is left as it is;
// an empty preview (not known: the message is inherited) or turn id (none:
// a message outside turns) matches any.
func handOver(ctx context.Context, tx *sqlx.Tx, forkID string, ordinal int, text string, of identity) (bool, error) {
	const set = `UPDATE user_messages SET text = ?1 WHERE thread_id = ?2 AND ordinal = ?3 AND text = ''
		AND (?4 = '' OR preview = ?4) AND (?5 = '' OR turn_id = ?5)`
	res, err := tx.ExecContext(ctx, set, text, forkID, ordinal, of.preview, of.turnID)
	if err != nil {
		return false, fmt.Errorf("hand text of user message %d over to fork %s: %w", ordinal, forkID, err)
	}
	n, err := res.RowsAffected()
	return n > 0, err
}

// identitiesOf returns the identities of thread id's own messages below
// ordinal below, by ordinal.
func identitiesOf(ctx context.Context, tx *sqlx.Tx, id string, below int) (map[int]identity, error) {
	var rows []struct {
		Ordinal int    `db:"ordinal"`
		Preview string `db:"preview"`
		TurnID  string `db:"turn_id"`
	}
	const q = `SELECT ordinal, preview, turn_id FROM user_messages WHERE thread_id = ? AND ordinal < ?`
	if err := tx.SelectContext(ctx, &rows, q, id, below); err != nil {
		return nil, fmt.Errorf("identities of messages of %s: %w", id, err)
	}
	idents := make(map[int]identity, len(rows))
	for _, r := range rows {
		idents[r.Ordinal] = identity{r.Preview, r.TurnID}
	}
	return idents, nil
}

package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/jmoiron/sqlx"
)

// maxChainDepth bounds the walk down a history chain (a fork of a fork ...
// of a thread), so that a cycle in corrupt rows ends.
const maxChainDepth = 1000

// inheritedBaseOfT is, for the threads row t, the thread whose messages
// are t's first inherited_messages (NULL for none): its base_id, or, for
// a reverted thread (base_id is its own id), the base of its first file,
// kept in its first thread_segments link (seq 0), when that file is a
// reference fork. See docs/SCHEMA.md, History chains.
const inheritedBaseOfT = `IIF(t.base_id = t.id,
		(SELECT NULLIF(s.base_id, '') FROM thread_segments s WHERE s.thread_id = t.id AND s.seq = 0),
		t.base_id)`

// continuersSQL selects the threads other than ?1 whose history continues
// thread ?1's history: the reference forks based on it, and the reverted
// threads whose first file is one (their first link names it, its index
// thread_segments_base finds them). Each comes with its inherited_messages
// and the position of ?1's history where it leaves it (cut).
const continuersSQL = `SELECT id, inherited_messages, base_size AS cut FROM threads WHERE base_id = ?1 AND id <> ?1
	UNION ALL
	SELECT t.id, t.inherited_messages, s.base_size AS cut
	FROM thread_segments s JOIN threads t ON t.id = s.thread_id AND t.base_id = t.id
	WHERE s.base_id = ?1 AND s.seq = 0 AND t.id <> ?1`

// chainMessages selects the user messages of thread ?1 through its
// history chain: each thread of the chain contributes its own rows with
// ordinals in [lo, hi), where lo is how many messages it inherits from its
// base (0 without one: a copy fork holds its copied rows) and hi is the
// lo of the thread above it in the chain. A reverted thread inherits
// through its first file's base (inheritedBaseOfT). The positions of a
// base's rows are positions in the fork's history too (the two share them
// below the cut), so a row is returned as stored, under thread id ?1.
//
// The %d is maxChainDepth, the first %s a condition on the chain row c for
// walking on to its base (to stop early), the second how m is read ("" for
// SQLite's choice, or an INDEXED BY clause), the third a condition on the
// message row m.
const chainMessages = `WITH RECURSIVE chain(id, base_id, lo, hi, depth) AS (
	SELECT t.id, ` + inheritedBaseOfT + `, IIF(t.base_id IS NULL, 0, t.inherited_messages), 9223372036854775807, 0
	FROM threads t WHERE t.id = ?1
	UNION ALL
	SELECT t.id, ` + inheritedBaseOfT + `, IIF(t.base_id IS NULL, 0, t.inherited_messages), MIN(c.hi, c.lo), c.depth + 1
	FROM chain c JOIN threads t ON t.id = c.base_id
	WHERE c.lo > 0 AND c.depth < %d AND %s
)
SELECT ?1 AS thread_id, m.ordinal, m.byte_offset, m.line_number, m.preview, m.cut_offset, m.turn_id
FROM chain c CROSS JOIN user_messages m %s ON m.thread_id = c.id AND m.ordinal >= c.lo AND m.ordinal < c.hi
WHERE %s`

var (
	// allMessagesSQL: every message of thread ?1, in order.
	allMessagesSQL = fmt.Sprintf(chainMessages, maxChainDepth, "1", "", "1") + ` ORDER BY m.ordinal`
	// messageSQL: message ?2 of thread ?1; the walk stops at the thread
	// that holds it.
	messageSQL = fmt.Sprintf(chainMessages, maxChainDepth, "?2 < c.lo", "", "m.ordinal = ?2")
	// ownMessageSQL: message ?2 of thread ?1 when the thread holds its
	// row itself: the first step of messageSQL's walk, one lookup.
	ownMessageSQL = `SELECT ?1 AS thread_id, m.ordinal, m.byte_offset, m.line_number, m.preview, m.cut_offset, m.turn_id
FROM threads t JOIN user_messages m ON m.thread_id = t.id AND m.ordinal = ?2
WHERE t.id = ?1 AND ?2 >= IIF(t.base_id IS NULL, 0, t.inherited_messages)`
	// messageOfTurnSQL: the first message of thread ?1 in turn ?2, read
	// through the turn's index: SQLite's planner, without statistics (a
	// new index has none), reads the thread's every row by ordinal instead.
	messageOfTurnSQL = fmt.Sprintf(chainMessages, maxChainDepth, "1", "INDEXED BY user_messages_turn", "m.turn_id = ?2") + ` ORDER BY m.ordinal LIMIT 1`
	// messagesBetweenSQL: the messages of thread ?1 with ordinals in
	// [?2, ?3); the walk stops at the thread that holds message ?2.
	messagesBetweenSQL = fmt.Sprintf(chainMessages, maxChainDepth, "?2 < c.lo", "", "m.ordinal >= ?2 AND m.ordinal < ?3") + ` ORDER BY m.ordinal`
	// messagesBeforeSQL: the messages of thread ?1 at positions below ?2.
	messagesBeforeSQL = fmt.Sprintf(chainMessages, maxChainDepth, "1", "", "m.byte_offset < ?2") + ` ORDER BY m.ordinal`
)

// UserMessages returns the counted user messages of a thread in order
// (ErrNotFound for an unknown thread), those it inherits from its base
// included, at their positions in its history.
func (s *Store) UserMessages(ctx context.Context, id string) ([]UserMessage, error) {
	msgs := []UserMessage{}
	if err := sqlx.SelectContext(ctx, s.cached(), &msgs, allMessagesSQL, id); err != nil {
		return nil, fmt.Errorf("user messages of thread %s: %w", id, err)
	}
	if len(msgs) == 0 {
		if err := s.exists(ctx, id); err != nil {
			return nil, fmt.Errorf("user messages of thread %s: %w", id, err)
		}
	}
	return msgs, nil
}

// UserMessagesBetween returns the user messages of thread id with ordinals
// in [lo, hi), in order, as UserMessages gives them (ErrNotFound for an
// unknown thread). It reads those rows alone: the chain is walked down only
// as far as the base holding message lo.
func (s *Store) UserMessagesBetween(ctx context.Context, id string, lo, hi int) ([]UserMessage, error) {
	msgs := []UserMessage{}
	st, err := s.readStmt(ctx, messagesBetweenSQL)
	if err == nil {
		err = st.SelectContext(ctx, &msgs, id, lo, hi)
	}
	if err == nil && len(msgs) == 0 {
		err = s.exists(ctx, id)
	}
	if err != nil {
		return nil, fmt.Errorf("user messages %d to %d of thread %s: %w", lo, hi, id, err)
	}
	return msgs, nil
}

// UserMessage returns message ordinal of thread id, or ErrNotFound. An
// inherited message is looked up in the base that holds it: the cost grows
// with the depth of the chain, not with the number of messages.
func (s *Store) UserMessage(ctx context.Context, id string, ordinal int) (UserMessage, error) {
	ctx, err := lookup(ctx)
	var m UserMessage
	if err == nil {
		m, err = messageAt(ctx, func(q string) (*sqlx.Stmt, error) { return s.readStmt(ctx, q) }, id, ordinal)
	}
	if errors.Is(err, sql.ErrNoRows) {
		return UserMessage{}, fmt.Errorf("user message %d of thread %s: %w", ordinal, id, ErrNotFound)
	}
	if err != nil {
		return UserMessage{}, fmt.Errorf("user message %d of thread %s: %w", ordinal, id, err)
	}
	return m, nil
}

// messageAt returns message ordinal of thread id, or sql.ErrNoRows, with
// statements from stmt: the thread's own row when it holds it (most
// lookups), else through the walk down its chain.
func messageAt(ctx context.Context, stmt func(query string) (*sqlx.Stmt, error), id string, ordinal int) (UserMessage, error) {
	var m UserMessage
	for _, q := range []string{ownMessageSQL, messageSQL} {
		st, err := stmt(q)
		if err != nil {
			return UserMessage{}, err
		}
		if err = st.GetContext(ctx, &m, id, ordinal); !errors.Is(err, sql.ErrNoRows) {
			return m, err
		}
	}
	return UserMessage{}, sql.ErrNoRows
}

// exists returns nil when thread id is indexed and ErrNotFound otherwise.
func (s *Store) exists(ctx context.Context, id string) error {
	st, err := s.readStmt(ctx, threadExistsSQL)
	if err != nil {
		return err
	}
	var found bool
	if err := st.GetContext(ctx, &found, id); err != nil {
		return err
	}
	if !found {
		return ErrNotFound
	}
	return nil
}

// UserMessageOfTurn returns the first counted user message of thread id
// (inherited ones included) that Codex turn turnID holds, or ErrNotFound.
func (s *Store) UserMessageOfTurn(ctx context.Context, id, turnID string) (UserMessage, error) {
	var m UserMessage
	ctx, err := lookup(ctx)
	var st *sqlx.Stmt
	if err == nil {
		st, err = s.readStmt(ctx, messageOfTurnSQL)
	}
	if err == nil {
		err = st.GetContext(ctx, &m, id, turnID)
	}
	if errors.Is(err, sql.ErrNoRows) {
		return UserMessage{}, fmt.Errorf("turn %q of thread %s: %w", turnID, id, ErrNotFound)
	}
	if err != nil {
		return UserMessage{}, fmt.Errorf("turn %q of thread %s: %w", turnID, id, err)
	}
	return m, nil
}

// UserMessagesBefore returns the counted user messages of thread id
// (inherited ones included) whose offset is below end, in order: what a
// history cut at end inherits.
func (s *Store) UserMessagesBefore(ctx context.Context, id string, end int64) ([]UserMessage, error) {
	msgs := []UserMessage{}
	if err := sqlx.SelectContext(ctx, s.cached(), &msgs, messagesBeforeSQL, id, end); err != nil {
		return nil, fmt.Errorf("user messages of thread %s before %d: %w", id, end, err)
	}
	return msgs, nil
}

// messageTexts returns the search text of thread id's messages at ordinals
// [from, to), resolved as a search does: a row without text of its own (a
// copy of its parent's, or a reference fork's inherited message) takes the
// text of the message it copies, from the parent or base that holds it.
// Ordinals it cannot resolve are left out.
func messageTexts(ctx context.Context, tx *sqlx.Tx, id string, from, to int) (map[int]string, error) {
	texts := map[int]string{}
	want := to - from
	for depth := 0; id != "" && from < to && len(texts) < want && depth < maxChainDepth; depth++ {
		var th struct {
			BaseID    string `db:"base_id"`
			ParentID  string `db:"parent_id"`
			Inherited int    `db:"inherited_messages"`
			Cut       int64  `db:"fork_offset"`
			Reverted  bool   `db:"reverted_copy"`
		}
		const q = `SELECT IFNULL(` + inheritedBaseOfT + `, '') AS base_id, IFNULL(t.parent_id, '') AS parent_id,
			t.inherited_messages, t.fork_offset, IFNULL(t.base_id = t.id AND t.parent_id IS NOT NULL AND ` + isCopyFork + `, 0) AS reverted_copy
			FROM threads t WHERE t.id = ?`
		if err := tx.GetContext(ctx, &th, q, id); errors.Is(err, sql.ErrNoRows) {
			break
		} else if err != nil {
			return nil, fmt.Errorf("read thread %s: %w", id, err)
		}
		if th.Reverted {
			// A copy fork reverted since counts its copies among its own
			// rows: they are its parent's messages below its cut.
			cf := []copyFork{{ID: id, Parent: th.ParentID, Cut: th.Cut, Reverted: true}}
			if err := countRevertedCopies(ctx, tx, cf); err != nil {
				return nil, err
			}
			th.Inherited = cf[0].Copies
		}
		var rows []struct {
			Ordinal int    `db:"ordinal"`
			Text    string `db:"text"`
		}
		const rq = `SELECT ordinal, text FROM user_messages WHERE thread_id = ? AND ordinal >= ? AND ordinal < ?`
		if err := tx.SelectContext(ctx, &rows, rq, id, from, to); err != nil {
			return nil, fmt.Errorf("read user messages of thread %s: %w", id, err)
		}
		for _, r := range rows {
			if _, done := texts[r.Ordinal]; done {
				continue
			}
			// A copied row's empty text stands for its parent's; an own
			// message may be empty too (an image alone).
			if r.Text != "" || th.BaseID != "" || r.Ordinal >= th.Inherited {
				texts[r.Ordinal] = r.Text
			}
		}
		// Walk up to whoever holds the rest: the base for a reference
		// fork, the parent for a copy fork.
		next := th.BaseID
		if next == "" {
			next = th.ParentID
		}
		to = min(to, th.Inherited)
		id = next
	}
	return texts, nil
}

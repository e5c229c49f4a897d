package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/jmoiron/sqlx"
)

// threadColumns lists the threads columns in the order of Thread's fields.
// Columns are always named: a migration adding one must not break scans.
const threadColumns = `id, rollout_path, created_at, updated_at, cwd, source, originator,
	cli_version, model_provider, git_commit, git_branch, git_origin, name, preview,
	archived, archived_at, IFNULL(parent_id, '') AS parent_id, fork_user_message,
	fork_offset, line_count, user_message_count, indexed_size, file_size, file_mtime,
	history_mode, IFNULL(base_id, '') AS base_id, base_size, next_ordinal, turn_offset, turn_id,
	inherited_messages, preview_offset, tail_sum, newest_at`

// insertThread inserts a threads row from threadArgs; "" for parent_id
// and base_id is stored as NULL. Values are bound by position: sqlx's
// named binding compiled the query again on every call. newest_at is
// updated_at when updated_at is within its bound (the file's mtime plus a
// minute; ?4 is updated_at, ?24 file_mtime), which lets the insert trigger
// skip its update (migration 00009), else 0, which gets the trigger's
// update; the row is the same either way.
const insertThread = `INSERT INTO threads (id, rollout_path, created_at, updated_at, cwd,
	source, originator, cli_version, model_provider, git_commit, git_branch, git_origin,
	name, preview, archived, archived_at, parent_id, fork_user_message, fork_offset,
	line_count, user_message_count, indexed_size, file_size, file_mtime,
	history_mode, base_id, base_size, next_ordinal, turn_offset, turn_id, inherited_messages, preview_offset, tail_sum, newest_at)
VALUES (?, ?, ?, ?, ?,
	?, ?, ?, ?, ?, ?, ?,
	?, ?, ?, ?, NULLIF(?, ''), ?, ?,
	?, ?, ?, ?, ?,
	?, NULLIF(?, ''), ?, ?, ?, ?, ?, ?, ?, IIF(?24 > 0 AND ?4 > ?24 / 1000000 + 60000, 0, ?4))`

// upsertThread is insertThread replacing every column of an existing row;
// the update path leaves newest_at to the update trigger.
const upsertThread = insertThread + `
ON CONFLICT (id) DO UPDATE SET
	rollout_path = excluded.rollout_path, created_at = excluded.created_at,
	updated_at = excluded.updated_at, cwd = excluded.cwd, source = excluded.source,
	originator = excluded.originator, cli_version = excluded.cli_version,
	model_provider = excluded.model_provider, git_commit = excluded.git_commit,
	git_branch = excluded.git_branch, git_origin = excluded.git_origin,
	name = excluded.name, preview = excluded.preview, archived = excluded.archived,
	archived_at = excluded.archived_at, parent_id = excluded.parent_id,
	fork_user_message = excluded.fork_user_message, fork_offset = excluded.fork_offset,
	line_count = excluded.line_count, user_message_count = excluded.user_message_count,
	indexed_size = excluded.indexed_size, file_size = excluded.file_size,
	file_mtime = excluded.file_mtime, history_mode = excluded.history_mode,
	base_id = excluded.base_id, base_size = excluded.base_size,
	next_ordinal = excluded.next_ordinal, turn_offset = excluded.turn_offset,
	turn_id = excluded.turn_id, inherited_messages = excluded.inherited_messages,
	preview_offset = excluded.preview_offset, tail_sum = excluded.tail_sum`

const insertUserMessage = `INSERT INTO user_messages
	(thread_id, ordinal, byte_offset, line_number, preview, text, cut_offset, turn_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`

// parentAncestrySQL selects a thread's ancestors, nearest first.
const parentAncestrySQL = `SELECT ancestor_id FROM thread_lineage WHERE thread_id = ? ORDER BY depth`

const insertLineage = `INSERT INTO thread_lineage (thread_id, ancestor_id, depth) VALUES (?, ?, ?)`

// recordWriter holds the statements prepared for one write transaction, so
// a batch of records parses each statement once, and the user messages
// queued for a batch insert.
type recordWriter struct {
	s     *Store
	tx    *sqlx.Tx
	stmts map[string]*sql.Stmt // SQL text -> statement prepared on (or bound to) tx

	queued   []queuedMessage
	queuedBy map[string]bool // threads with queued messages

	// replaced holds, for a replaced thread with copy forks, what its
	// messages were before (unblankCopies).
	replaced map[string]map[int]replacedMessage
	// copiedBefore holds, for the copy forks of a replaced thread, how
	// many of its messages lay below the fork's cut before the record
	// replaced it (unblankCopies).
	copiedBefore map[string]int
}

// replacedMessage is a message of a thread before a record replaced its
// rows: its text, and its identity, which a copy of it has too.
type replacedMessage struct {
	text string
	identity
}

type queuedMessage struct {
	threadID string
	UserMessage
}

// newRecordWriter returns a writer on tx, a transaction of s's writer,
// that prepares each statement on its first use and keeps it until close.
// The error is always nil.
func (s *Store) newRecordWriter(_ context.Context, tx *sqlx.Tx) (*recordWriter, error) {
	return &recordWriter{s: s, tx: tx, stmts: map[string]*sql.Stmt{}, queuedBy: map[string]bool{}}, nil
}

// stmt returns query bound to the transaction: one of writerStmts, prepared
// when the store opened, or else prepared on its first use in it.
func (w *recordWriter) stmt(ctx context.Context, query string) (*sql.Stmt, error) {
	if stmt, ok := w.stmts[query]; ok {
		return stmt, nil
	}
	st, err := w.s.txStmt(ctx, w.tx, query)
	if err != nil {
		return nil, err
	}
	w.stmts[query] = st.Stmt
	return st.Stmt, nil
}

// exec runs query with args through its prepared statement.
func (w *recordWriter) exec(ctx context.Context, query string, args ...any) (sql.Result, error) {
	stmt, err := w.stmt(ctx, query)
	if err != nil {
		return nil, err
	}
	return stmt.ExecContext(ctx, args...)
}

// execOnly is exec for an execer.
func (w *recordWriter) execOnly(ctx context.Context, query string, args ...any) error {
	_, err := w.exec(ctx, query, args...)
	return err
}

// selectRows runs query with args through its prepared statement and
// scans its rows into dest, a pointer to a slice, as sqlx.SelectContext.
func (w *recordWriter) selectRows(ctx context.Context, dest any, query string, args ...any) error {
	stmt, err := w.stmt(ctx, query)
	if err != nil {
		return err
	}
	rows, err := stmt.QueryContext(ctx, args...)
	if err != nil {
		return err
	}
	return sqlx.StructScan(&sqlx.Rows{Rows: rows, Mapper: w.tx.Mapper}, dest)
}

// strings runs query with args through its prepared statement and returns
// the first column of each row.
func (w *recordWriter) strings(ctx context.Context, query string, args ...any) ([]string, error) {
	stmt, err := w.stmt(ctx, query)
	if err != nil {
		return nil, err
	}
	rows, err := stmt.QueryContext(ctx, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var values []string
	for rows.Next() {
		var v string
		if err := rows.Scan(&v); err != nil {
			return nil, err
		}
		values = append(values, v)
	}
	return values, rows.Err()
}

// close closes the prepared statements; the transaction stays open.
func (w *recordWriter) close() {
	for _, stmt := range w.stmts {
		stmt.Close()
	}
}

// messages inserts msgs as the thread's user messages from ordinal first on,
// checking that their ordinals follow on.
func (w *recordWriter) messages(ctx context.Context, id string, first int, msgs []UserMessage) error {
	if err := w.queue(ctx, id, first, msgs); err != nil {
		return err
	}
	return w.flush(ctx)
}

// queue checks msgs as messages does and holds them for the next flush, so
// a batch of records inserts all its messages in a few statements. A
// thread queued twice is flushed in between, so its rows never collide.
func (w *recordWriter) queue(ctx context.Context, id string, first int, msgs []UserMessage) error {
	if err := checkOrdinals(id, first, msgs); err != nil {
		return err
	}
	if w.queuedBy[id] {
		if err := w.flush(ctx); err != nil {
			return err
		}
	}
	for _, m := range msgs {
		w.queued = append(w.queued, queuedMessage{id, m})
	}
	if len(msgs) > 0 {
		w.queuedBy[id] = true
	}
	return nil
}

// checkOrdinals checks that msgs carry ordinals first, first+1, ...
func checkOrdinals(id string, first int, msgs []UserMessage) error {
	for i, m := range msgs {
		if m.Ordinal != first+i {
			return fmt.Errorf("user message %d of thread %s has ordinal %d, want %d", i, id, m.Ordinal, first+i)
		}
	}
	return nil
}

// flush inserts the queued messages in multi-row statements: FTS5 flushes
// its pending terms at every statement's savepoint, so one statement per
// message (or per thread) would flush that often.
func (w *recordWriter) flush(ctx context.Context) error {
	for len(w.queued) > 0 {
		chunk := w.queued[:min(len(w.queued), messagesPerInsert)]
		w.queued = w.queued[len(chunk):]
		var q strings.Builder
		q.WriteString(`INSERT INTO user_messages (thread_id, ordinal, byte_offset, line_number, preview, text, cut_offset, turn_id) VALUES `)
		args := make([]any, 0, 8*len(chunk))
		for i, m := range chunk {
			if i > 0 {
				q.WriteByte(',')
			}
			q.WriteString("(?, ?, ?, ?, ?, ?, ?, ?)")
			args = append(args, m.threadID, m.Ordinal, m.Offset, m.Line, m.Preview, m.Text, m.CutOffset, m.TurnID)
		}
		if _, err := w.exec(ctx, q.String(), args...); err != nil {
			return fmt.Errorf("insert user messages of thread %s..: %w", chunk[0].threadID, err)
		}
	}
	w.queued = w.queued[:0]
	clear(w.queuedBy)
	return nil
}

// messagesPerInsert keeps a multi-row INSERT well under SQLite's limit of
// 32766 bound variables (six per row).
const messagesPerInsert = 1000

// ancestry inserts the lineage rows of thread r, nearest ancestor at depth 1,
// and its spawn edge.
// A record with a parent but no ancestors inherits the parent's indexed
// ancestry.
func (w *recordWriter) ancestry(ctx context.Context, r Record) error {
	if err := w.spawn(ctx, r); err != nil {
		return err
	}
	id := r.Thread.ID
	ancestors := r.Ancestors
	if p := r.Thread.ParentID; p != "" {
		if len(ancestors) == 0 {
			ancestors = []string{p}
			above, err := w.strings(ctx, parentAncestrySQL, p)
			if err != nil {
				return fmt.Errorf("read ancestry of parent %s: %w", p, err)
			}
			ancestors = append(ancestors, above...)
		} else if ancestors[0] != p {
			return fmt.Errorf("thread %s: nearest ancestor %s is not its parent %s", id, ancestors[0], p)
		}
	}
	for i, a := range ancestors {
		if a == id {
			return fmt.Errorf("thread %s: listed as its own ancestor", id)
		}
		if _, err := w.exec(ctx, insertLineage, id, a, i+1); err != nil {
			if isConstraint(err) {
				return fmt.Errorf("thread %s: ancestor %s listed twice", id, a)
			}
			return fmt.Errorf("insert ancestor %s of thread %s: %w", a, id, err)
		}
	}
	return nil
}

func checkRecord(r Record) error {
	if r.Thread.ID == "" {
		return errors.New("thread without id")
	}
	if r.Thread.RolloutPath == "" {
		return fmt.Errorf("thread %s without rollout path", r.Thread.ID)
	}
	return nil
}

// Insert adds a new thread with its messages and ancestry in one
// transaction. It fails with ErrExists when the id or path is indexed.
//
// Messages must carry ordinals 0, 1, ... in order. When Ancestors is empty
// and the thread has a parent, the ancestry is the parent followed by the
// parent's indexed ancestors.
func (s *Store) Insert(ctx context.Context, r Record) error {
	if err := checkRecord(r); err != nil {
		return fmt.Errorf("insert: %w", err)
	}
	err := s.inTx(ctx, func(tx *sqlx.Tx) error {
		w, err := s.newRecordWriter(ctx, tx)
		if err != nil {
			return err
		}
		defer w.close()
		if _, err := w.exec(ctx, insertThread, threadArgs(&r.Thread)...); err != nil {
			if isConstraint(err) {
				return ErrExists
			}
			return err
		}
		msgs, err := w.copiedTexts(ctx, r, nil)
		if err != nil {
			return err
		}
		if err := w.messages(ctx, r.Thread.ID, r.Thread.FirstOwnMessage(), msgs); err != nil {
			return err
		}
		if err := w.blankCopies(ctx, []string{r.Thread.ID}); err != nil {
			return err
		}
		if err := writeRolledBack(ctx, w.execOnly, r.Thread.ID, r.RolledBack); err != nil {
			return err
		}
		if err := w.segments(ctx, r.Thread.ID, r.Segments, false); err != nil {
			return err
		}
		if err := w.ancestry(ctx, r); err != nil {
			return err
		}
		if err := putCreationKey(ctx, tx, r.threadKey()); err != nil {
			return err
		}
		return stateCreationKey(ctx, w.execOnly, r.Thread.ID, r.StatedKey)
	})
	if err != nil {
		return fmt.Errorf("insert thread %s (%s): %w", r.Thread.ID, r.Thread.RolloutPath, err)
	}
	return nil
}

// Replace inserts or fully replaces each record (thread row, messages,
// search text and ancestry) in one transaction; reindex uses it in batches.
//
// The files are the truth: a row of another id that holds a record's
// rollout path is deleted. Lineage rows of other threads naming a replaced
// thread as their ancestor are kept.
func (s *Store) Replace(ctx context.Context, rs []Record) error {
	_, err := s.ReplaceUnlessIndexed(ctx, rs, nil)
	return err
}

// ReplaceUnlessIndexed is Replace, except that a record whose thread id is
// in fresh (threads the caller found not indexed) is left out when the
// thread has a row by the time the transaction runs: the caller decides
// it again. It returns the ids left out, in the order of rs.
func (s *Store) ReplaceUnlessIndexed(ctx context.Context, rs []Record, fresh map[string]bool) ([]string, error) {
	if len(rs) == 0 {
		return nil, nil
	}
	for _, r := range rs {
		if err := checkRecord(r); err != nil {
			return nil, fmt.Errorf("replace: %w", err)
		}
	}
	var taken []string
	err := s.inTx(ctx, func(tx *sqlx.Tx) error {
		taken = taken[:0]
		w, err := s.newRecordWriter(ctx, tx)
		if err != nil {
			return fmt.Errorf("replace: %w", err)
		}
		defer w.close()
		rows, err := w.rowsOf(ctx, rs)
		if err != nil {
			return fmt.Errorf("replace: find rows of records: %w", err)
		}
		batch := make(map[string]*Record, len(rs))
		written := make([]string, 0, len(rs))
		for _, r := range rs {
			if fresh[r.Thread.ID] && rows.hasID(r.Thread.ID) {
				taken = append(taken, r.Thread.ID)
				continue
			}
			batch[r.Thread.ID] = &r
			written = append(written, r.Thread.ID)
		}
		var replaced []string // records that replaced a row of their id
		for _, r := range rs {
			if batch[r.Thread.ID] == nil {
				continue
			}
			indexed, err := replaceOne(ctx, w, r, batch, rows.new)
			if err != nil {
				return fmt.Errorf("replace thread %s (%s): %w", r.Thread.ID, r.Thread.RolloutPath, err)
			}
			if indexed {
				replaced = append(replaced, r.Thread.ID)
			}
		}
		if err := w.flush(ctx); err != nil {
			return fmt.Errorf("replace: %w", err)
		}
		if err := w.blankCopies(ctx, written); err != nil {
			return fmt.Errorf("replace: %w", err)
		}
		var given []string // copy forks given text their own copies may hold
		for _, id := range replaced {
			if err := detachFromReplaced(ctx, tx, id); err != nil {
				return fmt.Errorf("replace thread %s: %w", id, err)
			}
			forks, err := w.unblankCopies(ctx, id)
			if err != nil {
				return fmt.Errorf("replace thread %s: %w", id, err)
			}
			given = append(given, forks...)
		}
		if err := w.blankCopies(ctx, given); err != nil {
			return fmt.Errorf("replace: %w", err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return taken, nil
}

// batchRows are the rows a batch of records finds before it is written:
// those holding one of the records' ids or rollout paths.
type batchRows struct {
	ids map[string]bool // ids of the rows found
	// new is set when no row was found and the records' ids and paths
	// are all distinct: no record then replaces a row, whatever the
	// order they are written in.
	new bool
}

func (b batchRows) hasID(id string) bool { return b.ids[id] }

// rowsOf finds the rows of the records in rs with one statement.
func (w *recordWriter) rowsOf(ctx context.Context, rs []Record) (batchRows, error) {
	ids := make([]string, 0, len(rs))
	paths := make([]string, 0, len(rs))
	distinctIDs := make(map[string]bool, len(rs))
	distinctPaths := make(map[string]bool, len(rs))
	for _, r := range rs {
		ids = append(ids, r.Thread.ID)
		paths = append(paths, r.Thread.RolloutPath)
		distinctIDs[r.Thread.ID] = true
		distinctPaths[r.Thread.RolloutPath] = true
	}
	idList, err := json.Marshal(ids)
	if err != nil {
		return batchRows{}, err
	}
	pathList, err := json.Marshal(paths)
	if err != nil {
		return batchRows{}, err
	}
	const q = `SELECT id FROM threads WHERE id IN (SELECT value FROM json_each(?1))
		UNION ALL SELECT id FROM threads WHERE rollout_path IN (SELECT value FROM json_each(?2))`
	found, err := w.strings(ctx, q, string(idList), string(pathList))
	if err != nil {
		return batchRows{}, err
	}
	b := batchRows{ids: make(map[string]bool, len(found))}
	for _, id := range found {
		b.ids[id] = true
	}
	b.new = len(found) == 0 && len(distinctIDs) == len(rs) && len(distinctPaths) == len(rs)
	return b, nil
}

// replaceOne writes record r in w's transaction and reports whether it
// replaced a row of its id. allNew says that no row holds the id or the
// path of any record of the batch (batchRows.new).
func replaceOne(ctx context.Context, w *recordWriter, r Record, batch map[string]*Record, allNew bool) (indexed bool, err error) {
	id := r.Thread.ID
	var found []string
	if !allNew {
		// One lookup finds the rows the record replaces: its own, and a
		// stale row of another id at its path.
		const rowsOfRecord = `SELECT id FROM threads WHERE rollout_path = ? OR id = ?`
		if found, err = w.strings(ctx, rowsOfRecord, r.Thread.RolloutPath, id); err != nil {
			return indexed, fmt.Errorf("find rows of record: %w", err)
		}
	}
	for _, rowID := range found {
		if rowID == id {
			indexed = true
			continue
		}
		// Its queued messages must land before its row goes, or they would
		// name a thread that no longer exists.
		if w.queuedBy[rowID] {
			if err := w.flush(ctx); err != nil {
				return indexed, err
			}
		}
		if _, err := w.exec(ctx, `DELETE FROM threads WHERE id = ?`, rowID); err != nil {
			return indexed, fmt.Errorf("drop stale row %s of path: %w", rowID, err)
		}
	}
	if _, err := w.exec(ctx, upsertThread, threadArgs(&r.Thread)...); err != nil {
		return indexed, err
	}
	// A thread not indexed has no messages, ancestry or spawn edge: their
	// thread_id references its row, on delete cascade. A full rebuild
	// writes only such threads, and skips these three statements.
	var earlier map[int]textedRow
	if indexed {
		if err := w.keepReplacedTexts(ctx, id, r.Thread.ParentID); err != nil {
			return indexed, err
		}
		if earlier, err = w.earlierRows(ctx, r); err != nil {
			return indexed, err
		}
		for _, q := range []struct{ what, sql string }{
			{"user messages", `DELETE FROM user_messages WHERE thread_id = ?`},
			{"ancestry", `DELETE FROM thread_lineage WHERE thread_id = ?`},
			{"spawn edge", `DELETE FROM thread_spawns WHERE thread_id = ?`},
		} {
			if _, err := w.exec(ctx, q.sql, id); err != nil {
				return indexed, fmt.Errorf("drop %s: %w", q.what, err)
			}
		}
		// Those its earlier files' rollbacks dropped (a revert segment's
		// file starts at its BaseSize) are not in the record.
		const q = `DELETE FROM rolled_back_messages WHERE thread_id = ? AND dropped_at >= ?`
		if _, err := w.exec(ctx, q, id, r.Thread.BaseSize); err != nil {
			return indexed, fmt.Errorf("drop rolled back messages: %w", err)
		}
	}
	if indexed && r.Rewritten {
		if _, err := w.exec(ctx, `DELETE FROM idempotency_keys WHERE thread_id = ?`, id); err != nil {
			return indexed, fmt.Errorf("drop idempotency keys: %w", err)
		}
	}
	msgs, err := w.copiedTexts(ctx, r, batch)
	if err != nil {
		return indexed, err
	}
	msgs = withTextsOf(msgs, earlier)
	if err := w.queue(ctx, id, r.Thread.FirstOwnMessage(), msgs); err != nil {
		return indexed, err
	}
	if err := writeRolledBack(ctx, w.execOnly, id, r.RolledBack); err != nil {
		return indexed, err
	}
	// The copies of its messages in its indexed copy forks lose their
	// text once the whole batch is in (Replace calls blankCopies).
	if err := w.segments(ctx, id, r.Segments, indexed); err != nil {
		return indexed, err
	}
	if err := w.ancestry(ctx, r); err != nil {
		return indexed, err
	}
	return indexed, stateCreationKey(ctx, w.execOnly, id, r.StatedKey)
}

// copiedTexts returns r's messages as its rows hold them: a copy fork's
// copied messages keep their search text only while its parent, indexed
// or in the batch being written, does not hold them (the same text at the
// same ordinal below the fork's cut: the parent's rows find them; see
// blankCopies, Delete, a rollback's handOverDropped and unblankCopies),
// so that an index rebuilt from the files agrees with one kept up to date
// live.
func (w *recordWriter) copiedTexts(ctx context.Context, r Record, batch map[string]*Record) ([]UserMessage, error) {
	th := r.Thread
	if th.BaseID != "" || th.ParentID == "" || th.InheritedMessages == 0 {
		return r.Messages, nil
	}
	parent := batch[th.ParentID]
	if parent == nil {
		found, err := w.strings(ctx, `SELECT id FROM threads WHERE id = ?`, th.ParentID)
		if err != nil {
			return nil, fmt.Errorf("look up parent %s: %w", th.ParentID, err)
		}
		if len(found) == 0 {
			return r.Messages, nil
		}
	}
	var h held
	switch {
	case th.ForkOffset < 0:
		h.unknownBelow = th.InheritedMessages // a copy whose cut is not known: its parent holds them all
	case parent != nil:
		h = heldByRecord(*parent, th.ForkOffset, th.InheritedMessages)
	default:
		// The parent's chain resolves through rows: those of records of
		// this batch written before (a thread the batch replaces has none
		// until they land) must be in first.
		if err := w.flush(ctx); err != nil {
			return nil, err
		}
		var err error
		if h, err = w.heldByIndexed(ctx, th.ParentID, th.ForkOffset, th.InheritedMessages); err != nil {
			return nil, err
		}
	}
	msgs := slices.Clone(r.Messages)
	for i, m := range msgs {
		if m.Ordinal < th.InheritedMessages && h.holds(m.Ordinal, m.Text) {
			msgs[i].Text = ""
		}
	}
	return msgs, nil
}

// copyForksOfSQL selects the indexed copy forks (copyForkColumns) of the
// threads in the JSON array ?1, and of the threads that continue them
// (blankCopies).
var copyForksOfSQL = fmt.Sprintf(`WITH RECURSIVE holders(id, depth) AS (
		SELECT value, 0 FROM json_each(?1)
		UNION
		SELECT t.id, h.depth + 1 FROM holders h JOIN threads t ON t.base_id = h.id AND t.id <> h.id
		WHERE h.depth < %[1]d
		UNION
		SELECT s.thread_id, h.depth + 1 FROM holders h JOIN thread_segments s ON s.base_id = h.id AND s.seq = 0
		WHERE s.thread_id <> h.id AND h.depth < %[1]d
	)
	SELECT `+copyForkColumns+` FROM threads t
	WHERE t.parent_id IN (SELECT id FROM holders) AND `+isCopyFork+`
	AND EXISTS (SELECT 1 FROM user_messages m WHERE m.thread_id = t.id AND m.text <> ''
		AND (t.base_id = t.id OR m.ordinal < t.inherited_messages))`, maxChainDepth)

// blankCopies removes the search text from the copied messages of the
// indexed copy forks of the threads ids, now that they are indexed, where
// their parent holds them: search finds them in their parents. The copy
// forks of the threads that continue one of ids (reference forks, and
// reverted threads whose first file is one, transitively) are among them:
// their parent holds its messages through ids.
func (w *recordWriter) blankCopies(ctx context.Context, ids []string) error {
	if len(ids) == 0 {
		return nil
	}
	list, err := json.Marshal(ids)
	if err != nil {
		return err
	}
	var forks []copyFork
	if err := w.selectRows(ctx, &forks, copyForksOfSQL, string(list)); err != nil {
		return fmt.Errorf("find the copy forks of %d threads: %w", len(ids), err)
	}
	if err := countRevertedCopies(ctx, w.tx, forks); err != nil {
		return err
	}
	for _, f := range forks {
		h := held{unknownBelow: f.Copies} // a copy whose cut is not known: its parent holds them all
		if f.Cut >= 0 {
			if h, err = w.heldByIndexed(ctx, f.Parent, f.Cut, f.Copies); err != nil {
				return err
			}
		}
		var texted []struct {
			Ordinal int    `db:"ordinal"`
			Text    string `db:"text"`
		}
		const q = `SELECT ordinal, text FROM user_messages WHERE thread_id = ? AND text <> '' AND ordinal < ?`
		if err := w.selectRows(ctx, &texted, q, f.ID, f.Copies); err != nil {
			return fmt.Errorf("copied messages of %s: %w", f.ID, err)
		}
		var blank []int
		for _, c := range texted {
			if h.holds(c.Ordinal, c.Text) {
				blank = append(blank, c.Ordinal)
			}
		}
		if len(blank) == 0 {
			continue
		}
		ordinals, err := json.Marshal(blank)
		if err != nil {
			return err
		}
		const set = `UPDATE user_messages SET text = '' WHERE thread_id = ? AND ordinal IN (SELECT value FROM json_each(?))`
		if _, err := w.exec(ctx, set, f.ID, string(ordinals)); err != nil {
			return fmt.Errorf("blank copied messages of %s: %w", f.ID, err)
		}
	}
	return nil
}

// Get returns the thread id, or ErrNotFound.
func (s *Store) Get(ctx context.Context, id string) (Thread, error) {
	ctx, err := lookup(ctx)
	var one [1]Thread
	threads := one[:0]
	if err == nil {
		threads, err = s.queryThreads(ctx, threads, `SELECT `+threadColumns+` FROM threads WHERE id = ?`, id)
	}
	if err != nil {
		return Thread{}, fmt.Errorf("get thread %s: %w", id, err)
	}
	if len(threads) == 0 {
		return Thread{}, fmt.Errorf("thread %s: %w", id, ErrNotFound)
	}
	return threads[0], nil
}

// GetByPath returns the thread whose rollout path is path, or ErrNotFound.
func (s *Store) GetByPath(ctx context.Context, path string) (Thread, error) {
	var t Thread
	ctx, err := lookup(ctx)
	if err == nil {
		err = sqlx.GetContext(ctx, s.cached(), &t, `SELECT `+threadColumns+` FROM threads WHERE rollout_path = ?`, path)
	}
	if errors.Is(err, sql.ErrNoRows) {
		return Thread{}, fmt.Errorf("get thread at %s: %w", path, ErrNotFound)
	}
	if err != nil {
		return Thread{}, fmt.Errorf("get thread at %s: %w", path, err)
	}
	return t, nil
}

// Advance applies p in one transaction: drops user messages at ordinals
// >= p.KeepUserMessages, adds p.NewMessages, and updates counts, sizes,
// name, preview and updated time. ErrNotFound when the thread is unknown.
//
// NewMessages must carry ordinals KeepUserMessages, KeepUserMessages+1, ...;
// KeepUserMessages may not exceed the indexed count. A zero UpdatedAt leaves
// the updated time as it was.
func (s *Store) Advance(ctx context.Context, p Progress) error {
	if err := s.inTx(ctx, func(tx *sqlx.Tx) error { return s.applyAdvance(ctx, tx, p) }); err != nil {
		return fmt.Errorf("advance thread %s: %w", p.ID, err)
	}
	return nil
}

// applyAdvance is Advance of one progress inside tx: p's rows, then the
// search text of the copies of p's new messages in its copy forks.
func (s *Store) applyAdvance(ctx context.Context, tx *sqlx.Tx, p Progress) error {
	if err := s.advance.apply(ctx, tx, p); err != nil {
		return err
	}
	return s.blankAskedAgain(ctx, tx, p)
}

// blankAskedAgain removes the search text from copies in thread p.ID's
// copy forks that p.ID holds again: a copy is handed its text when the
// parent drops the message (a revert, a rollback), and the parent may then
// be asked the same text at the same ordinal below the fork's cut, which
// is holding it (copiedTexts: a rebuild leaves such a copy blank). Most
// threads have no copy forks; for them it costs one lookup.
func (s *Store) blankAskedAgain(ctx context.Context, tx *sqlx.Tx, p Progress) error {
	if len(p.NewMessages) == 0 {
		return nil
	}
	var forked bool
	if err := tx.StmtxContext(ctx, s.advance.copyForked).GetContext(ctx, &forked, p.ID); err != nil {
		return fmt.Errorf("look for copy forks: %w", err)
	}
	if !forked {
		return nil
	}
	w := &recordWriter{s: s, tx: tx, stmts: map[string]*sql.Stmt{}}
	return w.blankCopies(ctx, []string{p.ID})
}

// AdvanceAll applies every progress as Advance does, all in one
// transaction: concurrent appenders to different threads share one commit.
// If any fails, none is applied and the error names the thread.
func (s *Store) AdvanceAll(ctx context.Context, ps []Progress) error {
	return s.inTx(ctx, func(tx *sqlx.Tx) error {
		for _, p := range ps {
			if err := s.applyAdvance(ctx, tx, p); err != nil {
				return fmt.Errorf("advance thread %s: %w", p.ID, err)
			}
		}
		return nil
	})
}

// advanceStmts are the statements of the append path, prepared once on the
// writer connection: appends are the hottest writes, and parsing their SQL
// each time cost a fifth of an append.
type advanceStmts struct {
	count, drop, insert *sqlx.Stmt
	copyForked          *sqlx.Stmt // whether a thread has copy forks (blankAskedAgain)
	update              *sqlx.Stmt // the row's update
	updateKept          *sqlx.Stmt // the same, where the row holds as many user messages as the update keeps
}

// advanceSet is what an advance sets in the thread's row; its arguments
// are advanceArgs, numbered: ?5 is the file's mtime and ?6 the newest
// timestamp read (0 keeps the row's).
//
// newest_at and updated_at are computed here as the trigger
// threads_updated_at_update (migration 00005) computes them, so that an
// append that moves newest_at, nearly every one, writes the row once: the
// trigger fires only when newest_at stays. Then updated_at is written
// unbounded, as before, for the trigger to bound. Either way the row ends
// as the trigger alone made it (TestAdvanceAsTheTriggerDates).
const advanceSet = `UPDATE threads SET
	user_message_count = ?1, line_count = ?2, indexed_size = ?3, file_size = ?4, file_mtime = ?5, tail_sum = ?15,
	newest_at = ` + advanceNewest + `,
	updated_at = IIF(` + advanceNewest + ` <> newest_at,
		IIF(?5 > 0, MIN(` + advanceNewest + `, ?5 / 1000000 + 60000), ` + advanceNewest + `),
		` + advanceWritten + `),
	name = COALESCE(?7, name), preview = COALESCE(?8, preview),
	preview_offset = IIF(?8 IS NULL, preview_offset, ?14),
	next_ordinal = ?9, turn_offset = ?10, turn_id = ?11,
	inherited_messages = MIN(inherited_messages, ?12)
	WHERE id = ?13`

// advanceWritten is the updated time an advance writes, unbounded, and
// advanceNewest the newest_at the trigger derives from it (the row's
// columns in an UPDATE's expressions are their values before it; 60000
// above is indexer.MaxClockSkew in milliseconds, as in the trigger).
const (
	advanceWritten = `IIF(?6 > 0, ?6, updated_at)`
	advanceNewest  = `IIF(` + advanceWritten + ` < updated_at, ` + advanceWritten + `, MAX(newest_at, ` + advanceWritten + `))`
)

func advanceArgs(p Progress) []any {
	return []any{p.KeepUserMessages + len(p.NewMessages), p.LineCount, p.IndexedSize, p.FileSize, p.FileMtime,
		p.UpdatedAt, p.Name, p.Preview, p.NextOrdinal, p.TurnOffset, p.TurnID,
		p.KeepUserMessages, p.ID, p.PreviewOffset, p.TailSum}
}

func prepareAdvance(ctx context.Context, db *sqlx.DB) (*advanceStmts, error) {
	var a advanceStmts
	for _, p := range []struct {
		stmt  **sqlx.Stmt
		query string
	}{
		{&a.count, `SELECT user_message_count FROM threads WHERE id = ?`},
		{&a.drop, `DELETE FROM user_messages WHERE thread_id = ? AND ordinal >= ?`},
		{&a.insert, insertUserMessage},
		{&a.update, advanceSet},
		{&a.updateKept, advanceSet + ` AND user_message_count = ?16`},
		{&a.copyForked, `SELECT EXISTS (SELECT 1 FROM threads t WHERE t.parent_id = ? AND ` + isCopyFork + `)`},
	} {
		stmt, err := db.PreparexContext(ctx, p.query)
		if err != nil {
			a.close()
			return nil, fmt.Errorf("prepare %q: %w", p.query, err)
		}
		*p.stmt = stmt
	}
	return &a, nil
}

func (a *advanceStmts) close() error {
	var errs []error
	for _, stmt := range []*sqlx.Stmt{a.count, a.drop, a.insert, a.update, a.updateKept, a.copyForked} {
		if stmt != nil {
			errs = append(errs, stmt.Close())
		}
	}
	return errors.Join(errs...)
}

// apply is Advance of one progress inside tx. An append keeps every
// indexed user message: one statement updates the row when it holds as
// many as p keeps. Anything else (a rollback, an unknown thread, a count
// that is not what p expects) reads the count first.
func (a *advanceStmts) apply(ctx context.Context, tx *sqlx.Tx, p Progress) error {
	if err := checkOrdinals(p.ID, p.KeepUserMessages, p.NewMessages); err != nil {
		return err
	}
	res, err := tx.StmtxContext(ctx, a.updateKept).ExecContext(ctx, append(advanceArgs(p), p.KeepUserMessages)...)
	if err != nil {
		return err
	}
	if n, err := res.RowsAffected(); err != nil {
		return err
	} else if n == 0 {
		if err := a.rollBack(ctx, tx, p); err != nil {
			return err
		}
		if _, err := tx.StmtxContext(ctx, a.update).ExecContext(ctx, advanceArgs(p)...); err != nil {
			return err
		}
	}
	if len(p.NewMessages) > 0 {
		insert := tx.StmtxContext(ctx, a.insert)
		for _, m := range p.NewMessages {
			if _, err := insert.ExecContext(ctx, p.ID, m.Ordinal, m.Offset, m.Line, m.Preview, m.Text, m.CutOffset, m.TurnID); err != nil {
				return fmt.Errorf("insert user message %d of thread %s: %w", m.Ordinal, p.ID, err)
			}
		}
	}
	if err := writeRolledBack(ctx, txExec(tx), p.ID, p.RolledBack); err != nil {
		return err
	}
	if p.Idempotency != nil {
		k := *p.Idempotency
		k.ThreadID = p.ID
		return putIdempotencyKey(ctx, tx, k)
	}
	return nil
}

// rollBack drops thread p.ID's indexed user messages from p.KeepUserMessages
// on, after checking that it has that many, with ErrNotFound when it is
// unknown.
func (a *advanceStmts) rollBack(ctx context.Context, tx *sqlx.Tx, p Progress) error {
	var count int
	err := tx.StmtxContext(ctx, a.count).GetContext(ctx, &count, p.ID)
	if errors.Is(err, sql.ErrNoRows) {
		return ErrNotFound
	}
	if err != nil {
		return err
	}
	if p.KeepUserMessages < 0 || p.KeepUserMessages > count {
		return fmt.Errorf("keep %d user messages of %d indexed", p.KeepUserMessages, count)
	}
	if p.KeepUserMessages == count {
		return nil
	}
	msgs, texts, err := dropping(ctx, tx, p.ID, p.KeepUserMessages)
	if err != nil {
		return err
	}
	if err := detachForks(ctx, tx, p.ID, p.KeepUserMessages, msgs, texts); err != nil {
		return err
	}
	kept, err := rolledBackTexts(ctx, tx, p.ID, texts)
	if err != nil {
		return err
	}
	if err := keepDropped(ctx, tx, p, count, msgs, kept); err != nil {
		return err
	}
	// A copy's row holds no text while an ancestor holds it: the copies
	// of it in p's own copy forks are handed the text it stands for.
	resolved, err := messageTexts(ctx, tx, p.ID, p.KeepUserMessages, count)
	if err != nil {
		return err
	}
	if err := handOverDropped(ctx, tx, p.ID, msgs, resolved); err != nil {
		return err
	}
	if _, err := tx.StmtxContext(ctx, a.drop).ExecContext(ctx, p.ID, p.KeepUserMessages); err != nil {
		return fmt.Errorf("drop rolled back user messages: %w", err)
	}
	return nil
}

// detachForks gives the reference forks based on thread id that inherit
// its messages from ordinal keep on rows of their own, before a rollback
// in id drops them: a fork's history is the base's bytes before the cut,
// which the rollback, appended after, does not change. msgs are id's
// messages from keep on and texts the search texts id holds of them
// (dropping): a row gets the text only when id asked the message itself,
// so that a prompt an ancestor still holds is not found twice. This is
// the one case where a reference fork holds copied rows, and it costs
// what it copies.
func detachForks(ctx context.Context, tx *sqlx.Tx, id string, keep int, msgs []UserMessage, texts map[int]string) error {
	var forks []struct {
		ID        string `db:"id"`
		Inherited int    `db:"inherited_messages"`
	}
	const q = `SELECT id, inherited_messages FROM (` + continuersSQL + `) WHERE inherited_messages > ?2`
	if err := tx.SelectContext(ctx, &forks, q, id, keep); err != nil {
		return fmt.Errorf("find forks based on %s: %w", id, err)
	}
	for _, f := range forks {
		for _, m := range msgs {
			if m.Ordinal >= f.Inherited {
				break
			}
			if _, err := tx.ExecContext(ctx, insertUserMessage, f.ID, m.Ordinal, m.Offset, m.Line, m.Preview,
				texts[m.Ordinal], m.CutOffset, m.TurnID); err != nil {
				return fmt.Errorf("detach user message %d of fork %s: %w", m.Ordinal, f.ID, err)
			}
		}
		const lower = `UPDATE threads SET inherited_messages = ? WHERE id = ?`
		if _, err := tx.ExecContext(ctx, lower, keep, f.ID); err != nil {
			return fmt.Errorf("detach fork %s: %w", f.ID, err)
		}
	}
	return nil
}

// updateOne runs a single-row UPDATE of thread id and maps "no row" to
// ErrNotFound.
func (s *Store) updateOne(ctx context.Context, op, id, query string, args ...any) error {
	if s.writer == nil {
		return ErrReadOnly
	}
	res, err := s.writer.ExecContext(ctx, query, args...)
	s.wrote()
	if err != nil {
		return fmt.Errorf("%s thread %s: %w", op, id, classify(err))
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("%s thread %s: %w", op, id, err)
	}
	if n == 0 {
		return fmt.Errorf("%s thread %s: %w", op, id, ErrNotFound)
	}
	return nil
}

// SetName sets the thread's name and updated time.
func (s *Store) SetName(ctx context.Context, id, name string, updatedAt int64) error {
	return s.updateOne(ctx, "rename", id,
		`UPDATE threads SET name = ?, updated_at = ? WHERE id = ?`, name, updatedAt, id)
}

// SetArchived records that the thread's file moved to path and whether it is
// archived now (archivedAt is 0 when unarchiving).
func (s *Store) SetArchived(ctx context.Context, id string, archived bool, path string, archivedAt int64) error {
	if !archived {
		archivedAt = 0
	}
	err := s.updateOne(ctx, "archive", id,
		`UPDATE threads SET archived = ?, rollout_path = ?, archived_at = ? WHERE id = ?`,
		archived, path, archivedAt, id)
	if isConstraint(err) {
		return fmt.Errorf("archive thread %s to %s: %w", id, path, ErrExists)
	}
	return err
}

// SetMoved is SetArchived that also records the identity (size, mtime) of
// the file at path, in the same statement: the move is in the index whole
// or not at all, so a caller whose update failed can put the file back and
// report that nothing changed.
func (s *Store) SetMoved(ctx context.Context, id string, archived bool, path string, archivedAt, size, mtime int64) error {
	if !archived {
		archivedAt = 0
	}
	err := s.updateOne(ctx, "archive", id,
		`UPDATE threads SET archived = ?, rollout_path = ?, archived_at = ?, file_size = ?, file_mtime = ? WHERE id = ?`,
		archived, path, archivedAt, size, mtime, id)
	if isConstraint(err) {
		return fmt.Errorf("archive thread %s to %s: %w", id, path, ErrExists)
	}
	return err
}

// SetFileState records the file identity (size, mtime) of a thread whose
// indexed content did not change.
func (s *Store) SetFileState(ctx context.Context, id string, size, mtime int64) error {
	return s.updateOne(ctx, "set file state of", id,
		`UPDATE threads SET file_size = ?, file_mtime = ? WHERE id = ?`, size, mtime, id)
}

// orphanTables are the tables whose thread_id references threads(id) on
// delete cascade.
var orphanTables = []string{"user_messages", "rolled_back_messages", "thread_lineage", "thread_spawns",
	"thread_segments", "idempotency_keys", "creation_keys"}

// DeleteOrphans deletes the rows that name a thread without a row: what a
// delete of a thread's row leaves where foreign keys are not enforced (the
// sqlite3 shell's default), and what would keep the thread from being
// indexed again. It reads every row of those tables: a full rebuild and
// a repair call it, not each sync. It returns how many rows it deleted.
func (s *Store) DeleteOrphans(ctx context.Context) (int64, error) {
	var deleted int64
	err := s.inTx(ctx, func(tx *sqlx.Tx) error {
		deleted = 0
		for _, table := range orphanTables {
			res, err := tx.ExecContext(ctx, `DELETE FROM `+table+` WHERE thread_id NOT IN (SELECT id FROM threads)`)
			if err != nil {
				return fmt.Errorf("%s: %w", table, err)
			}
			n, err := res.RowsAffected()
			if err != nil {
				return fmt.Errorf("%s: %w", table, err)
			}
			deleted += n
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("delete orphaned rows: %w", err)
	}
	return deleted, nil
}

// Delete removes the thread, its messages, search text and its own
// ancestry rows. Its descendants keep their ancestry (and parent_id).
// ErrNotFound when unknown.
//
// The copy forks of the thread keep its prompts findable: their copied
// messages take over the search text first (a rebuild from the files
// gives the same, as a copy fork whose parent is not indexed keeps it).
func (s *Store) Delete(ctx context.Context, id string) error {
	err := s.inTx(ctx, func(tx *sqlx.Tx) error {
		if err := handOverTexts(ctx, tx, id); err != nil {
			return err
		}
		// Messages, their search text and the thread's ancestry go by
		// cascade and triggers.
		res, err := tx.ExecContext(ctx, `DELETE FROM threads WHERE id = ?`, id)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			return ErrNotFound
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("delete thread %s: %w", id, err)
	}
	return nil
}

// handOverTexts gives the copied messages of thread id's copy forks the
// search text they stand for, before id goes.
func handOverTexts(ctx context.Context, tx *sqlx.Tx, id string) error {
	forks, err := copyForksOf(ctx, tx, id, 0)
	if err != nil {
		return err
	}
	for _, f := range forks {
		texts, err := messageTexts(ctx, tx, id, 0, f.Copies)
		if err != nil {
			return err
		}
		idents, err := identitiesOf(ctx, tx, id, f.Copies)
		if err != nil {
			return err
		}
		for ordinal, text := range texts {
			if text == "" {
				continue
			}
			if _, err := handOver(ctx, tx, f.ID, ordinal, text, idents[ordinal]); err != nil {
				return err
			}
		}
	}
	return nil
}

// FileStates returns the file identity of every thread (for reconciliation
// and incremental reindex), ordered by rollout path.
func (s *Store) FileStates(ctx context.Context) ([]FileState, error) {
	var states []FileState
	const q = `SELECT id, rollout_path, indexed_size, line_count, file_size, file_mtime, tail_sum
		FROM threads ORDER BY rollout_path`
	if err := s.reader.SelectContext(ctx, &states, q); err != nil {
		return nil, fmt.Errorf("list file states: %w", err)
	}
	return states, nil
}

// IDs returns every indexed thread id, ordered.
func (s *Store) IDs(ctx context.Context) ([]string, error) {
	var ids []string
	if err := s.reader.SelectContext(ctx, &ids, `SELECT id FROM threads ORDER BY id`); err != nil {
		return nil, fmt.Errorf("list thread ids: %w", err)
	}
	return ids, nil
}

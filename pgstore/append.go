package pgstore

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/spoolhq/spool/indexer"
	"github.com/spoolhq/spool/rollout"
)

// NewThread is what Create needs: the id, and the thread's first lines (its
// session_meta line first), complete and newline-terminated.
type NewThread struct {
	ID    string
	Cwd   string
	Facts Facts
	Lines []byte
	// More, when set, yields the rest of the history after Lines
	// (complete, newline-terminated lines), read in pieces as they are
	// written (see appendFrom).
	More io.Reader
	// ParentID, when set, names the thread this one was forked from (an
	// imported copy). When it is here, the lineage rows follow its own;
	// when it is not (it stayed behind, as a deleted parent does), they
	// are Ancestors.
	ParentID string
	// Ancestors is the lineage a rollout states for a thread whose parent
	// is not here: ParentID, then its ancestors, nearest first.
	Ancestors []string
	// SpawnParentID names the thread that spawned this one as a sub-agent
	// ("" for none); it need not exist.
	SpawnParentID string
	// ForkPoint, for a copy fork, is where it was cut from ParentID.
	ForkPoint *ForkPoint
	// CopiedBefore, for an imported copy fork, is the position in its
	// history before which its user messages are copies of its parent's
	// (as the local index counts them: its meta line's end plus
	// ForkPoint.Offset). 0 for a fork made here, whose messages are all
	// copies when it is created.
	CopiedBefore int64
	// CopiedLines, when not 0, counts the copies of an imported copy fork
	// instead, as the local index does when its meta says it
	// (rollout.ForkPoint.CopiedLines): its user messages on the lines
	// after its first up to that many.
	CopiedLines int64
	// HistoryMode is HistoryPaginated for a thread whose lines carry
	// ordinals, counted from 0 (Lines and More hold them); "" is legacy.
	HistoryMode string
	// CreatedAt, when set, is when the thread was made, as its first
	// session_meta says; the thread is then dated by its lines as the
	// local index dates a file written now: updated at its newest line's
	// timestamp, bounded by now plus indexer.MaxClockSkew (an import keeps
	// its times, and a line stamped in the future cannot pin it to the
	// top of every list). Otherwise it is created and updated now.
	CreatedAt time.Time
	// Rename, when set, is a thread_name_updated line naming the new
	// thread, appended in the same transaction and announced as the local
	// backend announces a named creation (see namedCreation).
	Rename []byte
	// Key, when set, is recorded with the thread (CreationKey), or Create
	// fails with ErrKeyTaken and creates nothing.
	Key *CreationKey
}

// ForkPoint is where a fork was cut: before the parent's user message
// UserMessage (-1: the whole history), at Offset in its history.
type ForkPoint struct {
	UserMessage int
	Offset      int64
}

// Create commits a new thread. It returns ErrExists when the id is taken
// and ErrInvalidLines when Lines, or what More yields, are not complete
// JSON object lines. The thread is created in one transaction however
// long More is: nobody sees it before the commit, and a failure (More's
// included) leaves nothing; a concurrent Create of the same id waits for
// it, then fails with ErrExists or goes on.
func (s *Store) Create(ctx context.Context, nt NewThread) (Thread, error) {
	if _, err := scanLines(nt.Lines); err != nil {
		return Thread{}, fmt.Errorf("create %s: %w", nt.ID, err)
	}
	now := s.now().UnixMilli()
	if !nt.CreatedAt.IsZero() {
		now = nt.CreatedAt.UnixMilli()
	}
	var t Thread
	created, err := s.inTxRow(ctx, nt.ID, func(tx pgx.Tx) error {
		f := nt.Facts
		mode := cmp.Or(nt.HistoryMode, "legacy")
		_, err := tx.Exec(ctx, `INSERT INTO threads (id, created_at, updated_at, size, cwd, source, originator,
			cli_version, model_provider, git_commit, git_branch, git_origin, history_mode)
			VALUES ($1, $2, $2, 0, $3, $4, $5, $6, $7, $8, $9, $10, $11)`, nt.ID, now, nt.Cwd, f.Source, f.Originator,
			f.CLIVersion, f.ModelProvider, f.GitCommit, f.GitBranch, f.GitOrigin, mode)
		if isUniqueViolation(err) {
			return ErrExists
		}
		if err != nil {
			return err
		}
		if err := putCreationKey(ctx, tx, nt.Key, nt.ID, s.now().UnixMilli()); err != nil {
			return err
		}
		if nt.ParentID != "" {
			if err := linkParent(ctx, tx, nt); err != nil {
				return err
			}
		}
		if nt.SpawnParentID != "" {
			if _, err := tx.Exec(ctx, `UPDATE threads SET spawn_parent_id = $2 WHERE id = $1`, nt.ID, nt.SpawnParentID); err != nil {
				return err
			}
		}
		t = Thread{ID: nt.ID, Cwd: nt.Cwd, HistoryMode: mode}
		event := "created"
		if nt.ForkPoint != nil && nt.CopiedBefore == 0 && nt.CopiedLines == 0 {
			event = "forked" // a copy fork made here, announced as the local backend does
		}
		var dated *dating
		if !nt.CreatedAt.IsZero() {
			dated = &dating{bound: s.now().Add(indexer.MaxClockSkew).UnixMilli()}
		}
		if nt.Rename != nil {
			if err := appendFrom(ctx, tx, &t, nt.Lines, nt.More, now, dated, ""); err != nil {
				return err
			}
			if err := namedCreation(ctx, tx, &t, nt.Rename, now, event); err != nil {
				return err
			}
		} else if err := appendFrom(ctx, tx, &t, nt.Lines, nt.More, now, dated, event); err != nil {
			return err
		}
		if nt.ForkPoint == nil {
			return nil
		}
		switch {
		case nt.CopiedLines > 0:
			_, err = tx.Exec(ctx, `UPDATE threads SET copied_messages = (SELECT count(*) FROM user_messages
				WHERE thread_id = $1 AND line <= $2) WHERE id = $1`, nt.ID, nt.CopiedLines)
			return err
		case nt.CopiedBefore > 0:
			_, err = tx.Exec(ctx, `UPDATE threads SET copied_messages = (SELECT count(*) FROM user_messages
				WHERE thread_id = $1 AND history_offset < $2) WHERE id = $1`, nt.ID, nt.CopiedBefore)
			return err
		}
		// A copy fork's messages are all copied when it is created.
		_, err = tx.Exec(ctx, `UPDATE threads SET copied_messages = $2 WHERE id = $1`, nt.ID, t.UserMessageCount)
		return err
	})
	if err != nil {
		return Thread{}, fmt.Errorf("create %s: %w", nt.ID, err)
	}
	return created, nil
}

// namedCreation appends rename, a thread_name_updated line, to t, created
// in tx, and announces the creation as the local backend announces a
// thread created or forked with a name (docs/API.md, events): appended,
// renamed, then event ("created" or "forked"), the name in each.
func namedCreation(ctx context.Context, tx pgx.Tx, t *Thread, rename []byte, now int64, event string) error {
	marks, err := scanLines(rename)
	if err != nil {
		return err
	}
	if t.Paginated() { // numbered as an append numbers its lines
		if rename, marks, err = numberLines(rename, marks, t.NextOrdinal, false); err != nil {
			return err
		}
	}
	var b pgx.Batch
	res := queueAppend(&b, t, rename, marks, now)
	queueRowUpdate(&b, t)
	queueAppendNotice(&b, "appended", t.ID, res.Size, lineStarts(rename, res.Offset))
	queueNotice(&b, "renamed", t.ID, res.Size)
	queueNotice(&b, event, t.ID, t.HistorySize())
	return tx.SendBatch(ctx, &b).Close()
}

// AppendResult says where appended lines landed in the thread's history.
type AppendResult struct {
	Offset int64  // position of the first appended byte
	Size   int64  // history size after the append
	Thread Thread // the thread's row after the append
	// Starts are the positions of the appended lines, each line's start.
	Starts []int64
	// Replayed reports an append named by a known key: nothing was written,
	// Offset, Size and Starts are the first append's, Thread is the row as
	// it is now.
	Replayed bool
}

// Append commits lines (complete, newline-terminated JSON objects) at the
// end of thread id. With expectedSize ≥ 0 it appends only if the thread's
// history (Thread.HistorySize: a reference fork's base part and its own
// bytes) is that many bytes (a *SizeMismatchError, nothing written,
// otherwise). An archived thread is refused (ErrArchived). In a
// paginated thread each line gets the thread's next ordinal
// (rollout.WithOrdinal), and one that carries an ordinal is refused
// (ErrInvalidLines); AppendResult.Starts says where each line landed. The thread's
// row stays locked from the size check to the commit, so concurrent appends
// from any process get contiguous offsets; the commit is the
// acknowledgement. Concurrent Appends on one Store share transactions (see
// batcher).
func (s *Store) Append(ctx context.Context, id string, lines []byte, expectedSize int64) (AppendResult, error) {
	return s.submit(ctx, &appendReq{id: id, lines: lines, expected: expectedSize})
}

// numberLines returns lines with the ordinals first, first+1, ... (a line
// that carries one already is refused with ErrInvalidLines, unless
// renumber says its ordinal is to be replaced), and marks moved to where
// their lines now start.
func numberLines(lines []byte, marks []lineMark, first int64, renumber bool) ([]byte, []lineMark, error) {
	for _, m := range marks {
		if m.kind == markRollback {
			// Codex rejects a rollback in a paginated history and shows
			// every turn past a marker there (a line that carries an
			// ordinal already is no rollback: rollout.Classify).
			return nil, nil, &LineError{Line: m.line + 1, Err: ErrPaginatedRollback}
		}
	}
	// Room for each line's "ordinal":n, and its comma, without growing out.
	out := make([]byte, 0, len(lines)+bytes.Count(lines, []byte{'\n'})*32)
	var starts []int64
	n := first
	for line := range bytes.Lines(lines) {
		starts = append(starts, int64(len(out)))
		var err error
		if renumber {
			out, err = rollout.Renumber(out, line, n)
		} else {
			out, err = rollout.AppendWithOrdinal(out, line, n)
		}
		if err != nil {
			return nil, nil, &LineError{Line: n - first + 1, Err: err}
		}
		n++
	}
	moved := make([]lineMark, len(marks))
	for i, m := range marks {
		m.offset = starts[m.line]
		moved[i] = m
	}
	return out, moved, nil
}

// lineStarts returns the positions of the lines of lines, the first at
// offset.
func lineStarts(lines []byte, offset int64) []int64 {
	var starts []int64
	for line := range bytes.Lines(lines) {
		starts = append(starts, offset)
		offset += int64(len(line))
	}
	return starts
}

// Rename appends line, a thread_name_updated event naming thread id, which
// names it as every such line appended does, the thread archived or not,
// and announces "appended" then "renamed": as the local backend renames.
func (s *Store) Rename(ctx context.Context, id string, line []byte) (AppendResult, error) {
	marks, err := scanLines(line)
	if err != nil {
		return AppendResult{}, fmt.Errorf("rename %s: %w", id, err)
	}
	res, err := s.batch.append(ctx, &appendReq{id: id, lines: line, marks: marks, expected: -1, rename: true})
	if err != nil {
		return AppendResult{}, fmt.Errorf("rename %s: %w", id, err)
	}
	return res, nil
}

// AppendTurn is Append of the lines of a rendered Codex turn: in a
// paginated thread their ordinals are replaced by the thread's next ones.
// expectedSize and key are as for Append and AppendKeyed (-1 and nil for
// none). A turnID the thread's history holds already (none: "") fails
// with ErrTurnExists, told under the row's lock.
func (s *Store) AppendTurn(ctx context.Context, id string, lines []byte, expectedSize int64, key *Key, turnID string) (AppendResult, error) {
	return s.submit(ctx, &appendReq{id: id, lines: lines, expected: expectedSize, key: key, renumber: true, newTurn: turnID})
}

// submit reads the lines of r and queues it in the next batch.
func (s *Store) submit(ctx context.Context, r *appendReq) (AppendResult, error) {
	marks, err := scanLines(r.lines)
	if err != nil {
		return AppendResult{}, fmt.Errorf("append %s: %w", r.id, err)
	}
	r.marks = marks
	res, err := s.batch.append(ctx, r)
	if err != nil {
		return AppendResult{}, fmt.Errorf("append %s: %w", r.id, err)
	}
	return res, nil
}

// queueAppend queues in b the statements that write lines after t's own
// bytes at time now (Unix ms), and advances *t; queueRow then writes t's
// row. The result holds *t as of this append. Each user message records
// its Codex turn as the local index does (indexer.Tracker): the turn's id,
// and for the turn's first message the turn's start, where a fork before
// it is cut; t.TurnOffset and t.TurnID carry an open turn across appends.
func queueAppend(b *pgx.Batch, t *Thread, lines []byte, marks []lineMark, now int64) AppendResult {
	res := AppendResult{Offset: t.HistorySize()}
	b.Queue(`INSERT INTO chunks (thread_id, start_offset, data) VALUES ($1, $2, $3)`, t.ID, t.Size, lines)
	before := t.UserMessageCount
	msgs, keep := observe(t, marks)
	if keep < before {
		// A rollback drops the thread's messages from ordinal keep on:
		// its own rows, and the base's it inherited past keep.
		b.Queue(`DELETE FROM user_messages WHERE thread_id = $1 AND ordinal >= $2`, t.ID, keep)
		t.InheritedMessages = min(t.InheritedMessages, keep)
		// A copy fork's new messages past keep are its own, not copies.
		b.Queue(`UPDATE threads SET copied_messages = LEAST(copied_messages, $2) WHERE id = $1`, t.ID, keep)
	}
	for _, m := range msgs {
		b.Queue(`INSERT INTO user_messages (thread_id, ordinal, history_offset, text, line, cut_offset, turn_id)
			VALUES ($1, $2, $3, $4, $5, $6, $7)`, t.ID, m.Ordinal, m.Offset, m.Text, m.Line, m.CutOffset, m.TurnID)
	}
	added := int64(bytes.Count(lines, []byte{'\n'}))
	t.Size += int64(len(lines))
	t.LineCount += added
	if t.Paginated() {
		t.NextOrdinal += added
	}
	t.UpdatedAt = time.UnixMilli(max(t.UpdatedAt.UnixMilli(), now))
	res.Size = t.HistorySize()
	res.Thread = *t
	return res
}

// observe folds the marks of lines about to follow t's own bytes into t
// (its count, its preview when it has none yet, and open turn) and returns the user messages they
// add and how many of t's messages before them survive the rollbacks
// among them (keep; t.UserMessageCount when none). Rollbacks count as the
// local index counts them (indexer.Tracker): a rollback of n turns drops
// the last n user messages, the lines' own first. Each message records
// its Codex turn by the rule the local index follows too
// (rollout.OpenTurn): the turn's id and, for the turn's first message,
// the turn's start, where a fork before it is cut.
func observe(t *Thread, marks []lineMark) (msgs []UserMessage, keep int) {
	at := t.HistorySize()
	turn := rollout.OpenTurn{Offset: t.TurnOffset, ID: t.TurnID}
	before := t.UserMessageCount
	keep = before
	for _, m := range marks {
		switch m.kind {
		case markTurnStart:
			turn.Start(at+m.offset, m.turnID)
			continue
		case markTurnEnd:
			turn.End()
			continue
		case markRollback:
			popped := min(m.turns, len(msgs))
			msgs = msgs[:len(msgs)-popped]
			keep = max(keep-(m.turns-popped), 0)
			turn.End()
			continue
		case markPreview:
			// The first prompt echo that gives one, as the local index
			// takes it (indexer.Tracker): never replaced after.
			if t.Preview == "" {
				t.Preview, t.PreviewOffset = m.text, at+m.offset
			}
			continue
		case markName:
			// A rename event names the thread, as the local index reads
			// it; one naming another thread (a fork holds its parent's)
			// does not.
			if id, err := rollout.ParseID(m.turnID); m.turnID == "" || err == nil && id == t.ID {
				t.Name = m.text
			}
			continue
		}
		msg := UserMessage{Ordinal: keep + len(msgs), Offset: at + m.offset, Text: m.text, Line: t.LineCount + m.line}
		msg.CutOffset, msg.TurnID = turn.UserMessage()
		msgs = append(msgs, msg)
	}
	t.UserMessageCount = keep + len(msgs)
	t.TurnOffset, t.TurnID = turn.Offset, turn.ID
	return msgs, keep
}

// queueRow queues the update of t's row after appends, and the notice of
// a change of type typ ("" for none).
func queueRow(b *pgx.Batch, t *Thread, typ string) {
	queueRowUpdate(b, t)
	if typ != "" {
		queueNotice(b, typ, t.ID, t.HistorySize())
	}
}

// queueRowUpdate queues the update of t's row after appends.
func queueRowUpdate(b *pgx.Batch, t *Thread) {
	b.Queue(`UPDATE threads SET size = $2, user_message_count = $3, preview = $4,
		updated_at = $5, line_count = $6, turn_offset = $7, turn_id = $8, next_ordinal = $9, inherited_messages = $10,
		name = $11, preview_offset = $12 WHERE id = $1`,
		t.ID, t.Size, t.UserMessageCount, t.Preview, t.UpdatedAt.UnixMilli(), t.LineCount, t.TurnOffset, t.TurnID, t.NextOrdinal,
		t.InheritedMessages, t.Name, t.PreviewOffset)
}

// appendTx writes lines after t's own bytes inside tx, in one round trip,
// and updates t's row (locked by the caller, or new in tx) and *t.
func appendTx(ctx context.Context, tx pgx.Tx, t *Thread, lines []byte, marks []lineMark, now int64, typ string) (AppendResult, error) {
	var b pgx.Batch
	res := queueAppend(&b, t, lines, marks, now)
	queueRow(&b, t, typ)
	if err := tx.SendBatch(ctx, &b).Close(); err != nil {
		return AppendResult{}, err
	}
	return res, nil
}

// streamChunk is how many bytes of whole lines one chunk row holds when a
// history is written from a reader (appendFrom); a longer line gets a
// chunk of its own.
const streamChunk = 1 << 20

// appendFrom writes first, then what r yields (nil for nothing), after t's
// own bytes inside tx, and then updates t's row (locked by the caller, or
// new in tx) and *t, announcing a change of type typ. r is read in chunks
// of whole lines of about streamChunk bytes, one round trip each, so the
// memory it takes is a chunk and the longest line, whatever r's size.
// The thread is updated at now, or, with dated, when its lines say.
func appendFrom(ctx context.Context, tx pgx.Tx, t *Thread, first []byte, r io.Reader, now int64, dated *dating, typ string) error {
	marks, err := scanLines(first)
	if err != nil {
		return err
	}
	stamp := func(lines []byte) int64 {
		if dated != nil {
			return min(max(now, newestTimestamp(lines)), dated.bound)
		}
		return now
	}
	var b pgx.Batch
	queueAppend(&b, t, first, marks, stamp(first))
	if r != nil {
		chunks := lineChunks{r: bufio.NewReaderSize(r, 64<<10), size: streamChunk}
		for {
			chunk, err := chunks.next()
			if err == io.EOF {
				break
			}
			if err != nil {
				return err
			}
			marks, err := scanLines(chunk)
			if err != nil {
				return fmt.Errorf("at byte %d: %w", t.HistorySize(), err)
			}
			queueAppend(&b, t, chunk, marks, stamp(chunk))
			// Sent before the next chunk is read into the same buffer.
			if err := tx.SendBatch(ctx, &b).Close(); err != nil {
				return err
			}
			b = pgx.Batch{}
		}
	}
	queueRow(&b, t, typ)
	return tx.SendBatch(ctx, &b).Close()
}

// dating says that appendFrom dates the thread by its lines' timestamps,
// none later than bound (Unix milliseconds).
type dating struct{ bound int64 }

// newestTimestamp returns the newest envelope timestamp of lines, in Unix
// milliseconds (0 for none).
func newestTimestamp(lines []byte) int64 {
	var newest int64
	for line := range bytes.Lines(lines) {
		if ms, ok := indexer.LineTimestamp(bytes.TrimSuffix(line, []byte{'\n'})); ok {
			newest = max(newest, ms)
		}
	}
	return newest
}

// lineChunks cuts what r yields into chunks of whole lines.
type lineChunks struct {
	r    *bufio.Reader
	size int    // a chunk ends at the first newline at or past size bytes
	buf  []byte // the chunk, reused by the next
}

// next returns the next chunk (valid until the next call), or io.EOF. A
// last line without a newline ends a chunk as it is.
func (c *lineChunks) next() ([]byte, error) {
	c.buf = c.buf[:0]
	for len(c.buf) < c.size {
		n := len(c.buf)
		var err error
		c.buf, err = rollout.ReadLine(c.buf, c.r)
		if err == io.EOF || err == nil && len(c.buf) > n && c.buf[len(c.buf)-1] != '\n' {
			break
		}
		if err != nil {
			return nil, err
		}
	}
	if len(c.buf) == 0 {
		return nil, io.EOF
	}
	return c.buf, nil
}

// lineMark is a line of appended lines that the index follows: a counted
// user message (Codex's, rollout.Classify), a Codex turn's start or end
// line, a rollback marker, a rename, or a prompt echo that gives the
// thread's preview (rollout.Preview).
type lineMark struct {
	kind   markKind
	offset int64  // in the appended lines
	line   int64  // its line number among them
	text   string // markMessage: the message's text; markName: the name; markPreview: the preview, shortened
	turnID string // markTurnStart: the turn's id ("" from an older Codex); markName: the thread it names, "" for none
	turns  int    // markRollback: how many turns it rolls back
}

type markKind int

const (
	markMessage markKind = iota
	markTurnStart
	markTurnEnd
	markRollback
	markName
	markPreview
)

// scanLines checks that b is one or more complete JSON object lines and
// returns its marks in order: user messages as Codex counts them, and turn
// boundaries (task_started, or a turn_context naming its turn; task_complete
// or turn_aborted), which the local index follows in the same way.
func scanLines(b []byte) ([]lineMark, error) {
	if len(b) == 0 || b[len(b)-1] != '\n' {
		return nil, fmt.Errorf("%w: empty or without a final newline", ErrInvalidLines)
	}
	var marks []lineMark
	var off int64
	for n := int64(0); len(b) > 0; n++ {
		i := bytes.IndexByte(b, '\n')
		raw := b[:i]
		if len(raw) == 0 || raw[0] != '{' || !json.Valid(raw) {
			return nil, &LineError{Line: n + 1, Err: errNotObject}
		}
		l := rollout.NewLine(raw, off, n)
		if text, ok := rollout.Preview(l); ok {
			marks = append(marks, lineMark{kind: markPreview, offset: off, line: n, text: pgText(indexer.Preview(text))})
		}
		c := rollout.Classify(l)
		switch {
		case c.Kind == rollout.KindUserMessage:
			marks = append(marks, lineMark{kind: markMessage, offset: off, line: n, text: pgText(c.Text)})
		case c.Kind == rollout.KindRollback:
			marks = append(marks, lineMark{kind: markRollback, offset: off, line: n, turns: max(c.RollbackTurns, 0)})
		case c.Kind == rollout.KindNameUpdate:
			marks = append(marks, lineMark{kind: markName, offset: off, line: n, text: pgText(c.Name), turnID: c.ThreadID})
		case l.TooDeep():
			// Codex skips it: no turn starts or ends there.
		case l.Type == rollout.TypeEventMsg && (l.PayloadType == "task_complete" || l.PayloadType == "turn_aborted"):
			marks = append(marks, lineMark{kind: markTurnEnd, offset: off, line: n})
		case l.Type == rollout.TypeEventMsg && l.PayloadType == "task_started" || l.Type == rollout.TypeTurnContext:
			var tl struct {
				Payload struct {
					TurnID string `json:"turn_id"`
				} `json:"payload"`
			}
			if json.Unmarshal(raw, &tl) == nil && (l.Type != rollout.TypeTurnContext || tl.Payload.TurnID != "") {
				// An older turn_context without turn_id names no turn.
				marks = append(marks, lineMark{kind: markTurnStart, offset: off, line: n, turnID: pgText(tl.Payload.TurnID)})
			}
		}
		off += int64(i + 1)
		b = b[i+1:]
	}
	return marks, nil
}

func isUniqueViolation(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "23505"
}

// LineError reports the line of an append that cannot be written; Line
// counts from 1 among the lines given. It is an ErrInvalidLines, and wraps
// what is wrong with the line (ErrPaginatedRollback, say).
type LineError struct {
	Line int64
	Err  error
}

func (e *LineError) Error() string { return fmt.Sprintf("line %d: %v", e.Line, e.Err) }

func (e *LineError) Unwrap() []error { return []error{ErrInvalidLines, e.Err} }

// errNotObject is what is wrong with a line that is not a JSON object.
var errNotObject = errors.New("not a JSON object")

// SizeMismatchError is an append refused because the thread's own size is
// not the expected one; it wraps ErrSizeMismatch.
type SizeMismatchError struct {
	Size, Expected int64
}

func (e *SizeMismatchError) Error() string {
	return fmt.Sprintf("%s: has %d bytes, expected %d", ErrSizeMismatch, e.Size, e.Expected)
}

func (e *SizeMismatchError) Unwrap() error { return ErrSizeMismatch }

// linkParent records nt's fork parent, its fork point and its lineage:
// its parent's, or nt.Ancestors when the parent is not here.
func linkParent(ctx context.Context, tx pgx.Tx, nt NewThread) error {
	_, err := getThread(ctx, tx, nt.ParentID, "FOR SHARE")
	here := err == nil
	if !here && (!errors.Is(err, ErrNotFound) || len(nt.Ancestors) == 0 || nt.Ancestors[0] != nt.ParentID) {
		return fmt.Errorf("parent %s: %w", nt.ParentID, err)
	}
	if _, err := tx.Exec(ctx, `UPDATE threads SET parent_id = $2 WHERE id = $1`, nt.ID, nt.ParentID); err != nil {
		return err
	}
	if fp := nt.ForkPoint; fp != nil {
		if _, err := tx.Exec(ctx, `UPDATE threads SET fork_user_message = $2, fork_offset = $3 WHERE id = $1`,
			nt.ID, fp.UserMessage, fp.Offset); err != nil {
			return err
		}
	}
	if !here {
		_, err := tx.Exec(ctx, `INSERT INTO thread_lineage (thread_id, ancestor_id, depth)
			SELECT $1, a.id, a.depth FROM unnest($2::text[]) WITH ORDINALITY AS a(id, depth)`, nt.ID, nt.Ancestors)
		return err
	}
	_, err = tx.Exec(ctx, `INSERT INTO thread_lineage (thread_id, ancestor_id, depth)
		SELECT $1, $2, 1 UNION ALL
		SELECT $1, ancestor_id, depth + 1 FROM thread_lineage WHERE thread_id = $2`, nt.ID, nt.ParentID)
	return err
}

// pgText returns s with each NUL character, which PostgreSQL's text
// cannot hold, made a space (a separator to search, as to SQLite's FTS5):
// the index keeps a message's text, a name or a turn id that has one so
// (the rollout's bytes keep it as written), and such a line is indexed
// instead of failing its append.
func pgText(s string) string {
	if !strings.ContainsRune(s, 0) {
		return s
	}
	return strings.ReplaceAll(s, "\x00", " ")
}

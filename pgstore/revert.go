package pgstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/spoolhq/spool/indexer"
	"github.com/spoolhq/spool/rollout"
)

// Errors of Revert callers test with errors.Is.
var (
	// ErrNotPaginated: only a paginated thread can be reverted (Codex
	// writes revert segments only for those).
	ErrNotPaginated = errors.New("thread is not paginated")
	// ErrInheritedCut: the cut lies in the history the thread continues
	// from another thread (a reference fork's base).
	ErrInheritedCut = errors.New("cut lies in the history the thread inherits")
)

// ReferencedError is a change refused because other threads' history
// continues thread ID's past the point it would change (Forks, by id). It
// wraps ErrReferenced.
type ReferencedError struct {
	ID    string
	Forks []string
}

func (e *ReferencedError) Error() string {
	return fmt.Sprintf("%s: %s by %s", ErrReferenced, e.ID, strings.Join(e.Forks, ", "))
}

func (e *ReferencedError) Unwrap() error { return ErrReferenced }

// A link is a row holding earlier bytes of a reverted thread: its id is
// the thread's id, linkSep and a UUID (never a thread id the API accepts),
// its link_of column the thread's id. A link is never listed, counted or
// searched by; its thread's base chain reads through it as through any
// base.
const linkSep = "_"

// linkOwner returns the thread that row id belongs to: the thread a link
// holds earlier bytes of, or id itself.
func linkOwner(id string) string {
	owner, _, _ := strings.Cut(id, linkSep)
	return owner
}

// Revert is where Revert cuts a thread: before its user message
// BeforeUserMessage (at the message's Cut), or, when TurnID is set, before
// the Codex turn TurnID (at the Cut of its first user message), or, when
// At is set, at At (the start of a turn that holds no counted user
// message, which the caller found in the history in Era: a thread
// reverted or rewritten since fails with ErrChanged).
type Revert struct {
	ID                string
	BeforeUserMessage int
	TurnID            string
	At                *Cut
	Era               *Era
}

// Revert cuts thread r.ID back as Codex's thread/revert does: its history
// becomes its history before the cut, followed by a new session_meta line
// (the thread's own, paginated, whose history_base names the thread itself
// and the cut; rollout.SegmentMetaLine), and what is appended next is
// numbered on from the cut. Nothing is copied: the thread's own bytes
// holding the cut move with their rows to a link (see linkSep) that the
// thread's row now uses as its base; bytes past the cut that no longer
// belong to the history are deleted, and the objects of their segments
// after the commit (objects the bucket does not delete then are logged and
// left to CollectOrphans: the revert is done, and is not reported as
// failed). All of it is one transaction under the thread's row
// lock, so an append waits for it or lands before it. The thread's
// idempotency keys are kept, as the local backend keeps them: a retry
// with one answers the positions of its first append.
//
// It fails with ErrArchived, ErrNotPaginated, ErrOutOfRange for a user
// message the thread does not have, ErrTurnNotFound, ErrInheritedCut, or a
// *ReferencedError when reference forks continue the history past the cut.
func (s *Store) Revert(ctx context.Context, r Revert) (Thread, error) {
	var keys []string
	now := s.now()
	reverted, err := s.inTxRow(ctx, r.ID, func(tx pgx.Tx) error {
		var err error
		keys, err = s.revertTx(ctx, tx, r, now)
		return err
	})
	if err != nil {
		return Thread{}, fmt.Errorf("revert %s: %w", r.ID, err)
	}
	// The revert is committed: objects left behind are orphans for
	// CollectOrphans, not a failure (a caller told so would revert again).
	if err := s.dropObjects(ctx, keys); err != nil {
		s.logger.Warn("revert: segments left for the collector", slog.String("thread", r.ID), slog.Any("err", err))
	}
	return reverted, nil
}

// revertTx is Revert inside tx; it returns the object keys of the
// segments it deleted the rows of.
func (s *Store) revertTx(ctx context.Context, tx pgx.Tx, r Revert, now time.Time) ([]string, error) {
	t, err := getThread(ctx, tx, r.ID, "FOR UPDATE")
	switch {
	case err != nil:
		return nil, err
	case t.Archived:
		return nil, ErrArchived
	case !t.Paginated():
		return nil, ErrNotPaginated
	}
	if err := checkEra(t, r.Era); err != nil {
		return nil, err
	}
	msg, err := revertMessage(ctx, tx, r)
	if err != nil {
		return nil, err
	}
	cut := msg.Cut()
	if err := refuseForksPast(ctx, tx, t.ID, cut); err != nil {
		return nil, err
	}
	holder, err := revertHolder(ctx, tx, t, cut)
	if err != nil {
		return nil, err
	}
	ordinal, err := s.ordinalAt(ctx, tx, holder, cut)
	if err != nil {
		return nil, err
	}
	meta, err := s.segmentMeta(ctx, tx, t, now, rollout.HistoryBase{EndByteOffset: cut - holder.BaseSize, EndOrdinalExclusive: ordinal})
	if err != nil {
		return nil, err
	}
	keys, err := rebase(ctx, tx, t.ID, &holder, cut, msg.Ordinal)
	if err != nil {
		return nil, err
	}
	// The thread keeps its name: a revert cuts turns, not what it is called.
	head := Thread{ID: t.ID, BaseID: holder.ID, BaseSize: cut, InheritedMessages: msg.Ordinal, UserMessageCount: msg.Ordinal,
		UpdatedAt: t.UpdatedAt, HistoryMode: t.HistoryMode, NextOrdinal: ordinal, Name: t.Name}
	// Nor its preview: Codex shows it after a revert, even one before the
	// prompt that gave it (docs/CODEX.md, Previews).
	head.Preview, head.PreviewOffset = t.Preview, t.PreviewOffset
	if head.Preview != "" && head.PreviewOffset >= cut {
		head.PreviewOffset = indexer.PreviewCutAway
	}
	_, err = appendTx(ctx, tx, &head, meta, nil, now.UnixMilli(), "reverted")
	return keys, err
}

// rebase gives thread id, whose history position cut *holder holds, the
// history before the cut as its base, with kept user messages, and no own
// bytes: when the holder is the thread itself its own bytes become a new
// link first (*holder is then that link); the thread's own bytes that no
// longer belong to its history and the links it goes back past are
// deleted. It returns the object keys of the segments whose rows it
// deleted.
func rebase(ctx context.Context, tx pgx.Tx, id string, holder *Thread, cut int64, kept int) ([]string, error) {
	var keys []string
	var err error
	if holder.ID == id {
		link := id + linkSep + uuid.Must(uuid.NewV7()).String()
		if err := moveHead(ctx, tx, id, link); err != nil {
			return nil, err
		}
		holder.ID = link
	} else if keys, err = segmentKeys(ctx, tx, id); err != nil {
		return nil, err
	}
	dropped, err := dropLinksPast(ctx, tx, id, *holder)
	if err != nil {
		return nil, err
	}
	var b pgx.Batch
	b.Queue(`DELETE FROM chunks WHERE thread_id = $1`, id)
	b.Queue(`DELETE FROM segments WHERE thread_id = $1`, id)
	b.Queue(`DELETE FROM user_messages WHERE thread_id = $1`, id)
	b.Queue(`UPDATE threads SET base_id = $2, base_size = $3, inherited_messages = $4, sealed_size = 0,
		copied_messages = LEAST(copied_messages, $4) WHERE id = $1`, id, holder.ID, cut, kept)
	return append(keys, dropped...), tx.SendBatch(ctx, &b).Close()
}

// revertMessage returns the user message r cuts before: for r.At, one
// that stands for the cut (its Cut, and as many messages before it).
func revertMessage(ctx context.Context, q querier, r Revert) (UserMessage, error) {
	if r.At != nil {
		return UserMessage{Ordinal: r.At.Messages, Offset: r.At.Offset, CutOffset: r.At.Offset}, nil
	}
	if r.TurnID != "" {
		return userMessageOfTurn(ctx, q, r.ID, r.TurnID)
	}
	return userMessage(ctx, q, r.ID, r.BeforeUserMessage)
}

// refuseForksPast fails with a *ReferencedError when threads other than
// thread id continue its history (their base is id or one of its links)
// past position cut. A reverted reference fork continues it through its
// first link: the fork is named, not the link.
func refuseForksPast(ctx context.Context, q querier, id string, cut int64) error {
	return refuseReferrers(ctx, q, id, referrersSQL+` AND base_size > $2 ORDER BY referrer`, id, cut)
}

// refuseReferrers fails with a *ReferencedError naming the threads query
// (with args) selects, when it selects any, as standing in the way of a
// change of thread id.
func refuseReferrers(ctx context.Context, q querier, id, query string, args ...any) error {
	rows, err := q.Query(ctx, query, args...)
	if err != nil {
		return err
	}
	forks, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return err
	}
	if len(forks) > 0 {
		return &ReferencedError{ID: id, Forks: forks}
	}
	return nil
}

// revertHolder returns the row of thread t's own history that holds
// position cut: t itself when the cut is in its head, else one of its
// links (a cut at a row's start is held by that row). A cut in history t
// inherits from another thread fails with ErrInheritedCut.
func revertHolder(ctx context.Context, q querier, t Thread, cut int64) (Thread, error) {
	c := t
	for cut < c.BaseSize {
		if c.BaseID == "" || linkOwner(c.BaseID) != t.ID {
			return Thread{}, fmt.Errorf("%w: the cut at %d lies before %d, in %s", ErrInheritedCut, cut, c.BaseSize, linkOwner(c.BaseID))
		}
		base, err := getThread(ctx, q, c.BaseID, "")
		if err != nil {
			return Thread{}, fmt.Errorf("link %s: %w", c.BaseID, err)
		}
		c = base
	}
	return c, nil
}

// ordinalAt returns the ordinal of the line at position cut of holder's
// history, which holder's own bytes hold: its next ordinal at their end,
// else the ordinal the line there carries.
//
// q need not hold one snapshot (a fork's transaction reads committed
// rows): a seal that moves holder's bytes into a segment after its row
// was read is seen by reading its sealed size again. Its bytes below its
// row's size never change, so the rest of the row holds, unless holder
// left its era meanwhile (a revert moved its bytes into a link, a purge
// rewrote them): that fails with errHolderMoved, and the caller finds the
// holder of the cut again.
func (s *Store) ordinalAt(ctx context.Context, q querier, holder Thread, cut int64) (int64, error) {
	for {
		if beforeOrdinalRead != nil {
			beforeOrdinalRead(holder.ID)
		}
		ordinal, err := s.ordinalAtOnce(ctx, q, holder, cut)
		if err == nil {
			return ordinal, nil
		}
		now, gerr := getThread(ctx, q, holder.ID, "")
		switch {
		case errors.Is(gerr, ErrNotFound):
			return 0, fmt.Errorf("%w: %s is gone", errHolderMoved, holder.ID)
		case gerr != nil:
			return 0, errors.Join(err, gerr)
		case now.Era() != holder.Era():
			return 0, fmt.Errorf("%w: %w", errHolderMoved, checkEra(now, new(holder.Era())))
		case !errors.Is(err, errNoChunk) || now.SealedSize <= holder.SealedSize:
			return 0, err // no seal explains it
		}
		holder.SealedSize = now.SealedSize
	}
}

// errHolderMoved reports that the thread whose own bytes held a cut, read
// without a lock, was reverted, rewritten or deleted since: the cut's
// bytes are the same, but another row holds them.
var errHolderMoved = errors.New("the holder of the cut changed")

// beforeOrdinalRead, when set (by tests), is called before ordinalAt
// reads holder's bytes.
var beforeOrdinalRead func(holder string)

func (s *Store) ordinalAtOnce(ctx context.Context, q querier, holder Thread, cut int64) (int64, error) {
	if cut == holder.HistorySize() {
		return s.nextOrdinalAtEnd(ctx, q, holder)
	}
	line, err := s.ownLineAt(ctx, q, holder, cut)
	if err != nil {
		return 0, err
	}
	n, ok, err := rollout.LineOrdinal(bytes.TrimSuffix(line, []byte{'\n'}))
	if err != nil || !ok {
		return 0, fmt.Errorf("the line of %s at %d has no ordinal (%v)", holder.ID, cut, err)
	}
	return n, nil
}

// nextOrdinalAtEnd returns the ordinal Codex 0.169 numbers the next line
// of holder with, as the end of its history (rollout.NextOrdinalAtEnd of
// its own bytes), as the local backend names the end of a fork or revert
// there.
func (s *Store) nextOrdinalAtEnd(ctx context.Context, q querier, holder Thread) (int64, error) {
	return rollout.NextOrdinalAtEnd(holder.Size, holder.NextOrdinal, func(lo int64) ([]byte, error) {
		var tail bytes.Buffer
		if _, err := s.writeSpan(ctx, q, &tail, span{threadID: holder.ID, lo: lo, hi: holder.Size, sealed: holder.SealedSize}); err != nil {
			return nil, fmt.Errorf("the end of %s: %w", holder.ID, err)
		}
		return tail.Bytes(), nil
	})
}

// ownLineAt returns the line at position at of t's history, which t's own
// bytes hold. It reads only the segment pieces and chunk pages the line
// touches.
func (s *Store) ownLineAt(ctx context.Context, q querier, t Thread, at int64) ([]byte, error) {
	var w lineWriter
	_, err := s.writeSpan(ctx, q, &w, span{threadID: t.ID, lo: at - t.BaseSize, hi: t.Size, sealed: t.SealedSize})
	switch {
	case errors.Is(err, errLineEnd):
		return w.line, nil
	case err == nil:
		err = io.ErrUnexpectedEOF
	}
	return nil, fmt.Errorf("the line of %s at %d: %w", t.ID, at, err)
}

// errLineEnd stops a lineWriter's writer at the end of the line.
var errLineEnd = errors.New("end of line")

// lineWriter keeps what is written to it up to the first newline, then
// fails with errLineEnd.
type lineWriter struct{ line []byte }

func (w *lineWriter) Write(p []byte) (int, error) {
	if i := bytes.IndexByte(p, '\n'); i >= 0 {
		w.line = append(w.line, p[:i+1]...)
		return i + 1, errLineEnd
	}
	w.line = append(w.line, p...)
	return len(p), nil
}

// segmentMeta returns the first line of a revert's new head of thread t:
// the meta of t's head (its first own line, as Codex copies the meta of
// the thread's newest file, base instructions included) as
// rollout.SegmentMetaLine writes it, with timestamp now and base.
func (s *Store) segmentMeta(ctx context.Context, q querier, t Thread, now time.Time, base rollout.HistoryBase) ([]byte, error) {
	raw, err := s.ownLineAt(ctx, q, t, t.BaseSize)
	if err != nil {
		return nil, err
	}
	meta, err := rollout.ParseSessionMeta(raw)
	if err != nil {
		return nil, fmt.Errorf("the meta of %s: %w", t.ID, err)
	}
	payload := rollout.MetaPayload{SessionMeta: meta, BaseInstructions: rollout.BaseInstructions(raw)}
	return rollout.SegmentMetaLine(rollout.FormatTimestamp(now), payload, base)
}

// moveHead moves the own bytes and user messages of thread id to a new
// link row of it, which takes the thread's base and counts: the link then
// holds the history the thread's row held.
func moveHead(ctx context.Context, tx pgx.Tx, id, link string) error {
	var b pgx.Batch
	// The parent and copied messages go too: search does not match a
	// copy fork's copied prompts while its parent is here.
	b.Queue(`INSERT INTO threads (id, link_of, created_at, updated_at, parent_id, base_id, base_size, inherited_messages,
			user_message_count, copied_messages, size, sealed_size, line_count, preview, cwd, history_mode, next_ordinal,
			turn_offset, turn_id, preview_offset)
		SELECT $2, id, created_at, updated_at, parent_id, base_id, base_size, inherited_messages,
			user_message_count, copied_messages, size, sealed_size, line_count, preview, cwd, history_mode, next_ordinal,
			turn_offset, turn_id, preview_offset
		FROM threads WHERE id = $1`, id, link)
	for _, table := range []string{"chunks", "segments", "user_messages"} {
		b.Queue(`UPDATE `+table+` SET thread_id = $2 WHERE thread_id = $1`, id, link)
	}
	return tx.SendBatch(ctx, &b).Close()
}

// dropLinksPast deletes the links of thread id that its history no longer
// reads through, the new base holder and what it reads through kept, and
// returns the object keys of their segments. No other thread refers to
// them: such a fork continues the history past the cut (refuseForksPast).
func dropLinksPast(ctx context.Context, tx pgx.Tx, id string, holder Thread) ([]string, error) {
	keep := []string{holder.ID}
	for c := holder; c.BaseID != "" && linkOwner(c.BaseID) == id; {
		next := c.BaseID
		keep = append(keep, next)
		var err error
		if c, err = getThread(ctx, tx, next, ""); err != nil {
			return nil, fmt.Errorf("link %s: %w", next, err)
		}
	}
	rows, err := tx.Query(ctx, `SELECT object_key FROM segments WHERE thread_id IN
		(SELECT id FROM threads WHERE link_of = $1 AND id <> ALL($2))`, id, keep)
	if err != nil {
		return nil, err
	}
	keys, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, err
	}
	// The thread's row may still name one as its base: it is given its
	// new base before the links go.
	if _, err := tx.Exec(ctx, `UPDATE threads SET base_id = $2 WHERE id = $1`, id, holder.ID); err != nil {
		return nil, err
	}
	if _, err := tx.Exec(ctx, `DELETE FROM threads WHERE link_of = $1 AND id <> ALL($2)`, id, keep); err != nil {
		return nil, err
	}
	return keys, nil
}

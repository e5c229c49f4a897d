package pgstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/spoolhq/spool/rollout"
)

// UserMessage is one user message of a thread's history.
type UserMessage struct {
	Ordinal int   // 0-based over the history
	Offset  int64 // position of its line in the history
	Text    string
	Line    int64 // its line number in the history of the thread that owns it
	// CutOffset is where a fork before it is cut when it opens its Codex
	// turn: the turn's first start line (0: at Offset, see Cut). TurnID is
	// its turn's id ("" outside a turn).
	CutOffset int64
	TurnID    string
}

// messageColumns are the columns of user_messages a UserMessage holds,
// in its fields' order.
const messageColumns = `ordinal, history_offset, text, line, cut_offset, turn_id`

// Cut returns where a fork before m is cut: before its turn's start lines
// when m opens its turn, else before its own line.
func (m UserMessage) Cut() int64 {
	if m.CutOffset <= 0 {
		return m.Offset
	}
	return m.CutOffset
}

// UserMessage returns user message k of thread id, resolving inherited
// messages through the base chain (ErrOutOfRange when there is no k).
func (s *Store) UserMessage(ctx context.Context, id string, k int) (UserMessage, error) {
	m, err := userMessage(ctx, s.pool, id, k)
	if err != nil {
		return UserMessage{}, fmt.Errorf("user message %d of %s: %w", k, id, err)
	}
	return m, nil
}

// userMessage walks the base chain to the thread that owns message k. A
// base keeps its positions, so the offset needs no translation.
//
// q need not hold one snapshot (a fork's transaction reads committed
// rows): a base read without a lock may be reverted or rewritten before
// its message rows are read, which moves them (to a link, or anew). The
// walk then starts again from id.
func userMessage(ctx context.Context, q querier, id string, k int) (UserMessage, error) {
	for {
		m, err := userMessageOnce(ctx, q, id, k)
		if !errors.Is(err, errOwnerMoved) {
			return m, err
		}
	}
}

// errOwnerMoved reports that the thread a walk found owning a user
// message was reverted, rewritten or deleted before its row of the
// message was read.
var errOwnerMoved = errors.New("the owner of the message changed")

// beforeMessageRows, when set (by tests), is called before the user
// message rows of a thread whose row was read are read.
var beforeMessageRows func(owner string)

func userMessageOnce(ctx context.Context, q querier, id string, k int) (UserMessage, error) {
	for {
		t, err := getThread(ctx, q, id, "")
		if err != nil {
			return UserMessage{}, err
		}
		if k < 0 || k >= t.UserMessageCount {
			return UserMessage{}, ErrOutOfRange
		}
		if k < t.InheritedMessages {
			id = t.BaseID
			continue
		}
		if beforeMessageRows != nil {
			beforeMessageRows(id)
		}
		m := UserMessage{Ordinal: k}
		err = q.QueryRow(ctx, `SELECT history_offset, text, line, cut_offset, turn_id FROM user_messages
			WHERE thread_id = $1 AND ordinal = $2`, id, k).Scan(&m.Offset, &m.Text, &m.Line, &m.CutOffset, &m.TurnID)
		if errors.Is(err, pgx.ErrNoRows) {
			if now, gerr := getThread(ctx, q, id, ""); errors.Is(gerr, ErrNotFound) || gerr == nil && now.Era() != t.Era() {
				return UserMessage{}, fmt.Errorf("%w: %s", errOwnerMoved, id)
			}
		}
		if err != nil {
			return UserMessage{}, fmt.Errorf("owner %s: %w", id, err)
		}
		return m, nil
	}
}

// Fork is what Fork needs.
type Fork struct {
	ParentID string
	ChildID  string
	// BeforeUserMessage cuts the parent's history before that user message
	// (before its turn's start lines when it opens its turn, as Cut says);
	// negative keeps the whole history, or the cut At names.
	BeforeUserMessage int
	// At, when set (BeforeUserMessage negative), is a cut the caller found
	// in the parent's history, such as the end of a Codex turn.
	At *Cut
	// Lines are the child's own first lines, complete and
	// newline-terminated: a legacy child's session_meta.
	Lines []byte
	// Meta, when set, makes a paginated child (of a paginated parent), as
	// Codex 0.169 writes a reference fork: its first line is Meta with
	// history_mode paginated, history_base naming the base and the cut
	// (the history position in that thread's own bytes and the ordinal
	// of the line there) and that ordinal. Lines is then ignored.
	Meta  *rollout.MetaPayload
	Cwd   string
	Facts Facts
	// SpawnParentID, when set, is the thread that spawned the child, as
	// the child's meta source names it (rollout.SpawnParent).
	SpawnParentID string
	// Rename, when set, names the child in the same transaction (as
	// NewThread.Rename).
	Rename []byte
	// Era, when set, is the parent's era when the caller found At or
	// BeforeUserMessage: a parent reverted since fails with ErrChanged.
	Era *Era
	// CreatedAt, when set, is when the child was made, as its meta says;
	// zero is now.
	CreatedAt time.Time
	// Key, when set, is recorded with the child (CreationKey), or the fork
	// fails with ErrKeyTaken and creates nothing.
	Key *CreationKey
}

// Cut is a position in a thread's history between two lines: Offset, with
// Messages user messages before it.
type Cut struct {
	Offset   int64
	Messages int
}

// Fork commits a reference fork: the child's row points at a base and
// keeps its history up to the cut; no bytes and no user-message rows are
// copied, so the cost does not depend on the parent's size. The base is the
// thread in the parent's chain that holds the cut (a cut inside the
// parent's base skips the parent). The parent's row is share-locked, so no
// append moves its end while the whole-history cut is taken.
func (s *Store) Fork(ctx context.Context, f Fork) (Thread, error) {
	if f.Meta == nil {
		if _, err := scanLines(f.Lines); err != nil {
			return Thread{}, fmt.Errorf("fork %s: %w", f.ParentID, err)
		}
	}
	now := s.now().UnixMilli()
	if !f.CreatedAt.IsZero() {
		now = f.CreatedAt.UnixMilli()
	}
	forked, err := s.inTxRow(ctx, f.ChildID, func(tx pgx.Tx) error {
		parent, err := getThread(ctx, tx, f.ParentID, "FOR SHARE")
		if err != nil {
			return err
		}
		if err := checkEra(parent, f.Era); err != nil {
			return err
		}
		cut, inherited := parent.HistorySize(), parent.UserMessageCount
		forkMessage := max(f.BeforeUserMessage, -1) // the parent's message the child stops before
		switch {
		case f.BeforeUserMessage >= 0:
			m, err := userMessage(ctx, tx, parent.ID, f.BeforeUserMessage)
			if err != nil {
				return err
			}
			cut, inherited = m.Cut(), f.BeforeUserMessage
		case f.At != nil:
			// Bytes below the history's end never change: a cut found
			// before this transaction still holds if it is not past it.
			if f.At.Offset > cut || f.At.Messages > inherited || f.At.Offset < 0 {
				return fmt.Errorf("%w: cut at %d with %d user messages, the history has %d bytes and %d",
					ErrOutOfRange, f.At.Offset, f.At.Messages, cut, inherited)
			}
			if f.At.Messages < inherited {
				forkMessage = f.At.Messages
			}
			cut, inherited = f.At.Offset, f.At.Messages
		}
		// The base's rows are not locked (a lock on them would order row
		// locks child-first, against purge): one reverted or rewritten
		// after it was read holds the cut no longer, and the cut's holder
		// is found again. The parent's share lock keeps the cut's bytes.
		var base Thread
		var lines []byte
		var ordinal int64
		for {
			if base, err = holderOf(ctx, tx, parent, cut); err != nil {
				return err
			}
			lines = f.Lines
			if f.Meta == nil {
				break
			}
			lines, ordinal, err = s.paginatedForkMeta(ctx, tx, *f.Meta, base, cut, forkMessage)
			if !errors.Is(err, errHolderMoved) {
				break
			}
		}
		if err != nil {
			return err
		}
		archived, err := ownerArchived(ctx, tx, base)
		if err != nil {
			return err
		}
		if archived {
			return fmt.Errorf("%s holds the cut: %w", linkOwner(base.ID), ErrCutArchived)
		}
		child := Thread{ID: f.ChildID, BaseID: base.ID, BaseSize: cut, InheritedMessages: inherited,
			UserMessageCount: inherited, HistoryMode: "legacy"}
		if f.Meta != nil {
			child.HistoryMode, child.NextOrdinal = HistoryPaginated, ordinal
		}
		marks, err := scanLines(lines)
		if err != nil {
			return err
		}
		// The child's history before the cut is the parent's: so is the
		// preview when the line that gave it lies before the cut.
		preview, previewAt := "", int64(0)
		if parent.Preview != "" && parent.PreviewOffset < cut {
			preview, previewAt = parent.Preview, parent.PreviewOffset
		}
		fa := f.Facts
		_, err = tx.Exec(ctx, `INSERT INTO threads (id, created_at, updated_at, parent_id, base_id,
			base_size, inherited_messages, user_message_count, size, cwd, preview, fork_user_message,
			fork_offset, source, originator, cli_version, model_provider, git_commit, git_branch, git_origin,
			history_mode, preview_offset)
			VALUES ($1, $2, $2, $3, $4, $5, $6, $6, 0, $7, $8, $9, $5, $10, $11, $12, $13, $14, $15, $16, $17, $18)`,
			f.ChildID, now, parent.ID, base.ID, cut, inherited, f.Cwd, preview, forkMessage,
			fa.Source, fa.Originator, fa.CLIVersion, fa.ModelProvider, fa.GitCommit, fa.GitBranch, fa.GitOrigin,
			child.HistoryMode, previewAt)
		if isUniqueViolation(err) {
			return ErrExists
		}
		if err != nil {
			return err
		}
		if err := putCreationKey(ctx, tx, f.Key, f.ChildID, s.now().UnixMilli()); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `INSERT INTO thread_lineage (thread_id, ancestor_id, depth)
			SELECT $1, $2, 1 UNION ALL
			SELECT $1, ancestor_id, depth + 1 FROM thread_lineage WHERE thread_id = $2`,
			f.ChildID, parent.ID); err != nil {
			return err
		}
		if f.SpawnParentID != "" {
			if _, err := tx.Exec(ctx, `UPDATE threads SET spawn_parent_id = $2 WHERE id = $1`, f.ChildID, f.SpawnParentID); err != nil {
				return err
			}
		}
		child.Preview, child.PreviewOffset = preview, previewAt
		if f.Rename != nil {
			if _, err = appendTx(ctx, tx, &child, lines, marks, now, ""); err != nil {
				return err
			}
			return namedCreation(ctx, tx, &child, f.Rename, now, "forked")
		}
		_, err = appendTx(ctx, tx, &child, lines, marks, now, "forked")
		return err
	})
	if err != nil {
		return Thread{}, fmt.Errorf("fork %s: %w", f.ParentID, err)
	}
	return forked, nil
}

// paginatedForkMeta returns the first line of a paginated reference fork
// whose history is base's up to position cut (see Fork.Meta), cut before
// the parent's user message forkMessage (-1: none), and the ordinal that
// line carries: the cut's (SessionMeta.FirstOrdinal).
func (s *Store) paginatedForkMeta(ctx context.Context, q querier, meta rollout.MetaPayload, base Thread, cut int64, forkMessage int) (line []byte, ordinal int64, err error) {
	if ordinal, err = s.ordinalAt(ctx, q, base, cut); err != nil {
		return nil, 0, err
	}
	ancestors, err := lineageOf(ctx, q, meta.ForkedFromID)
	if err != nil {
		return nil, 0, err
	}
	// As the local backend records it, the ancestry included.
	meta.ForkPoint = &rollout.ForkPoint{UserMessage: forkMessage, ParentOffset: cut, Ancestors: ancestors}
	meta.HistoryMode = rollout.HistoryPaginated
	meta.HistoryBase = &rollout.HistoryBase{ThreadID: linkOwner(base.ID), EndOrdinalExclusive: ordinal, EndByteOffset: cut - base.BaseSize}
	meta.ForkedFromOrdinalExclusive = &ordinal
	if line, err = rollout.NewSessionMetaLine(meta.Timestamp, meta); err != nil {
		return nil, 0, err
	}
	line, err = rollout.WithOrdinal(line, ordinal)
	return line, ordinal, err
}

// holderOf returns the thread of t's chain whose own bytes hold position
// cut (t itself when the cut is past its base).
func holderOf(ctx context.Context, q querier, t Thread, cut int64) (Thread, error) {
	for t.BaseID != "" && cut <= t.BaseSize {
		base, err := getThread(ctx, q, t.BaseID, "")
		if err != nil {
			return Thread{}, fmt.Errorf("base %s: %w", t.BaseID, err)
		}
		t = base
	}
	return t, nil
}

// ownerArchived reports whether the thread whose bytes t holds is
// archived: t's own flag, or, for a link row that holds a reverted
// thread's earlier bytes (which archiving leaves as it was), its owner's.
func ownerArchived(ctx context.Context, q querier, t Thread) (bool, error) {
	owner := linkOwner(t.ID)
	if owner == t.ID {
		return t.Archived, nil
	}
	row, err := getThread(ctx, q, owner, "")
	if err != nil {
		return false, fmt.Errorf("owner %s of %s: %w", owner, t.ID, err)
	}
	return row.Archived, nil
}

// Delete removes thread id with its bytes and rows. A thread that another
// uses as its base is refused with ErrReferenced. The objects of its
// segments are left to CollectOrphans.
func (s *Store) Delete(ctx context.Context, id string) error {
	if _, err := s.deleteThread(ctx, id); err != nil {
		return fmt.Errorf("delete %s: %w", id, err)
	}
	return nil
}

// deleteThread removes thread id's row and its links and, with them, their
// chunks, segment rows and user messages, and returns the keys their
// segment rows named.
func (s *Store) deleteThread(ctx context.Context, id string) ([]string, error) {
	var keys []string
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		if _, err := getThread(ctx, tx, id, "FOR UPDATE"); err != nil {
			return err
		}
		if err := refuseReferrers(ctx, tx, id, referrersSQL+` ORDER BY referrer`, id); err != nil {
			return err
		}
		var err error
		if keys, err = familyKeys(ctx, tx, id); err != nil {
			return err
		}
		var b pgx.Batch
		// The thread first, then its links, which it may name as its base.
		b.Queue(`DELETE FROM threads WHERE id = $1`, id)
		b.Queue(`DELETE FROM threads WHERE link_of = $1`, id)
		queueNotice(&b, "deleted", id, 0)
		return tx.SendBatch(ctx, &b).Close()
	})
	return keys, err
}

// UserMessageOfTurn returns the first user message of thread id's history
// (inherited ones included) that Codex turn turnID holds: the turn's
// start is its Cut. An unknown turn, or one past a fork's cut, fails with
// ErrTurnNotFound. The chain is read in one snapshot.
func (s *Store) UserMessageOfTurn(ctx context.Context, id, turnID string) (UserMessage, error) {
	var m UserMessage
	err := s.inReadTx(ctx, func(tx pgx.Tx) error {
		var err error
		m, err = userMessageOfTurn(ctx, tx, id, turnID)
		return err
	})
	if err != nil {
		return UserMessage{}, fmt.Errorf("turn %q of %s: %w", turnID, id, err)
	}
	return m, nil
}

// userMessageOfTurn walks the base chain from id, each thread's own rows
// below the count its child sees, and keeps the lowest ordinal found.
func userMessageOfTurn(ctx context.Context, q querier, id, turnID string) (UserMessage, error) {
	t, err := getThread(ctx, q, id, "")
	if err != nil {
		return UserMessage{}, err
	}
	return userMessageOfTurnFrom(ctx, q, t, turnID)
}

// userMessageOfTurnFrom is userMessageOfTurn from thread t, as read.
func userMessageOfTurnFrom(ctx context.Context, q querier, t Thread, turnID string) (UserMessage, error) {
	var found *UserMessage
	for visible := t.UserMessageCount; ; {
		if beforeMessageRows != nil {
			beforeMessageRows(t.ID)
		}
		var m UserMessage
		err := q.QueryRow(ctx, `SELECT `+messageColumns+` FROM user_messages
			WHERE thread_id = $1 AND md5(turn_id) = md5($2::text) AND turn_id = $2 AND ordinal < $3
			ORDER BY ordinal LIMIT 1`, // md5: the index's (migration 00013)
			t.ID, pgText(turnID), visible).Scan(&m.Ordinal, &m.Offset, &m.Text, &m.Line, &m.CutOffset, &m.TurnID)
		switch {
		case err == nil:
			found = &m
		case !errors.Is(err, pgx.ErrNoRows):
			return UserMessage{}, err
		}
		if t.BaseID == "" || t.InheritedMessages == 0 {
			break
		}
		// The base's rows the first thread sees: those below what each
		// link on the way inherits.
		visible = min(visible, t.InheritedMessages)
		base := t.BaseID
		if t, err = getThread(ctx, q, base, ""); err != nil {
			return UserMessage{}, fmt.Errorf("base %s: %w", base, err)
		}
	}
	if found == nil {
		return UserMessage{}, ErrTurnNotFound
	}
	return *found, nil
}

// lineageOf returns the ancestry of a new fork of thread parent: parent,
// then its ancestors, nearest first.
func lineageOf(ctx context.Context, q querier, parent string) ([]string, error) {
	rows, err := q.Query(ctx, `SELECT ancestor_id FROM thread_lineage WHERE thread_id = $1 ORDER BY depth`, parent)
	if err != nil {
		return nil, fmt.Errorf("ancestors of %s: %w", parent, err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("ancestors of %s: %w", parent, err)
	}
	return append([]string{parent}, ids...), nil
}

package store

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
)

// ChainLink is what a reader of a history chain needs of one thread of
// it: where its file is, which part of its history the file holds and
// which of its user messages its own rows hold.
type ChainLink struct {
	ID                string `db:"id"`
	RolloutPath       string `db:"rollout_path"`
	Archived          bool   `db:"archived"`
	BaseID            string `db:"base_id"`
	BaseSize          int64  `db:"base_size"`
	IndexedSize       int64  `db:"indexed_size"`
	InheritedMessages int    `db:"inherited_messages"`
}

// Link returns t's link of a history chain.
func (t Thread) Link() ChainLink {
	return ChainLink{ID: t.ID, RolloutPath: t.RolloutPath, Archived: t.Archived, BaseID: t.BaseID,
		BaseSize: t.BaseSize, IndexedSize: t.IndexedSize, InheritedMessages: t.InheritedMessages}
}

// firstOwnMessage is Thread.FirstOwnMessage of the link's thread.
func (l ChainLink) firstOwnMessage() int {
	if l.BaseID != "" {
		return l.InheritedMessages
	}
	return 0
}

// baseChainSQL selects the links of thread ?1 and its bases, nearest
// first. A thread in several files (its base itself) ends the walk.
var baseChainSQL = fmt.Sprintf(`WITH RECURSIVE chain(id, rollout_path, archived, base_id, base_size, indexed_size, inherited_messages, depth) AS (
	SELECT id, rollout_path, archived, base_id, base_size, indexed_size, inherited_messages, 0 FROM threads WHERE id = ?1
	UNION ALL
	SELECT t.id, t.rollout_path, t.archived, t.base_id, t.base_size, t.indexed_size, t.inherited_messages, c.depth + 1
	FROM chain c JOIN threads t ON t.id = c.base_id
	WHERE c.depth < %d AND c.base_id <> c.id
)
SELECT id, rollout_path, archived, IFNULL(base_id, ''), base_size, indexed_size, inherited_messages, depth
FROM chain`, maxChainDepth)

// BaseChain returns the links of thread id and of the threads its history
// continues, in one query: id's, its base's, its base's base's, and so
// on, nearest first. The chain stops at a base that is not indexed (the
// last link then has a BaseID), at a thread in several files (revert
// segments: its BaseID is its own ID) and after 1000 bases. An unknown id
// gives no links.
func (s *Store) BaseChain(ctx context.Context, id string) ([]ChainLink, error) {
	chain, err := s.baseChain(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("history chain of %s: %w", id, err)
	}
	return chain, nil
}

func (s *Store) baseChain(ctx context.Context, id string) ([]ChainLink, error) {
	st, err := s.readStmt(ctx, baseChainSQL)
	if err != nil {
		return nil, err
	}
	rows, err := st.QueryContext(ctx, id)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	type deepLink struct {
		ChainLink
		depth int
	}
	var links []deepLink
	for rows.Next() {
		var l deepLink
		if err := rows.Scan(&l.ID, &l.RolloutPath, &l.Archived, &l.BaseID, &l.BaseSize, &l.IndexedSize, &l.InheritedMessages, &l.depth); err != nil {
			return nil, err
		}
		links = append(links, l)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	// Sorted here rather than by the query, which would sort through a
	// temporary b-tree what comes out in order already.
	slices.SortFunc(links, func(a, b deepLink) int { return cmp.Compare(a.depth, b.depth) })
	chain := make([]ChainLink, len(links))
	for i, l := range links {
		chain[i] = l.ChainLink
	}
	return chain, nil
}

// ownMessageRowSQL selects message ?2 from the rows of thread ?1 alone.
const ownMessageRowSQL = `SELECT ordinal, byte_offset, line_number, preview, cut_offset, turn_id
FROM user_messages WHERE thread_id = ?1 AND ordinal = ?2`

// ChainUserMessage is UserMessage for the thread whose history chain the
// caller read (chain[0] the thread's link, then its bases', nearest
// first, as Thread.Link and BaseChain give them): the message is looked
// up in the one link whose own rows hold it, without walking the chain
// again. A chain that ends before that link fails with ErrNotFound, as
// UserMessage does for a chain broken there.
func (s *Store) ChainUserMessage(ctx context.Context, chain []ChainLink, ordinal int) (UserMessage, error) {
	if len(chain) == 0 {
		return UserMessage{}, fmt.Errorf("user message %d: empty history chain", ordinal)
	}
	id := chain[0].ID
	m, err := s.chainMessage(ctx, chain, ordinal)
	if errors.Is(err, sql.ErrNoRows) {
		return UserMessage{}, fmt.Errorf("user message %d of thread %s: %w", ordinal, id, ErrNotFound)
	}
	if err != nil {
		return UserMessage{}, fmt.Errorf("user message %d of thread %s: %w", ordinal, id, err)
	}
	return m, nil
}

// chainMessage returns message ordinal of chain[0]'s thread, or
// sql.ErrNoRows. It follows chainMessages' walk: a thread holds the
// messages from its first own one on, and the walk goes on to its base
// for those below.
func (s *Store) chainMessage(ctx context.Context, chain []ChainLink, ordinal int) (UserMessage, error) {
	for i, l := range chain {
		if ordinal < 0 {
			break
		}
		if ordinal < l.firstOwnMessage() {
			if i+1 < len(chain) && chain[i+1].ID != l.BaseID {
				return UserMessage{}, fmt.Errorf("link %d (%s) does not follow the base %s of link %d", i+1, chain[i+1].ID, l.BaseID, i)
			}
			continue
		}
		st, err := s.readStmt(ctx, ownMessageRowSQL)
		if err != nil {
			return UserMessage{}, err
		}
		m := UserMessage{ThreadID: chain[0].ID}
		err = st.QueryRowContext(ctx, l.ID, ordinal).Scan(&m.Ordinal, &m.Offset, &m.Line, &m.Preview, &m.CutOffset, &m.TurnID)
		return m, err
	}
	return UserMessage{}, sql.ErrNoRows
}

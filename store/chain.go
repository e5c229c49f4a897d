package store

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"sync"
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
// first, each with the chain epoch. A thread in several files (its base
// itself) ends the walk.
var baseChainSQL = fmt.Sprintf(`WITH RECURSIVE chain(id, rollout_path, archived, base_id, base_size, indexed_size, inherited_messages, depth) AS (
	SELECT id, rollout_path, archived, base_id, base_size, indexed_size, inherited_messages, 0 FROM threads WHERE id = ?1
	UNION ALL
	SELECT t.id, t.rollout_path, t.archived, t.base_id, t.base_size, t.indexed_size, t.inherited_messages, c.depth + 1
	FROM chain c JOIN threads t ON t.id = c.base_id
	WHERE c.depth < %d AND c.base_id <> c.id
)
SELECT c.id, c.rollout_path, c.archived, IFNULL(c.base_id, ''), c.base_size, c.indexed_size, c.inherited_messages, c.depth, e.n
FROM chain c CROSS JOIN chain_epoch e`, maxChainDepth)

// chainEpochSQL reads the count of changes to chain links (migration
// 00010).
const chainEpochSQL = `SELECT n FROM chain_epoch`

// BaseChain returns the links of thread id and of the threads its history
// continues: id's, its base's, its base's base's, and so on, nearest
// first. The chain stops at a base that is not indexed (the last link then
// has a BaseID), at a reverted thread (whose base is itself: its earlier
// files are store.Segments) and after 1000 bases. An unknown id gives no
// links.
//
// The links of a chain read once are kept, and returned again without the
// walk, until a thread is indexed or deleted or a link's file, base,
// inherited messages or indexed size changes (the chain_epoch count of
// migration 00010), except by growth: a link's IndexedSize may lag behind
// its row's (appends since), never run ahead of it.
func (s *Store) BaseChain(ctx context.Context, id string) ([]ChainLink, error) {
	ctx, err := lookup(ctx)
	var chain []ChainLink
	if err == nil {
		chain, err = s.baseChain(ctx, id)
	}
	if err != nil {
		return nil, fmt.Errorf("history chain of %s: %w", id, err)
	}
	return chain, nil
}

func (s *Store) baseChain(ctx context.Context, id string) ([]ChainLink, error) {
	epoch, err := s.chainEpoch(ctx)
	if err != nil {
		return nil, err
	}
	if chain, ok := s.chains.get(id, epoch); ok {
		return chain, nil
	}
	chain, epoch, err := s.walkChain(ctx, id)
	if err != nil {
		return nil, err
	}
	s.chains.put(id, epoch, chain)
	return slices.Clone(chain), nil
}

func (s *Store) chainEpoch(ctx context.Context) (int64, error) {
	st, err := s.readStmt(ctx, chainEpochSQL)
	if err != nil {
		return 0, err
	}
	var epoch int64
	if err := st.QueryRowContext(ctx).Scan(&epoch); err != nil {
		return 0, fmt.Errorf("read chain epoch: %w", err)
	}
	return epoch, nil
}

// walkChain runs baseChainSQL: the links of id's chain and the epoch they
// are of.
func (s *Store) walkChain(ctx context.Context, id string) ([]ChainLink, int64, error) {
	st, err := s.readStmt(ctx, baseChainSQL)
	if err != nil {
		return nil, 0, err
	}
	rows, err := st.QueryContext(ctx, id)
	if err != nil {
		return nil, 0, err
	}
	defer rows.Close()
	type deepLink struct {
		ChainLink
		depth int
	}
	var links []deepLink
	var epoch int64 = -1 // no links: never found in the cache
	for rows.Next() {
		var l deepLink
		if err := rows.Scan(&l.ID, &l.RolloutPath, &l.Archived, &l.BaseID, &l.BaseSize, &l.IndexedSize, &l.InheritedMessages, &l.depth, &epoch); err != nil {
			return nil, 0, err
		}
		links = append(links, l)
	}
	if err := rows.Err(); err != nil {
		return nil, 0, err
	}
	// Sorted here rather than by the query, which would sort through a
	// temporary b-tree what comes out in order already.
	slices.SortFunc(links, func(a, b deepLink) int { return cmp.Compare(a.depth, b.depth) })
	chain := make([]ChainLink, len(links))
	for i, l := range links {
		chain[i] = l.ChainLink
	}
	return chain, epoch, nil
}

// chainCache holds the chains BaseChain read, by thread id, with the
// chain epoch each is of.
type chainCache struct {
	mu   sync.Mutex // guards byID
	byID map[string]cachedChain
}

type cachedChain struct {
	epoch int64
	links []ChainLink
}

// maxCachedChains bounds chainCache: past it, the cache starts over.
const maxCachedChains = 4096

// get returns a copy of the chain of id if it is of epoch.
func (c *chainCache) get(id string, epoch int64) ([]ChainLink, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.byID[id]
	if !ok || e.epoch != epoch {
		return nil, false
	}
	return slices.Clone(e.links), true
}

// put keeps the chain of id, of epoch (-1 for none: not kept).
func (c *chainCache) put(id string, epoch int64, links []ChainLink) {
	if epoch < 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.byID == nil || len(c.byID) >= maxCachedChains {
		c.byID = make(map[string]cachedChain)
	}
	c.byID[id] = cachedChain{epoch: epoch, links: links}
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
	ctx, err := lookup(ctx)
	var m UserMessage
	if err == nil {
		m, err = s.chainMessage(ctx, chain, ordinal)
	}
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

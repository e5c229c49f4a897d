package store

import (
	"context"
	"fmt"
)

// ChainLink is what a reader of a history chain needs of one thread of
// it: where its file is and which part of its history the file holds.
type ChainLink struct {
	ID          string `db:"id"`
	RolloutPath string `db:"rollout_path"`
	Archived    bool   `db:"archived"`
	BaseID      string `db:"base_id"`
	BaseSize    int64  `db:"base_size"`
	IndexedSize int64  `db:"indexed_size"`
}

// baseChainSQL selects the links of thread ?1 and its bases, nearest first.
var baseChainSQL = fmt.Sprintf(`WITH RECURSIVE chain(id, rollout_path, archived, base_id, base_size, indexed_size, depth) AS (
	SELECT id, rollout_path, archived, base_id, base_size, indexed_size, 0 FROM threads WHERE id = ?1
	UNION ALL
	SELECT t.id, t.rollout_path, t.archived, t.base_id, t.base_size, t.indexed_size, c.depth + 1
	FROM chain c JOIN threads t ON t.id = c.base_id
	WHERE c.depth < %d AND c.base_id <> c.id
)
SELECT id, rollout_path, archived, IFNULL(base_id, '') AS base_id, base_size, indexed_size
FROM chain ORDER BY depth`, maxChainDepth)

// BaseChain returns the links of thread id and of the threads its history
// continues, in one query: id's, its base's, its base's base's, and so
// on, nearest first. The chain stops at a base that is not indexed (the
// last link then has a BaseID), at a reverted thread (whose base is
// itself: its earlier files are store.Segments) and after 1000 bases. An
// unknown id gives no links.
func (s *Store) BaseChain(ctx context.Context, id string) ([]ChainLink, error) {
	st, err := s.readStmt(ctx, baseChainSQL)
	if err != nil {
		return nil, fmt.Errorf("history chain of %s: %w", id, err)
	}
	var chain []ChainLink
	if err := st.SelectContext(ctx, &chain, id); err != nil {
		return nil, fmt.Errorf("history chain of %s: %w", id, err)
	}
	return chain, nil
}

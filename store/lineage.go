package store

import (
	"context"
	"fmt"

	"github.com/jmoiron/sqlx"
)

// relativeRow is a lineage row joined with the related thread, if indexed.
type relativeRow struct {
	ID      string `db:"rel_id"`
	Depth   int    `db:"depth"`
	Present bool   `db:"present"`
	Thread
}

// relativeColumns selects a thread's columns as nulls-to-zero, so a related
// id with no threads row still scans.
const relativeColumns = `t.id IS NOT NULL AS present,
	IFNULL(t.id, '') AS id, IFNULL(t.rollout_path, '') AS rollout_path,
	IFNULL(t.created_at, 0) AS created_at, IFNULL(t.updated_at, 0) AS updated_at,
	IFNULL(t.cwd, '') AS cwd, IFNULL(t.source, '') AS source,
	IFNULL(t.originator, '') AS originator, IFNULL(t.cli_version, '') AS cli_version,
	IFNULL(t.model_provider, '') AS model_provider, IFNULL(t.git_commit, '') AS git_commit,
	IFNULL(t.git_branch, '') AS git_branch, IFNULL(t.git_origin, '') AS git_origin,
	IFNULL(t.name, '') AS name, IFNULL(t.preview, '') AS preview,
	IFNULL(t.archived, 0) AS archived, IFNULL(t.archived_at, 0) AS archived_at,
	IFNULL(t.parent_id, '') AS parent_id, IFNULL(t.fork_user_message, -1) AS fork_user_message,
	IFNULL(t.fork_offset, -1) AS fork_offset, IFNULL(t.line_count, 0) AS line_count,
	IFNULL(t.user_message_count, 0) AS user_message_count,
	IFNULL(t.indexed_size, 0) AS indexed_size, IFNULL(t.file_size, 0) AS file_size,
	IFNULL(t.file_mtime, 0) AS file_mtime, IFNULL(t.history_mode, '') AS history_mode,
	IFNULL(t.base_id, '') AS base_id, IFNULL(t.base_size, 0) AS base_size,
	IFNULL(t.next_ordinal, 0) AS next_ordinal, IFNULL(t.turn_offset, 0) AS turn_offset,
	IFNULL(t.turn_id, '') AS turn_id, IFNULL(t.inherited_messages, 0) AS inherited_messages`

func (s *Store) relatives(ctx context.Context, query, id string) ([]Relative, error) {
	stmt, err := s.readStmt(ctx, query)
	if err != nil {
		return nil, err
	}
	var rows []relativeRow
	if err := stmt.SelectContext(ctx, &rows, id); err != nil {
		return nil, err
	}
	rels := make([]Relative, 0, len(rows))
	for _, r := range rows {
		rel := Relative{ID: r.ID, Depth: r.Depth}
		if r.Present {
			t := r.Thread
			rel.Thread = &t
		}
		rels = append(rels, rel)
	}
	return rels, nil
}

// Ancestors returns the fork ancestors of id, nearest first, with depth.
// Ancestors no longer indexed have a nil Thread. An unknown id has none.
func (s *Store) Ancestors(ctx context.Context, id string) ([]Relative, error) {
	q := `SELECT l.ancestor_id AS rel_id, l.depth, ` + relativeColumns + `
		FROM thread_lineage l LEFT JOIN threads t ON t.id = l.ancestor_id
		WHERE l.thread_id = ? ORDER BY l.depth`
	ctx, err := lookup(ctx) // as many rows as the thread has ancestors
	var rels []Relative
	if err == nil {
		rels, err = s.relatives(ctx, q, id)
	}
	if err != nil {
		return nil, fmt.Errorf("ancestors of thread %s: %w", id, err)
	}
	return rels, nil
}

// Descendants returns every thread forked (transitively) from id, by depth
// then id. It works for an id no longer indexed too: its descendants keep
// their ancestry.
func (s *Store) Descendants(ctx context.Context, id string) ([]Relative, error) {
	q := `SELECT l.thread_id AS rel_id, l.depth, ` + relativeColumns + `
		FROM thread_lineage l LEFT JOIN threads t ON t.id = l.thread_id
		WHERE l.ancestor_id = ? ORDER BY l.depth, l.thread_id`
	rels, err := s.relatives(ctx, q, id)
	if err != nil {
		return nil, fmt.Errorf("descendants of thread %s: %w", id, err)
	}
	return rels, nil
}

// Root returns the farthest known ancestor of id (id itself when it has none).
// The root may be a thread no longer indexed. ErrNotFound when id is neither
// indexed nor anyone's ancestor.
func (s *Store) Root(ctx context.Context, id string) (string, error) {
	var roots []string
	ctx, err := lookup(ctx)
	if err != nil {
		return "", fmt.Errorf("root of thread %s: %w", id, err)
	}
	const q = `SELECT ancestor_id FROM thread_lineage WHERE thread_id = ? ORDER BY depth DESC LIMIT 1`
	if err := sqlx.SelectContext(ctx, s.cached(), &roots, q, id); err != nil {
		return "", fmt.Errorf("root of thread %s: %w", id, err)
	}
	if len(roots) == 1 {
		return roots[0], nil
	}
	var known bool
	const k = `SELECT EXISTS (SELECT 1 FROM threads WHERE id = ?)
		OR EXISTS (SELECT 1 FROM thread_lineage WHERE ancestor_id = ?)`
	if err := sqlx.GetContext(ctx, s.cached(), &known, k, id, id); err != nil {
		return "", fmt.Errorf("root of thread %s: %w", id, err)
	}
	if !known {
		return "", fmt.Errorf("root of thread %s: %w", id, ErrNotFound)
	}
	return id, nil
}

// Referrers returns the other threads whose history continues thread id's
// (their base_id is id, or they were reverted and their first file's base
// is id), in id order. A reverted thread's own later segment (base_id is
// its own id) is not one.
func (s *Store) Referrers(ctx context.Context, id string) ([]string, error) {
	ids := []string{}
	if err := sqlx.SelectContext(ctx, s.cached(), &ids, `SELECT id FROM (`+continuersSQL+`) ORDER BY id`, id); err != nil {
		return nil, fmt.Errorf("referrers of thread %s: %w", id, err)
	}
	return ids, nil
}

// A Continuer is a thread whose history continues another's (a Referrer),
// with the position in the other's history where it leaves it.
type Continuer struct {
	ID  string `db:"id"`
	Cut int64  `db:"cut"`
}

// Continuers returns Referrers(id) with the positions where they leave
// id's history: a reference fork's base_size, or, for a reverted one, the
// base_size of its first file. In id order.
func (s *Store) Continuers(ctx context.Context, id string) ([]Continuer, error) {
	cs := []Continuer{}
	if err := sqlx.SelectContext(ctx, s.cached(), &cs, `SELECT id, cut FROM (`+continuersSQL+`) ORDER BY id`, id); err != nil {
		return nil, fmt.Errorf("threads continuing thread %s: %w", id, err)
	}
	return cs, nil
}

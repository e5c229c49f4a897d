package store

import (
	"context"
	"fmt"

	"github.com/jmoiron/sqlx"
)

// spawn writes the spawn edge of r (thread_spawns) for a thread that has
// none (just inserted, or replaced: replaceOne drops the old edge): none
// when r.SpawnParentID is "" or names the thread itself.
func (w *recordWriter) spawn(ctx context.Context, r Record) error {
	id := r.Thread.ID
	if p := r.SpawnParentID; p != "" && p != id {
		if _, err := w.exec(ctx, insertSpawnSQL, id, p); err != nil {
			return fmt.Errorf("insert spawn edge of thread %s: %w", id, err)
		}
	}
	return nil
}

const insertSpawnSQL = `INSERT INTO thread_spawns (thread_id, parent_id) VALUES (?, ?)`

// maxSpawnDepth bounds the walks along spawn edges. Codex nests sub-agents
// a few levels deep; edges read from files may form a cycle, which the
// bound (and the minimum depth per thread) keeps finite.
const maxSpawnDepth = 64

// Spawns returns the sub-agent threads spawned by id, directly (depth 1)
// or by its sub-agents, by depth then id. Spawned threads not indexed any
// more are not listed (their edges go with their rows); a spawning thread
// that is gone still lists what it spawned. Spawn edges are written with
// each thread's record (Record.SpawnParentID).
func (s *Store) Spawns(ctx context.Context, id string) ([]Relative, error) {
	rels, err := s.relatives(ctx, spawnWalk("parent_id", "thread_id"), id)
	if err != nil {
		return nil, fmt.Errorf("spawns of thread %s: %w", id, err)
	}
	return rels, nil
}

// SpawnedBy returns the chain of threads that spawned id, nearest first:
// the thread that spawned it (depth 1), the one that spawned that one, and
// so on. A spawning thread not indexed has a nil Thread, and the chain
// stops there. A thread that was not spawned has none.
func (s *Store) SpawnedBy(ctx context.Context, id string) ([]Relative, error) {
	rels, err := s.relatives(ctx, spawnWalk("thread_id", "parent_id"), id)
	if err != nil {
		return nil, fmt.Errorf("spawners of thread %s: %w", id, err)
	}
	return rels, nil
}

// SpawnParent returns the thread that spawned id as its spawn edge names
// it, whether indexed or not; "" when id was not spawned (or is not
// indexed).
func (s *Store) SpawnParent(ctx context.Context, id string) (string, error) {
	var parents []string
	if err := sqlx.SelectContext(ctx, s.cached(), &parents, `SELECT parent_id FROM thread_spawns WHERE thread_id = ?`, id); err != nil {
		return "", fmt.Errorf("spawner of thread %s: %w", id, err)
	}
	if len(parents) == 0 {
		return "", nil
	}
	return parents[0], nil
}

// spawnWalk is the query that walks thread_spawns from ?1: each step goes
// from a row's from column to its to column (down the spawns: parent_id to
// thread_id; up: the other way), each thread at its nearest depth.
func spawnWalk(from, to string) string {
	return `WITH RECURSIVE walk (id, depth) AS (
			SELECT ` + to + `, 1 FROM thread_spawns WHERE ` + from + ` = ?1
			UNION
			SELECT s.` + to + `, walk.depth + 1 FROM thread_spawns s JOIN walk ON s.` + from + ` = walk.id
			WHERE walk.depth < ` + fmt.Sprint(maxSpawnDepth) + `
		), nearest (id, depth) AS (
			SELECT id, MIN(depth) FROM walk WHERE id <> ?1 GROUP BY id
		)
		SELECT n.id AS rel_id, n.depth, ` + relativeColumns + `
		FROM nearest n LEFT JOIN threads t ON t.id = n.id
		ORDER BY n.depth, n.id`
}

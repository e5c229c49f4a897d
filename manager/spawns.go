package manager

import (
	"context"
)

// Spawns returns the sub-agent threads spawned by id, directly (depth 1) or
// by its sub-agents, by depth then id. Spawn edges are read from each
// spawned thread's meta (source.subagent.thread_spawn.parent_thread_id);
// they are a second kind of lineage, apart from forks.
func (m *Manager) Spawns(ctx context.Context, id string) ([]Relative, error) {
	return m.relatives(ctx, "spawns of", id, m.store.Spawns)
}

// SpawnedBy returns the chain of threads that spawned id, nearest first
// (none for a thread that is not a sub-agent). A spawning thread no longer
// indexed is listed by id with a nil Thread, and the chain stops there.
func (m *Manager) SpawnedBy(ctx context.Context, id string) ([]Relative, error) {
	return m.relatives(ctx, "spawners of", id, m.store.SpawnedBy)
}

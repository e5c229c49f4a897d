-- Sub-agent spawns, the second kind of lineage: the thread whose session
-- meta source names it as spawner (source.subagent.thread_spawn). Not a
-- foreign key: a spawner that is gone still names what it spawned.

-- +goose Up
ALTER TABLE threads ADD COLUMN spawn_parent_id text;
CREATE INDEX threads_spawn_parent ON threads (spawn_parent_id) WHERE spawn_parent_id IS NOT NULL;

-- +goose Down
DROP INDEX threads_spawn_parent;
ALTER TABLE threads DROP COLUMN spawn_parent_id;

-- Sub-agent spawns, the second kind of lineage edge: a thread whose
-- session_meta source is {"subagent":{"thread_spawn":{"parent_thread_id":P,...}}}
-- was spawned by thread P (Codex's multi-agent tools). The indexer reads P
-- as rollout.ParseSessionMeta does (SessionMeta.SpawnParentID) and writes
-- the row with the thread's. See docs/SCHEMA.md.

-- +goose Up
CREATE TABLE thread_spawns (
    thread_id TEXT NOT NULL PRIMARY KEY REFERENCES threads (id) ON DELETE CASCADE,
    -- The spawning thread. Not a foreign key: it may be deleted, or not
    -- indexed (yet).
    parent_id TEXT NOT NULL CHECK (parent_id <> thread_id)
) WITHOUT ROWID;

CREATE INDEX thread_spawns_parent ON thread_spawns (parent_id, thread_id);

-- An index written before this migration learns its edges from the
-- sources it holds (compact JSON for an object source), without a rescan.
-- SQLite's JSON reader agrees with the indexer's on every source Codex
-- writes; `reindex --full` reads odd ones (keys in another case, a key
-- given twice) exactly as the indexer does.
INSERT INTO thread_spawns (thread_id, parent_id)
    SELECT id, lower(p) FROM (
        SELECT id, json_extract(source, '$.subagent.thread_spawn.parent_thread_id') AS p
        FROM threads WHERE source LIKE '{%' AND json_valid(source)
    )
    WHERE typeof(p) = 'text'
      AND lower(p) GLOB '[0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f]-[0-9a-f][0-9a-f][0-9a-f][0-9a-f]-[0-9a-f][0-9a-f][0-9a-f][0-9a-f]-[0-9a-f][0-9a-f][0-9a-f][0-9a-f]-[0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f]'
      AND lower(p) <> id;

-- Every parent edge of both kinds: 'fork' (threads.parent_id) and 'spawn'
-- (thread_spawns).
CREATE VIEW thread_edges (thread_id, parent_id, kind) AS
    SELECT id, parent_id, 'fork' FROM threads WHERE parent_id IS NOT NULL
    UNION ALL
    SELECT thread_id, parent_id, 'spawn' FROM thread_spawns;

-- +goose Down
DROP VIEW thread_edges;
DROP TABLE thread_spawns;

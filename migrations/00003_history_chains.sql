-- Codex 0.169's paginated threads and reference forks (docs/SCHEMA.md,
-- "History chains"). A thread's history is an optional base (a prefix of
-- another thread's history) followed by the thread's own file. Byte
-- offsets of user messages are positions in that history; indexed_size,
-- line_count and file_size stay positions in the thread's own file.

-- +goose Up
-- '' or 'legacy' for legacy threads, 'paginated'.
ALTER TABLE threads ADD COLUMN history_mode TEXT NOT NULL DEFAULT '';
-- The thread whose history prefixes this one's (history_base.thread_id),
-- NULL for none. Not a foreign key: a missing base is reported, not hidden.
ALTER TABLE threads ADD COLUMN base_id TEXT;
-- How many bytes of history come before the thread's own file.
ALTER TABLE threads ADD COLUMN base_size INTEGER NOT NULL DEFAULT 0;
-- The ordinal of the next line of a paginated thread's own file.
ALTER TABLE threads ADD COLUMN next_ordinal INTEGER NOT NULL DEFAULT 0;
-- The open turn that has no counted user message yet: where its first
-- start line is (a position in the history, -1 for none) and its id. A
-- fork before that turn's first message is cut there, so no trace of the
-- turn is left (Codex shows a cut at the message line as an extra
-- interrupted turn). 0 for none: a history starts with its meta line,
-- never with a turn.
ALTER TABLE threads ADD COLUMN turn_offset INTEGER NOT NULL DEFAULT 0;
ALTER TABLE threads ADD COLUMN turn_id TEXT NOT NULL DEFAULT '';
CREATE INDEX threads_base ON threads (base_id) WHERE base_id IS NOT NULL;

-- Where a fork before this message is cut (0: at byte_offset, as rows
-- indexed before this migration hold), and the Codex turn holding it.
ALTER TABLE user_messages ADD COLUMN cut_offset INTEGER NOT NULL DEFAULT 0;
ALTER TABLE user_messages ADD COLUMN turn_id TEXT NOT NULL DEFAULT '';

-- Facts about the index itself. 'rescan' asks the next open (spoold, or
-- reindex) to rescan every file: rows indexed before this migration lack
-- the cut offsets, turns and history columns, and the classifier follows
-- Codex 0.169 now, so an upgraded index is rebuilt once from the files
-- (a new, empty index needs nothing).
CREATE TABLE index_state (
    key   TEXT NOT NULL PRIMARY KEY,
    value TEXT NOT NULL
);
INSERT INTO index_state (key, value)
    SELECT 'rescan', 'migration 00003: history chains' WHERE EXISTS (SELECT 1 FROM threads);

-- +goose Down
DROP TABLE index_state;
DROP INDEX threads_base;
ALTER TABLE user_messages DROP COLUMN turn_id;
ALTER TABLE user_messages DROP COLUMN cut_offset;
ALTER TABLE threads DROP COLUMN turn_id;
ALTER TABLE threads DROP COLUMN turn_offset;
ALTER TABLE threads DROP COLUMN next_ordinal;
ALTER TABLE threads DROP COLUMN base_size;
ALTER TABLE threads DROP COLUMN base_id;
ALTER TABLE threads DROP COLUMN history_mode;

-- Revert segments: a thread that Codex 0.169's thread/revert (or spool's
-- Manager.Revert) cut back lives in several files. Its threads row
-- describes the newest file (the head, where appends go), whose
-- history_base names the thread itself (threads.base_id = id); this table
-- lists the thread's other files. A chain link (length >= 0) holds the
-- first length bytes of its own file at history position base_size; links
-- in seq order, then the head, make the history. A file no longer in the
-- history (a revert went back past it) has length -1 and is kept so that
-- delete and archive find every file of the thread. See docs/SCHEMA.md,
-- History chains.

-- +goose Up
CREATE TABLE thread_segments (
    thread_id TEXT NOT NULL REFERENCES threads (id) ON DELETE CASCADE,
    seq INTEGER NOT NULL,
    rollout_path TEXT NOT NULL,
    -- The link's own base: another thread for the thread's first file when
    -- it is a reference fork, the thread itself for a later segment, ''
    -- for none.
    base_id TEXT NOT NULL DEFAULT '',
    base_size INTEGER NOT NULL,
    length INTEGER NOT NULL,
    -- The ordinal of the file's first line (its session_meta).
    first_ordinal INTEGER NOT NULL,
    PRIMARY KEY (thread_id, seq)
) WITHOUT ROWID;

CREATE UNIQUE INDEX thread_segments_path ON thread_segments (rollout_path);

-- +goose Down
DROP TABLE thread_segments;

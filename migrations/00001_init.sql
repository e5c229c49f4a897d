-- The first schema of the spool index. See docs/SCHEMA.md for every table,
-- column and view. Times are Unix milliseconds unless a column says otherwise.

-- +goose Up
CREATE TABLE threads (
    id                 TEXT    NOT NULL PRIMARY KEY,
    rollout_path       TEXT    NOT NULL UNIQUE,
    created_at         INTEGER NOT NULL,
    updated_at         INTEGER NOT NULL,
    cwd                TEXT    NOT NULL DEFAULT '',
    source             TEXT    NOT NULL DEFAULT '',
    originator         TEXT    NOT NULL DEFAULT '',
    cli_version        TEXT    NOT NULL DEFAULT '',
    model_provider     TEXT    NOT NULL DEFAULT '',
    git_commit         TEXT    NOT NULL DEFAULT '',
    git_branch         TEXT    NOT NULL DEFAULT '',
    git_origin         TEXT    NOT NULL DEFAULT '',
    name               TEXT    NOT NULL DEFAULT '',
    preview            TEXT    NOT NULL DEFAULT '',
    archived           INTEGER NOT NULL DEFAULT 0 CHECK (archived IN (0, 1)),
    archived_at        INTEGER NOT NULL DEFAULT 0,
    -- The thread this one was forked from, NULL for none. Deliberately not a
    -- foreign key: a deleted parent leaves its children's parent_id in place.
    parent_id          TEXT,
    fork_user_message  INTEGER NOT NULL DEFAULT -1,
    fork_offset        INTEGER NOT NULL DEFAULT -1,
    line_count         INTEGER NOT NULL DEFAULT 0,
    user_message_count INTEGER NOT NULL DEFAULT 0,
    indexed_size       INTEGER NOT NULL DEFAULT 0,
    file_size          INTEGER NOT NULL DEFAULT 0,
    file_mtime         INTEGER NOT NULL DEFAULT 0 -- Unix nanoseconds
);

-- Keyset pagination: every listing order is (sort column, id), optionally
-- after an equality filter, so a page is an index range scan.
CREATE INDEX threads_updated ON threads (updated_at, id);
CREATE INDEX threads_created ON threads (created_at, id);
CREATE INDEX threads_archived_updated ON threads (archived, updated_at, id);
CREATE INDEX threads_archived_created ON threads (archived, created_at, id);
CREATE INDEX threads_cwd_updated ON threads (cwd, updated_at, id);
CREATE INDEX threads_parent ON threads (parent_id);

CREATE TABLE user_messages (
    id          INTEGER PRIMARY KEY, -- rowid, the key of user_message_fts
    thread_id   TEXT    NOT NULL REFERENCES threads (id) ON DELETE CASCADE,
    ordinal     INTEGER NOT NULL,
    byte_offset INTEGER NOT NULL,
    line_number INTEGER NOT NULL,
    preview     TEXT    NOT NULL DEFAULT '',
    text        TEXT    NOT NULL DEFAULT '',
    UNIQUE (thread_id, ordinal)
);

-- Full-text index over user_messages.text (external content: the text is
-- stored once, in user_messages; the triggers below keep the index in step).
CREATE VIRTUAL TABLE user_message_fts USING fts5 (
    text,
    content = 'user_messages',
    content_rowid = 'id',
    tokenize = 'unicode61 remove_diacritics 2'
);

-- +goose StatementBegin
CREATE TRIGGER user_messages_fts_insert AFTER INSERT ON user_messages BEGIN
    INSERT INTO user_message_fts (rowid, text) VALUES (new.id, new.text);
END;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE TRIGGER user_messages_fts_delete AFTER DELETE ON user_messages BEGIN
    INSERT INTO user_message_fts (user_message_fts, rowid, text) VALUES ('delete', old.id, old.text);
END;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE TRIGGER user_messages_fts_update AFTER UPDATE OF text ON user_messages BEGIN
    INSERT INTO user_message_fts (user_message_fts, rowid, text) VALUES ('delete', old.id, old.text);
    INSERT INTO user_message_fts (rowid, text) VALUES (new.id, new.text);
END;
-- +goose StatementEnd

-- Fork lineage as a closure table: one row per (thread, ancestor), parent at
-- depth 1. Rows of a thread go with it; rows naming a deleted thread as an
-- ancestor stay, so descendants keep their full ancestry.
CREATE TABLE thread_lineage (
    thread_id   TEXT    NOT NULL REFERENCES threads (id) ON DELETE CASCADE,
    ancestor_id TEXT    NOT NULL,
    depth       INTEGER NOT NULL CHECK (depth >= 1),
    PRIMARY KEY (thread_id, ancestor_id)
) WITHOUT ROWID;

CREATE INDEX thread_lineage_ancestor ON thread_lineage (ancestor_id, depth, thread_id);

CREATE VIEW thread_ancestors (thread_id, ancestor_id, depth) AS
    SELECT thread_id, ancestor_id, depth FROM thread_lineage;

CREATE VIEW thread_descendants (thread_id, descendant_id, depth) AS
    SELECT ancestor_id, thread_id, depth FROM thread_lineage;

CREATE VIEW thread_roots (thread_id, root_id) AS
    SELECT t.id,
           COALESCE((SELECT l.ancestor_id FROM thread_lineage l
                     WHERE l.thread_id = t.id
                     ORDER BY l.depth DESC LIMIT 1), t.id)
    FROM threads t;

CREATE VIEW thread_tree (root_id, thread_id, parent_id, depth) AS
    SELECT COALESCE((SELECT l.ancestor_id FROM thread_lineage l
                     WHERE l.thread_id = t.id
                     ORDER BY l.depth DESC LIMIT 1), t.id),
           t.id,
           t.parent_id,
           COALESCE((SELECT MAX(l.depth) FROM thread_lineage l WHERE l.thread_id = t.id), 0)
    FROM threads t;

-- +goose Down
DROP VIEW thread_tree;
DROP VIEW thread_roots;
DROP VIEW thread_descendants;
DROP VIEW thread_ancestors;
DROP TABLE thread_lineage;
DROP TRIGGER user_messages_fts_update;
DROP TRIGGER user_messages_fts_delete;
DROP TRIGGER user_messages_fts_insert;
DROP TABLE user_message_fts;
DROP TABLE user_messages;
DROP TABLE threads;

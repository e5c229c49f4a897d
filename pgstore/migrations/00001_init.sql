-- The distributed backend's schema: PostgreSQL is the commit point and the
-- index. A thread's own bytes live in `chunks` (one row per append, in
-- offset order) until sealed into object-storage segments; its history is
-- its base's history up to base_size, then its own bytes (the local
-- backend's model: docs/SCHEMA.md, "History chains").

-- +goose Up
CREATE TABLE threads (
    id                 text PRIMARY KEY,
    created_at         bigint  NOT NULL,           -- Unix ms
    updated_at         bigint  NOT NULL,           -- Unix ms of the last append
    parent_id          text    NOT NULL DEFAULT '', -- fork parent, '' for a root
    base_id            text    REFERENCES threads (id),
    base_size          bigint  NOT NULL DEFAULT 0, -- history bytes before the own bytes
    inherited_messages integer NOT NULL DEFAULT 0, -- user messages that resolve through the base
    size               bigint  NOT NULL,           -- own bytes committed
    user_message_count integer NOT NULL DEFAULT 0, -- inherited + own
    preview            text    NOT NULL DEFAULT '',
    name               text    NOT NULL DEFAULT '',
    cwd                text    NOT NULL DEFAULT '',
    archived           boolean NOT NULL DEFAULT false
);
CREATE INDEX threads_newest ON threads (archived, updated_at DESC, id DESC);
CREATE INDEX threads_base ON threads (base_id) WHERE base_id IS NOT NULL;

CREATE TABLE chunks (
    thread_id    text   NOT NULL REFERENCES threads (id) ON DELETE CASCADE,
    start_offset bigint NOT NULL, -- in the thread's own bytes
    data         bytea  NOT NULL,
    PRIMARY KEY (thread_id, start_offset)
);

-- Own user messages only: a fork's inherited messages resolve through its base.
CREATE TABLE user_messages (
    thread_id      text    NOT NULL REFERENCES threads (id) ON DELETE CASCADE,
    ordinal        integer NOT NULL, -- 0-based over the thread's history
    history_offset bigint  NOT NULL, -- position of the line in the thread's history
    text           text    NOT NULL,
    tsv            tsvector GENERATED ALWAYS AS (to_tsvector('simple', text)) STORED,
    PRIMARY KEY (thread_id, ordinal)
);
CREATE INDEX user_messages_tsv ON user_messages USING gin (tsv);

-- Fork ancestry as a closure table, as in the local index.
CREATE TABLE thread_lineage (
    thread_id   text    NOT NULL REFERENCES threads (id) ON DELETE CASCADE,
    ancestor_id text    NOT NULL,
    depth       integer NOT NULL,
    PRIMARY KEY (thread_id, ancestor_id)
);
CREATE INDEX thread_lineage_ancestor ON thread_lineage (ancestor_id, depth);

-- +goose Down
DROP TABLE thread_lineage;
DROP TABLE user_messages;
DROP TABLE chunks;
DROP TABLE threads;

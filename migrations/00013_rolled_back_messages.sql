-- The user messages a rollback dropped (docs/SCHEMA.md, History chains),
-- kept with the history position of the rollback line that dropped them
-- (dropped_at). A fork cut before that line, or a revert to a point before
-- it, still holds them: its history is the bytes before the cut, which the
-- rollback, written after, does not change. The index answers "the
-- thread's messages below position p as its history stood at p" from
-- user_messages and these rows (Store.MessagesAt), so a rebuild from the
-- files agrees with an index kept up to date live. They are not searched.
-- An index made before this migration has none: a rebuild fills it.

-- +goose Up
CREATE TABLE rolled_back_messages (
    thread_id   TEXT    NOT NULL REFERENCES threads (id) ON DELETE CASCADE,
    dropped_at  INTEGER NOT NULL,
    ordinal     INTEGER NOT NULL,
    byte_offset INTEGER NOT NULL,
    line_number INTEGER NOT NULL,
    preview     TEXT    NOT NULL DEFAULT '',
    text        TEXT    NOT NULL DEFAULT '',
    cut_offset  INTEGER NOT NULL DEFAULT 0,
    turn_id     TEXT    NOT NULL DEFAULT '',
    PRIMARY KEY (thread_id, dropped_at, ordinal)
) WITHOUT ROWID;

-- +goose Down
DROP TABLE rolled_back_messages;

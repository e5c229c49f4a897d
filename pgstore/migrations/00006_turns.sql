-- Codex turn ids, as the local index keeps them (docs/SCHEMA.md): each own
-- user message names the turn it belongs to and, when it is its turn's
-- first, where a fork or revert before it is cut (the turn's first start
-- line, before the message). A turn is found by its id through the user
-- message that opens it, through the base chain like any message. The
-- thread's row carries the turn still waiting for its first message
-- across appends: turn_offset > 0 its start (a history position), -1 open
-- with messages, 0 none.

-- +goose Up
ALTER TABLE user_messages
    ADD COLUMN cut_offset bigint NOT NULL DEFAULT 0, -- 0: at history_offset
    ADD COLUMN turn_id    text   NOT NULL DEFAULT '';
CREATE INDEX user_messages_turn ON user_messages (thread_id, turn_id, ordinal) WHERE turn_id <> '';
ALTER TABLE threads
    ADD COLUMN turn_offset bigint NOT NULL DEFAULT 0,
    ADD COLUMN turn_id     text   NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE threads DROP COLUMN turn_offset, DROP COLUMN turn_id;
DROP INDEX user_messages_turn;
ALTER TABLE user_messages DROP COLUMN cut_offset, DROP COLUMN turn_id;

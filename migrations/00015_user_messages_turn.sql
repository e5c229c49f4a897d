-- A Codex turn id finds its thread's first user message in that turn
-- through this index (turns/by-id, a fork before or through a turn id).
-- Without it the lookup read every user message of the thread.

-- +goose Up
CREATE INDEX user_messages_turn ON user_messages (thread_id, turn_id, ordinal);

-- +goose Down
DROP INDEX user_messages_turn;

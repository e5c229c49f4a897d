-- A turn is looked up by the md5 of its id, not by the id itself: a btree
-- entry holds at most a third of a page (about 2.7 KB), so a user message
-- whose turn id was longer (a client's, not Codex's UUIDs) failed its
-- append (TestBackendConformance/LongTurnID). The new index is built
-- concurrently, so appends go on during an upgrade; an older node's query
-- (turn_id = $2) still answers, without the index. A run cut short leaves
-- an invalid index, which the next run drops first.

-- +goose NO TRANSACTION
-- +goose Up
DROP INDEX CONCURRENTLY IF EXISTS user_messages_turn_md5;
CREATE INDEX CONCURRENTLY user_messages_turn_md5
    ON user_messages (thread_id, md5(turn_id), ordinal) WHERE turn_id <> '';
DROP INDEX CONCURRENTLY IF EXISTS user_messages_turn;

-- +goose Down
DROP INDEX CONCURRENTLY IF EXISTS user_messages_turn;
CREATE INDEX CONCURRENTLY user_messages_turn
    ON user_messages (thread_id, turn_id, ordinal) WHERE turn_id <> '';
DROP INDEX CONCURRENTLY IF EXISTS user_messages_turn_md5;

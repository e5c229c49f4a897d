-- Idempotency keys of starts and forks (the Idempotency-Key header on
-- POST /v1/threads and POST /v1/threads/{id}/fork, or
-- manager.StartOptions/ForkOptions.IdempotencyKey): a retry with the same
-- key and request creates nothing and is answered with the thread the
-- first request created. scope is '' for a start and the parent's id for a
-- fork; thread_id is the thread created, and its key goes with it (a retry
-- after a delete creates anew). A key is recorded in the transaction that
-- inserts its thread's row, so an index that holds the thread holds the
-- key. Like append keys, these cannot be rebuilt from the rollout files.

-- +goose Up
CREATE TABLE creation_keys (
    scope        TEXT    NOT NULL,
    key          TEXT    NOT NULL,
    request_hash BLOB    NOT NULL,
    thread_id    TEXT    NOT NULL REFERENCES threads (id) ON DELETE CASCADE,
    created_at   INTEGER NOT NULL, -- Unix ms
    expires_at   INTEGER NOT NULL, -- Unix ms; pruned once past
    PRIMARY KEY (scope, key)
) WITHOUT ROWID;

CREATE INDEX creation_keys_thread ON creation_keys (thread_id);
CREATE INDEX creation_keys_expiry ON creation_keys (expires_at);

-- +goose Down
DROP TABLE creation_keys;

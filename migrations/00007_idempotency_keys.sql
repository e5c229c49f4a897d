-- Idempotency keys of appends (the Idempotency-Key header, or
-- manager.AppendOptions.IdempotencyKey), kept in the index so that a retry
-- after a restart is recognised: the key, the hash of the request it first
-- came with, that request's result (as the manager encoded it; opaque to
-- the store) and when the key is forgotten. A key is recorded in the
-- transaction that indexes its append's lines, so an index that holds the
-- lines holds the key. Unlike everything else in the index, keys cannot be
-- rebuilt from the rollout files: an index rebuilt from scratch forgets them.

-- +goose Up
CREATE TABLE idempotency_keys (
    thread_id    TEXT    NOT NULL REFERENCES threads (id) ON DELETE CASCADE,
    key          TEXT    NOT NULL,
    request_hash BLOB    NOT NULL,
    result       BLOB    NOT NULL,
    created_at   INTEGER NOT NULL, -- Unix ms
    expires_at   INTEGER NOT NULL, -- Unix ms; pruned once past
    PRIMARY KEY (thread_id, key)
) WITHOUT ROWID;

CREATE INDEX idempotency_keys_expiry ON idempotency_keys (expires_at);

-- +goose Down
DROP TABLE idempotency_keys;

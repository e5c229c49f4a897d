-- Idempotency keys of starts and forks: a retry with the same key and
-- request creates nothing and is answered with the thread the first
-- created. scope is '' for a start and the parent's id for a fork. The key
-- goes with its thread (a retry after a delete creates anew), and is
-- recorded in the transaction that creates it.

-- +goose Up
CREATE TABLE creation_keys (
    scope        text   NOT NULL,
    key          text   NOT NULL,
    request_hash bytea  NOT NULL, -- SHA-256 of the request as sent
    thread_id    text   NOT NULL REFERENCES threads (id) ON DELETE CASCADE,
    expires_at   bigint NOT NULL, -- Unix ms
    PRIMARY KEY (scope, key)
);
CREATE INDEX creation_keys_thread ON creation_keys (thread_id);
CREATE INDEX creation_keys_expiry ON creation_keys (expires_at);

-- +goose Down
DROP TABLE creation_keys;

-- Idempotency keys of appends: a retry with the same key and request
-- writes nothing and gets the first answer's offsets.

-- +goose Up
CREATE TABLE idempotency_keys (
    thread_id    text   NOT NULL REFERENCES threads (id) ON DELETE CASCADE,
    key          text   NOT NULL,
    request_hash bytea  NOT NULL, -- SHA-256 of the request as sent
    line_starts  bigint[] NOT NULL, -- where each line of the first answer starts (history positions)
    size_after   bigint NOT NULL,   -- the history's size after it
    expires_at   bigint NOT NULL,   -- Unix ms
    PRIMARY KEY (thread_id, key)
);
CREATE INDEX idempotency_keys_expiry ON idempotency_keys (expires_at);

-- +goose Down
DROP TABLE idempotency_keys;

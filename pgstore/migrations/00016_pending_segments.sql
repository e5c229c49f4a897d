-- Objects a seal is writing or has written and not yet recorded: a seal
-- adds its key before it writes the object, and removes it in the
-- transaction that records the segment, which records nothing when the
-- key is gone. CollectOrphans removes a key older than its grace before
-- it deletes the object, so a seal slower than the grace (a sealer paused,
-- or waiting on a row lock) can never record a segment whose object a
-- collection deleted.

-- +goose Up
CREATE TABLE pending_segments (
    object_key text   PRIMARY KEY,
    created_at bigint NOT NULL -- Unix ms, the sealer's clock
);

-- +goose Down
DROP TABLE pending_segments;

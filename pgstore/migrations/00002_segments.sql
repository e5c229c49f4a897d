-- Sealed segments: a thread's own bytes below sealed_size live in immutable
-- objects (one row per object, contiguous from 0), the rest in chunks.

-- +goose Up
ALTER TABLE threads ADD COLUMN sealed_size bigint NOT NULL DEFAULT 0;

CREATE TABLE segments (
    thread_id    text   NOT NULL REFERENCES threads (id) ON DELETE CASCADE,
    start_offset bigint NOT NULL, -- in the thread's own bytes
    end_offset   bigint NOT NULL,
    object_key   text   NOT NULL UNIQUE,
    sha256       bytea  NOT NULL,
    PRIMARY KEY (thread_id, start_offset)
);

-- +goose Down
DROP TABLE segments;
ALTER TABLE threads DROP COLUMN sealed_size;

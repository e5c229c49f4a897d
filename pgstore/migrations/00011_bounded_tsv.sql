-- A user message's search text is its first 100,000 characters
-- (pgstore.SearchedChars): the tsvector of a longer one can pass
-- PostgreSQL's limit of 1 MiB, which failed its append. 100,000
-- characters of distinct one-character words make at most about 550 KB.
-- The column is generated, so it is dropped and added again (PostgreSQL
-- 15 cannot change a generation expression), with its index; adding it
-- rewrites the table.

-- +goose Up
ALTER TABLE user_messages DROP COLUMN tsv;
ALTER TABLE user_messages ADD COLUMN tsv tsvector
    GENERATED ALWAYS AS (to_tsvector('simple', left(text, 100000))) STORED;
CREATE INDEX user_messages_tsv ON user_messages USING gin (tsv);

-- +goose Down
ALTER TABLE user_messages DROP COLUMN tsv;
ALTER TABLE user_messages ADD COLUMN tsv tsvector
    GENERATED ALWAYS AS (to_tsvector('simple', text)) STORED;
CREATE INDEX user_messages_tsv ON user_messages USING gin (tsv);

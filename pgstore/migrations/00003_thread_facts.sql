-- What a thread's session_meta says and the API shows, kept on the row so
-- that listing never reads a segment; fork facts; line numbers.

-- +goose Up
ALTER TABLE threads
    ADD COLUMN source            text    NOT NULL DEFAULT '',
    ADD COLUMN originator        text    NOT NULL DEFAULT '',
    ADD COLUMN cli_version       text    NOT NULL DEFAULT '',
    ADD COLUMN model_provider    text    NOT NULL DEFAULT '',
    ADD COLUMN git_commit        text    NOT NULL DEFAULT '',
    ADD COLUMN git_branch        text    NOT NULL DEFAULT '',
    ADD COLUMN git_origin        text    NOT NULL DEFAULT '',
    ADD COLUMN fork_user_message integer NOT NULL DEFAULT -1,
    ADD COLUMN fork_offset       bigint  NOT NULL DEFAULT -1,
    ADD COLUMN line_count        bigint  NOT NULL DEFAULT 0,
    ADD COLUMN archived_at       bigint  NOT NULL DEFAULT 0;
ALTER TABLE user_messages ADD COLUMN line bigint NOT NULL DEFAULT 0;

-- +goose Down
ALTER TABLE user_messages DROP COLUMN line;
ALTER TABLE threads
    DROP COLUMN source, DROP COLUMN originator, DROP COLUMN cli_version,
    DROP COLUMN model_provider, DROP COLUMN git_commit, DROP COLUMN git_branch,
    DROP COLUMN git_origin, DROP COLUMN fork_user_message, DROP COLUMN fork_offset,
    DROP COLUMN line_count, DROP COLUMN archived_at;

-- unindexed_forks holds the rollout files a sync could not index whose
-- first session_meta names a history_base: reference forks the index does
-- not hold (a fork cut in a revert segment that a later revert took out
-- of its base's history, a fork of a base that is gone). Codex refuses to
-- delete a thread such a file still names; a delete reads this table, as
-- the index's own rows cannot tell of these files. Rows are kept by every
-- sync: written when a file fails, removed when it is indexed or gone.
-- The record of a clean close goes, so that the first open walks the root
-- and records the forks an earlier sync could not index.

-- +goose Up
CREATE TABLE unindexed_forks (
    rollout_path TEXT PRIMARY KEY,
    thread_id    TEXT NOT NULL,
    base         TEXT NOT NULL
) WITHOUT ROWID;
CREATE INDEX unindexed_forks_base ON unindexed_forks (base);
DELETE FROM index_state WHERE key = 'clean_close';

-- +goose Down
DROP TABLE unindexed_forks;

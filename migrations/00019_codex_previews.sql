-- A thread's preview is now the one Codex 0.169 shows (rollout.Preview,
-- docs/CODEX.md): the first prompt echo of its history that gives one
-- (a blank prompt gives none, an image-only one "[Image]"), never taken
-- back by a rollback or revert; before, it was the first counted user
-- message after rollbacks. preview_offset is the history position of the
-- line that gave it, which a fork needs to tell whether its cut keeps it.
-- Rows written before hold the old preview and no position: the index
-- asks for one rescan of every rollout, which recomputes both.

-- +goose Up
ALTER TABLE threads ADD COLUMN preview_offset INTEGER NOT NULL DEFAULT 0;
INSERT OR REPLACE INTO index_state (key, value)
    SELECT 'rescan', 'migration 00019: previews are taken as Codex shows them'
    WHERE EXISTS (SELECT 1 FROM threads);

-- +goose Down
ALTER TABLE threads DROP COLUMN preview_offset;

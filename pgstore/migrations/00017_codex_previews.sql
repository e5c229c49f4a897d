-- A thread's preview is now the one Codex 0.169 shows (rollout.Preview,
-- docs/CODEX.md): the first prompt echo of its history that gives one,
-- never taken back by a rollback or revert; before, it was the first
-- counted user message after rollbacks. preview_offset is the history
-- position of the line that gave it, which a fork needs to tell whether
-- its cut keeps it. Rows written before keep the old preview (at position
-- 0: forks keep it) until `reindex --pg --repair` recomputes both from
-- each thread's bytes.

-- +goose Up
ALTER TABLE threads ADD COLUMN preview_offset bigint NOT NULL DEFAULT 0;

-- +goose Down
ALTER TABLE threads DROP COLUMN preview_offset;

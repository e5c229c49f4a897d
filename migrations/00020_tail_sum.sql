-- A thread's tail_sum fingerprints the end of the indexed part of its file
-- (its last indexed line's bytes up to indexed_size, at most 256 of them:
-- indexer.TailSumOf), so a catch-up can tell a file another program
-- rewrote in place, longer, from one appended to: before, only the byte
-- before indexed_size was checked, a newline by chance in a rewrite. 0 is
-- unknown (the old check alone): rows written before get theirs at their
-- next scan or append, and need no rescan.

-- +goose Up
ALTER TABLE threads ADD COLUMN tail_sum INTEGER NOT NULL DEFAULT 0;

-- +goose Down
ALTER TABLE threads DROP COLUMN tail_sum;

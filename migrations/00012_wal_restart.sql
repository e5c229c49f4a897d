-- wal_restart is a row the checkpointer rewrites, on the writer's
-- connection, after a checkpoint that copied the whole WAL back: that
-- write restarts the WAL from its start, and pays the fsync SQLite makes
-- of a restarted WAL's header, so that the next commit of an append, a
-- fork or a start does not (store/checkpoint.go). Nothing reads it.

-- +goose Up
CREATE TABLE wal_restart (n INTEGER NOT NULL);
INSERT INTO wal_restart (n) VALUES (0);

-- +goose Down
DROP TABLE wal_restart;

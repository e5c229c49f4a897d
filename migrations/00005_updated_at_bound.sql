-- updated_at is the newest envelope timestamp of the thread's file, bounded
-- by the file's modification time plus a minute of clock skew: a line cannot
-- have been written after its file last changed, so a later timestamp is a
-- wrong clock or a forged item, and must not pin its thread at the top of
-- every list. newest_at keeps the unbounded value, so that the bound can
-- follow the file's mtime as the file grows; triggers apply the bound to
-- every write, whoever makes it, and a rebuild from the files gives the
-- same updated_at (the bound is read from the file's mtime).
--
-- Writers set updated_at to the newest timestamp they read (Advance passes
-- the larger of the row's updated_at and the new lines' newest), and the
-- triggers keep newest_at = MAX(old newest_at, written value); a written
-- value below the row's updated_at is a rescan of a rewritten file and
-- replaces newest_at. The update trigger skips the insert trigger's own
-- update (the one write that sets newest_at). 60000 is
-- indexer.MaxClockSkew in milliseconds.

-- +goose Up
ALTER TABLE threads ADD COLUMN newest_at INTEGER NOT NULL DEFAULT 0;
UPDATE threads SET newest_at = updated_at;
UPDATE threads SET updated_at = MIN(newest_at, file_mtime / 1000000 + 60000) WHERE file_mtime > 0;

-- +goose StatementBegin
CREATE TRIGGER threads_updated_at_insert AFTER INSERT ON threads BEGIN
    UPDATE threads SET
        newest_at = new.updated_at,
        updated_at = IIF(new.file_mtime > 0, MIN(new.updated_at, new.file_mtime / 1000000 + 60000), new.updated_at)
    WHERE id = new.id;
END;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE TRIGGER threads_updated_at_update AFTER UPDATE OF updated_at, file_mtime ON threads
WHEN new.newest_at = old.newest_at BEGIN
    UPDATE threads SET
        newest_at = IIF(new.updated_at < old.updated_at, new.updated_at, MAX(old.newest_at, new.updated_at)),
        updated_at = IIF(new.file_mtime > 0,
            MIN(IIF(new.updated_at < old.updated_at, new.updated_at, MAX(old.newest_at, new.updated_at)), new.file_mtime / 1000000 + 60000),
            IIF(new.updated_at < old.updated_at, new.updated_at, MAX(old.newest_at, new.updated_at)))
    WHERE id = new.id;
END;
-- +goose StatementEnd

-- +goose Down
DROP TRIGGER threads_updated_at_update;
DROP TRIGGER threads_updated_at_insert;
UPDATE threads SET updated_at = newest_at;
ALTER TABLE threads DROP COLUMN newest_at;

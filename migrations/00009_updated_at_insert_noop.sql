-- The insert trigger of migration 00005 (newest_at and the bound of
-- updated_at) runs only when it would change the row: an UPDATE of the
-- row just inserted cost two thirds of a thread insert, the bulk of a
-- first index. A writer that inserts newest_at = updated_at with
-- updated_at within the bound skips it, and any insert with newest_at = 0
-- (the default) gets exactly the old trigger's result; the store inserts
-- one or the other. (An insert of newest_at = updated_at past the bound
-- would fire the update trigger from this one's update: don't.)

-- +goose Up
DROP TRIGGER threads_updated_at_insert;

-- +goose StatementBegin
CREATE TRIGGER threads_updated_at_insert AFTER INSERT ON threads
WHEN new.newest_at <> new.updated_at
    OR (new.file_mtime > 0 AND new.updated_at > new.file_mtime / 1000000 + 60000) BEGIN
    UPDATE threads SET
        newest_at = new.updated_at,
        updated_at = IIF(new.file_mtime > 0, MIN(new.updated_at, new.file_mtime / 1000000 + 60000), new.updated_at)
    WHERE id = new.id;
END;
-- +goose StatementEnd

-- +goose Down
DROP TRIGGER threads_updated_at_insert;

-- +goose StatementBegin
CREATE TRIGGER threads_updated_at_insert AFTER INSERT ON threads BEGIN
    UPDATE threads SET
        newest_at = new.updated_at,
        updated_at = IIF(new.file_mtime > 0, MIN(new.updated_at, new.file_mtime / 1000000 + 60000), new.updated_at)
    WHERE id = new.id;
END;
-- +goose StatementEnd

-- A fork inherits its parent's user messages. Their rows are copied (the
-- fork seeks by their offsets) but their text is not: user_messages.text is
-- '' for inherited rows, and only rows with text enter the search index, so
-- a fork costs no re-tokenizing and a search finds a prompt once, in the
-- thread that was asked it, not again in every fork.

-- +goose Up
DROP TRIGGER user_messages_fts_insert;
DROP TRIGGER user_messages_fts_delete;
DROP TRIGGER user_messages_fts_update;

-- +goose StatementBegin
CREATE TRIGGER user_messages_fts_insert AFTER INSERT ON user_messages
WHEN new.text <> '' BEGIN
    INSERT INTO user_message_fts (rowid, text) VALUES (new.id, new.text);
END;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE TRIGGER user_messages_fts_delete AFTER DELETE ON user_messages
WHEN old.text <> '' BEGIN
    INSERT INTO user_message_fts (user_message_fts, rowid, text) VALUES ('delete', old.id, old.text);
END;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE TRIGGER user_messages_fts_update AFTER UPDATE OF text ON user_messages BEGIN
    INSERT INTO user_message_fts (user_message_fts, rowid, text)
        SELECT 'delete', old.id, old.text WHERE old.text <> '';
    INSERT INTO user_message_fts (rowid, text)
        SELECT new.id, new.text WHERE new.text <> '';
END;
-- +goose StatementEnd

-- +goose Down
DROP TRIGGER user_messages_fts_insert;
DROP TRIGGER user_messages_fts_delete;
DROP TRIGGER user_messages_fts_update;

-- +goose StatementBegin
CREATE TRIGGER user_messages_fts_insert AFTER INSERT ON user_messages BEGIN
    INSERT INTO user_message_fts (rowid, text) VALUES (new.id, new.text);
END;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE TRIGGER user_messages_fts_delete AFTER DELETE ON user_messages BEGIN
    INSERT INTO user_message_fts (user_message_fts, rowid, text) VALUES ('delete', old.id, old.text);
END;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE TRIGGER user_messages_fts_update AFTER UPDATE OF text ON user_messages BEGIN
    INSERT INTO user_message_fts (user_message_fts, rowid, text) VALUES ('delete', old.id, old.text);
    INSERT INTO user_message_fts (rowid, text) VALUES (new.id, new.text);
END;
-- +goose StatementEnd

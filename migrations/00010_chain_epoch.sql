-- chain_epoch counts the changes to threads rows that a history chain's
-- links (store.ChainLink) depend on, so that store.BaseChain can keep the
-- links it read while the count stands: a thread indexed or deleted, its
-- file moved (rollout_path, archived), its base changed (base_id,
-- base_size), the messages it inherits changed (inherited_messages), or
-- its indexed part shrank (a rescan of a rewritten file). The growth of
-- indexed_size, every append, does not count: a cached link's indexed size
-- may lag behind, never run ahead.

-- +goose Up
CREATE TABLE chain_epoch (n INTEGER NOT NULL);
INSERT INTO chain_epoch (n) VALUES (0);

-- +goose StatementBegin
CREATE TRIGGER threads_chain_epoch_insert AFTER INSERT ON threads BEGIN
    UPDATE chain_epoch SET n = n + 1;
END;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE TRIGGER threads_chain_epoch_delete AFTER DELETE ON threads BEGIN
    UPDATE chain_epoch SET n = n + 1;
END;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE TRIGGER threads_chain_epoch_update
AFTER UPDATE OF id, rollout_path, archived, base_id, base_size, inherited_messages, indexed_size ON threads
WHEN old.id IS NOT new.id OR old.rollout_path IS NOT new.rollout_path OR old.archived IS NOT new.archived
    OR old.base_id IS NOT new.base_id OR old.base_size IS NOT new.base_size
    OR old.inherited_messages IS NOT new.inherited_messages OR new.indexed_size < old.indexed_size BEGIN
    UPDATE chain_epoch SET n = n + 1;
END;
-- +goose StatementEnd

-- +goose Down
DROP TRIGGER threads_chain_epoch_update;
DROP TRIGGER threads_chain_epoch_delete;
DROP TRIGGER threads_chain_epoch_insert;
DROP TABLE chain_epoch;

-- A fork's inherited user messages (docs/SCHEMA.md, "History chains").
-- threads.inherited_messages counts the first user messages of a thread
-- that are its parent's (ordinals 0 to inherited_messages-1):
--
--   - a reference fork holds no rows for them: they resolve through its
--     base (same ordinals, same positions), so a fork is O(1) in the
--     number of prompts it inherits;
--   - a copy fork holds copied rows, without search text while its parent
--     is indexed (search finds the prompt in the parent, and through the
--     fork when the parent is filtered out), with it once the parent is
--     gone, so that the prompt stays findable.
--
-- A rollback in the fork's own file may lower the count; new messages
-- continue from it.

-- +goose Up
ALTER TABLE threads ADD COLUMN inherited_messages INTEGER NOT NULL DEFAULT 0;
-- Reference forks: the rows before the base's end are the base's.
UPDATE threads SET inherited_messages = (
    SELECT COUNT(*) FROM user_messages m
    WHERE m.thread_id = threads.id AND m.byte_offset < threads.base_size)
WHERE base_id IS NOT NULL;
DELETE FROM user_messages WHERE id IN (
    SELECT m.id FROM user_messages m JOIN threads t ON t.id = m.thread_id
    WHERE t.base_id IS NOT NULL AND m.ordinal < t.inherited_messages);
-- Copy forks: only their files say where the copy ends; rescan them.
INSERT OR REPLACE INTO index_state (key, value)
    SELECT 'rescan', 'migration 00006: inherited messages'
    WHERE EXISTS (SELECT 1 FROM threads WHERE parent_id IS NOT NULL AND base_id IS NULL);

-- +goose Down
ALTER TABLE threads DROP COLUMN inherited_messages;
INSERT OR REPLACE INTO index_state (key, value)
    SELECT 'rescan', 'migration 00006 undone: inherited messages'
    WHERE EXISTS (SELECT 1 FROM threads WHERE parent_id IS NOT NULL);

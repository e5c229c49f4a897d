-- A copy fork's copied user messages: how many of its first messages it
-- copied from its parent (0 for any other thread). As in the local index
-- (docs/SCHEMA.md, copiedTexts), search finds a copied prompt through the
-- parent while the parent is here, and in the fork once it is gone, so a
-- prompt is found once. Copy forks made before this column count none.

-- +goose Up
ALTER TABLE threads ADD COLUMN copied_messages integer NOT NULL DEFAULT 0;
CREATE INDEX threads_copies ON threads (parent_id) WHERE copied_messages > 0;

-- +goose Down
DROP INDEX threads_copies;
ALTER TABLE threads DROP COLUMN copied_messages;

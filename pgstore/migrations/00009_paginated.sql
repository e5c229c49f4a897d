-- Paginated threads and reverts, as the local index keeps them
-- (docs/SCHEMA.md, History chains). A paginated thread numbers every line
-- with a top-level ordinal: next_ordinal is the ordinal its next line
-- gets. A revert keeps a thread's row (the head, where appends go) and
-- moves the bytes it cuts back into into a row of their own, a *link*:
-- link_of names the thread whose earlier bytes a link holds (NULL for a
-- thread). Links are never listed, counted, searched by or addressed by
-- the API; the thread's base chain reads through them like any base.

-- +goose Up
ALTER TABLE threads
    ADD COLUMN history_mode text   NOT NULL DEFAULT 'legacy',
    ADD COLUMN next_ordinal bigint NOT NULL DEFAULT 0,
    ADD COLUMN link_of      text;
CREATE INDEX threads_links ON threads (link_of) WHERE link_of IS NOT NULL;

-- +goose Down
DROP INDEX threads_links;
ALTER TABLE threads DROP COLUMN history_mode, DROP COLUMN next_ordinal, DROP COLUMN link_of;

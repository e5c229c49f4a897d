-- Lists filtered by a working directory, a source or a model provider and
-- sorted by creation (GET /v1/threads?sort=created&cwd=..., Codex's
-- thread/list with cwd, sourceKinds or modelProviders and its default
-- sortKey created_at) had no index in that order: a directory's page
-- sorted every thread of the directory (18 ms a page for one directory in
-- 64 among 100,000 threads), a rare source or provider walked
-- threads_created and tested every thread. These serve such a page in
-- order, as threads_cwd_updated serves a directory's in updated order.
--
-- They cost an append nothing: an append changes updated_at and the sizes,
-- never cwd, source, model_provider or created_at, and SQLite updates only
-- the indexes holding a column an UPDATE changes. (Indexes of source and
-- provider in updated order cost every append's index commit a quarter
-- more and were left out; lists by those in updated order walk
-- threads_updated.)

-- +goose Up
CREATE INDEX threads_cwd_created ON threads (cwd, created_at, id);
CREATE INDEX threads_source_created ON threads (source, created_at, id);
CREATE INDEX threads_model_provider_created ON threads (model_provider, created_at, id);

-- +goose Down
DROP INDEX threads_cwd_created;
DROP INDEX threads_source_created;
DROP INDEX threads_model_provider_created;

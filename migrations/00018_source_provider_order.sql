-- Lists filtered by source or model provider (GET /v1/threads?source=,
-- ?model_provider=; Codex's thread/list sourceKinds and modelProviders)
-- walked threads_updated and tested every thread: a value few threads
-- have read the whole home for one page (127 ms for a source no thread
-- has, among 100,000). These indexes serve such a page in order, as
-- threads_cwd_updated serves a working directory's.

-- +goose Up
CREATE INDEX threads_source_updated ON threads (source, updated_at, id);
CREATE INDEX threads_model_provider_updated ON threads (model_provider, updated_at, id);

-- +goose Down
DROP INDEX threads_source_updated;
DROP INDEX threads_model_provider_updated;

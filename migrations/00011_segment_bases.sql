-- A reverted reference fork (docs/SCHEMA.md, History chains): a thread
-- whose first file continues another thread's history (its first
-- thread_segments link, seq 0, names that base) and that was then
-- reverted (threads.base_id is its own id). Its inherited_messages count
-- the messages it inherits through that base, and the walks that look for
-- the threads inheriting from a base (delete's referrers, a rollback's
-- detaching of forks, search) look at first links too: this index finds
-- them. Such a thread could not be indexed before (its scan failed), so
-- no row needs a rescan.

-- +goose Up
CREATE INDEX thread_segments_base ON thread_segments (base_id) WHERE seq = 0;

-- +goose Down
DROP INDEX thread_segments_base;

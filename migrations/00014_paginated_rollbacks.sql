-- A thread_rolled_back line in a paginated history counts for nothing, as
-- in Codex 0.169 (docs/CODEX.md): an index made before counted it, with
-- fewer messages than the file holds. An index that kept what such a
-- rollback dropped (rolled_back_messages of a paginated thread, migration
-- 00013) asks for a rescan; one made before 00013 cannot tell, and needs
-- reindex --full if a marker was ever appended to a paginated thread.

-- +goose Up
INSERT OR REPLACE INTO index_state (key, value)
    SELECT 'rescan', 'migration 00014: rollback markers in paginated histories count for nothing'
    WHERE EXISTS (SELECT 1 FROM rolled_back_messages r JOIN threads t ON t.id = r.thread_id
        WHERE t.history_mode = 'paginated');

-- +goose Down
SELECT 1;

-- A thread's open turn (turn_offset, turn_id) is kept canonical from now
-- on (rollout.OpenTurn): no open turn is (0, ''), and a turn without an id
-- is no longer open once it has a counted user message. Rows written
-- before kept the id of a turn that had ended, or -1 for such a turn;
-- neither changed what later appends do, and a node still running the
-- code before writes them again until it is upgraded, which changes
-- nothing either. Most threads have an ended turn, so the rows are
-- brought to the canonical form a thousand at a time, each batch its own
-- transaction: appends on other nodes wait for one batch at most.

-- +goose NO TRANSACTION
-- +goose Up
-- +goose StatementBegin
DO $$
DECLARE
    after text := '';
    batch text[];
BEGIN
    LOOP
        SELECT array_agg(id ORDER BY id) INTO batch
            FROM (SELECT id FROM threads WHERE id > after ORDER BY id LIMIT 1000) b;
        EXIT WHEN batch IS NULL;
        UPDATE threads SET
                turn_id = CASE WHEN turn_offset = 0 THEN '' ELSE turn_id END,
                turn_offset = CASE WHEN turn_offset < 0 AND turn_id = '' THEN 0 ELSE turn_offset END
            WHERE id = ANY (batch)
                AND (turn_offset = 0 AND turn_id <> '' OR turn_offset < 0 AND turn_id = '');
        after := batch[array_length(batch, 1)];
        COMMIT;
    END LOOP;
END
$$;
-- +goose StatementEnd

-- +goose Down
SELECT 1;

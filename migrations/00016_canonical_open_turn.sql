-- A thread's open turn (turn_offset, turn_id) is kept canonical from now
-- on (rollout.OpenTurn): no open turn is (0, ''), and a turn without an id
-- is no longer open once it has a counted user message. Rows written
-- before kept the id of a turn that had ended, or -1 for such a turn;
-- neither changed what later appends do, but a rebuild now writes the
-- canonical form, so the rows written before are brought to it.

-- +goose Up
UPDATE threads SET turn_id = '' WHERE turn_offset = 0 AND turn_id <> '';
UPDATE threads SET turn_offset = 0 WHERE turn_offset < 0 AND turn_id = '';

-- +goose Down
SELECT 1;

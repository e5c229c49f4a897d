-- A key also keeps the thread as its append left it, so that a retry is
-- answered with the first answer whole, as the local index answers it
-- (docs/API.md, Safe writes). NULL in rows recorded before: their retries
-- are answered with the thread as it is.

-- +goose Up
ALTER TABLE idempotency_keys ADD COLUMN thread_after jsonb;

-- +goose Down
ALTER TABLE idempotency_keys DROP COLUMN thread_after;

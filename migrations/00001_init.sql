-- +goose Up
-- placeholder: replaced by the real schema
SELECT 1;
-- +goose Down
SELECT 1;

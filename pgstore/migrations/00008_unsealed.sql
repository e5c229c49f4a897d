-- The sealer asks every second, on every node, for the threads with the
-- most bytes not yet sealed (Store.Unsealed, unsealedSQL). Without an
-- index that is a scan of the whole table: a million rows per node per
-- second at scale. Appends already change an indexed column (updated_at,
-- threads_newest), so they make no HOT updates anyway: this index costs
-- each one an index entry.

-- +goose Up
CREATE INDEX threads_unsealed ON threads ((size - sealed_size) DESC);

-- +goose Down
DROP INDEX threads_unsealed;

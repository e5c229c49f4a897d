// Package migrations holds the PostgreSQL schema of the distributed backend
// as goose SQL migrations, embedded so that every binary carries the schema
// it expects.
package migrations

import "embed"

// FS holds the migration files, applied in order by pgstore.Open.
//
//go:embed *.sql
var FS embed.FS

// Package migrations holds the index schema as goose SQL migrations,
// embedded so that every binary carries the schema it expects.
package migrations

import "embed"

// FS holds the migration files, applied in order by store.Open.
//
//go:embed *.sql
var FS embed.FS

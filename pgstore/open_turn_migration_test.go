//go:build distributed

package pgstore

import (
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"

	"github.com/spoolhq/spool/pgstore/migrations"
)

// TestMigrationCanonicalOpenTurn applies migration 00014 to threads whose
// open turn is in the forms written before it (an ended turn's id, a turn
// without id still open after its message): they become the form an
// append writes now, and a canonical row is left as it is.
func TestMigrationCanonicalOpenTurn(t *testing.T) {
	ctx := t.Context()
	dsn := testDSN(t)
	s := openStore(t, dsn, nil)
	type turn struct {
		offset int64
		id     string
	}
	rows := map[string]struct{ before, after turn }{
		"ended":           {turn{0, "t1"}, turn{0, ""}},
		"idless":          {turn{-1, ""}, turn{0, ""}},
		"open":            {turn{-1, "t2"}, turn{-1, "t2"}},
		"starting":        {turn{300, "t3"}, turn{300, "t3"}},
		"starting-idless": {turn{300, ""}, turn{300, ""}},
		"none":            {turn{0, ""}, turn{0, ""}},
	}
	ids := map[string]string{}
	for name, r := range rows {
		id := newID(t)
		ids[name] = id
		if _, err := s.Create(ctx, NewThread{ID: id, Lines: metaLine(id)}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.pool.Exec(ctx, `UPDATE threads SET turn_offset = $2, turn_id = $3 WHERE id = $1`, id, r.before.offset, r.before.id); err != nil {
			t.Fatal(err)
		}
	}
	// More threads than one batch of the migration, every one in the
	// form written before.
	if _, err := s.pool.Exec(ctx, `INSERT INTO threads (id, created_at, updated_at, size, cwd, source, originator,
			cli_version, model_provider, git_commit, git_branch, git_origin, history_mode, turn_offset, turn_id)
		SELECT 'bulk-' || lpad(n::text, 5, '0'), 0, 0, 0, '/', 'cli', '', '', '', '', '', '', 'paginated', 0, 'ended-' || n
		FROM generate_series(1, 2500) n`); err != nil {
		t.Fatal(err)
	}
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		t.Fatal(err)
	}
	db := stdlib.OpenDB(*cfg)
	defer db.Close()
	p, err := goose.NewProvider(goose.DialectPostgres, db, migrations.FS, goose.WithDisableGlobalRegistry(true))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.DownTo(ctx, 13); err != nil {
		t.Fatal(err)
	}
	if _, err := p.UpTo(ctx, 14); err != nil {
		t.Fatal(err)
	}
	var stale int
	if err := s.pool.QueryRow(ctx, `SELECT count(*) FROM threads WHERE turn_offset = 0 AND turn_id <> ''
		OR turn_offset < 0 AND turn_id = ''`).Scan(&stale); err != nil || stale != 0 {
		t.Errorf("%d threads left in the form written before (%v), want none", stale, err)
	}
	for name, r := range rows {
		var got turn
		if err := s.pool.QueryRow(ctx, `SELECT turn_offset, turn_id FROM threads WHERE id = $1`, ids[name]).Scan(&got.offset, &got.id); err != nil {
			t.Fatal(err)
		}
		if got != r.after {
			t.Errorf("%s: %+v after the migration, want %+v", name, got, r.after)
		}
	}
}

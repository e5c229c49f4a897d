package store

import (
	"testing"
)

// TestMigrationCanonicalOpenTurn upgrades an index whose rows hold an open
// turn in the forms written before migration 00016 (an ended turn's id, a
// turn without id still open after its message): they become the form a
// rebuild writes, and a canonical row is left as it is.
func TestMigrationCanonicalOpenTurn(t *testing.T) {
	ctx := t.Context()
	db, p := migratorAt(t, closedIndex(t))
	if _, err := p.DownTo(ctx, 15); err != nil {
		t.Fatal(err)
	}
	type turn struct {
		Offset int64  `db:"turn_offset"`
		ID     string `db:"turn_id"`
	}
	rows := map[string]struct{ before, after turn }{
		"ended":           {turn{0, "t1"}, turn{0, ""}},
		"idless":          {turn{-1, ""}, turn{0, ""}},
		"open":            {turn{-1, "t2"}, turn{-1, "t2"}},
		"starting":        {turn{300, "t3"}, turn{300, "t3"}},
		"starting-idless": {turn{300, ""}, turn{300, ""}},
		"none":            {turn{0, ""}, turn{0, ""}},
	}
	for id, r := range rows {
		if _, err := db.ExecContext(ctx, `INSERT INTO threads (id, rollout_path, created_at, updated_at, cwd, source,
			originator, cli_version, model_provider, parent_id, fork_user_message, fork_offset, line_count,
			user_message_count, indexed_size, file_size, file_mtime, turn_offset, turn_id)
			VALUES (?, ?, 1, 1, '/', 'cli', '', '', '', NULL, -1, -1, 4, 1, 400, 400, 0, ?, ?)`,
			id, id+".jsonl", r.before.Offset, r.before.ID); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := p.UpTo(ctx, 16); err != nil {
		t.Fatal(err)
	}
	for id, r := range rows {
		var got turn
		if err := db.GetContext(ctx, &got, `SELECT turn_offset, turn_id FROM threads WHERE id = ?`, id); err != nil {
			t.Fatal(err)
		}
		if got != r.after {
			t.Errorf("%s: %+v after the migration, want %+v", id, got, r.after)
		}
	}
}

package store

import (
	"testing"
)

// TestMigrationInheritedMessages upgrades an index written before
// migration 00006, whose reference fork holds copies of its base's rows:
// the copies go, the fork counts them as inherited, and a copy fork asks
// for a rescan (only its file says where its copy ends).
func TestMigrationInheritedMessages(t *testing.T) {
	ctx := t.Context()
	db, p := migratorAt(t, closedIndex(t))
	if _, err := p.DownTo(ctx, 5); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		`INSERT INTO threads (id, rollout_path, created_at, updated_at, cwd, source, originator, cli_version,
			model_provider, parent_id, fork_user_message, fork_offset, line_count, user_message_count,
			indexed_size, file_size, file_mtime, base_id, base_size)
		VALUES ('b', 'b.jsonl', 1, 1, '/', 'cli', '', '', '', NULL, -1, -1, 9, 3, 4000, 4000, 0, NULL, 0),
			('f', 'f.jsonl', 2, 2, '/', 'cli', '', '', '', 'b', 2, 3000, 2, 3, 500, 500, 0, 'b', 3000),
			('c', 'c.jsonl', 3, 3, '/', 'cli', '', '', '', 'b', 1, 2000, 5, 1, 2100, 2100, 0, NULL, 0)`,
		`INSERT INTO user_messages (thread_id, ordinal, byte_offset, line_number, preview, text) VALUES
			('b', 0, 1000, 1, 'one', 'one'), ('b', 1, 2000, 2, 'two', 'two'), ('b', 2, 3000, 3, 'three', 'three'),
			('f', 0, 1000, 1, 'one', ''), ('f', 1, 2000, 2, 'two', ''), ('f', 2, 3200, 1, 'own', 'own'),
			('c', 0, 1100, 2, 'one', '')`,
	} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := p.UpTo(ctx, 6); err != nil {
		t.Fatal(err)
	}
	var got []struct {
		ID        string `db:"id"`
		Inherited int    `db:"inherited_messages"`
		Rows      int    `db:"rows"`
	}
	const q = `SELECT id, inherited_messages, (SELECT COUNT(*) FROM user_messages m WHERE m.thread_id = t.id) AS rows
		FROM threads t ORDER BY id`
	if err := db.SelectContext(ctx, &got, q); err != nil {
		t.Fatal(err)
	}
	want := []struct {
		id              string
		inherited, rows int
	}{{"b", 0, 3}, {"c", 0, 1}, {"f", 2, 1}}
	for i, w := range want {
		if g := got[i]; g.ID != w.id || g.Inherited != w.inherited || g.Rows != w.rows {
			t.Errorf("thread %s: %d inherited, %d rows; want %d and %d", g.ID, g.Inherited, g.Rows, w.inherited, w.rows)
		}
	}
	var why string
	if err := db.GetContext(ctx, &why, `SELECT value FROM index_state WHERE key = 'rescan'`); err != nil {
		t.Fatalf("no rescan asked for the copy fork: %v", err)
	}
}

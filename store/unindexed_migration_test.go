package store

import "testing"

// TestMigrationUnindexedForks upgrades an index made before unindexed
// forks were recorded (migration 00021): the record of the last clean
// close goes, so that the next open walks the root and records the forks
// an earlier sync could not index, instead of skipping the walk and
// leaving a delete of their bases unguarded.
func TestMigrationUnindexedForks(t *testing.T) {
	ctx := t.Context()
	db, p := migratorAt(t, closedIndex(t))
	if _, err := p.DownTo(ctx, 20); err != nil {
		t.Fatal(err)
	}
	if _, err := db.ExecContext(ctx, `INSERT INTO index_state (key, value) VALUES ('clean_close', '{}')`); err != nil {
		t.Fatal(err)
	}
	if _, err := p.UpTo(ctx, 21); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := db.GetContext(ctx, &n, `SELECT COUNT(*) FROM index_state WHERE key = 'clean_close'`); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Fatal("the clean close record survived the migration: the next open would skip its walk")
	}
	if err := db.GetContext(ctx, &n, `SELECT COUNT(*) FROM unindexed_forks`); err != nil {
		t.Fatal(err)
	}
}

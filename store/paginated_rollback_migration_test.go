package store

import (
	"testing"
)

// TestMigrationPaginatedRollbacks upgrades an index in which a rollback
// marker dropped a paginated thread's messages (a rolled back row, as
// migration 00013 keeps it): the index asks for a rescan, since the marker
// now counts for nothing. One whose rolled back rows are a legacy
// thread's does not.
func TestMigrationPaginatedRollbacks(t *testing.T) {
	for _, tc := range []struct {
		mode   string
		rescan bool
	}{{"paginated", true}, {"legacy", false}} {
		t.Run(tc.mode, func(t *testing.T) {
			ctx := t.Context()
			db, p := migratorAt(t, closedIndex(t))
			if _, err := p.DownTo(ctx, 13); err != nil {
				t.Fatal(err)
			}
			for _, st := range []struct {
				q    string
				args []any
			}{
				{`INSERT INTO threads (id, rollout_path, created_at, updated_at, cwd, source, originator, cli_version,
					model_provider, parent_id, fork_user_message, fork_offset, line_count, user_message_count,
					indexed_size, file_size, file_mtime, history_mode)
				VALUES ('p', 'p.jsonl', 1, 1, '/', 'cli', '', '', '', NULL, -1, -1, 4, 1, 400, 400, 0, ?)`, []any{tc.mode}},
				{`INSERT INTO rolled_back_messages (thread_id, dropped_at, ordinal, byte_offset, line_number)
				VALUES ('p', 300, 1, 200, 2)`, nil},
			} {
				if _, err := db.ExecContext(ctx, st.q, st.args...); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := p.UpTo(ctx, 14); err != nil {
				t.Fatal(err)
			}
			var n int
			if err := db.GetContext(ctx, &n, `SELECT COUNT(*) FROM index_state WHERE key = 'rescan'`); err != nil {
				t.Fatal(err)
			}
			if got := n == 1; got != tc.rescan {
				t.Fatalf("rescan asked: %v, want %v", got, tc.rescan)
			}
		})
	}
}

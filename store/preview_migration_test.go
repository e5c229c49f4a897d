package store

import (
	"testing"
)

// TestMigrationCodexPreviews upgrades an index made before previews were
// taken as Codex shows them (migration 00019): one holding threads asks
// for a rescan, which recomputes each preview and its position; an empty
// one does not.
func TestMigrationCodexPreviews(t *testing.T) {
	for _, tc := range []struct {
		name   string
		thread bool
		rescan bool
	}{{"threads", true, true}, {"empty", false, false}} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := t.Context()
			db, p := migratorAt(t, closedIndex(t))
			if _, err := p.DownTo(ctx, 18); err != nil {
				t.Fatal(err)
			}
			if tc.thread {
				if _, err := db.ExecContext(ctx, `INSERT INTO threads (id, rollout_path, created_at, updated_at, cwd, source,
					originator, cli_version, model_provider, parent_id, fork_user_message, fork_offset, line_count,
					user_message_count, indexed_size, file_size, file_mtime, preview)
				VALUES ('p', 'p.jsonl', 1, 1, '/', 'cli', '', '', '', NULL, -1, -1, 4, 1, 400, 400, 0, 'old')`); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := p.UpTo(ctx, 19); err != nil {
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

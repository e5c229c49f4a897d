// Package codexstate keeps the thread cache Codex 0.169 keeps in a Codex
// home (state_5.sqlite, table threads) and its projection of histories
// (thread_history_1.sqlite) in step with what spool changes in the home's
// files: where a thread it moves is and whether it is archived, the name
// it gives one, the threads it deletes, and the histories it rewrites.
// Codex trusts them over the files for a thread it knows: without this, a
// thread spool archived could not be unarchived or resumed in Codex, a
// name spool gave never showed there, a deleted thread stayed readable,
// and a purged thread's forks lost their inherited turns (docs/CODEX.md).
// Only rows Codex made are changed or removed: a home without these files,
// or a thread Codex never saw, is left alone, and nothing is ever created.
package codexstate

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"time"

	_ "modernc.org/sqlite" // the "sqlite" driver
)

// File is the name of Codex's thread cache in a Codex home.
const File = "state_5.sqlite"

// HistoryFile is the name of Codex's projection of thread histories in a
// Codex home: the turns and items it read from each thread's files, and
// how far it read (thread_history_projection_state).
const HistoryFile = "thread_history_1.sqlite"

// busyTimeout is how long a change waits for Codex's own writes.
const busyTimeout = 5 * time.Second

// Cache is the thread cache of the Codex home at Home.
type Cache struct {
	Home string
}

// Moved records that thread id's newest file is now at abs, an absolute
// path, archived at the time at when archived is true, else live.
func (c Cache) Moved(ctx context.Context, id, abs string, archived bool, at time.Time) error {
	var archivedAt any // NULL for a live thread, as Codex leaves it
	if archived {
		archivedAt = at.Unix() // Codex counts seconds here
	}
	return c.update(ctx, `UPDATE threads SET rollout_path = ?, archived = ?, archived_at = ? WHERE id = ?`,
		abs, archived, archivedAt, id)
}

// Relocated records that thread id's history now ends in the file at abs,
// an absolute path (a revert's new segment): Codex resumes a thread from
// the file its cache names. Its projection stays: Codex reads the part
// of the history before the segment from it, as after its own revert.
func (c Cache) Relocated(ctx context.Context, id, abs string) error {
	return c.update(ctx, `UPDATE threads SET rollout_path = ? WHERE id = ?`, abs, id)
}

// Named records the name of thread id ("" clears it). A clear also sets
// the row's title back to the thread's first user message, as Codex fills
// it when it builds the row: Codex's own rename of a legacy thread sets
// the title, and Codex shows it as the name of a legacy thread that
// session_index.jsonl does not name.
func (c Cache) Named(ctx context.Context, id, name string) error {
	if name == "" {
		// NULL for no name, as Codex leaves it.
		return c.update(ctx, `UPDATE threads SET name = NULL, title = first_user_message WHERE id = ?`, id)
	}
	return c.update(ctx, `UPDATE threads SET name = ? WHERE id = ?`, name, id)
}

// Deleted forgets thread id, which spool deleted, as Codex's own delete
// does: its row, and its projection. Codex otherwise goes on reading a
// thread whose files are gone.
func (c Cache) Deleted(ctx context.Context, id string) error {
	if err := c.update(ctx, `DELETE FROM threads WHERE id = ?`, id); err != nil {
		return err
	}
	return c.Rewritten(ctx, id)
}

// projectionTables are the tables of Codex's projection of a thread.
var projectionTables = []string{"thread_items", "thread_turns", "thread_history_projection_state"}

// Rewritten forgets Codex's projection of thread id, whose history spool
// rewrote in another layout (a purge's self-contained copy): Codex reads
// a projected thread on from where it left off, so it would miss what the
// rewrite moved before that point. It projects the thread again from its
// files.
func (c Cache) Rewritten(ctx context.Context, id string) error {
	stmts := make([]string, len(projectionTables))
	for i, table := range projectionTables {
		stmts[i] = `DELETE FROM ` + table + ` WHERE thread_id = ?`
	}
	return c.updateFile(ctx, HistoryFile, stmts, id)
}

// update runs one statement on the cache, when there is one.
func (c Cache) update(ctx context.Context, query string, args ...any) error {
	return c.updateFile(ctx, File, []string{query}, args...)
}

// updateFile runs statements, each with args, in one transaction on
// Codex's database file name in the home, when there is one: Codex,
// writing meanwhile, sees all of them or none. Foreign keys are on, as in
// Codex's connections, so a delete takes what Codex's own takes with it.
func (c Cache) updateFile(ctx context.Context, name string, stmts []string, args ...any) error {
	path := filepath.Join(c.Home, name)
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	q := url.Values{}
	q.Set("mode", "rw") // never create it
	q.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", busyTimeout.Milliseconds()))
	q.Add("_pragma", "foreign_keys(1)")
	q.Set("_txlock", "immediate")
	u := url.URL{Scheme: "file", Path: filepath.ToSlash(path), RawQuery: q.Encode()}
	db, err := sql.Open("sqlite", u.String())
	if err != nil {
		return fmt.Errorf("codex thread cache %s: %w", path, err)
	}
	defer db.Close()
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("codex thread cache %s: %w", path, err)
	}
	defer tx.Rollback()
	for _, stmt := range stmts {
		if _, err := tx.ExecContext(ctx, stmt, args...); err != nil {
			return fmt.Errorf("codex thread cache %s: %w", path, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("codex thread cache %s: %w", path, err)
	}
	return nil
}

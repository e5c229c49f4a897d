// Package codexstate keeps the thread cache Codex 0.169 keeps in a Codex
// home (state_5.sqlite, table threads) in step with what spool changes in
// the home's files: where a thread it moves is and whether it is
// archived, and the name it gives one. Codex trusts that cache over the
// files for a thread it knows: without this, a thread spool archived
// could not be unarchived or resumed in Codex, and a name spool gave never
// showed there (docs/CODEX.md). Only rows Codex made are changed: a home
// without the cache, or a thread Codex never saw, is left alone, and
// nothing is ever created.
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

// Named records the name of thread id ("" clears it).
func (c Cache) Named(ctx context.Context, id, name string) error {
	var value any // NULL for no name, as Codex leaves it
	if name != "" {
		value = name
	}
	return c.update(ctx, `UPDATE threads SET name = ? WHERE id = ?`, value, id)
}

// update runs one statement on the cache, when there is one.
func (c Cache) update(ctx context.Context, query string, args ...any) error {
	path := filepath.Join(c.Home, File)
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	q := url.Values{}
	q.Set("mode", "rw") // never create it
	q.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", busyTimeout.Milliseconds()))
	u := url.URL{Scheme: "file", Path: filepath.ToSlash(path), RawQuery: q.Encode()}
	db, err := sql.Open("sqlite", u.String())
	if err != nil {
		return fmt.Errorf("codex thread cache %s: %w", path, err)
	}
	defer db.Close()
	if _, err := db.ExecContext(ctx, query, args...); err != nil {
		return fmt.Errorf("codex thread cache %s: %w", path, err)
	}
	return nil
}

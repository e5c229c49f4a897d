package codexstate_test

import (
	"database/sql"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"time"

	_ "modernc.org/sqlite"

	"github.com/spoolhq/spool/codexstate"
)

// codexCache makes a thread cache shaped as Codex 0.169's (the columns
// this package changes, and one it reads) holding thread id, a legacy
// thread Codex renamed: its title is the name Codex gave, not its first
// user message.
func codexCache(t *testing.T, home, id string) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", filepath.Join(home, codexstate.File))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if _, err := db.Exec(`CREATE TABLE threads (id TEXT PRIMARY KEY, rollout_path TEXT NOT NULL,
		archived INTEGER NOT NULL DEFAULT 0, archived_at INTEGER, name TEXT, title TEXT NOT NULL,
		first_user_message TEXT NOT NULL DEFAULT '')`); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`INSERT INTO threads (id, rollout_path, name, title, first_user_message)
		VALUES (?, '/home/sessions/a.jsonl', 'codex name', 'codex name', 'first prompt')`, id); err != nil {
		t.Fatal(err)
	}
	return db
}

func TestMovedAndNamed(t *testing.T) {
	home := t.TempDir()
	const id = "019dab90-0000-7000-8000-000000000001"
	db := codexCache(t, home, id)
	c := codexstate.Cache{Home: home}
	at := time.Unix(1795686798, 500)

	row := func() (path string, archived bool, archivedAt sql.NullInt64, name sql.NullString, title string) {
		t.Helper()
		if err := db.QueryRow(`SELECT rollout_path, archived, archived_at, name, title FROM threads WHERE id = ?`, id).
			Scan(&path, &archived, &archivedAt, &name, &title); err != nil {
			t.Fatal(err)
		}
		return
	}
	if err := c.Moved(t.Context(), id, "/home/archived_sessions/a.jsonl", true, at); err != nil {
		t.Fatal(err)
	}
	if path, archived, archivedAt, _, title := row(); path != "/home/archived_sessions/a.jsonl" || !archived || archivedAt.Int64 != 1795686798 || title != "codex name" {
		t.Fatalf("after an archive: %s archived=%t at %v, title %q", path, archived, archivedAt, title)
	}
	if err := c.Moved(t.Context(), id, "/home/sessions/a.jsonl", false, at); err != nil {
		t.Fatal(err)
	}
	if path, archived, archivedAt, _, _ := row(); path != "/home/sessions/a.jsonl" || archived || archivedAt.Valid {
		t.Fatalf("after an unarchive: %s archived=%t at %v", path, archived, archivedAt)
	}
	if err := c.Named(t.Context(), id, "spool name"); err != nil {
		t.Fatal(err)
	}
	if _, _, _, name, title := row(); name.String != "spool name" || title != "codex name" {
		t.Fatalf("name = %v, title %q; want spool's name, Codex's title kept", name, title)
	}
	// Codex shows a legacy thread's title as its name when
	// session_index.jsonl names it not: a clear takes it back to the first
	// user message, as Codex fills it when it builds the row.
	if err := c.Named(t.Context(), id, ""); err != nil {
		t.Fatal(err)
	}
	if _, _, _, name, title := row(); name.Valid || title != "first prompt" {
		t.Fatalf("a cleared name = %v, title %q; want NULL, the first user message", name, title)
	}
	// A thread Codex never saw changes nothing.
	if err := c.Named(t.Context(), "019dab90-0000-7000-8000-000000000002", "x"); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := db.QueryRow(`SELECT count(*) FROM threads`).Scan(&n); err != nil || n != 1 {
		t.Fatalf("%d rows (%v), want the one Codex made", n, err)
	}
}

// TestNoCacheNoChange: a home Codex never used has no cache, and gets none.
func TestNoCacheNoChange(t *testing.T) {
	home := t.TempDir()
	c := codexstate.Cache{Home: home}
	if err := c.Moved(t.Context(), "019dab90-0000-7000-8000-000000000001", "/x", true, time.Now()); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(home, codexstate.File)); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("a cache was made: %v", err)
	}
}

// TestOtherSchema: a cache of another shape is an error, for the caller to
// log, not a panic or a silent change.
func TestOtherSchema(t *testing.T) {
	home := t.TempDir()
	db, err := sql.Open("sqlite", filepath.Join(home, codexstate.File))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`CREATE TABLE threads (id TEXT PRIMARY KEY)`); err != nil {
		t.Fatal(err)
	}
	if err := (codexstate.Cache{Home: home}).Named(t.Context(), "019dab90-0000-7000-8000-000000000001", "x"); err == nil {
		t.Fatal("a cache without a name column took a name")
	}
}

// TestDeletedAndRewritten: a delete forgets the thread's row and its
// projection, a rewrite its projection only; other threads keep theirs.
func TestDeletedAndRewritten(t *testing.T) {
	home := t.TempDir()
	const id, other = "019dab90-0000-7000-8000-000000000001", "019dab90-0000-7000-8000-000000000002"
	state := codexCache(t, home, id)
	if _, err := state.Exec(`INSERT INTO threads (id, rollout_path, title) VALUES (?, '/home/b.jsonl', '')`, other); err != nil {
		t.Fatal(err)
	}
	hist, err := sql.Open("sqlite", filepath.Join(home, codexstate.HistoryFile))
	if err != nil {
		t.Fatal(err)
	}
	defer hist.Close()
	for _, table := range []string{"thread_items", "thread_turns", "thread_history_projection_state"} {
		if _, err := hist.Exec(`CREATE TABLE ` + table + ` (thread_id TEXT NOT NULL)`); err != nil {
			t.Fatal(err)
		}
		for _, th := range []string{id, other} {
			if _, err := hist.Exec(`INSERT INTO `+table+` (thread_id) VALUES (?)`, th); err != nil {
				t.Fatal(err)
			}
		}
	}
	count := func(db *sql.DB, query string) int {
		t.Helper()
		var n int
		if err := db.QueryRow(query).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	projected := func() int {
		return count(hist, `SELECT (SELECT count(*) FROM thread_items) + (SELECT count(*) FROM thread_turns) + (SELECT count(*) FROM thread_history_projection_state)`)
	}
	c := codexstate.Cache{Home: home}
	if err := c.Rewritten(t.Context(), id); err != nil {
		t.Fatal(err)
	}
	if n, rows := projected(), count(state, `SELECT count(*) FROM threads`); n != 3 || rows != 2 {
		t.Fatalf("after a rewrite: %d projection rows, %d threads; want the other's 3, both threads", n, rows)
	}
	if err := c.Deleted(t.Context(), other); err != nil {
		t.Fatal(err)
	}
	if n, rows := projected(), count(state, `SELECT count(*) FROM threads WHERE id = '`+id+`'`); n != 0 || rows != 1 || count(state, `SELECT count(*) FROM threads`) != 1 {
		t.Fatalf("after a delete: %d projection rows, want none; the other thread's row must stay", n)
	}
}

// TestRelocated: a revert's new segment becomes the file Codex's cache
// names for the thread; nothing else of the row changes.
func TestRelocated(t *testing.T) {
	home := t.TempDir()
	const id = "019dab90-0000-7000-8000-000000000001"
	db := codexCache(t, home, id)
	if err := (codexstate.Cache{Home: home}).Relocated(t.Context(), id, "/home/sessions/a_seg.jsonl"); err != nil {
		t.Fatal(err)
	}
	var path, name string
	if err := db.QueryRow(`SELECT rollout_path, name FROM threads WHERE id = ?`, id).Scan(&path, &name); err != nil {
		t.Fatal(err)
	}
	if path != "/home/sessions/a_seg.jsonl" || name != "codex name" {
		t.Fatalf("row after a revert: %s, name %q", path, name)
	}
}

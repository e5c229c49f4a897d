package server_test

import (
	"database/sql"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	_ "modernc.org/sqlite"

	"github.com/spoolhq/spool/api"
	"github.com/spoolhq/spool/manager"
	"github.com/spoolhq/spool/server"
)

// TestForkOfAHandEditedIndex: a user who edits spool.db by hand while
// spoold runs (docs/SCHEMA.md invites the sqlite3 shell) can leave a
// thread's row disagreeing with its user-message rows. A fork of such a
// thread read the row, found the rows did not match it on every retry
// (store.ErrParentChanged), and answered 500 internal; it answers 409
// index_drift, naming reindex, and writes no thread.
func TestForkOfAHandEditedIndex(t *testing.T) {
	cases := []struct {
		name string
		// edit changes the index by hand; it returns the thread to fork.
		edit func(root, fork api.Thread) (query, forked string)
	}{
		{"a reference fork's inherited_messages raised", func(root, fork api.Thread) (string, string) {
			return `UPDATE threads SET inherited_messages = 10 WHERE id = '` + fork.ID + `'`, fork.ID
		}},
		{"a thread's user_messages rows deleted", func(root, fork api.Thread) (string, string) {
			return `DELETE FROM user_messages WHERE thread_id = '` + root.ID + `'`, root.ID
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			e := newEnvWith(t, server.Config{}, manager.Options{Root: dir})
			root := e.create(map[string]any{"cwd": "/w"})
			e.appendItems(root.ID, userItem("walrus zero"), userItem("orca one"), userItem("seal two"))
			var fork api.Thread
			e.call("POST", "/v1/threads/"+root.ID+"/fork", map[string]any{"before_user_message": 2}, http.StatusCreated, &fork)

			query, forked := tc.edit(root, fork)
			db, err := sql.Open("sqlite", filepath.Join(dir, "spool.db"))
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			if _, err := db.ExecContext(t.Context(), query); err != nil {
				t.Fatalf("%s: %v", query, err)
			}
			var before int
			if err := db.QueryRowContext(t.Context(), `SELECT COUNT(*) FROM threads`).Scan(&before); err != nil {
				t.Fatal(err)
			}

			body := wantError(t, e.do("POST", "/v1/threads/"+forked+"/fork", "", map[string]any{}), http.StatusConflict, server.CodeIndexDrift)
			if !strings.Contains(body.Error.Message, "reindex") {
				t.Errorf("message %q does not say to run reindex", body.Error.Message)
			}
			var after int
			if err := db.QueryRowContext(t.Context(), `SELECT COUNT(*) FROM threads`).Scan(&after); err != nil {
				t.Fatal(err)
			}
			if after != before {
				t.Errorf("threads after the refused fork = %d, want %d", after, before)
			}
		})
	}
}

// TestWriteWhileTheIndexIsLockedByHand: a sqlite3 shell that holds a write
// transaction on spool.db (BEGIN IMMEDIATE, or an UPDATE typed after
// BEGIN and not yet committed) keeps spoold's writer out. An append then
// waited out the busy timeout and answered 500 internal; it answers 503
// unavailable with Retry-After, saying the index is locked, and wrote
// nothing: the thread reads as before once the shell lets go.
func TestWriteWhileTheIndexIsLockedByHand(t *testing.T) {
	if testing.Short() {
		t.Skip("waits out the index's busy timeout (10 s)")
	}
	dir := t.TempDir()
	e := newEnvWith(t, server.Config{}, manager.Options{Root: dir})
	th := e.create(map[string]any{"cwd": "/w"})
	before := e.appendItems(th.ID, userItem("walrus zero"))

	db, err := sql.Open("sqlite", filepath.Join(dir, "spool.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	conn, err := db.Conn(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(t.Context(), `BEGIN IMMEDIATE`); err != nil {
		t.Fatal(err)
	}
	resp := e.do("POST", "/v1/threads/"+th.ID+"/items", "", userItem("orca one"))
	retry := resp.Header.Get("Retry-After")
	body := wantError(t, resp, http.StatusServiceUnavailable, server.CodeUnavailable)
	if !strings.Contains(body.Error.Message, "locked") || retry == "" {
		t.Errorf("message %q, Retry-After %q: want it to say the index is locked, and when to retry", body.Error.Message, retry)
	}
	if _, err := conn.ExecContext(t.Context(), `ROLLBACK`); err != nil {
		t.Fatal(err)
	}
	var after api.Thread
	e.call("GET", "/v1/threads/"+th.ID, nil, http.StatusOK, &after)
	if after.UserMessageCount != before.Thread.UserMessageCount {
		t.Errorf("user messages after the refused append = %d, want %d", after.UserMessageCount, before.Thread.UserMessageCount)
	}
}

package manager

import (
	"bytes"
	"database/sql"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/spoolhq/spool/internal/fixtures"
	"github.com/spoolhq/spool/rollout"
	"github.com/spoolhq/spool/rolloutfs"
)

// TestClearAndDeleteDropNameLines: spool's clear (a rename to "") and its
// delete rewrite session_index.jsonl without the thread's lines, as
// Codex's thread/delete rewrites it (docs/CODEX.md). Codex lists a legacy
// thread with its last line whose name is not blank, so the empty line
// spool's clear used to append left Codex showing the cleared name; and
// spool's delete left the deleted thread's lines behind. Every other line,
// one that is not a name among them, stays byte for byte, the file keeps
// its mode, and a rebuilt index names the threads as the live one does.
func TestClearAndDeleteDropNameLines(t *testing.T) {
	tests := []struct {
		name string
		do   func(m *Manager, id string) error
	}{
		{"clear", func(m *Manager, id string) error {
			th, err := m.Rename(t.Context(), id, "")
			if err == nil && th.Name != "" {
				t.Errorf("name after the clear = %q, want none", th.Name)
			}
			return err
		}},
		{"delete", func(m *Manager, id string) error { return m.Delete(t.Context(), id) }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx := t.Context()
			m := openTest(t)
			index := filepath.Join(m.Root(), rollout.SessionIndexFile)
			gone := start(t, m, user("hello"))
			kept := start(t, m, user("other"))
			if _, err := m.Rename(ctx, gone.ID, "first"); err != nil {
				t.Fatal(err)
			}
			if _, err := m.Rename(ctx, kept.ID, "kept"); err != nil {
				t.Fatal(err)
			}
			appendBytes(t, index, []byte("not a name {\n"))
			renameAsCodex(t, m.Root(), gone.ID, "by codex")
			if err := os.Chmod(index, 0o640); err != nil {
				t.Fatal(err)
			}
			before, err := os.ReadFile(index)
			if err != nil {
				t.Fatal(err)
			}
			if err := tc.do(m, gone.ID); err != nil {
				t.Fatal(err)
			}
			after, err := os.ReadFile(index)
			if err != nil {
				t.Fatal(err)
			}
			var want []byte
			for line := range bytes.Lines(before) {
				if !bytes.Contains(line, []byte(gone.ID)) {
					want = append(want, line...)
				}
			}
			if !bytes.Equal(after, want) {
				t.Fatalf("session_index.jsonl after the %s:\n%s\nwant the thread's lines gone, the others as they were:\n%s", tc.name, after, want)
			}
			if fi, err := os.Stat(index); err != nil || fi.Mode().Perm() != 0o640 {
				t.Fatalf("session_index.jsonl's mode after the %s: %v, %v; want 0640", tc.name, fi.Mode(), err)
			}
			rebuilt := rebuildIndex(t, m)
			if th, err := rebuilt.Get(ctx, kept.ID); err != nil || th.Name != "kept" {
				t.Fatalf("rebuilt index names the other thread %q (%v), want %q", th.Name, err, "kept")
			}
			if tc.name == "clear" {
				if th, err := rebuilt.Get(ctx, gone.ID); err != nil || th.Name != "" {
					t.Fatalf("rebuilt index names the cleared thread %q (%v), want none", th.Name, err)
				}
			}
		})
	}
}

// TestClearWhileCodexHoldsNamesLock: a clear waits for Codex's lock on
// session_index.jsonl as a rename does, at most LockWait, then fails with
// ErrBusy and changes nothing; a delete that finds the lock held still
// deletes the thread, and leaves its lines (Codex lists no thread whose
// rollout is gone).
func TestClearWhileCodexHoldsNamesLock(t *testing.T) {
	ctx := t.Context()
	root := t.TempDir()
	m := openTest(t, func(o *Options) {
		o.Root = root
		o.FS = rolloutfs.Local{Root: root, LockWait: 50 * time.Millisecond}
	})
	th := start(t, m, user("hello"))
	if _, err := m.Rename(ctx, th.ID, "named"); err != nil {
		t.Fatal(err)
	}
	index := filepath.Join(root, rollout.SessionIndexFile)
	before, err := os.ReadFile(index)
	if err != nil {
		t.Fatal(err)
	}
	held := fixtures.LockFile(t, index+".lock")
	if _, err := m.Rename(ctx, th.ID, ""); !errors.Is(err, ErrBusy) {
		t.Fatalf("clear while Codex holds the names lock: %v, want ErrBusy", err)
	}
	if after, err := os.ReadFile(index); err != nil || !bytes.Equal(after, before) {
		t.Fatalf("session_index.jsonl after a refused clear:\n%s\nwant it unchanged (%v)", after, err)
	}
	if got, err := m.Get(ctx, th.ID); err != nil || got.Name != "named" {
		t.Fatalf("name after a refused clear = %q (%v), want %q", got.Name, err, "named")
	}
	if th, err := rebuildIndex(t, m).Get(ctx, th.ID); err != nil || th.Name != "named" {
		t.Fatalf("rebuilt index names the thread %q after a refused clear (%v), want %q", th.Name, err, "named")
	}
	if err := m.Delete(ctx, th.ID); err != nil {
		t.Fatalf("delete while Codex holds the names lock: %v", err)
	}
	if after, err := os.ReadFile(index); err != nil || !bytes.Equal(after, before) {
		t.Fatalf("session_index.jsonl after a delete that found the names lock held:\n%s\nwant its lines left (%v)", after, err)
	}
	if err := syscall.Flock(int(held.Fd()), syscall.LOCK_UN); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Get(ctx, th.ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get after the delete: %v, want ErrNotFound", err)
	}
}

// appendBytes appends b to the file at path.
func appendBytes(t *testing.T, path string, b []byte) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write(b); err != nil {
		t.Fatal(err)
	}
}

// TestDeleteIndexRefusedDropsNames: a delete whose index update fails
// after the thread's files are gone still takes the thread's lines out of
// session_index.jsonl: the thread is gone from the files, which are the
// truth, and a retry answers "not found" rather than finishing the rest.
// Its names stayed in the file for good.
func TestDeleteIndexRefusedDropsNames(t *testing.T) {
	ctx := t.Context()
	m := openTest(t)
	th := start(t, m, user("hello"))
	if _, err := m.Rename(ctx, th.ID, "named"); err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("sqlite", filepath.Join(m.Root(), IndexFile))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.ExecContext(ctx, `CREATE TRIGGER refuse_delete BEFORE DELETE ON threads BEGIN
		SELECT RAISE(ABORT, '`+refusal+`');
	END`); err != nil {
		t.Fatal(err)
	}
	if err := m.Delete(ctx, th.ID); err == nil || !strings.Contains(err.Error(), refusal) {
		t.Fatalf("delete whose index update is refused: %v, want the refusal", err)
	}
	if _, err := os.Stat(filepath.Join(m.Root(), filepath.FromSlash(th.RolloutPath))); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("the rollout after the refused delete: %v, want it gone (the refusal comes after the files)", err)
	}
	names, err := os.ReadFile(filepath.Join(m.Root(), rollout.SessionIndexFile))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(names, []byte(th.ID)) {
		t.Fatalf("session_index.jsonl after a delete whose files are gone:\n%s\nwant the thread's lines gone", names)
	}
}

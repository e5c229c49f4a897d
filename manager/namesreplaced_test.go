package manager

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/spoolhq/spool/rollout"
)

// TestWatchNamesFileReplaced: session_index.jsonl saved whole by an
// editor (a new file renamed over it, or rewritten in place) with a name
// changed in a line the watcher had read already. The watcher read the
// new file from where it had stopped in the old one: a longer file gave
// it the end of a line, which it skipped as unparsable, and the name
// stayed until the periodic rescan (five minutes; an hour here). A file
// replaced or rewritten must be read again whole, as one that shrank is.
func TestWatchNamesFileReplaced(t *testing.T) {
	tests := []struct {
		name  string
		write func(t *testing.T, abs string, b []byte)
	}{
		{"renamed over", func(t *testing.T, abs string, b []byte) {
			if err := os.WriteFile(abs+".tmp", b, 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Rename(abs+".tmp", abs); err != nil {
				t.Fatal(err)
			}
		}},
		{"rewritten in place", func(t *testing.T, abs string, b []byte) {
			if err := os.WriteFile(abs, b, 0o600); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m, reports := openWatching(t, func(o *Options) { o.RescanInterval = time.Hour })
			id, _ := codexThread(t, m.Root(), time.Now(), "named twice")
			renameAsCodex(t, m.Root(), id, "first")
			waitFor(t, reports, "first name", func() bool { th, _ := listed(t, m, id); return th.Name == "first" })

			entry, err := rollout.EncodeNameEntry(rollout.NameEntry{ID: id, ThreadName: "changed in an editor, longer than before",
				UpdatedAt: time.Now().UTC().Format(time.RFC3339Nano)})
			if err != nil {
				t.Fatal(err)
			}
			tc.write(t, filepath.Join(m.Root(), rollout.SessionIndexFile), entry)
			waitFor(t, reports, "name changed in the saved file", func() bool {
				th, _ := listed(t, m, id)
				return th.Name == "changed in an editor, longer than before"
			})
			verifyClean(t, m)
		})
	}
}

// TestWatchNamesFileReplacedSyncsNamesOnly: a session_index.jsonl
// replaced whole (spool's own clear or delete rewrites it, an editor saves
// it) is read again whole, and the threads whose names it changes are
// synced; the rest of the root is not walked. Every clear or delete made a
// full sync of the root, seconds for a large one. The name another process
// gave a thread in the new file still reaches the index.
func TestWatchNamesFileReplacedSyncsNamesOnly(t *testing.T) {
	tests := []struct {
		name    string
		replace func(t *testing.T, m *Manager, other string)
	}{
		{"spool's clear", func(t *testing.T, m *Manager, other string) {
			if _, err := m.Rename(t.Context(), other, ""); err != nil {
				t.Fatal(err)
			}
		}},
		{"spool's delete", func(t *testing.T, m *Manager, other string) {
			if err := m.Delete(t.Context(), other); err != nil {
				t.Fatal(err)
			}
		}},
		{"an editor's save", func(t *testing.T, m *Manager, other string) {
			abs := filepath.Join(m.Root(), rollout.SessionIndexFile)
			b, err := os.ReadFile(abs)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(abs+".tmp", b, 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Rename(abs+".tmp", abs); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m, reports := openWatching(t, func(o *Options) { o.RescanInterval = time.Hour })
			id, _ := codexThread(t, m.Root(), time.Now(), "named by codex")
			other := start(t, m, user("named by spool"))
			if _, err := m.Rename(t.Context(), other.ID, "spool's name"); err != nil {
				t.Fatal(err)
			}
			waitFor(t, reports, "codex's thread listed", func() bool { _, ok := listed(t, m, id); return ok })

			// Codex's rename lands just before the file is replaced:
			// the watcher may not have read it from the old file.
			renameAsCodex(t, m.Root(), id, "by codex")
			tc.replace(t, m, other.ID)
			later, _ := codexThread(t, m.Root(), time.Now(), "made after the replacement")
			waitForNoRescan(t, reports, "codex's name and the later thread", func() bool {
				th, _ := listed(t, m, id)
				_, ok := listed(t, m, later)
				return th.Name == "by codex" && ok
			})
			verifyClean(t, m)
		})
	}
}

// waitForNoRescan is waitFor failing the test if a full sync of the root
// (SyncRescan) reports before cond holds.
func waitForNoRescan(t *testing.T, reports <-chan SyncReport, what string, cond func() bool) {
	t.Helper()
	awaitSyncs(t, reports, what, cond, func(r SyncReport) {
		if r.Cause == SyncRescan {
			t.Fatalf("%s: a full sync of the root ran (%d files looked at)", what, r.Summary.Files)
		}
	})
}

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

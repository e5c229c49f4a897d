package manager

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/spoolhq/spool/rollout"
)

// replaceByRename puts a copy of rel's bytes in its place the way an
// editor saves (written to a temporary name, renamed over the file), with
// mtime as the copy's modification time.
func replaceByRename(t *testing.T, root, rel string, mtime time.Time) {
	t.Helper()
	abs := filepath.Join(root, filepath.FromSlash(rel))
	b, err := os.ReadFile(abs)
	if err != nil {
		t.Fatal(err)
	}
	tmp := abs + ".swp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(tmp, mtime, mtime); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, abs); err != nil {
		t.Fatal(err)
	}
}

// TestAppendAfterFileReplacedByRename: a live thread's file replaced by
// another file of the same size (an editor's atomic save, a copy put back
// with cp -p or rsync -a) before the watcher has seen it. The appender's
// descriptor still named the old, unlinked file, and settle, which looked
// only at sizes, let the append go there: Append succeeded, the index
// counted the lines, and the file at the thread's path never got them
// (every later append went the same way until the thread left memory).
func TestAppendAfterFileReplacedByRename(t *testing.T) {
	tests := []struct {
		name  string
		mtime func(old time.Time) time.Time
	}{
		{"editor save, a later mtime", func(old time.Time) time.Time { return old.Add(time.Second) }},
		{"copy that keeps the mtime", func(old time.Time) time.Time { return old }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx := t.Context()
			m := openTest(t)
			th := start(t, m, user("before the save"), assistant("held live"))
			mustBeLive(t, m, th.ID)
			abs := filepath.Join(m.Root(), filepath.FromSlash(th.RolloutPath))
			fi, err := os.Stat(abs)
			if err != nil {
				t.Fatal(err)
			}
			replaceByRename(t, m.Root(), th.RolloutPath, tc.mtime(fi.ModTime()))

			res, err := m.Append(ctx, th.ID, []rollout.Item{user("after the save")})
			if err != nil {
				t.Fatalf("Append after the save: %v", err)
			}
			if got, want := res.Thread.UserMessageCount, 2; got != want {
				t.Fatalf("user messages after the append = %d, want %d", got, want)
			}
			b, err := os.ReadFile(abs)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Contains(b, []byte("after the save")) {
				t.Fatalf("the acknowledged append is not in the file at %s (written to the replaced file)", th.RolloutPath)
			}
			if got, want := int64(len(b)), res.Thread.IndexedSize; got != want {
				t.Fatalf("file size = %d, thread size = %d", got, want)
			}
			verifyClean(t, m)
		})
	}
}

package manager

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spoolhq/spool/codexlock"
	"github.com/spoolhq/spool/rollout"
)

// openRolloutFiles counts this process's descriptors open on files under
// root: rollouts and Codex's writer-lock files, which live threads keep
// open between appends.
func openRolloutFiles(t *testing.T, root string) int {
	t.Helper()
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("no /proc/self/fd: %v", err)
	}
	n := 0
	for _, e := range entries {
		target, err := os.Readlink(filepath.Join("/proc/self/fd", e.Name()))
		if err == nil && strings.HasPrefix(target, root+string(filepath.Separator)) &&
			(strings.HasSuffix(target, ".jsonl") || strings.Contains(target, "/"+codexlock.Dir+"/")) {
			n++
		}
	}
	return n
}

// TestIdleThreadsHoldNoFiles keeps 40 threads live with room for 4 open
// files: the descriptors on rollouts and lock files stay at 4 however many threads are
// live, and a thread whose file was closed appends again, at its new
// place after an archive too.
func TestIdleThreadsHoldNoFiles(t *testing.T) {
	const threads, openFiles = 40, 4
	ctx := t.Context()
	m := openTest(t, func(o *Options) { o.Capacity, o.OpenFiles = 100, openFiles })
	root, err := filepath.EvalSymlinks(m.Root())
	if err != nil {
		t.Fatal(err)
	}
	ids := make([]string, threads)
	for i := range ids {
		ids[i] = start(t, m, user("first")).ID
	}
	if live := m.Stats().Live; live != threads {
		t.Fatalf("%d threads live, want %d", live, threads)
	}
	if n := openRolloutFiles(t, root); n > openFiles {
		t.Fatalf("%d rollout files open for %d live threads, want at most %d", n, threads, openFiles)
	}
	// The first thread's file was closed long ago: archive it, then
	// append a rename to it, which must reopen it in archived_sessions/.
	if _, err := m.Archive(ctx, ids[0]); err != nil {
		t.Fatal(err)
	}
	for _, id := range ids[1:] {
		if _, err := m.Append(ctx, id, []rollout.Item{user("second")}); err != nil {
			t.Fatal(err)
		}
	}
	renamed, err := m.Rename(ctx, ids[0], "after archive")
	if err != nil {
		t.Fatalf("rename an archived thread whose file was closed: %v", err)
	}
	if !renamed.Archived || renamed.Name != "after archive" {
		t.Fatalf("after rename: %+v", renamed)
	}
	if n := openRolloutFiles(t, root); n > openFiles {
		t.Fatalf("%d rollout files open after appends, want at most %d", n, openFiles)
	}
	for _, id := range ids[1:] {
		th, err := m.Get(ctx, id)
		if err != nil || th.UserMessageCount != 2 {
			t.Fatalf("thread %s: %d user messages (%v), want 2", id, th.UserMessageCount, err)
		}
	}
}

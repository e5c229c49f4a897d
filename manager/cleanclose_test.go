package manager

import (
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/spoolhq/spool/rollout"
	"github.com/spoolhq/spool/rolloutfs"
	"github.com/spoolhq/spool/store"
)

// countingFS counts the file operations an open makes on the rollouts:
// stats and opens of files, and directory listings. Directory stats
// (StatDir, from the embedded Local) are not counted: they are what a
// skipped walk costs.
type countingFS struct {
	rolloutfs.Local
	stats, opens, lists atomic.Int64
}

func (c *countingFS) Stat(ctx context.Context, name string) (rolloutfs.FileInfo, error) {
	if name != rollout.SessionIndexFile {
		c.stats.Add(1)
	}
	return c.Local.Stat(ctx, name)
}

func (c *countingFS) Open(ctx context.Context, name string) (rolloutfs.ReadFile, error) {
	c.opens.Add(1)
	return c.Local.Open(ctx, name)
}

func (c *countingFS) ReadDir(ctx context.Context, dir string) ([]rolloutfs.DirEntry, error) {
	c.lists.Add(1)
	return c.Local.ReadDir(ctx, dir)
}

func (c *countingFS) touched() int64 { return c.stats.Load() + c.opens.Load() + c.lists.Load() }

// ageLayout sets the mtime of every directory under the layout an hour
// back, as if the threads had been written long before this open: a
// directory changed within dirMargin of a walk is not trusted.
func ageLayout(t *testing.T, root string) {
	t.Helper()
	old := time.Now().Add(-time.Hour)
	for _, top := range []string{rollout.SessionsDir, rollout.ArchivedSessionsDir} {
		err := filepath.WalkDir(filepath.Join(root, top), func(p string, d fs.DirEntry, err error) error {
			if err != nil || !d.IsDir() {
				return err
			}
			return os.Chtimes(p, old, old)
		})
		if err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
	}
}

// TestCleanCloseSkipsWalk is issue #13: after a clean close, an open that
// finds no directory of the layout changed does not walk (it neither
// lists a directory nor stats or opens a rollout); a new file in a day
// directory makes the next open walk, and so does a crash (no Close).
func TestCleanCloseSkipsWalk(t *testing.T) {
	ctx := t.Context()
	root := t.TempDir()
	open := func(fsys rolloutfs.FS, background ...bool) *Manager {
		t.Helper()
		m, err := Open(ctx, Options{Root: root, Sync: rolloutfs.SyncNone, Logger: quiet, FS: fsys, Background: len(background) > 0})
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	closeOK := func(m *Manager) {
		t.Helper()
		if err := m.Close(); err != nil {
			t.Fatal(err)
		}
	}
	listed := func(m *Manager) int {
		t.Helper()
		page, err := m.List(ctx, store.ListOptions{Limit: 100})
		if err != nil {
			t.Fatal(err)
		}
		return len(page.Threads)
	}

	m := open(nil)
	grown := start(t, m, user("one"), assistant("a"))
	start(t, m, user("two"))
	if _, err := m.Archive(ctx, start(t, m, user("three")).ID); err != nil {
		t.Fatal(err)
	}
	closeOK(m) // the session created files: no record
	ageLayout(t, root)
	counted := &countingFS{Local: rolloutfs.Local{Root: root}}
	m = open(counted)
	if counted.touched() == 0 {
		t.Fatal("the open after a session that created files did not walk")
	}
	closeOK(m) // nothing changed since the walk: a record

	// Another process appends to a thread (no directory changes).
	line, err := rollout.EncodeItem(user("appended while closed"), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(filepath.Join(root, filepath.FromSlash(grown.RolloutPath)), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(line); err != nil {
		t.Fatal(err)
	}
	f.Close()

	counted = &countingFS{Local: rolloutfs.Local{Root: root}}
	m = open(counted)
	if got := counted.touched(); got != 0 {
		t.Fatalf("clean restart: %d stats, %d opens, %d listings; want no walk", counted.stats.Load(), counted.opens.Load(), counted.lists.Load())
	}
	if got, want := listed(m), 3; got != want {
		t.Fatalf("listed %d threads after a skipped walk, want %d", got, want)
	}
	// The grown file is caught up on first use.
	msgs, err := m.UserMessages(ctx, grown.ID)
	if err != nil || len(msgs) != 2 {
		t.Fatalf("user messages of the grown thread = %d (%v), want 2", len(msgs), err)
	}
	closeOK(m)

	// The same in the background, as spoold opens: nothing runs.
	counted = &countingFS{Local: rolloutfs.Local{Root: root}}
	m = open(counted, true)
	<-m.Reconciled()
	if got := counted.touched(); got != 0 {
		t.Fatalf("clean restart in the background: %d stats, %d opens, %d listings; want no walk", counted.stats.Load(), counted.opens.Load(), counted.lists.Load())
	}
	closeOK(m)

	// A new file in a day directory (another process's thread) forces the walk.
	other, err := Open(ctx, Options{Root: t.TempDir(), Sync: rolloutfs.SyncNone, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	created := start(t, other, user("made elsewhere"))
	data := readFile(t, other, created)
	if err := other.Close(); err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(root, filepath.FromSlash(grown.RolloutPath))
	dst = filepath.Join(filepath.Dir(dst), filepath.Base(created.RolloutPath))
	if err := os.WriteFile(dst, data, 0o600); err != nil {
		t.Fatal(err)
	}
	counted = &countingFS{Local: rolloutfs.Local{Root: root}}
	m = open(counted)
	if counted.lists.Load() == 0 {
		t.Fatal("open after a new file in a day directory did not walk")
	}
	if got, want := listed(m), 4; got != want {
		t.Fatalf("listed %d threads, want %d: the new file", got, want)
	}
	closeOK(m)

	// A crash: an open takes the record, and no Close puts it back.
	ageLayout(t, root)
	closeOK(open(nil)) // walks, records
	m = open(nil)
	crash(t, m)
	counted = &countingFS{Local: rolloutfs.Local{Root: root}}
	m = open(counted)
	if counted.lists.Load() == 0 {
		t.Fatal("open after a crash did not walk")
	}
	closeOK(m)
}

// crash ends m as a killed process would: the index and the lock are let
// go without Close. m must have no live threads and no goroutines.
func crash(t *testing.T, m *Manager) {
	t.Helper()
	m.stopBackground()
	m.background.Wait()
	if err := m.store.Close(); err != nil {
		t.Fatal(err)
	}
	if err := m.lock.Release(); err != nil {
		t.Fatal(err)
	}
}

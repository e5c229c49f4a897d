package manager

import (
	"errors"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/spoolhq/spool/rollout"
	"github.com/spoolhq/spool/rolloutfs"
)

// TestDeleteRefusesForksTheIndexCannotRead: Codex 0.169 refuses to delete
// a thread whose files a reference fork's history_base names ("forked
// history still references it"), whatever it can read of the fork. Found
// against the binary: Codex forks a reverted thread through a turn of its
// revert segment (the fork names the segment by its uuid), then reverts
// the thread before that turn, which takes the segment out of its history.
// Codex shows the fork whole; no index can read it (docs/SCHEMA.md, "Not
// covered"), and spool's delete asked the index's rows alone: on an index
// rebuilt from the files it removed every file of the thread, and the
// fork's inherited turns with them. The sync records the files it cannot
// read with the base they name, and a delete (and a purge, which ends in
// one) refuses as Codex does, after a restart too; once the fork's file is
// gone, the delete goes ahead.
func TestDeleteRefusesForksTheIndexCannotRead(t *testing.T) {
	ctx := t.Context()
	root, base, forkRel, forkData := unreadableFork(t)
	forkID, _, _, err := rollout.ParseRolloutName(path.Base(forkRel))
	if err != nil {
		t.Fatal(err)
	}
	forkPath := filepath.Join(root, filepath.FromSlash(forkRel))
	files := baseFiles(t, root, base.ID)
	// Directories last changed an hour ago: the clean close below is
	// recorded, and the reopen skips its walk (cleanclose.go).
	hourAgo := time.Now().Add(-time.Hour)
	err = filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			err = os.Chtimes(p, hourAgo, hourAgo)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}

	// An index rebuilt from the files cannot read the fork.
	index := rebuiltInOrder(t, root)
	open := func() *Manager {
		m, err := Open(ctx, Options{Root: root, IndexPath: index, Sync: rolloutfs.SyncNone, Logger: quiet})
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	refused := func(t *testing.T, m *Manager) {
		t.Helper()
		if _, err := m.Get(ctx, forkID); !errors.Is(err, ErrNotFound) {
			t.Fatalf("the fork in the rebuilt index: %v, want it not indexed", err)
		}
		err := m.Delete(ctx, base.ID)
		var ref *ReferencedError
		if !errors.As(err, &ref) || !slices.Equal(ref.Forks, []string{forkID}) || !slices.Equal(ref.Unindexed, []string{forkRel}) ||
			!strings.Contains(err.Error(), forkRel) {
			t.Fatalf("delete of a base whose fork the index cannot read: %v, want a ReferencedError naming %s and its file", err, forkID)
		}
		if err := m.Purge(ctx, base.ID); !errors.Is(err, ErrReferenced) {
			t.Fatalf("purge of a base whose fork the index cannot read: %v, want ErrReferenced", err)
		}
		if got := baseFiles(t, root, base.ID); !slices.Equal(got, files) {
			t.Fatalf("the base's files after the refused delete: %v, want %v", got, files)
		}
		if got, err := os.ReadFile(forkPath); err != nil || string(got) != string(forkData) {
			t.Fatalf("the fork's file after the refused delete changed (%v)", err)
		}
	}
	m := open()
	t.Run("rebuilt", func(t *testing.T) { refused(t, m) })
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	m = open()
	defer m.Close()
	if !m.walkSkipped {
		t.Fatal("the reopen walked the root, which would record the fork again: want a clean restart")
	}
	t.Run("reopened", func(t *testing.T) { refused(t, m) })

	// The fork's file removed by hand: its record, until the next sync,
	// names a file that is gone, and the base is deleted.
	if err := os.Remove(forkPath); err != nil {
		t.Fatal(err)
	}
	if err := m.Delete(ctx, base.ID); err != nil {
		t.Fatalf("delete of the base once its fork's file is gone: %v", err)
	}
	if got := baseFiles(t, root, base.ID); len(got) != 0 {
		t.Fatalf("the base's files after its delete: %v, want none", got)
	}
}

// baseFiles lists the names of thread id's files under root.
func baseFiles(t *testing.T, root, id string) []string {
	t.Helper()
	var names []string
	err := filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && filepath.Ext(p) == ".jsonl" && strings.Contains(d.Name(), id) {
			names = append(names, d.Name())
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(names)
	return names
}

// TestDeleteReadsAForkNoSyncHasRead: a reference fork Codex has just
// written, which no sync has read yet (the watcher's debounce, or no
// watcher), holds its base as Codex counts it. spool's delete asked the
// index alone and removed the base's files under it; it now first indexes
// the new files of the folders Codex writes to, and refuses.
func TestDeleteReadsAForkNoSyncHasRead(t *testing.T) {
	ctx := t.Context()
	m := openTest(t)
	base := threeTurns(t, m, "paginated")
	fork, data := forgottenFork(t, m, base.ID, ForkOptions{LastTurnID: "turn-b"})
	// Codex writes the fork.
	forkPath := filepath.Join(m.Root(), filepath.FromSlash(fork.RolloutPath))
	if err := os.WriteFile(forkPath, data, 0o644); err != nil {
		t.Fatal(err)
	}
	files := baseFiles(t, m.Root(), base.ID)
	err := m.Delete(ctx, base.ID)
	var ref *ReferencedError
	if !errors.As(err, &ref) || !slices.Equal(ref.Forks, []string{fork.ID}) {
		t.Fatalf("delete of a base whose fork no sync has read: %v, want a ReferencedError naming %s", err, fork.ID)
	}
	if got := baseFiles(t, m.Root(), base.ID); !slices.Equal(got, files) {
		t.Fatalf("the base's files after the refused delete: %v, want %v", got, files)
	}
	if _, err := m.Get(ctx, fork.ID); err != nil {
		t.Fatalf("the fork after the refused delete: %v, want it indexed", err)
	}
}

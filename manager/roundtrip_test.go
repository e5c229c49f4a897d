package manager

import (
	"context"
	"testing"

	"github.com/spoolhq/spool/internal/indextest"
	"github.com/spoolhq/spool/rollout"
	"github.com/spoolhq/spool/store"
)

// TestRebuiltIndexAgrees builds a store through the manager (starts,
// appends, rollbacks, forks of forks, renames, archives, deletes), then
// rebuilds a fresh index from the files alone, and checks that every row
// of the two agrees: the files are the truth and the index only a cache.
func TestRebuiltIndexAgrees(t *testing.T) {
	ctx := context.Background()
	m := openTest(t)
	a := start(t, m, user("# AGENTS.md instructions for /w\n\n<INSTRUCTIONS>\nx\n</INSTRUCTIONS>"),
		user("alpha one"), assistant("a"), user("alpha two"), reasoning("r"), user("alpha three"))
	if _, err := m.Rename(ctx, a.ID, "alpha"); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Append(ctx, a.ID, []rollout.Item{rollback(1), user("alpha three again"), assistant("b")}); err != nil {
		t.Fatal(err)
	}
	b, err := m.Fork(ctx, a.ID, ForkOptions{BeforeUserMessage: intp(2), Name: "beta"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Append(ctx, b.ID, []rollout.Item{user("beta own"), assistant("c")}); err != nil {
		t.Fatal(err)
	}
	c, err := m.Fork(ctx, b.ID, ForkOptions{BeforeUserMessage: intp(1), Cwd: "/elsewhere"})
	if err != nil {
		t.Fatal(err)
	}
	d, err := m.Fork(ctx, c.ID, ForkOptions{})
	if err != nil {
		t.Fatal(err)
	}
	unnamed, err := m.Fork(ctx, a.ID, ForkOptions{BeforeUserMessage: intp(0)})
	if err != nil {
		t.Fatal(err)
	}
	// A whole copy of a renamed thread holds the parent's rename event,
	// which names the parent, not the fork (indexer.TestTracker, "rename
	// of another thread is ignored"); the fork is named as its parent by
	// its own rename line, as Codex names a fork (ForkName).
	inherits, err := m.Fork(ctx, b.ID, ForkOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if inherits.Name != "beta" {
		t.Fatalf("whole fork of beta named %q, want beta", inherits.Name)
	}
	if _, err := m.Archive(ctx, c.ID); err != nil {
		t.Fatal(err)
	}
	// Renaming an archived thread must not move its archive time.
	if _, err := m.Rename(ctx, c.ID, "gamma"); err != nil {
		t.Fatal(err)
	}
	e := start(t, m, user("to be archived and back"))
	if _, err := m.Archive(ctx, e.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Unarchive(ctx, e.ID); err != nil {
		t.Fatal(err)
	}
	// A caller's own timestamp in a form Codex accepts on read (space, no
	// zone): the live index and a rebuild must read it the same way.
	late := user("from the future")
	late.Timestamp = "2099-01-02 03:04:05"
	if _, err := m.Append(ctx, e.ID, []rollout.Item{late}); err != nil {
		t.Fatal(err)
	}
	// A rename that arrives as an appended event, not through Rename.
	renameEvent := item(rollout.TypeEventMsg, map[string]any{"type": "thread_name_updated", "thread_id": e.ID, "thread_name": "epsilon"})
	if res, err := m.Append(ctx, e.ID, []rollout.Item{renameEvent}); err != nil || res.Thread.Name != "epsilon" {
		t.Fatalf("appended rename: %+v, %v", res.Thread, err)
	}
	if err := m.Delete(ctx, b.ID); err != nil { // a middle node
		t.Fatal(err)
	}
	start(t, m) // a thread without messages
	_ = d
	_ = unnamed

	compareRebuilds(t, m, "alpha", "beta", "archived")
}

// compareIndexes fails the test on any row where two indexes disagree,
// and on the hits of the searches TestRebuiltIndexAgrees makes.
func compareIndexes(t *testing.T, live, rebuilt *store.Store) {
	t.Helper()
	indextest.Compare(t, live, rebuilt, "alpha", "beta", "archived")
}

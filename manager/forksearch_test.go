package manager

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/spoolhq/spool/indexer"
	"github.com/spoolhq/spool/rollout"
	"github.com/spoolhq/spool/rolloutfs"
	"github.com/spoolhq/spool/store"
)

// TestSearchThroughForks finds a prompt a fork inherited through the fork
// when the thread that was asked it is archived or deleted, live and in an
// index rebuilt from the files (issue #15). A reference fork's base cannot
// be deleted (Codex 0.169 refuses too); a copy fork's parent can.
func TestSearchThroughForks(t *testing.T) {
	for _, tc := range []struct {
		name      string
		paginated bool // parent paginated: the fork is a reference fork
		del       bool // delete the parent, else archive it
	}{
		{name: "reference fork, base archived", paginated: true},
		{name: "copy fork, parent archived"},
		{name: "copy fork, parent deleted", del: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := t.Context()
			m := openTest(t)
			var parent Thread
			if tc.paginated {
				parent = startPaginated(t, m, user("zebra crossing"), assistant("a1"), user("second prompt"), assistant("a2"))
			} else {
				parent = start(t, m, user("zebra crossing"), assistant("a1"), user("second prompt"), assistant("a2"))
			}
			fork, err := m.Fork(ctx, parent.ID, ForkOptions{BeforeUserMessage: intp(1)})
			if err != nil {
				t.Fatal(err)
			}
			if got := fork.BaseID != ""; got != tc.paginated {
				t.Fatalf("fork has base %q, want a reference fork: %t", fork.BaseID, tc.paginated)
			}
			if _, err := m.Append(ctx, fork.ID, []rollout.Item{user("fork prompt")}); err != nil {
				t.Fatal(err)
			}
			history := historyOf(t, m, fork.ID)
			no := false
			hitsIn := func(s *store.Store) string {
				t.Helper()
				hits, err := s.Search(ctx, store.SearchOptions{Query: "zebra", Archived: &no})
				if err != nil {
					t.Fatal(err)
				}
				return fmt.Sprint(hitIDs(hits))
			}
			if got, want := hitsIn(m.store), fmt.Sprint([]string{parent.ID + "/0"}); got != want {
				t.Fatalf("before: hits %s, want %s (the owner's)", got, want)
			}
			if tc.del {
				if err := m.Delete(ctx, parent.ID); err != nil {
					t.Fatal(err)
				}
			} else {
				if tc.paginated {
					var ref *ReferencedError
					if err := m.Delete(ctx, parent.ID); !errors.As(err, &ref) {
						t.Fatalf("delete of a base: %v, want a *ReferencedError", err)
					}
				}
				if _, err := m.Archive(ctx, parent.ID); err != nil {
					t.Fatal(err)
				}
			}
			if !bytes.Equal(historyOf(t, m, fork.ID), history) {
				t.Fatal("the fork's history changed with its parent's archive or delete")
			}
			// The live index verifies clean against the files.
			rep, err := indexer.Verify(ctx, m.store, rolloutfs.Local{Root: m.Root()})
			if err != nil {
				t.Fatal(err)
			}
			if !rep.Clean() {
				t.Fatalf("verify: %+v", rep.Drifts)
			}
			want := fmt.Sprint([]string{fork.ID + "/0"})
			if got := hitsIn(m.store); got != want {
				t.Fatalf("live: hits %s, want %s (through the fork)", got, want)
			}

			rebuilt := rebuildIndex(t, m)
			if got := hitsIn(rebuilt); got != want {
				t.Fatalf("rebuilt: hits %s, want %s (through the fork)", got, want)
			}
			compareRebuilds(t, m, "alpha", "beta", "archived")
		})
	}
}

func hitIDs(hits []store.SearchHit) []string {
	ids := make([]string, len(hits))
	for i, h := range hits {
		ids[i] = fmt.Sprintf("%s/%d", h.ThreadID, h.Ordinal)
	}
	return ids
}

// TestPaginatedRollbackMarker: Codex rejects a rollback in a paginated
// thread and shows every turn past a thread_rolled_back marker there
// (checked against the binary: docs/CODEX.md). spool refuses to append one
// (nothing written), and one another writer put in a paginated file counts
// for nothing: every message stays, live and in an index rebuilt from the
// files.
func TestPaginatedRollbackMarker(t *testing.T) {
	ctx := t.Context()
	m := openTest(t)
	th := startPaginated(t, m, user("u1"), assistant("a1"), user("u2"), assistant("a2"))
	size := len(readFile(t, m, th))
	if _, err := m.Append(ctx, th.ID, []rollout.Item{user("u3"), rollback(1)}); !errors.Is(err, ErrPaginatedRollback) || !errors.Is(err, ErrInvalidItem) {
		t.Fatalf("rollback of a paginated thread: %v, want ErrPaginatedRollback (an ErrInvalidItem)", err)
	}
	if got := len(readFile(t, m, th)); got != size {
		t.Fatalf("the refused append wrote %d bytes", got-size)
	}

	// Another writer's marker, numbered as the thread's lines are.
	row, err := m.store.Get(ctx, th.ID)
	if err != nil {
		t.Fatal(err)
	}
	line, err := rollout.EncodeItem(rollback(2), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if line, err = rollout.WithOrdinal(line, row.NextOrdinal); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(filepath.Join(m.Root(), filepath.FromSlash(th.RolloutPath)), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(append(line, '\n')); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if _, err := m.Append(ctx, th.ID, []rollout.Item{user("u3")}); err != nil {
		t.Fatal(err)
	}
	msgs, err := m.UserMessages(ctx, th.ID)
	if err != nil {
		t.Fatal(err)
	}
	var previews []string
	for _, msg := range msgs {
		previews = append(previews, msg.Preview)
	}
	if !slices.Equal(previews, []string{"u1", "u2", "u3"}) {
		t.Fatalf("messages past a marker in a paginated file: %q, want all three", previews)
	}
	rep, err := indexer.Verify(ctx, m.store, rolloutfs.Local{Root: m.Root()})
	if err != nil || !rep.Clean() {
		t.Fatalf("verify: %v, %+v", err, rep.Drifts)
	}
	compareRebuilds(t, m, "alpha", "beta", "archived")
}

// TestCopyOfARevertedCopyIndexesInAnyOrder: a reference fork made
// self-contained (its base purged) holds copies of what it inherited, blank
// while its parent holds them; reverted, it counts them among its own rows.
// A copy fork of it blanks its own copies too, whether the files are
// indexed with the copy after its parent or before it, and the index then
// agrees with the live one in any order. Before, a copy read after its
// reverted parent took the parent's blank copies for empty prompts of its
// own and kept its texts, and search ranked by them.
func TestCopyOfARevertedCopyIndexesInAnyOrder(t *testing.T) {
	ctx := t.Context()
	m := openTest(t)
	first, err := m.Start(ctx, StartOptions{Cwd: "/w", Source: "cli", HistoryMode: string(rollout.HistoryPaginated)})
	if err != nil {
		t.Fatal(err)
	}
	whole, err := m.Fork(ctx, first.ID, ForkOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var prompts []rollout.Item
	for i := range 16 {
		word := "beta" // the copies' texts, kept, would weigh on how search ranks them
		if i < 2 {
			word = "alpha"
		}
		prompts = append(prompts, user(fmt.Sprintf("%s prompt %d", word, i)))
	}
	if _, err := m.Append(ctx, whole.ID, prompts); err != nil {
		t.Fatal(err)
	}
	reference, err := m.Fork(ctx, whole.ID, ForkOptions{BeforeUserMessage: intp(15), Mode: ForkReference})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Purge(ctx, first.ID); err != nil { // whole and reference are made self-contained
		t.Fatal(err)
	}
	last, err := m.Fork(ctx, reference.ID, ForkOptions{BeforeUserMessage: intp(4), Mode: ForkCopy})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Revert(ctx, reference.ID, RevertOptions{BeforeUserMessage: intp(12)}); err != nil {
		t.Fatal(err)
	}
	paths := func(id string) []string {
		row, err := m.store.Get(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		segs, err := m.store.Segments(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		var ps []string
		for _, s := range segs {
			ps = append(ps, s.RolloutPath)
		}
		return append(ps, row.RolloutPath)
	}
	wholeFiles, referenceFiles, lastFiles := paths(whole.ID), paths(reference.ID), paths(last.ID)
	for name, order := range map[string][]string{
		"the copy last":    slices.Concat(wholeFiles, referenceFiles, lastFiles),
		"the copy first":   slices.Concat(lastFiles, wholeFiles, referenceFiles),
		"the copy between": slices.Concat(wholeFiles, lastFiles, referenceFiles),
	} {
		t.Run(name, func(t *testing.T) {
			rebuilt, err := store.Open(ctx, filepath.Join(t.TempDir(), "rebuilt.db"))
			if err != nil {
				t.Fatal(err)
			}
			defer rebuilt.Close()
			for _, p := range order {
				if _, err := indexer.SyncPaths(ctx, rebuilt, rolloutfs.Local{Root: m.Root()}, []string{p}, indexer.SyncOptions{}); err != nil {
					t.Fatal(err)
				}
			}
			compareIndexes(t, m.store, rebuilt)
		})
	}
}

// TestCopyOfAPromptAskedAgainAfterARevert: a revert of a copy fork's
// parent hands the copies of the prompts it drops their search text; when
// the parent is then asked the same prompts again at the same ordinals
// below the fork's cut, it holds them, and the copies are blank again, as
// an index rebuilt from the files has them: otherwise search's ranks
// counted the prompts twice.
func TestCopyOfAPromptAskedAgainAfterARevert(t *testing.T) {
	ctx := t.Context()
	m := openTest(t)
	parent, err := m.Start(ctx, StartOptions{Cwd: "/w", Source: "cli"})
	if err != nil {
		t.Fatal(err)
	}
	var prompts []rollout.Item
	for _, p := range []string{"walrus one", "orca two", "orca three", "seal four", "walrus seal five", "orca six", "seal seven", "orca eight", "walrus nine"} {
		prompts = append(prompts, user(p))
	}
	if _, err := m.Append(ctx, parent.ID, prompts); err != nil {
		t.Fatal(err)
	}
	// The cut lies far enough past the revert's for the prompts asked
	// after it to lie below it.
	if _, err := m.Fork(ctx, parent.ID, ForkOptions{BeforeUserMessage: intp(8), Mode: ForkCopy}); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Revert(ctx, parent.ID, RevertOptions{BeforeUserMessage: intp(3)}); err != nil {
		t.Fatal(err)
	}
	// Asked another prompt at 3, and at 4 the one it was asked there before.
	if _, err := m.Append(ctx, parent.ID, []rollout.Item{user("orca anew"), user("walrus seal five")}); err != nil {
		t.Fatal(err)
	}
	compareRebuilds(t, m, "walrus", "orca", "seal")
}

// TestRevertedCopyAskedAgainAsItsParentGoesOn: a copy fork reverted before
// all its copies is asked, in a file of its own, the prompt it had copied;
// that prompt is the copy's own now, not a copy. When its parent is then
// asked another prompt, the copy's own prompt keeps its search text, as an
// index rebuilt from the files has it (seed 23420 of the randomized
// sequences).
func TestRevertedCopyAskedAgainAsItsParentGoesOn(t *testing.T) {
	ctx := t.Context()
	m := openTest(t)
	parent, err := m.Start(ctx, StartOptions{Cwd: "/w", Source: "cli"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Append(ctx, parent.ID, []rollout.Item{user("walrus one")}); err != nil {
		t.Fatal(err)
	}
	copied, err := m.Fork(ctx, parent.ID, ForkOptions{Mode: ForkCopy})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Revert(ctx, copied.ID, RevertOptions{BeforeUserMessage: intp(0)}); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Append(ctx, copied.ID, []rollout.Item{user("walrus one"), user("orca two")}); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Append(ctx, parent.ID, []rollout.Item{user("seal three")}); err != nil {
		t.Fatal(err)
	}
	compareRebuilds(t, m, "walrus", "orca", "seal")
	hits, err := m.store.Search(ctx, store.SearchOptions{Query: "walrus"})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := hitIDs(hits), []string{parent.ID + "/0", copied.ID + "/0"}; !slices.Equal(sorted(got), sorted(want)) {
		t.Fatalf("walrus found in %v, want %v: the copy asked it anew", got, want)
	}
}

func sorted(s []string) []string { return slices.Sorted(slices.Values(s)) }

// TestSearchFindsACopyOnceAfterItsParentGoes: a fork whose parent went
// holds, with its text, a copy of a prompt a thread further up still
// holds: a reference fork made self-contained by a purge of its base (the
// purge copies what it inherited into its file), and a copy fork of a
// copy fork deleted since. Search finds the prompt once, in the thread
// that was asked it, or in the copy when that thread is filtered out (the
// copy joins its partition: store.searchSQL's origin). A copy fork
// reverted since (its row names itself as its base) was left out of that
// rule: its copy was found beside the original, live and in an index
// rebuilt from the files.
func TestSearchFindsACopyOnceAfterItsParentGoes(t *testing.T) {
	for _, tc := range []struct {
		name   string
		purge  bool // a reference fork of a reference fork, the middle purged; else copies, the middle deleted
		revert bool // the fork is reverted after its parent goes
	}{
		{name: "reference fork made self-contained", purge: true},
		{name: "reference fork made self-contained, reverted", purge: true, revert: true},
		{name: "copy of a deleted copy fork"},
		{name: "copy of a deleted copy fork, reverted", revert: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := t.Context()
			m := openTest(t)
			first := startPaginated(t, m, user("alpha one"), assistant("a1"), user("zebra crossing"), assistant("a2"), user("third prompt"), assistant("a3"))
			mode := ForkCopy
			if tc.purge {
				mode = ForkReference
			}
			middle, err := m.Fork(ctx, first.ID, ForkOptions{Mode: mode})
			if err != nil {
				t.Fatal(err)
			}
			fork, err := m.Fork(ctx, middle.ID, ForkOptions{Mode: mode})
			if err != nil {
				t.Fatal(err)
			}
			if tc.purge {
				err = m.Purge(ctx, middle.ID)
			} else {
				err = m.Delete(ctx, middle.ID)
			}
			if err != nil {
				t.Fatal(err)
			}
			if tc.revert {
				if _, err := m.Append(ctx, fork.ID, []rollout.Item{user("own one"), assistant("a4"), user("own two"), assistant("a5")}); err != nil {
					t.Fatal(err)
				}
				if _, err := m.Revert(ctx, fork.ID, RevertOptions{BeforeUserMessage: intp(4)}); err != nil {
					t.Fatal(err)
				}
			}
			no := false
			hitsIn := func(s *store.Store, o store.SearchOptions) string {
				t.Helper()
				o.Query = "zebra"
				hits, err := s.Search(ctx, o)
				if err != nil {
					t.Fatal(err)
				}
				return fmt.Sprint(hitIDs(hits))
			}
			check := func(step string, s *store.Store) {
				t.Helper()
				if got, want := hitsIn(s, store.SearchOptions{}), fmt.Sprint([]string{first.ID + "/1"}); got != want {
					t.Errorf("%s: hits %s, want %s (the thread that was asked it, once)", step, got, want)
				}
				if got, want := hitsIn(s, store.SearchOptions{ThreadID: fork.ID}), fmt.Sprint([]string{fork.ID + "/1"}); got != want {
					t.Errorf("%s: hits in the fork %s, want %s", step, got, want)
				}
			}
			check("live", m.store)
			check("rebuilt", rebuildIndex(t, m))
			compareRebuilds(t, m, "alpha", "zebra", "third", "own")
			if _, err := m.Archive(ctx, first.ID); err != nil {
				t.Fatal(err)
			}
			want := fmt.Sprint([]string{fork.ID + "/1"})
			if got := hitsIn(m.store, store.SearchOptions{Archived: &no}); got != want {
				t.Errorf("the first archived, live threads: hits %s, want %s (through the fork)", got, want)
			}
			if got := hitsIn(rebuildIndex(t, m), store.SearchOptions{Archived: &no}); got != want {
				t.Errorf("rebuilt, the first archived, live threads: hits %s, want %s (through the fork)", got, want)
			}
		})
	}
}

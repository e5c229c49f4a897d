package backendtest

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/spoolhq/spool/manager"
	"github.com/spoolhq/spool/rollout"
	"github.com/spoolhq/spool/store"
)

// testSearchThroughForks (issue #17): a prompt is found once, in the
// thread that was asked it when that thread passes the filters, or else in
// the oldest fork (reference or copy) that inherits it and passes them: a fork whose
// base is archived finds its inherited prompts among the threads not
// archived, and a search of one fork finds them too. A prompt past a
// fork's cut is not the fork's.
func testSearchThroughForks(t *testing.T, b manager.Backend) {
	ctx := t.Context()
	s := implements[manager.Searcher](t, b)
	base := start(t, b)
	for _, text := range []string{"zebra crossing", "giraffe neck", "zebra stripes"} {
		ask(t, b, base.ID, text)
	}
	two := 2
	older, err := b.Fork(ctx, base.ID, manager.ForkOptions{BeforeUserMessage: &two}) // inherits 0 and 1
	if err != nil {
		t.Fatal(err)
	}
	newer, err := b.Fork(ctx, base.ID, manager.ForkOptions{}) // inherits all three
	if err != nil {
		t.Fatal(err)
	}
	copied, err := b.Fork(ctx, base.ID, manager.ForkOptions{Mode: manager.ForkCopy}) // copies all three
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Archive(ctx, base.ID); err != nil {
		t.Fatal(err)
	}
	no, yes := false, true
	name := map[string]string{base.ID: "base", older.ID: "older", newer.ID: "newer", copied.ID: "copy"}
	for _, tc := range []struct {
		name string
		o    manager.SearchOptions
		want []string // "thread ordinal", sorted
	}{
		{"any thread: the asked one", manager.SearchOptions{Query: "zebra"}, []string{"base 0", "base 2"}},
		{"archived: the asked one", manager.SearchOptions{Query: "zebra", Archived: &yes}, []string{"base 0", "base 2"}},
		{"not archived: the oldest fork inheriting each", manager.SearchOptions{Query: "zebra", Archived: &no}, []string{"newer 2", "older 0"}},
		{"one fork", manager.SearchOptions{Query: "zebra", ThreadID: newer.ID}, []string{"newer 0", "newer 2"}},
		{"one fork, past its cut", manager.SearchOptions{Query: "stripes", ThreadID: older.ID}, nil},
		{"one copy fork", manager.SearchOptions{Query: "zebra", ThreadID: copied.ID}, []string{"copy 0", "copy 2"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := hitNames(t, s, tc.o, name); !slices.Equal(got, tc.want) {
				t.Fatalf("hits %s, want %s", strings.Join(got, ", "), strings.Join(tc.want, ", "))
			}
		})
	}
}

// testSearchPastADeletedFork: a copy fork of a copy fork whose middle
// thread was deleted holds copies of prompts asked in two threads: the
// deleted one's are found in it, and the first thread's are found there,
// in the thread that was asked them, and not also in the copy; but in the
// copy when the search is of the copy alone, or the first thread is
// filtered out. Once that thread is deleted too, they are found in the
// copy.
func testSearchPastADeletedFork(t *testing.T, b manager.Backend) {
	ctx := t.Context()
	s := implements[manager.Searcher](t, b)
	first := start(t, b)
	ask(t, b, first.ID, "walrus tusks")
	middle, err := b.Fork(ctx, first.ID, manager.ForkOptions{Mode: manager.ForkCopy})
	if err != nil {
		t.Fatal(err)
	}
	for _, th := range []manager.Thread{first, middle} {
		// The first thread goes on after the fork; the middle one asks its own.
		ask(t, b, th.ID, "walrus "+th.ID)
	}
	last, err := b.Fork(ctx, middle.ID, manager.ForkOptions{Mode: manager.ForkCopy})
	if err != nil {
		t.Fatal(err)
	}
	name := map[string]string{first.ID: "first", middle.ID: "middle", last.ID: "last"}
	check := func(step string, want ...string) {
		t.Helper()
		if got := hitNames(t, s, manager.SearchOptions{Query: "walrus"}, name); !slices.Equal(got, want) {
			t.Fatalf("%s: hits %s, want %s", step, strings.Join(got, ", "), strings.Join(want, ", "))
		}
	}
	check("all three here", "first 0", "first 1", "middle 1")
	if err := b.Delete(ctx, middle.ID); err != nil {
		t.Fatal(err)
	}
	check("the middle deleted", "first 0", "first 1", "last 1")
	if got := hitNames(t, s, manager.SearchOptions{Query: "walrus", ThreadID: last.ID}, name); !slices.Equal(got, []string{"last 0", "last 1"}) {
		t.Fatalf("the middle deleted, a search of the last one: hits %s, want last 0, last 1", strings.Join(got, ", "))
	}
	if _, err := b.Archive(ctx, first.ID); err != nil {
		t.Fatal(err)
	}
	no := false
	if got := hitNames(t, s, manager.SearchOptions{Query: "walrus", Archived: &no}, name); !slices.Equal(got, []string{"last 0", "last 1"}) {
		t.Fatalf("the middle deleted, the first archived, live threads: hits %s, want last 0, last 1", strings.Join(got, ", "))
	}
	if err := b.Delete(ctx, first.ID); err != nil {
		t.Fatal(err)
	}
	check("the first deleted too", "last 0", "last 1")
}

// hitNames returns the hits of a search as "name ordinal", sorted, a
// thread named by name.
func hitNames(t *testing.T, s manager.Searcher, o manager.SearchOptions, name map[string]string) []string {
	t.Helper()
	page, err := s.SearchPage(t.Context(), o)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, h := range page.Hits {
		got = append(got, fmt.Sprintf("%s %d", name[h.ThreadID], h.Ordinal))
	}
	slices.Sort(got)
	return got
}

// testSearchRetriedPrompt: a fork that asks its parent's prompt again (a
// retry) asks it itself: once the copy fork between it and a copy of it
// is deleted, the copy's prompt is the retry's, found in the retry when
// it passes the filters, else in the copy; and the first asking is found
// in the first thread. Both ways of forking the retry.
func testSearchRetriedPrompt(t *testing.T, b manager.Backend) {
	for mode, word := range map[string]string{manager.ForkReference: "walrus", manager.ForkCopy: "narwhal"} {
		t.Run(mode, func(t *testing.T) {
			ctx := t.Context()
			s := b.(manager.Searcher)
			first := start(t, b)
			ask(t, b, first.ID, "hello")
			ask(t, b, first.ID, word+" tusks")
			one := 1
			retry, err := b.Fork(ctx, first.ID, manager.ForkOptions{BeforeUserMessage: &one, Mode: mode})
			if err != nil {
				t.Fatal(err)
			}
			ask(t, b, retry.ID, word+" tusks")
			last := copyPastDeletedMiddle(t, b, retry.ID)
			name := map[string]string{first.ID: "first", retry.ID: "retry", last.ID: "last"}
			no := false
			for _, step := range []struct {
				archive string
				want    []string
			}{
				{"", []string{"first 1", "retry 1"}},
				{first.ID, []string{"retry 1"}},
				{retry.ID, []string{"first 1", "last 1"}},
			} {
				if step.archive != "" {
					if _, err := b.Archive(ctx, step.archive); err != nil {
						t.Fatal(err)
					}
				}
				if got := hitNames(t, s, manager.SearchOptions{Query: word, Archived: &no}, name); !slices.Equal(got, step.want) {
					t.Fatalf("%s archived: live hits %s, want %s", name[step.archive], strings.Join(got, ", "), strings.Join(step.want, ", "))
				}
				if step.archive != "" {
					if _, err := b.Unarchive(ctx, step.archive); err != nil {
						t.Fatal(err)
					}
				}
			}
		})
	}
}

// testSearchPastARevertedAncestor: a copy of a copy of a reverted thread,
// the middle one deleted, finds the reverted thread's prompt once, in the
// reverted thread, as it finds an unreverted one's.
func testSearchPastARevertedAncestor(t *testing.T, b manager.Backend) {
	ctx := t.Context()
	s := b.(manager.Searcher)
	first := start(t, b)
	for _, text := range []string{"manatee tusks", "second", "third"} {
		ask(t, b, first.ID, text)
	}
	two := 2
	if _, err := reverter(t, b).Revert(ctx, first.ID, manager.RevertOptions{BeforeUserMessage: &two}); err != nil {
		t.Fatal(err)
	}
	last := copyPastDeletedMiddle(t, b, first.ID)
	name := map[string]string{first.ID: "first", last.ID: "last"}
	if got := hitNames(t, s, manager.SearchOptions{Query: "manatee"}, name); !slices.Equal(got, []string{"first 0"}) {
		t.Fatalf("hits %s, want first 0", strings.Join(got, ", "))
	}
}

// testSearchCopyOfAReferenceFork: a copy fork of a reference fork copies
// the prompts the reference fork inherits and those it asked itself: each
// is found once, in the thread that was asked it, and in the copy when the
// search is of the copy alone or the asked thread is deleted.
func testSearchCopyOfAReferenceFork(t *testing.T, b manager.Backend) {
	ctx := t.Context()
	first := start(t, b)
	ask(t, b, first.ID, "orca pod")
	ref := forkIn(t, b, first.ID, manager.ForkReference)
	ask(t, b, ref.ID, "orca fin")
	ask(t, b, ref.ID, "orca spout")
	copied := forkIn(t, b, ref.ID, manager.ForkCopy)
	ask(t, b, copied.ID, "orca calf")
	name := map[string]string{first.ID: "first", ref.ID: "ref", copied.ID: "copy"}
	for _, step := range []struct {
		name   string
		delete string
		o      manager.SearchOptions
		want   []string
	}{
		{"all", "", manager.SearchOptions{Query: "orca"}, []string{"copy 3", "first 0", "ref 1", "ref 2"}},
		{"the copy alone", "", manager.SearchOptions{Query: "orca", ThreadID: copied.ID}, []string{"copy 0", "copy 1", "copy 2", "copy 3"}},
		{"the reference fork deleted", ref.ID, manager.SearchOptions{Query: "orca"}, []string{"copy 1", "copy 2", "copy 3", "first 0"}},
		{"the first deleted too", first.ID, manager.SearchOptions{Query: "orca"}, []string{"copy 0", "copy 1", "copy 2", "copy 3"}},
	} {
		if step.delete != "" {
			if err := b.Delete(ctx, step.delete); err != nil {
				t.Fatalf("%s: %v", step.name, err)
			}
		}
		wantHits(t, b, step.name, step.o, name, step.want...)
	}
}

// testSearchCopyPastItsParentsRollback: a copy fork holds a prompt that
// its parent then rolls back: the parent no longer holds it, the copy
// does, and search finds it there, once.
func testSearchCopyPastItsParentsRollback(t *testing.T, b manager.Backend) {
	parent := startIn(t, b, string(rollout.HistoryLegacy)) // a paginated one is not rolled back
	ask(t, b, parent.ID, "beluga one")
	ask(t, b, parent.ID, "beluga two")
	copied := forkIn(t, b, parent.ID, manager.ForkCopy)
	if _, err := b.AppendWith(t.Context(), parent.ID, []rollout.Item{rollbackItem(1)}, manager.AppendOptions{}); err != nil {
		t.Fatal(err)
	}
	name := map[string]string{parent.ID: "parent", copied.ID: "copy"}
	wantHits(t, b, "after the rollback", manager.SearchOptions{Query: "beluga"}, name, "copy 1", "parent 0")
}

// testSearchCopyPastItsOwnRollback: a copy fork that rolls back into what
// it copied and asks anew holds its new prompt as its own, at an ordinal
// that was a copy's: search finds it there, and finds no copy it dropped.
func testSearchCopyPastItsOwnRollback(t *testing.T, b manager.Backend) {
	parent := startIn(t, b, string(rollout.HistoryLegacy)) // a paginated one is not rolled back
	for _, fruit := range []string{"apple", "banana", "cherry"} {
		ask(t, b, parent.ID, "walrus "+fruit)
	}
	copied := forkIn(t, b, parent.ID, manager.ForkCopy)
	if _, err := b.AppendWith(t.Context(), copied.ID, []rollout.Item{rollbackItem(2)}, manager.AppendOptions{}); err != nil {
		t.Fatal(err)
	}
	ask(t, b, copied.ID, "walrus durian")
	name := map[string]string{parent.ID: "parent", copied.ID: "copy"}
	wantHits(t, b, "after the copy's rollback", manager.SearchOptions{Query: "walrus"}, name, "copy 1", "parent 0", "parent 1", "parent 2")
	wantHits(t, b, "in the copy", manager.SearchOptions{Query: "cherry", ThreadID: copied.ID}, name)
	wantHits(t, b, "in the copy", manager.SearchOptions{Query: "durian", ThreadID: copied.ID}, name, "copy 1")
}

// testSearchCopyPastItsParentsRevert: a copy fork's prompts, once its
// parent is reverted to before them and asks again, are held by the copy
// alone: search finds them there, and the parent's new prompt in the
// parent.
func testSearchCopyPastItsParentsRevert(t *testing.T, b manager.Backend) {
	parent := askedTwice(t, b, "seal")
	copied := forkIn(t, b, parent.ID, manager.ForkCopy)
	zero := 0
	if _, err := reverter(t, b).Revert(t.Context(), parent.ID, manager.RevertOptions{BeforeUserMessage: &zero}); err != nil {
		t.Fatal(err)
	}
	ask(t, b, parent.ID, "seal anew")
	name := map[string]string{parent.ID: "parent", copied.ID: "copy"}
	wantHits(t, b, "after the revert", manager.SearchOptions{Query: "seal"}, name, "copy 0", "copy 1", "parent 0")
}

// testSearchTwoCopiesPastTheirParentsRevert: two copy forks of one parent
// each hold their own copies of the prompts the parent's revert took back,
// and search finds each of them: a prompt copied twice is asked in each
// copy once the parent no longer holds it.
func testSearchTwoCopiesPastTheirParentsRevert(t *testing.T, b manager.Backend) {
	parent := askedTwice(t, b, "walrus")
	first := forkIn(t, b, parent.ID, manager.ForkCopy)
	second := forkIn(t, b, parent.ID, manager.ForkCopy)
	zero := 0
	if _, err := reverter(t, b).Revert(t.Context(), parent.ID, manager.RevertOptions{BeforeUserMessage: &zero}); err != nil {
		t.Fatal(err)
	}
	name := map[string]string{parent.ID: "parent", first.ID: "first", second.ID: "second"}
	wantHits(t, b, "after the revert", manager.SearchOptions{Query: "walrus"}, name, "first 0", "first 1", "second 0", "second 1")
}

// testSearchRevertedCopyFork: a copy fork reverted past a prompt of its
// own keeps its copies, its parent's prompts, found in the parent, and in
// the copy when the search is of the copy alone or the parent is filtered
// out. Once the parent is reverted before the second of them, the first
// is still the parent's prompt, found once, and the second is the copy's
// alone.
func testSearchRevertedCopyFork(t *testing.T, b manager.Backend) {
	ctx := t.Context()
	parent := askedTwice(t, b, "seal")
	copied := forkIn(t, b, parent.ID, manager.ForkCopy)
	ask(t, b, copied.ID, "seal three")
	two := 2
	if _, err := reverter(t, b).Revert(ctx, copied.ID, manager.RevertOptions{BeforeUserMessage: &two}); err != nil {
		t.Fatal(err)
	}
	name := map[string]string{parent.ID: "parent", copied.ID: "copy"}
	wantHits(t, b, "after the copy's revert", manager.SearchOptions{Query: "seal"}, name, "parent 0", "parent 1")
	wantHits(t, b, "the copy alone", manager.SearchOptions{Query: "seal", ThreadID: copied.ID}, name, "copy 0", "copy 1")
	if _, err := b.Archive(ctx, parent.ID); err != nil {
		t.Fatal(err)
	}
	no := false
	wantHits(t, b, "the parent archived, live threads", manager.SearchOptions{Query: "seal", Archived: &no}, name, "copy 0", "copy 1")
	if _, err := b.Unarchive(ctx, parent.ID); err != nil {
		t.Fatal(err)
	}
	one := 1
	if _, err := reverter(t, b).Revert(ctx, parent.ID, manager.RevertOptions{BeforeUserMessage: &one}); err != nil {
		t.Fatal(err)
	}
	wantHits(t, b, "after both reverts", manager.SearchOptions{Query: "seal"}, name, "copy 1", "parent 0")
}

// testSearchPagesAreKeyset: a search's pages are keyset-based on (rank,
// thread, ordinal) (docs/API.md): a prompt asked between two pages in a
// thread that sorts before the first page's last hit (the same text, so
// the same rank) neither repeats that hit on the next page nor pushes
// another off it.
func testSearchPagesAreKeyset(t *testing.T, b manager.Backend) {
	s := implements[manager.Searcher](t, b)
	early := start(t, b) // its id sorts first
	late := start(t, b)
	ask(t, b, late.ID, "walrus")
	ask(t, b, late.ID, "walrus")
	name := map[string]string{early.ID: "early", late.ID: "late"}
	var got []string
	page, err := s.SearchPage(t.Context(), manager.SearchOptions{Query: "walrus", Limit: 1})
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range page.Hits {
		got = append(got, fmt.Sprintf("%s %d", name[h.ThreadID], h.Ordinal))
	}
	ask(t, b, early.ID, "walrus")
	if page, err = s.SearchPage(t.Context(), manager.SearchOptions{Query: "walrus", Limit: 1, Cursor: page.NextCursor}); err != nil {
		t.Fatal(err)
	}
	for _, h := range page.Hits {
		got = append(got, fmt.Sprintf("%s %d", name[h.ThreadID], h.Ordinal))
	}
	if want := []string{"late 0", "late 1"}; !slices.Equal(got, want) || page.NextCursor != "" {
		t.Fatalf("two pages of one hit, a hit sorting first added between them: %s (next cursor %q), want %s and no more",
			strings.Join(got, ", "), page.NextCursor, strings.Join(want, ", "))
	}
}

// testSearchFullPages: a page of search hits of the largest size
// (store.MaxSearchLimit) that is not the last says so with a cursor, and a
// larger limit is taken as that size.
func testSearchFullPages(t *testing.T, b manager.Backend) {
	th := start(t, b)
	var prompts []rollout.Item
	for i := range store.MaxSearchLimit + 1 {
		prompts = append(prompts, userItem(fmt.Sprintf("walrus %d", i)))
	}
	if _, err := b.AppendWith(t.Context(), th.ID, prompts, manager.AppendOptions{}); err != nil {
		t.Fatal(err)
	}
	s := implements[manager.Searcher](t, b)
	for _, limit := range []int{store.MaxSearchLimit, store.MaxSearchLimit + 1} {
		page, err := s.SearchPage(t.Context(), manager.SearchOptions{Query: "walrus", Limit: limit})
		if err != nil {
			t.Fatal(err)
		}
		if len(page.Hits) != store.MaxSearchLimit || page.NextCursor == "" {
			t.Fatalf("limit %d of %d hits: a page of %d, next cursor %q; want %d and a cursor",
				limit, store.MaxSearchLimit+1, len(page.Hits), page.NextCursor, store.MaxSearchLimit)
		}
		rest, err := s.SearchPage(t.Context(), manager.SearchOptions{Query: "walrus", Limit: limit, Cursor: page.NextCursor})
		if err != nil {
			t.Fatal(err)
		}
		if len(rest.Hits) != 1 || rest.NextCursor != "" {
			t.Fatalf("limit %d, the next page: %d hits, next cursor %q; want the last one alone", limit, len(rest.Hits), rest.NextCursor)
		}
	}
}

// askedTwice starts a thread and asks it word+" one", then word+" two".
func askedTwice(t *testing.T, b manager.Backend, word string) manager.Thread {
	t.Helper()
	th := start(t, b)
	ask(t, b, th.ID, word+" one")
	ask(t, b, th.ID, word+" two")
	return th
}

// forkIn forks the whole of thread id in mode (manager.ForkReference or
// manager.ForkCopy).
func forkIn(t *testing.T, b manager.Backend, id, mode string) manager.Thread {
	t.Helper()
	f, err := b.Fork(t.Context(), id, manager.ForkOptions{Mode: mode})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// wantHits fails t, saying when, unless search o on b finds want, "name
// ordinal" sorted, a thread named by name.
func wantHits(t *testing.T, b manager.Backend, when string, o manager.SearchOptions, name map[string]string, want ...string) {
	t.Helper()
	if got := hitNames(t, b.(manager.Searcher), o, name); !slices.Equal(got, want) {
		t.Fatalf("%s: hits %s, want %s", when, strings.Join(got, ", "), strings.Join(want, ", "))
	}
}

// ask appends a prompt and an answer to thread id.
func ask(t *testing.T, b manager.Backend, id, prompt string) {
	t.Helper()
	if _, err := b.AppendWith(t.Context(), id, []rollout.Item{userItem(prompt), answerItem("noted")}, manager.AppendOptions{}); err != nil {
		t.Fatal(err)
	}
}

// copyPastDeletedMiddle copy-forks thread id, copy-forks that fork, and
// deletes the one between: it returns the last fork, whose parent is gone.
func copyPastDeletedMiddle(t *testing.T, b manager.Backend, id string) manager.Thread {
	t.Helper()
	middle, err := b.Fork(t.Context(), id, manager.ForkOptions{Mode: manager.ForkCopy})
	if err != nil {
		t.Fatal(err)
	}
	last, err := b.Fork(t.Context(), middle.ID, manager.ForkOptions{Mode: manager.ForkCopy})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Delete(t.Context(), middle.ID); err != nil {
		t.Fatal(err)
	}
	return last
}

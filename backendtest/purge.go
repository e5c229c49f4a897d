package backendtest

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/spoolhq/spool/manager"
	"github.com/spoolhq/spool/rollout"
)

// forkWith forks id whole and appends a prompt of the fork's own.
func forkWith(t *testing.T, b manager.Backend, id, prompt string) manager.Thread {
	t.Helper()
	f, err := b.Fork(t.Context(), id, manager.ForkOptions{})
	if err != nil {
		t.Fatal(err)
	}
	res, err := b.AppendWith(t.Context(), f.ID, []rollout.Item{userItem(prompt), answerItem("answer to " + prompt)}, manager.AppendOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return res.Thread
}

// testPurge purges f1, the middle of a chain of forks root ← f1 ← f2
// (Delete refuses when they are references): f2 becomes self-contained and
// says what it said, turn by turn, with the same parent, ancestry, count,
// preview and archive state; f1 and its search text are gone; the root is
// untouched. Purging the root then frees its other fork; a second purge
// finds nothing.
func testPurge(t *testing.T, b manager.Backend) {
	ctx := t.Context()
	p := implements[manager.Purger](t, b)
	lin := implements[manager.Lineage](t, b)
	s := implements[manager.Searcher](t, b)
	pub := implements[manager.Publisher](t, b)
	sub := pub.Subscribe(1024) // from the start: the setup's events may be heard late
	defer sub.Close()
	root := withTurns(t, b, 2)
	f1 := forkWith(t, b, root.ID, "own f1")
	f2 := forkWith(t, b, f1.ID, "own f2")
	g := forkWith(t, b, root.ID, "own g")
	if f2.BaseID != "" {
		if err := b.Delete(ctx, f1.ID); !errors.Is(err, manager.ErrReferenced) {
			t.Fatalf("delete of a base: %v, want ErrReferenced", err)
		}
	}
	if _, err := b.Rename(ctx, f2.ID, "f2's name"); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Archive(ctx, f2.ID); err != nil {
		t.Fatal(err)
	}

	type snapshot struct {
		row       manager.Thread
		said      []string
		turns     []string
		ancestors []string
	}
	take := func(id string) snapshot {
		t.Helper()
		row, err := b.Get(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		s := snapshot{row: row, said: items(t, history(t, b, id))}
		for k := range row.UserMessageCount {
			rc, err := b.ReadTurn(ctx, id, k)
			if err != nil {
				t.Fatal(err)
			}
			turn, err := io.ReadAll(rc)
			rc.Close()
			if err != nil {
				t.Fatal(err)
			}
			s.turns = append(s.turns, fmt.Sprint(items(t, turn)))
		}
		anc, err := lin.Ancestors(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range anc {
			s.ancestors = append(s.ancestors, a.ID)
		}
		return s
	}
	rootBefore := history(t, b, root.ID)
	was := take(f2.ID)

	// The setup's last change heard, every later event is the purge's.
	next := func() manager.Event {
		t.Helper()
		select {
		case e, ok := <-sub.Events():
			if !ok {
				t.Fatalf("subscription ended: %v", sub.Err())
			}
			return e
		case <-time.After(30 * time.Second):
			t.Fatal("waited 30 s for an event")
		}
		return manager.Event{}
	}
	for e := next(); e.Type != manager.EventArchived || e.ThreadID != f2.ID; e = next() {
	}
	if err := p.Purge(ctx, f1.ID); err != nil {
		t.Fatal(err)
	}
	// A thread a purge rewrites says what it said, but its history is
	// laid out anew (positions a follower holds name other bytes): it is
	// announced as reverted; then the purged thread's deletion.
	rewritten := map[string]bool{}
	for e := next(); e.Type != manager.EventDeleted; e = next() {
		if e.Type != manager.EventReverted || e.ThreadID != f2.ID {
			t.Fatalf("the purge announced %s of %s, want reverted of %s, then deleted of %s", e.Type, e.ThreadID, f2.ID, f1.ID)
		}
		rewritten[e.ThreadID] = true
	}
	if f2.BaseID != "" && !rewritten[f2.ID] {
		t.Fatalf("the purge rewrote %s (a reference fork) without announcing it", f2.ID)
	}
	if _, err := b.Get(ctx, f1.ID); !errors.Is(err, manager.ErrNotFound) {
		t.Fatalf("purged thread: Get = %v, want ErrNotFound", err)
	}
	page, err := s.SearchPage(ctx, manager.SearchOptions{Query: "own", Archived: new(true)})
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range page.Hits {
		if h.ThreadID == f1.ID {
			t.Fatalf("search finds the purged thread: %+v", h)
		}
	}
	now := take(f2.ID)
	if now.row.BaseID != "" || now.row.BaseSize != 0 {
		t.Fatalf("f2 after the purge: base %q size %d, want self-contained", now.row.BaseID, now.row.BaseSize)
	}
	if now.row.Archived != was.row.Archived || !now.row.ArchivedAt.Equal(was.row.ArchivedAt) || now.row.ParentID != was.row.ParentID ||
		now.row.UserMessageCount != was.row.UserMessageCount || now.row.Preview != was.row.Preview || !slices.Equal(now.ancestors, was.ancestors) ||
		now.row.Name != "f2's name" {
		t.Fatalf("f2 after the purge:\n%+v %v\nwant archive state, parent, count, preview, name and ancestry of\n%+v %v", now.row, now.ancestors, was.row, was.ancestors)
	}
	if !slices.Equal(now.said, was.said) {
		t.Fatalf("f2 after the purge says\n%q\nwant\n%q", now.said, was.said)
	}
	if !slices.Equal(now.turns, was.turns) {
		t.Fatalf("f2's turns after the purge:\n%q\nwant\n%q", now.turns, was.turns)
	}
	if got := history(t, b, root.ID); !bytes.Equal(got, rootBefore) {
		t.Fatal("purging a fork changed its base")
	}

	gWas := take(g.ID)
	if err := p.Purge(ctx, root.ID); err != nil {
		t.Fatal(err)
	}
	if gNow := take(g.ID); gNow.row.BaseID != "" || !slices.Equal(gNow.said, gWas.said) || !slices.Equal(gNow.turns, gWas.turns) {
		t.Fatalf("the root's other fork after the root's purge: base %q, says %q; want self-contained, saying %q", gNow.row.BaseID, gNow.said, gWas.said)
	}
	if err := p.Purge(ctx, root.ID); !errors.Is(err, manager.ErrNotFound) {
		t.Fatalf("purge of a purged thread: %v, want ErrNotFound", err)
	}
}

// testPurgeForgetsKeys (issue #17): a purge that rewrites a reference fork
// moves every line of its history, so the fork's idempotency keys, whose
// answers are positions from before, are forgotten with the rewrite: a
// retry with one of them is a new append, answered at the new end, not
// with positions that no longer hold. A thread the purge does not rewrite
// keeps its keys.
func testPurgeForgetsKeys(t *testing.T, b manager.Backend) {
	ctx := t.Context()
	p := implements[manager.Purger](t, b)
	root := withTurns(t, b, 2)
	fork, err := b.Fork(ctx, root.ID, manager.ForkOptions{})
	if err != nil {
		t.Fatal(err)
	}
	other := withTurns(t, b, 1)
	keyed := manager.AppendOptions{IdempotencyKey: "retry-after-purge"}
	items := []rollout.Item{userItem("keyed prompt")}
	first, err := b.AppendWith(ctx, fork.ID, items, keyed)
	if err != nil {
		t.Fatal(err)
	}
	untouched, err := b.AppendWith(ctx, other.ID, items, keyed)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Purge(ctx, root.ID); err != nil {
		t.Fatal(err)
	}
	rewritten, err := b.Get(ctx, fork.ID)
	if err != nil {
		t.Fatal(err)
	}
	if rewritten.BaseID != "" {
		t.Fatalf("the fork after the purge continues %s, want self-contained", rewritten.BaseID)
	}
	end := int64(len(history(t, b, fork.ID)))
	retry, err := b.AppendWith(ctx, fork.ID, items, keyed)
	if err != nil {
		t.Fatal(err)
	}
	if got := retry.Offsets; len(got) != 1 || got[0] != end {
		t.Fatalf("retry after the rewrite at %v (first answer %v), want a new append at the end, %d", got, first.Offsets, end)
	}
	if got, want := retry.Thread.UserMessageCount, rewritten.UserMessageCount+1; got != want {
		t.Fatalf("after the retry: %d user messages, want %d", got, want)
	}
	again, err := b.AppendWith(ctx, other.ID, items, keyed)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(again.Offsets, untouched.Offsets) {
		t.Fatalf("retry on a thread the purge left alone at %v, want the first answer %v", again.Offsets, untouched.Offsets)
	}
}

// testPurgeSearchFindsOnce: after a purge makes a chain of forks
// self-contained, a prompt of the purged thread that they all now hold is
// found once, in the oldest of them.
func testPurgeSearchFindsOnce(t *testing.T, b manager.Backend) {
	ctx := t.Context()
	p := implements[manager.Purger](t, b)
	s := implements[manager.Searcher](t, b)
	root := start(t, b)
	if _, err := b.AppendWith(ctx, root.ID, []rollout.Item{userItem("zyxqq unique"), answerItem("a")}, manager.AppendOptions{}); err != nil {
		t.Fatal(err)
	}
	child := forkWith(t, b, root.ID, "child's own")
	grandchild := forkWith(t, b, child.ID, "grandchild's own")
	if err := p.Purge(ctx, root.ID); err != nil {
		t.Fatal(err)
	}
	page, err := s.SearchPage(ctx, manager.SearchOptions{Query: "zyxqq"})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Hits) != 1 || page.Hits[0].ThreadID != child.ID {
		t.Fatalf("search after the purge: %+v, want the prompt once, in the child (the oldest that holds it)", page.Hits)
	}
	// The grandchild's copy of the child's own prompt is a copy too.
	name := map[string]string{child.ID: "child", grandchild.ID: "grandchild"}
	if got := hitNames(t, s, manager.SearchOptions{Query: "own"}, name); !slices.Equal(got, []string{"child 1", "grandchild 2"}) {
		t.Fatalf("search of the forks' own prompts after the purge: hits %s, want child 1, grandchild 2", strings.Join(got, ", "))
	}
}

// searchIDs returns the threads search reports for query, in order.
func searchIDs(t *testing.T, b manager.Backend, query string) []string {
	t.Helper()
	s := implements[manager.Searcher](t, b)
	page, err := s.SearchPage(t.Context(), manager.SearchOptions{Query: query})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, h := range page.Hits {
		ids = append(ids, h.ThreadID)
	}
	return ids
}

// testPurgeKeepsARevertedForksOwnPrompts: a purge that rewrites a reverted
// fork does not take its own earlier prompts for copies of its parent's:
// search still finds them in it.
func testPurgeKeepsARevertedForksOwnPrompts(t *testing.T, b manager.Backend) {
	ctx := t.Context()
	p := implements[manager.Purger](t, b)
	root := start(t, b)
	if _, err := b.AppendWith(ctx, root.ID, []rollout.Item{userItem("root's"), answerItem("a")}, manager.AppendOptions{}); err != nil {
		t.Fatal(err)
	}
	parent := forkWith(t, b, root.ID, "parent's own")
	th := forkWith(t, b, parent.ID, "tonezz")
	if _, err := b.AppendWith(ctx, th.ID, []rollout.Item{userItem("ttwoyy"), answerItem("a")}, manager.AppendOptions{}); err != nil {
		t.Fatal(err)
	}
	three := 3
	if _, err := reverter(t, b).Revert(ctx, th.ID, manager.RevertOptions{BeforeUserMessage: &three}); err != nil {
		t.Fatal(err)
	}
	if err := p.Purge(ctx, root.ID); err != nil {
		t.Fatal(err)
	}
	if got := searchIDs(t, b, "tonezz"); !slices.Equal(got, []string{th.ID}) {
		t.Fatalf("after the purge: search tonezz = %v, want [%s]", got, th.ID)
	}
}

package backendtest

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/spoolhq/spool/manager"
	"github.com/spoolhq/spool/rollout"
)

// testSearchThroughForks (issue #17): a prompt is found once, in the
// thread that was asked it when that thread passes the filters, or else in
// the oldest fork (reference or copy) that inherits it and passes them: a fork whose
// base is archived finds its inherited prompts among the threads not
// archived, and a search of one fork finds them too. A prompt past a
// fork's cut is not the fork's.
func testSearchThroughForks(t *testing.T, b manager.Backend) {
	ctx := t.Context()
	s, ok := b.(manager.Searcher)
	if !ok {
		t.Fatal("the backend offers no search")
	}
	base := start(t, b)
	for _, text := range []string{"zebra crossing", "giraffe neck", "zebra stripes"} {
		if _, err := b.AppendWith(ctx, base.ID, []rollout.Item{userItem(text), answerItem("noted")}, manager.AppendOptions{}); err != nil {
			t.Fatal(err)
		}
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
			page, err := s.SearchPage(ctx, tc.o)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, h := range page.Hits {
				got = append(got, fmt.Sprintf("%s %d", name[h.ThreadID], h.Ordinal))
			}
			slices.Sort(got)
			if !slices.Equal(got, tc.want) {
				t.Fatalf("hits %s, want %s", strings.Join(got, ", "), strings.Join(tc.want, ", "))
			}
		})
	}
}

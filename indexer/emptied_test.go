package indexer

import (
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/spoolhq/spool/rolloutfs"
)

// TestEmptiedFileKeepsItsThreadUntilRewritten: another program rewrites a
// thread's file in place the way most do (truncate, then write), and a
// sync runs between the two. The empty file dropped the thread's row, so
// the rewritten file came back as a new thread and nobody was told it had
// changed (a follower read on from its old offset); and had the row
// stayed, a rewrite whose old end fell on a newline would have been
// caught up from there, keeping the old lines' facts. The row stays while
// the file is empty, the thread is announced rewritten once, and the
// rewritten file is read again whole, announced again, whatever its bytes
// at the old end.
func TestEmptiedFileKeepsItsThreadUntilRewritten(t *testing.T) {
	ctx := t.Context()
	const ts = "2026-06-01T08:00:00.000Z"
	root := t.TempDir()
	rel := relFor(idX)
	abs := writeRollout(t, root, rel, metaLine(ts, idX, ""), userLine(ts, "one"), assistantLine(ts, "a"))
	st := openStore(t)
	fsys := rolloutfs.Local{Root: root}
	mustSync(t, st, root, SyncOptions{})

	syncPath := func(what string) Summary {
		t.Helper()
		sum, err := SyncPaths(ctx, st, fsys, []string{rel}, SyncOptions{})
		if err != nil {
			t.Fatalf("SyncPaths %s: %v", what, err)
		}
		return sum
	}
	if err := os.Truncate(abs, 0); err != nil {
		t.Fatal(err)
	}
	sum := syncPath("of the emptied file")
	if !slices.Equal(sum.Rewritten, []string{idX}) {
		t.Errorf("emptied: Rewritten = %v, want [%s]", sum.Rewritten, idX)
	}
	if !slices.ContainsFunc(sum.Problems, func(p Problem) bool { return p.Path == rel && p.Kind == ProblemEmpty }) {
		t.Errorf("emptied: problems %+v, want %s for %s", sum.Problems, ProblemEmpty, rel)
	}
	if _, err := st.Get(ctx, idX); err != nil {
		t.Fatalf("the emptied file's thread: %v; want its row kept", err)
	}
	if sum := syncPath("of the still empty file"); len(sum.Rewritten) != 0 {
		t.Errorf("still empty: Rewritten = %v, want none (announced once)", sum.Rewritten)
	}

	// The same lines but the first prompt's, of the same length, plus
	// one: the old end is still a line's end.
	rewritten := metaLine(ts, idX, "") + userLine(ts, "uno") + assistantLine(ts, "a") + userLine(ts, "two")
	if err := os.WriteFile(abs, []byte(rewritten), 0); err != nil {
		t.Fatal(err)
	}
	if sum := syncPath("of the rewritten file"); !slices.Equal(sum.Rewritten, []string{idX}) {
		t.Errorf("rewritten: Rewritten = %v, want [%s]", sum.Rewritten, idX)
	}
	msgs, err := st.UserMessages(ctx, idX)
	if err != nil {
		t.Fatal(err)
	}
	var texts []string
	for _, m := range msgs {
		texts = append(texts, m.Preview)
	}
	if got := strings.Join(texts, ","); got != "uno,two" {
		t.Errorf("user messages after the rewrite = %s, want uno,two", got)
	}
	mustVerifyClean(t, st, root)
}

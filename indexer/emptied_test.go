package indexer

import (
	"context"
	"os"
	"path"
	"slices"
	"strings"
	"testing"

	"github.com/spoolhq/spool/rolloutfs"
	"github.com/spoolhq/spool/store"
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

// growsOnOpen is a local FS that calls grow before each Open: another
// program's append landing between a sync's Stat of a file and its open.
type growsOnOpen struct {
	rolloutfs.Local
	grow func(name string)
}

func (g growsOnOpen) Open(ctx context.Context, name string) (rolloutfs.ReadFile, error) {
	g.grow(name)
	return g.Local.Open(ctx, name)
}

// TestFileAppendedToWhileCaughtUpIsNotRewritten: a file only ever
// appended to is never announced rewritten. A catch-up read the file to
// its size at its open but recorded its size at the Stat before, so an
// append between the two left a row whose file size was below its
// indexed size, which the emptied rule (and a row so left by an older
// spool) took for a file emptied and written anew: the next sync rescanned
// it and announced it rewritten, ending its followers' streams.
func TestFileAppendedToWhileCaughtUpIsNotRewritten(t *testing.T) {
	const ts = "2026-06-01T08:00:00.000Z"
	tests := []struct {
		name string
		// catchUp catches the index up with the file at root, now
		// appended to, as a sync beside its writer may.
		catchUp func(t *testing.T, st *store.Store, root, rel string)
	}{
		{"appended to between the Stat and the open", func(t *testing.T, st *store.Store, root, rel string) {
			appended := false
			fsys := growsOnOpen{Local: rolloutfs.Local{Root: root}, grow: func(name string) {
				if name == rel && !appended {
					appended = true
					appendTo(t, root, rel, userLine(ts, "two"))
				}
			}}
			if _, err := SyncPaths(t.Context(), st, fsys, []string{rel}, SyncOptions{}); err != nil {
				t.Fatal(err)
			}
			if !appended {
				t.Fatal("the sync opened no file")
			}
			th, err := st.Get(t.Context(), idX)
			if err != nil {
				t.Fatal(err)
			}
			if th.FileSize < th.IndexedSize {
				t.Errorf("row's file size %d is below its indexed size %d", th.FileSize, th.IndexedSize)
			}
		}},
		{"row an older catch-up left below its file", func(t *testing.T, st *store.Store, root, rel string) {
			mustSync(t, st, root, SyncOptions{})
			th, err := st.Get(t.Context(), idX)
			if err != nil {
				t.Fatal(err)
			}
			if err := st.SetFileState(t.Context(), idX, th.IndexedSize-10, th.FileMtime); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := t.TempDir()
			rel := relFor(idX)
			writeRollout(t, root, rel, metaLine(ts, idX, ""), userLine(ts, "one"))
			st := openStore(t)
			mustSync(t, st, root, SyncOptions{})
			appendTo(t, root, rel, assistantLine(ts, "a"))
			tt.catchUp(t, st, root, rel)
			appendTo(t, root, rel, assistantLine(ts, "b"))
			sum, err := SyncPaths(t.Context(), st, rolloutfs.Local{Root: root}, []string{rel}, SyncOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if len(sum.Rewritten) != 0 || sum.CaughtUp != 1 {
				t.Errorf("the next append: caught up %d, rewritten %v; want caught up, not rewritten", sum.CaughtUp, sum.Rewritten)
			}
			mustVerifyClean(t, st, root)
		})
	}
}

// TestVerifyAgreesAnEmptiedFileKeepsItsThread: while another program has
// emptied a thread's file to write it anew, the sync keeps its row (see
// emptied), and so does reindex --repair, whatever runs first; verify
// called the row stale, a drift that nothing repairs, for as long as the
// file stays empty (one moved to the archive so, for good). It reports
// the empty file as a problem, as the sync does, and the row as no drift.
func TestVerifyAgreesAnEmptiedFileKeepsItsThread(t *testing.T) {
	const ts = "2026-06-01T08:00:00.000Z"
	archived := "archived_sessions/" + path.Base(relFor(idX))
	for _, tt := range []struct {
		name string
		// then runs syncs after the file is emptied; it returns where the
		// file is.
		then func(t *testing.T, st *store.Store, root string) string
	}{
		{"before a sync finds it", func(t *testing.T, st *store.Store, root string) string { return relFor(idX) }},
		{"found by a sync", func(t *testing.T, st *store.Store, root string) string {
			mustSync(t, st, root, SyncOptions{})
			return relFor(idX)
		}},
		{"repaired", func(t *testing.T, st *store.Store, root string) string {
			if _, err := Repair(t.Context(), st, rolloutfs.Local{Root: root}, TailRule{}, SyncOptions{}); err != nil {
				t.Fatal(err)
			}
			return relFor(idX)
		}},
		{"archived once found", func(t *testing.T, st *store.Store, root string) string {
			mustSync(t, st, root, SyncOptions{})
			moveRollout(t, root, relFor(idX), archived)
			mustSync(t, st, root, SyncOptions{})
			return archived
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			root := t.TempDir()
			abs := writeRollout(t, root, relFor(idX), metaLine(ts, idX, ""), userLine(ts, "one"), assistantLine(ts, "a"))
			st := openStore(t)
			mustSync(t, st, root, SyncOptions{})
			if err := os.Truncate(abs, 0); err != nil {
				t.Fatal(err)
			}
			rel := tt.then(t, st, root)
			if _, err := st.Get(t.Context(), idX); err != nil {
				t.Fatalf("the emptied file's thread: %v; want its row kept", err)
			}
			rep := mustVerifyClean(t, st, root)
			if !slices.ContainsFunc(rep.Problems, func(p Problem) bool { return p.Path == rel && p.Kind == ProblemEmpty }) {
				t.Errorf("problems %+v, want %s for %s", rep.Problems, ProblemEmpty, rel)
			}
		})
	}
}

package manager

import (
	"bytes"
	"errors"
	"fmt"
	"testing"

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
			compareIndexes(t, m.store, rebuilt)
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

// TestReferenceForkRollbackIntoBase rolls a reference fork back past its
// own prompts into those it inherits: the live index, a verify and a
// rebuild from the files agree on its messages.
func TestReferenceForkRollbackIntoBase(t *testing.T) {
	ctx := t.Context()
	m := openTest(t)
	parent := startPaginated(t, m, user("u1"), assistant("a1"), user("u2"), assistant("a2"), user("u3"))
	fork, err := m.Fork(ctx, parent.ID, ForkOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Append(ctx, fork.ID, []rollout.Item{user("own"), rollback(2), user("again")}); err != nil {
		t.Fatal(err)
	}
	row, err := m.store.Get(ctx, fork.ID)
	if err != nil {
		t.Fatal(err)
	}
	if row.InheritedMessages != 2 || row.UserMessageCount != 3 {
		t.Fatalf("fork after the rollback: %d inherited, %d messages; want 2 and 3", row.InheritedMessages, row.UserMessageCount)
	}
	rep, err := indexer.Verify(ctx, m.store, rolloutfs.Local{Root: m.Root()})
	if err != nil {
		t.Fatal(err)
	}
	if !rep.Clean() {
		t.Fatalf("verify: %+v", rep.Drifts)
	}
	compareIndexes(t, m.store, rebuildIndex(t, m))
}

// TestBaseRollbackBelowFork rolls a base back past the cut of its
// reference fork: the fork keeps reading and counting the messages its
// history holds (they move into rows of its own), and an index rebuilt
// from the files says the same (the base's index keeps what its rollback
// dropped, docs/SCHEMA.md, History chains).
func TestBaseRollbackBelowFork(t *testing.T) {
	ctx := t.Context()
	m := openTest(t)
	parent := startPaginated(t, m, user("u1"), assistant("a1"), user("u2"), assistant("a2"), user("u3"), assistant("a3"))
	fork, err := m.Fork(ctx, parent.ID, ForkOptions{BeforeUserMessage: intp(2)})
	if err != nil {
		t.Fatal(err)
	}
	before := historyOf(t, m, fork.ID)
	if _, err := m.Append(ctx, parent.ID, []rollout.Item{rollback(2), user("u2 again")}); err != nil {
		t.Fatal(err)
	}
	msgs, err := m.store.UserMessages(ctx, fork.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 2 || !bytes.Equal(historyOf(t, m, fork.ID), before) {
		t.Fatalf("fork after its base's rollback: %d messages, want 2, and its history unchanged", len(msgs))
	}
	rc, err := m.ReadTurn(ctx, fork.ID, 1)
	if turn := readAll(t, rc, err); !bytes.Contains(turn, []byte("u2")) || bytes.Contains(turn, []byte("again")) {
		t.Fatalf("turn 1 of the fork = %q, want u2 as its history holds it", turn)
	}
	rep, err := indexer.Verify(ctx, m.store, rolloutfs.Local{Root: m.Root()})
	if err != nil {
		t.Fatal(err)
	}
	if !rep.Clean() {
		t.Fatalf("verify: %+v", rep.Drifts)
	}
	compareIndexes(t, m.store, rebuildIndex(t, m))
}

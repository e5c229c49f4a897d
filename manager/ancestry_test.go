package manager

import (
	"bytes"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/spoolhq/spool/indexer"
	"github.com/spoolhq/spool/rollout"
)

// TestStatedAncestryOutlivesDeletedAncestors: a fork's meta states its
// ancestry (spool_fork_point.ancestors), so an index rebuilt from the
// files gives the ancestry the live index keeps when an ancestor between
// the fork and its base is deleted: a reference fork whose parent is
// purged (seed 18020 of the randomized sequences), and a reference fork
// made self-contained by the purge of its base after its parent was
// purged, which cannot copy that parent's meta (seed 15291). Before, the
// rebuild and reindex --verify saw the ancestry only as far as the files
// name it.
func TestStatedAncestryOutlivesDeletedAncestors(t *testing.T) {
	zero, one := 0, 1
	cases := []struct {
		name string
		// run makes the threads and deletes some; it returns the thread
		// whose ancestry is checked, and the ancestry it must keep.
		run func(t *testing.T, m *Manager) (id string, want []string)
	}{
		{"a reference fork whose parent is purged", func(t *testing.T, m *Manager) (string, []string) {
			root := started(t, m, "walrus one")
			whole := fork(t, m, root.ID, ForkOptions{})
			wholer := fork(t, m, whole.ID, ForkOptions{})
			leaf := fork(t, m, wholer.ID, ForkOptions{BeforeUserMessage: &zero}) // cut in root's bytes
			purge(t, m, wholer.ID)
			return leaf.ID, []string{wholer.ID, whole.ID, root.ID}
		}},
		{"a reference fork made self-contained after its parent is purged", func(t *testing.T, m *Manager) (string, []string) {
			root := started(t, m, "walrus one", "orca two", "seal three")
			mid := fork(t, m, root.ID, ForkOptions{BeforeUserMessage: intp(2)})
			leaf := fork(t, m, mid.ID, ForkOptions{BeforeUserMessage: &one}) // based on root
			purge(t, m, mid.ID)
			purge(t, m, root.ID) // the leaf is rewritten self-contained
			return leaf.ID, []string{mid.ID, root.ID}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m := openTest(t)
			id, want := tc.run(t, m)
			got, err := m.ancestorIDs(t.Context(), id)
			if err != nil || !slices.Equal(got, want) {
				t.Fatalf("live ancestry %v, %v; want %v", got, err, want)
			}
			rep, err := indexer.Verify(t.Context(), m.store, m.fsys)
			if err != nil {
				t.Fatal(err)
			}
			if len(rep.Drifts) > 0 {
				t.Fatalf("verify: %v", rep.Drifts)
			}
			compareRebuilds(t, m, "alpha", "beta", "archived")
		})
	}
}

// started starts a paginated thread and asks it prompts.
func started(t *testing.T, m *Manager, prompts ...string) Thread {
	t.Helper()
	th, err := m.Start(t.Context(), StartOptions{Cwd: "/w"})
	if err != nil {
		t.Fatal(err)
	}
	var items []rollout.Item
	for _, p := range prompts {
		items = append(items, user(p))
	}
	res, err := m.Append(t.Context(), th.ID, items)
	if err != nil {
		t.Fatal(err)
	}
	return res.Thread
}

func fork(t *testing.T, m *Manager, id string, o ForkOptions) Thread {
	t.Helper()
	f, err := m.Fork(t.Context(), id, o)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func purge(t *testing.T, m *Manager, id string) {
	t.Helper()
	if err := m.Purge(t.Context(), id); err != nil {
		t.Fatal(err)
	}
}

// TestStatedAncestryNamingTheThreadItself: a meta whose stated ancestry
// names its own thread (a hand-written or hostile import; spool never
// writes one) is not read: the thread is not its own ancestor, as the
// chain of metas never makes it one, and a fork of it works. Before, the
// import made the thread its own ancestor and every fork of it failed on
// the lineage's duplicate row.
func TestStatedAncestryNamingTheThreadItself(t *testing.T) {
	m := openTest(t)
	ctx := t.Context()
	const id, parent = "019b0000-0000-7000-8000-0000000000aa", "019b0000-0000-7000-8000-0000000000bb"
	ts := rollout.FormatTimestamp(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	meta, err := rollout.NewSessionMetaLine(ts, rollout.MetaPayload{SessionMeta: rollout.SessionMeta{
		ID: id, ForkedFromID: parent, Timestamp: ts,
		ForkPoint: &rollout.ForkPoint{UserMessage: -1, Ancestors: []string{parent, strings.ToUpper(id)}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Import(ctx, bytes.NewReader(meta)); err != nil {
		t.Fatal(err)
	}
	got, err := m.ancestorIDs(ctx, id)
	if err != nil || !slices.Equal(got, []string{parent}) {
		t.Fatalf("ancestry %v, %v; want [%s]", got, err, parent)
	}
	if _, err := m.Fork(ctx, id, ForkOptions{}); err != nil {
		t.Fatalf("fork of the imported thread: %v", err)
	}
	compareRebuilds(t, m, "alpha", "beta", "archived")
}

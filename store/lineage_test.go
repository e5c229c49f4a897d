package store

import (
	"context"
	"reflect"
	"testing"
)

// forkTree inserts the tree used by the lineage tests and the schema
// document (docs/SCHEMA.md names these ids):
//
//	root ─┬─ a ─┬─ a1 ── a1x
//	      │     └─ a2
//	      └─ b
//	solo
func forkTree(t testing.TB, s *Store) {
	t.Helper()
	for i, n := range []struct{ id, parent string }{
		{"root", ""}, {"a", "root"}, {"b", "root"}, {"a1", "a"}, {"a2", "a"}, {"a1x", "a1"}, {"solo", ""},
	} {
		th := newThread(n.id, int64(1000+i))
		th.ParentID = n.parent
		th.Preview = "thread " + n.id
		th.UserMessageCount = 2
		if n.id == "solo" {
			th.Cwd = "/elsewhere"
		}
		if n.parent != "" {
			th.ForkUserMessage, th.ForkOffset = 1, 2000
		}
		// Ancestry comes from the parent's indexed lineage (Ancestors empty).
		mustInsert(t, s, Record{Thread: th, Messages: messages(0, 2, "about "+n.id)})
	}
}

func relIDs(rels []Relative) []string {
	ids := []string{}
	for _, r := range rels {
		ids = append(ids, r.ID)
	}
	return ids
}

func relDepths(rels []Relative) []int {
	ds := []int{}
	for _, r := range rels {
		ds = append(ds, r.Depth)
	}
	return ds
}

func TestLineage(t *testing.T) {
	ctx := context.Background()
	s := openTest(t)
	forkTree(t, s)

	check := func(t *testing.T, deleted string) {
		t.Helper()
		for _, tc := range []struct {
			id               string
			ancestors        []string
			ancestorDepths   []int
			descendants      []string
			descendantDepths []int
			root             string
		}{
			{"root", []string{}, []int{}, []string{"a", "b", "a1", "a2", "a1x"}, []int{1, 1, 2, 2, 3}, "root"},
			{"a", []string{"root"}, []int{1}, []string{"a1", "a2", "a1x"}, []int{1, 1, 2}, "root"},
			{"a1x", []string{"a1", "a", "root"}, []int{1, 2, 3}, []string{}, []int{}, "root"},
			{"a2", []string{"a", "root"}, []int{1, 2}, []string{}, []int{}, "root"},
			{"solo", []string{}, []int{}, []string{}, []int{}, "solo"},
		} {
			if tc.id == deleted {
				continue
			}
			t.Run(tc.id, func(t *testing.T) {
				anc, err := s.Ancestors(ctx, tc.id)
				if err != nil {
					t.Fatal(err)
				}
				if got := relIDs(anc); !reflect.DeepEqual(got, tc.ancestors) {
					t.Errorf("Ancestors = %v, want %v", got, tc.ancestors)
				}
				if got := relDepths(anc); !reflect.DeepEqual(got, tc.ancestorDepths) {
					t.Errorf("ancestor depths = %v, want %v", got, tc.ancestorDepths)
				}
				for _, r := range anc {
					if (r.Thread == nil) != (r.ID == deleted) {
						t.Errorf("ancestor %s: Thread = %v, deleted %q", r.ID, r.Thread, deleted)
					}
					if r.Thread != nil && r.Thread.ID != r.ID {
						t.Errorf("ancestor %s carries thread %s", r.ID, r.Thread.ID)
					}
				}
				desc, err := s.Descendants(ctx, tc.id)
				if err != nil {
					t.Fatal(err)
				}
				// A deleted thread is no one's descendant any more.
				wantIDs, wantDepths := []string{}, []int{}
				for i, id := range tc.descendants {
					if id != deleted {
						wantIDs = append(wantIDs, id)
						wantDepths = append(wantDepths, tc.descendantDepths[i])
					}
				}
				if got := relIDs(desc); !reflect.DeepEqual(got, wantIDs) {
					t.Errorf("Descendants = %v, want %v", got, wantIDs)
				}
				if got := relDepths(desc); !reflect.DeepEqual(got, wantDepths) {
					t.Errorf("descendant depths = %v, want %v", got, wantDepths)
				}
				root, err := s.Root(ctx, tc.id)
				if err != nil {
					t.Fatal(err)
				}
				if root != tc.root {
					t.Errorf("Root = %q, want %q", root, tc.root)
				}
			})
		}
	}
	t.Run("whole tree", func(t *testing.T) { check(t, "") })

	// Deleting a middle node keeps its descendants' ancestry and parent_id.
	if err := s.Delete(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	t.Run("middle deleted", func(t *testing.T) { check(t, "a") })
	a1, err := s.Get(ctx, "a1")
	if err != nil {
		t.Fatal(err)
	}
	if a1.ParentID != "a" {
		t.Fatalf("a1.ParentID = %q after deleting a, want a", a1.ParentID)
	}
	// The deleted node's subtree is still reachable from its id.
	desc, err := s.Descendants(ctx, "a")
	if err != nil {
		t.Fatal(err)
	}
	if got := relIDs(desc); !reflect.DeepEqual(got, []string{"a1", "a2", "a1x"}) {
		t.Fatalf("Descendants(deleted a) = %v", got)
	}
	if root, err := s.Root(ctx, "a"); err != nil || root != "a" {
		t.Fatalf("Root(deleted a) = %q, %v; want a (it is still an ancestor)", root, err)
	}

	// A fork of a thread whose parent is gone still inherits the full chain.
	th := newThread("a1y", 5000)
	th.ParentID = "a1"
	mustInsert(t, s, Record{Thread: th})
	anc, err := s.Ancestors(ctx, "a1y")
	if err != nil {
		t.Fatal(err)
	}
	if got := relIDs(anc); !reflect.DeepEqual(got, []string{"a1", "a", "root"}) {
		t.Fatalf("Ancestors(a1y) = %v", got)
	}
}

func TestExplicitAncestors(t *testing.T) {
	ctx := context.Background()
	s := openTest(t)
	th := newThread("c", 1)
	th.ParentID = "p"
	// Explicit ancestry naming threads that were never indexed.
	mustInsert(t, s, Record{Thread: th, Ancestors: []string{"p", "gp"}})
	if root, err := s.Root(ctx, "c"); err != nil || root != "gp" {
		t.Fatalf("Root(c) = %q, %v, want gp", root, err)
	}
	bad := newThread("d", 1)
	bad.ParentID = "p"
	if err := s.Insert(ctx, Record{Thread: bad, Ancestors: []string{"q"}}); err == nil {
		t.Fatal("Insert with nearest ancestor != parent succeeded")
	}
}

//go:build distributed

package pgstore

import (
	"testing"
)

// TestWritesAnsweredFromTheirCommit: a write that committed is answered
// with the thread as it committed it, also when the database cannot be
// reached right after the commit (here: the store's pool is closed as the
// commit returns). A read after the commit would fail such a write, and
// the failure would be answered as unavailable, which a client follows by
// writing again: a second thread, or a second revert.
func TestWritesAnsweredFromTheirCommit(t *testing.T) {
	dsn := testDSN(t)
	for _, c := range []struct {
		name  string
		setup func(t *testing.T, s *Store) string
		write func(t *testing.T, s *Store, id string) (Thread, error)
		check func(th Thread) bool
	}{
		{"create", func(*testing.T, *Store) string { return "" },
			func(t *testing.T, s *Store, _ string) (Thread, error) {
				id := newID(t)
				return s.Create(t.Context(), NewThread{ID: id, Lines: metaLine(id)})
			},
			func(th Thread) bool { return th.ID != "" && th.Size > 0 }},
		{"fork", func(t *testing.T, s *Store) string { id, _ := parentWith(t, s, 2); return id },
			func(t *testing.T, s *Store, id string) (Thread, error) {
				child := newID(t)
				return s.Fork(t.Context(), Fork{ParentID: id, ChildID: child, BeforeUserMessage: 1, Lines: metaLine(child)})
			},
			func(th Thread) bool { return th.BaseSize > 0 && th.UserMessageCount == 1 }},
		{"revert", func(t *testing.T, s *Store) string {
			id := createPaginated(t, s)
			for _, text := range []string{"one", "two"} {
				if _, err := s.Append(t.Context(), id, userLine(text), -1); err != nil {
					t.Fatal(err)
				}
			}
			return id
		},
			func(t *testing.T, s *Store, id string) (Thread, error) {
				return s.Revert(t.Context(), Revert{ID: id, BeforeUserMessage: 1})
			},
			func(th Thread) bool { return th.BaseID != "" && th.UserMessageCount == 1 }},
		{"archive", func(t *testing.T, s *Store) string { id, _ := parentWith(t, s, 1); return id },
			func(t *testing.T, s *Store, id string) (Thread, error) { return s.SetArchived(t.Context(), id, true) },
			func(th Thread) bool { return th.Archived }},
	} {
		t.Run(c.name, func(t *testing.T) {
			s, err := Open(t.Context(), dsn, Options{})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(s.Close)
			id := c.setup(t, s)
			commitAnswerLost = func() error {
				commitAnswerLost = nil
				s.pool.Close() // the database is gone once the commit returns
				return nil
			}
			t.Cleanup(func() { commitAnswerLost = nil })
			th, err := c.write(t, s, id)
			if err != nil {
				t.Fatalf("a committed %s failed: %v", c.name, err)
			}
			if !c.check(th) {
				t.Fatalf("a committed %s answered %+v", c.name, th)
			}
		})
	}
}

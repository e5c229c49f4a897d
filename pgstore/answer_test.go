//go:build distributed

package pgstore

import (
	"errors"
	"fmt"
	"io"
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
	for _, c := range rowWrites {
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

// rowWrite is a write other than an append that answers the thread's row:
// setup makes what it writes to (its id, "" for none), check tells the
// row a committed write answers.
type rowWrite struct {
	name  string
	setup func(t *testing.T, s *Store) string
	write func(t *testing.T, s *Store, id string) (Thread, error)
	check func(th Thread) bool
}

// rowWrites are the writes of TestWritesAnsweredFromTheirCommit and
// TestOtherWritesSettleALostCommitAnswer.
var rowWrites = []rowWrite{
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
}

// TestOtherWritesSettleALostCommitAnswer: a write other than an append
// (create, fork, revert, archive, delete) whose COMMIT was sent but whose
// answer was lost failed with ErrCommitUnknown, a 500 for the client,
// though PostgreSQL could tell: it is answered as PostgreSQL settled it,
// as a batch of appends is (TestCommitAnswerLost): success when it
// committed, the lost answer's error alone when it rolled back (a retry
// is safe), and ErrCommitUnknown only when the status cannot be read.
func TestOtherWritesSettleALostCommitAnswer(t *testing.T) {
	dsn := testDSN(t)
	lostErr := fmt.Errorf("read answer: %w", io.ErrUnexpectedEOF)
	writes := append([]rowWrite(nil), rowWrites...)
	writes = append(writes, rowWrite{name: "delete",
		setup: func(t *testing.T, s *Store) string { id, _ := parentWith(t, s, 1); return id },
		write: func(t *testing.T, s *Store, id string) (Thread, error) { return Thread{}, s.Delete(t.Context(), id) }})
	for _, w := range writes {
		for _, tc := range []struct {
			name       string
			rolledBack bool
			statusErr  error
		}{
			{"committed", false, nil},
			{"rolled back", true, nil},
			{"status unknown", false, errors.New("connect: connection refused")},
		} {
			t.Run(w.name+"/"+tc.name, func(t *testing.T) {
				s := openStore(t, dsn, nil)
				id := w.setup(t, s)
				hook := func() error {
					commitAnswerLost, commitSentLost = nil, nil
					return lostErr
				}
				if tc.rolledBack {
					commitSentLost = hook
				} else {
					commitAnswerLost = hook
				}
				xactStatusLost = func() error { return tc.statusErr }
				t.Cleanup(func() { commitAnswerLost, commitSentLost, xactStatusLost = nil, nil, nil })
				_, err := w.write(t, s, id)
				switch {
				case tc.statusErr != nil:
					if !errors.Is(err, ErrCommitUnknown) {
						t.Fatalf("status unknown: %v, want ErrCommitUnknown", err)
					}
				case tc.rolledBack:
					if errors.Is(err, ErrCommitUnknown) || !errors.Is(err, io.ErrUnexpectedEOF) {
						t.Fatalf("rolled back: %v, want the lost answer's error only", err)
					}
				case err != nil:
					t.Fatalf("committed: %v, want success", err)
				}
			})
		}
	}
}

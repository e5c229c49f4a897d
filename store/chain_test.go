package store

import (
	"errors"
	"fmt"
	"slices"
	"testing"
)

func TestBaseChain(t *testing.T) {
	s := openTest(t)
	insertReferenceChain(t, s, 50, 10)
	orphan := newThread("orphan", 100)
	orphan.BaseID, orphan.BaseSize, orphan.InheritedMessages = "never-indexed", 5000, 3
	mustInsert(t, s, Record{Thread: orphan})
	// A thread in several files names itself as its base (revert
	// segments): the walk must not follow it round.
	reverted := newThread("reverted", 101)
	reverted.BaseID, reverted.BaseSize = "reverted", 700
	mustInsert(t, s, Record{Thread: reverted})

	var chainIDs []string
	for d := 10; d >= 0; d-- {
		chainIDs = append(chainIDs, fmt.Sprintf("b%d", d))
	}
	for _, tc := range []struct {
		name string
		id   string
		want []string
	}{
		{"reference chain, nearest first", "b10", chainIDs},
		{"a thread without a base", "b0", []string{"b0"}},
		{"base not indexed", "orphan", []string{"orphan"}},
		{"revert segment", "reverted", []string{"reverted"}},
		{"unknown thread", "nope", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			chain, err := s.BaseChain(t.Context(), tc.id)
			if err != nil {
				t.Fatal(err)
			}
			var ids []string
			for _, l := range chain {
				ids = append(ids, l.ID)
			}
			if !slices.Equal(ids, tc.want) {
				t.Fatalf("chain of %s = %d links %.80v, want %v", tc.id, len(ids), ids, tc.want)
			}
		})
	}
	chain, err := s.BaseChain(t.Context(), "b10")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range chain {
		row, err := s.Get(t.Context(), l.ID)
		if err != nil {
			t.Fatal(err)
		}
		if l != row.Link() {
			t.Fatalf("link %+v, want %+v as the row says", l, row.Link())
		}
	}
}

// TestChainUserMessage checks that a lookup in the chain a reader read
// finds what the walk of UserMessage finds, message for message.
func TestChainUserMessage(t *testing.T) {
	ctx := t.Context()
	s := openTest(t)
	insertReferenceChain(t, s, 50, 10)
	row, err := s.Get(ctx, "b10")
	if err != nil {
		t.Fatal(err)
	}
	bases, err := s.BaseChain(ctx, row.BaseID)
	if err != nil {
		t.Fatal(err)
	}
	chain := append([]ChainLink{row.Link()}, bases...)
	for k := range row.UserMessageCount {
		want, err := s.UserMessage(ctx, "b10", k)
		if err != nil {
			t.Fatal(err)
		}
		got, err := s.ChainUserMessage(ctx, chain, k)
		if err != nil {
			t.Fatalf("message %d: %v", k, err)
		}
		if got != want {
			t.Fatalf("message %d = %+v, want %+v", k, got, want)
		}
	}
	for _, tc := range []struct {
		name    string
		chain   []ChainLink
		ordinal int
	}{
		{"past the last message", chain, row.UserMessageCount},
		{"negative", chain, -1},
		{"in a base the chain does not reach", chain[:3], 7},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if m, err := s.ChainUserMessage(ctx, tc.chain, tc.ordinal); !errors.Is(err, ErrNotFound) {
				t.Fatalf("message %d = %+v, %v; want ErrNotFound", tc.ordinal, m, err)
			}
		})
	}
}

// TestUserMessagesBetween checks that a range of a chained thread's
// messages is the same range of UserMessages, for every range of a chain
// ten reference forks deep (bounds past the end and empty ranges too).
func TestUserMessagesBetween(t *testing.T) {
	ctx := t.Context()
	s := openTest(t)
	insertReferenceChain(t, s, 5, 10)
	for _, id := range []string{"b0", "b3", "b10"} {
		all, err := s.UserMessages(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		for lo := 0; lo <= len(all)+1; lo++ {
			for hi := lo; hi <= len(all)+2; hi++ {
				got, err := s.UserMessagesBetween(ctx, id, lo, hi)
				if err != nil {
					t.Fatalf("%s [%d, %d): %v", id, lo, hi, err)
				}
				want := all[min(lo, len(all)):min(hi, len(all))]
				if !slices.Equal(got, want) {
					t.Fatalf("%s [%d, %d) = %+v, want %+v", id, lo, hi, got, want)
				}
			}
		}
	}
	if _, err := s.UserMessagesBetween(ctx, "nope", 0, 5); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown thread: %v, want ErrNotFound", err)
	}
}

// TestBaseChainCache checks that BaseChain returns the chain it read
// before while no link changed, growth of a base aside, and reads it
// again after each change a link depends on.
func TestBaseChainCache(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(t *testing.T, s *Store)
	}{
		{"a base archived", func(t *testing.T, s *Store) {
			if err := s.SetArchived(t.Context(), "b1", true, "archived_sessions/b1.jsonl", 5); err != nil {
				t.Fatal(err)
			}
		}},
		{"a rollback into what a fork inherits", func(t *testing.T, s *Store) {
			b2 := getThread(t, s, "b2")
			if err := s.Advance(t.Context(), Progress{ID: "b2", KeepUserMessages: 48, LineCount: b2.LineCount,
				IndexedSize: b2.IndexedSize + 10, FileSize: b2.IndexedSize + 10}); err != nil {
				t.Fatal(err)
			}
		}},
		{"a base rewritten self-contained", func(t *testing.T, s *Store) {
			b1 := getThread(t, s, "b1")
			b1.BaseID, b1.BaseSize, b1.InheritedMessages, b1.IndexedSize = "", 0, 0, 60000
			if err := s.Replace(t.Context(), []Record{{Thread: b1, Messages: messages(0, 51, "b1")}}); err != nil {
				t.Fatal(err)
			}
		}},
		{"a base's indexed part shrunk by a rescan", func(t *testing.T, s *Store) {
			b0 := getThread(t, s, "b0")
			b0.IndexedSize = 100
			if err := s.Replace(t.Context(), []Record{{Thread: b0, Messages: messages(0, 50, "base")}}); err != nil {
				t.Fatal(err)
			}
		}},
		{"a thread indexed", func(t *testing.T, s *Store) {
			mustInsert(t, s, Record{Thread: newThread("other", 50)})
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := t.Context()
			s := openTest(t)
			insertReferenceChain(t, s, 50, 3)
			baseChain(t, s, "b3")
			before := epochOf(t, s)
			tc.change(t, s)
			if after := epochOf(t, s); after <= before {
				t.Fatalf("chain epoch %d after the change, want past %d", after, before)
			}
			want, _, err := s.walkChain(ctx, "b3")
			if err != nil {
				t.Fatal(err)
			}
			if got := baseChain(t, s, "b3"); !slices.Equal(got, want) {
				t.Fatalf("chain after the change = %+v, want %+v", got, want)
			}
		})
	}
	t.Run("a base grown", func(t *testing.T) {
		s := openTest(t)
		insertReferenceChain(t, s, 50, 3)
		before, epoch := baseChain(t, s, "b3"), epochOf(t, s)
		b0 := getThread(t, s, "b0")
		if err := s.Advance(t.Context(), Progress{ID: "b0", KeepUserMessages: 50, LineCount: b0.LineCount + 1,
			IndexedSize: b0.IndexedSize + 10, FileSize: b0.IndexedSize + 10}); err != nil {
			t.Fatal(err)
		}
		if got := epochOf(t, s); got != epoch {
			t.Fatalf("chain epoch %d after an append, want %d", got, epoch)
		}
		if got := baseChain(t, s, "b3"); !slices.Equal(got, before) {
			t.Fatalf("chain after an append to its base = %+v, want the one read before %+v", got, before)
		}
	})
}

func epochOf(t *testing.T, s *Store) int64 {
	t.Helper()
	epoch, err := s.chainEpoch(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return epoch
}

func baseChain(t *testing.T, s *Store, id string) []ChainLink {
	t.Helper()
	chain, err := s.BaseChain(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	return chain
}

func getThread(t *testing.T, s *Store, id string) Thread {
	t.Helper()
	th, err := s.Get(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	return th
}

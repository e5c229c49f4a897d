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

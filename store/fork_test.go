package store

import (
	"context"
	"errors"
	"testing"
)

func TestInsertFork(t *testing.T) {
	ctx := context.Background()
	parent := newThread("p", 1)
	parent.UserMessageCount = 3
	parent.IndexedSize = 5000
	for _, tc := range []struct {
		name     string
		copied   int
		cut      int64
		extra    []UserMessage
		rollback bool // parent rolls back message 1 and re-adds it past the cut
		wantErr  error
	}{
		{name: "before message 2", copied: 2, cut: 3000},
		{name: "whole copy", copied: 3, cut: 5000},
		{name: "before message 0", copied: 0, cut: 1000},
		{name: "with new messages", copied: 1, cut: 2000, extra: messages(1, 1, "child")},
		{name: "parent rolled back", copied: 2, cut: 3000, rollback: true, wantErr: ErrParentChanged},
		{name: "parent shorter", copied: 4, cut: 9000, wantErr: ErrParentChanged},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := openTest(t)
			mustInsert(t, s, Record{Thread: parent, Messages: messages(0, 3, "parent")})
			if tc.rollback {
				redo := messages(1, 1, "redo")
				redo[0].Offset = 6000
				if err := s.Advance(ctx, Progress{ID: "p", KeepUserMessages: 1, NewMessages: redo}); err != nil {
					t.Fatal(err)
				}
			}
			child := newThread("c", 2)
			child.ParentID = "p"
			child.ForkOffset = tc.cut
			child.UserMessageCount = tc.copied + len(tc.extra)
			err := s.InsertFork(ctx, Record{Thread: child, Messages: tc.extra, Ancestors: []string{"p"}},
				ForkSource{ParentID: "p", Messages: tc.copied, OffsetShift: 100, LineShift: 1})
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("InsertFork: err = %v, want %v", err, tc.wantErr)
				}
				if _, err := s.Get(ctx, "c"); !errors.Is(err, ErrNotFound) {
					t.Fatalf("failed fork left a row: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("InsertFork: %v", err)
			}
			msgs, err := s.UserMessages(ctx, "c")
			if err != nil {
				t.Fatal(err)
			}
			if len(msgs) != child.UserMessageCount {
				t.Fatalf("%d user messages, want %d", len(msgs), child.UserMessageCount)
			}
			orig := messages(0, 3, "parent")
			for i := range tc.copied {
				if msgs[i].Offset != orig[i].Offset+100 || msgs[i].Line != orig[i].Line+1 || msgs[i].Preview != orig[i].Preview {
					t.Errorf("copied message %d = %+v, want parent's %+v shifted by 100 bytes, 1 line", i, msgs[i], orig[i])
				}
			}
			// The copies are the parent's to search: the child has no hits
			// of its own for them.
			hits, err := s.Search(ctx, SearchOptions{Query: "parent"})
			if err != nil {
				t.Fatal(err)
			}
			var childHits int
			for _, h := range hits {
				if h.ThreadID == "c" {
					childHits++
				}
			}
			if childHits != 0 {
				t.Fatalf("%d search hits in the child for inherited messages, want 0", childHits)
			}
			if root, err := s.Root(ctx, "c"); err != nil || root != "p" {
				t.Fatalf("Root(c) = %q, %v", root, err)
			}
		})
	}
}

package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
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

// ownRows counts the user_messages rows thread id holds itself.
func ownRows(t *testing.T, s *Store, id string) int {
	t.Helper()
	var n int
	if err := s.reader.GetContext(t.Context(), &n, `SELECT COUNT(*) FROM user_messages WHERE thread_id = ?`, id); err != nil {
		t.Fatal(err)
	}
	return n
}

// insertReferenceChain inserts base "b0" with n messages, then depth
// reference forks b1, b2, ... each inheriting all of its base's messages
// and adding one of its own at the next ordinal (issue #12: no rows
// copied).
func insertReferenceChain(t *testing.T, s *Store, n, depth int) {
	t.Helper()
	base := newThread("b0", 1)
	base.HistoryMode, base.UserMessageCount, base.IndexedSize = "paginated", n, int64(1000*(n+1))
	mustInsert(t, s, Record{Thread: base, Messages: messages(0, n, "base")})
	size := base.IndexedSize
	for d := 1; d <= depth; d++ {
		parent := fmt.Sprintf("b%d", d-1)
		child := newThread(fmt.Sprintf("b%d", d), int64(1+d))
		count := n + d - 1
		child.ParentID, child.BaseID, child.BaseSize, child.ForkOffset = parent, parent, size, size
		child.HistoryMode, child.UserMessageCount = "paginated", count+1
		own := messages(count, 1, child.ID)
		own[0].Offset, own[0].Line = size+500, 1
		child.IndexedSize = 1000
		if err := s.InsertFork(t.Context(), Record{Thread: child, Messages: own}, ForkSource{ParentID: parent, Messages: count}); err != nil {
			t.Fatal(err)
		}
		size += child.IndexedSize
	}
}

func TestReferenceForkRows(t *testing.T) {
	ctx := t.Context()
	s := openTest(t)
	insertReferenceChain(t, s, 50, 10)

	for d := 1; d <= 10; d++ {
		if n := ownRows(t, s, fmt.Sprintf("b%d", d)); n != 1 {
			t.Fatalf("fork b%d holds %d rows, want 1 (its own message; nothing copied)", d, n)
		}
	}
	msgs, err := s.UserMessages(ctx, "b10")
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 60 {
		t.Fatalf("b10 has %d user messages, want 60 (50 of b0, one of each fork)", len(msgs))
	}
	for i, m := range msgs {
		if m.Ordinal != i || m.ThreadID != "b10" {
			t.Fatalf("message %d = %+v, want ordinal %d of b10", i, m, i)
		}
		if i > 0 && m.Offset <= msgs[i-1].Offset {
			t.Fatalf("message %d at %d, not after message %d at %d", i, m.Offset, i-1, msgs[i-1].Offset)
		}
	}
	for _, tc := range []struct {
		name    string
		ordinal int
		offset  int64
	}{
		{"inherited from the first thread", 7, 8000},
		{"inherited from a fork in the chain", 53, 51000 + 3*1000 + 500},
		{"own", 59, 51000 + 9*1000 + 500},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := s.UserMessage(ctx, "b10", tc.ordinal)
			if err != nil {
				t.Fatal(err)
			}
			if m.Offset != tc.offset || m.ThreadID != "b10" {
				t.Fatalf("message %d = %+v, want offset %d in b10", tc.ordinal, m, tc.offset)
			}
		})
	}
	if _, err := s.UserMessage(ctx, "b10", 60); !errors.Is(err, ErrNotFound) {
		t.Fatalf("message 60: %v, want ErrNotFound", err)
	}
	before, err := s.UserMessagesBefore(ctx, "b10", 8000)
	if err != nil {
		t.Fatal(err)
	}
	if len(before) != 7 {
		t.Fatalf("%d messages before 8000, want 7", len(before))
	}

	// A rollback in the fork's own file into what it inherits lowers the
	// count; new messages continue from there.
	redo := messages(48, 1, "redo")
	redo[0].Offset = 90000
	if err := s.Advance(ctx, Progress{ID: "b1", KeepUserMessages: 48, NewMessages: redo}); err != nil {
		t.Fatal(err)
	}
	b1, err := s.Get(ctx, "b1")
	if err != nil {
		t.Fatal(err)
	}
	if b1.InheritedMessages != 48 || b1.UserMessageCount != 49 {
		t.Fatalf("b1 after its rollback: %d inherited, %d messages, want 48 and 49", b1.InheritedMessages, b1.UserMessageCount)
	}
	if m, err := s.UserMessage(ctx, "b1", 48); err != nil || m.Offset != 90000 {
		t.Fatalf("b1 message 48 = %+v, %v; want the new one at 90000", m, err)
	}
	checkMessageLookups(t, s, "b0", "b1", "b2", "b5", "b10")
}

// checkMessageLookups checks that UserMessage, which looks up a thread's
// own row first, answers for every ordinal of each thread (and one past
// the last) what the walk down the chain alone answers.
func checkMessageLookups(t *testing.T, s *Store, ids ...string) {
	t.Helper()
	ctx := t.Context()
	walk, err := s.readStmt(ctx, messageSQL)
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range ids {
		th, err := s.Get(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		for ordinal := range th.UserMessageCount + 1 {
			var want UserMessage
			werr := walk.GetContext(ctx, &want, id, ordinal)
			got, err := s.UserMessage(ctx, id, ordinal)
			if errors.Is(werr, sql.ErrNoRows) {
				if !errors.Is(err, ErrNotFound) {
					t.Fatalf("%s message %d = %+v, %v; the walk finds none", id, ordinal, got, err)
				}
				continue
			}
			if werr != nil || err != nil || got != want {
				t.Fatalf("%s message %d = %+v, %v; the walk finds %+v, %v", id, ordinal, got, err, want, werr)
			}
		}
	}
}

// TestReferenceForkBaseRollback rolls its base back below a fork's cut:
// the fork's history (the base's bytes before the cut) does not change, so
// the messages it inherits move into rows of its own first, text included.
func TestReferenceForkBaseRollback(t *testing.T) {
	ctx := t.Context()
	s := openTest(t)
	insertReferenceChain(t, s, 5, 2)
	want, err := s.UserMessages(ctx, "b2")
	if err != nil {
		t.Fatal(err)
	}
	redo := messages(3, 1, "redo")
	redo[0].Offset = 70000
	if err := s.Advance(ctx, Progress{ID: "b0", KeepUserMessages: 3, NewMessages: redo}); err != nil {
		t.Fatal(err)
	}
	got, err := s.UserMessages(ctx, "b2")
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("b2's messages after its base rolled back:\n%v\nwant\n%v", got, want)
	}
	if n := ownRows(t, s, "b1"); n != 3 {
		t.Fatalf("b1 holds %d rows, want 3 (two detached, one own)", n)
	}
	hits, err := s.Search(ctx, SearchOptions{Query: `"base 4"`})
	if err != nil {
		t.Fatal(err)
	}
	if len(hits) != 1 || hits[0].ThreadID != "b1" {
		t.Fatalf("hits for the rolled-back prompt %+v, want one in b1", hits)
	}
	checkMessageLookups(t, s, "b0", "b1", "b2")
}

package store

import (
	"context"
	"fmt"
	"testing"
)

// rolledBackBase indexes thread "b" with three messages (at 1000, 2000 and
// 3000) and rolls two back, message 2 by a rollback at 5100, message 1 by
// one at 5200.
func rolledBackBase(t *testing.T) *Store {
	t.Helper()
	s := openTest(t)
	b := newThread("b", 1)
	b.UserMessageCount, b.IndexedSize = 3, 5000
	mustInsert(t, s, Record{Thread: b, Messages: messages(0, 3, "asked")})
	err := s.Advance(context.Background(), Progress{ID: "b", KeepUserMessages: 1, IndexedSize: 5300,
		Drops: []Drop{{Keep: 2, At: 5100}, {Keep: 1, At: 5200}}})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// ordinals returns "ordinal@offset" of msgs.
func ordinals(msgs []UserMessage) string {
	var out []string
	for _, m := range msgs {
		out = append(out, fmt.Sprintf("%d@%d", m.Ordinal, m.Offset))
	}
	return fmt.Sprint(out)
}

func TestRollbackKeepsWhatItDrops(t *testing.T) {
	ctx := context.Background()
	s := rolledBackBase(t)
	all, err := s.RolledBack(ctx, "b")
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(all); got != "[{{b 2 3000 30 asked 2 0  asked 2 full} 5100} {{b 1 2000 20 asked 1 0  asked 1 full} 5200}]" {
		t.Fatalf("rolled back = %s", got)
	}
	for _, tc := range []struct {
		end                   int64
		wantDropped, wantKept string
	}{
		{1500, "[]", "[0@1000]"},
		{2500, "[1@2000]", "[0@1000 1@2000]"},
		{5000, "[1@2000 2@3000]", "[0@1000 1@2000 2@3000]"},
		{5100, "[1@2000 2@3000]", "[0@1000 1@2000 2@3000]"}, // a cut at the rollback's line is before it
		{5150, "[1@2000]", "[0@1000 1@2000]"},
		{5300, "[]", "[0@1000]"},
	} {
		dropped, err := s.RolledBackBelow(ctx, "b", tc.end)
		if err != nil {
			t.Fatal(err)
		}
		kept, err := s.KeptMessages(ctx, "b", tc.end)
		if err != nil {
			t.Fatal(err)
		}
		if ordinals(dropped) != tc.wantDropped || ordinals(kept) != tc.wantKept {
			t.Errorf("at %d: rolled back below %s, kept %s; want %s, %s", tc.end, ordinals(dropped), ordinals(kept), tc.wantDropped, tc.wantKept)
		}
		for _, m := range dropped {
			if m.Text != fmt.Sprintf("asked %d full", m.Ordinal) {
				t.Errorf("rolled back message %d has text %q", m.Ordinal, m.Text)
			}
		}
	}
}

// TestReplaceDetachesForks: a record that replaces its thread's rows and
// no longer holds messages a fork indexed before it inherits (a rebuild
// read the fork before the revert segment that rolls them back) gives the
// fork rows of its own for them, as a live rollback does.
func TestReplaceDetachesForks(t *testing.T) {
	ctx := context.Background()
	s := openTest(t)
	b := newThread("b", 1)
	b.UserMessageCount, b.IndexedSize = 3, 5000
	mustInsert(t, s, Record{Thread: b, Messages: messages(0, 3, "asked")})
	for _, f := range []struct {
		id        string
		cut       int64
		inherited int
	}{{"late", 3500, 3}, {"early", 1500, 1}} {
		fork := newThread(f.id, 2)
		fork.ParentID, fork.BaseID, fork.BaseSize = "b", "b", f.cut
		fork.InheritedMessages, fork.UserMessageCount, fork.IndexedSize = f.inherited, f.inherited, 100
		mustInsert(t, s, Record{Thread: fork, Ancestors: []string{"b"}})
	}
	b.UserMessageCount, b.IndexedSize = 1, 5300
	asked := messages(0, 3, "asked")
	rolled := []RolledBack{{UserMessage: asked[2], At: 5100}, {UserMessage: asked[1], At: 5200}}
	if err := s.Replace(ctx, []Record{{Thread: b, Messages: asked[:1], RolledBack: rolled}}); err != nil {
		t.Fatal(err)
	}
	for id, want := range map[string]struct {
		inherited int
		msgs      string
	}{"late": {1, "[0@1000 1@2000 2@3000]"}, "early": {1, "[0@1000]"}} {
		row, err := s.Get(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		msgs, err := s.UserMessages(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if row.InheritedMessages != want.inherited || ordinals(msgs) != want.msgs {
			t.Errorf("%s: inherits %d, messages %s; want %d, %s", id, row.InheritedMessages, ordinals(msgs), want.inherited, want.msgs)
		}
	}
	hits, err := s.Search(ctx, SearchOptions{Query: "asked"})
	if err != nil {
		t.Fatal(err)
	}
	if len(hits) != 3 {
		t.Errorf("search finds %d of the three prompts, want each once: %+v", len(hits), hits)
	}
}

// TestRolledBackCopiesKeepNoText: a copy fork's rollback that drops its
// copies keeps them without text, as a rebuild of its file does (they
// are its parent's prompts), also when the parent was deleted first and
// the copies' rows were handed their text.
func TestRolledBackCopiesKeepNoText(t *testing.T) {
	for _, deleteParent := range []bool{false, true} {
		t.Run(fmt.Sprintf("parent deleted first=%t", deleteParent), func(t *testing.T) {
			ctx := t.Context()
			s := openTest(t)
			p := newThread("p", 1)
			p.UserMessageCount, p.IndexedSize = 1, 1500
			mustInsert(t, s, Record{Thread: p, Messages: messages(0, 1, "zebra")})
			c := newThread("c", 2)
			c.ParentID, c.ForkOffset, c.UserMessageCount, c.IndexedSize = "p", 1500, 1, 1600
			if err := s.InsertFork(ctx, Record{Thread: c, Ancestors: []string{"p"}}, ForkSource{ParentID: "p", Messages: 1}); err != nil {
				t.Fatal(err)
			}
			if deleteParent {
				if err := s.Delete(ctx, "p"); err != nil {
					t.Fatal(err)
				}
				checkOneHit(t, s, `"zebra 0"`, "c") // the copy was handed the text
			}
			if err := s.Advance(ctx, Progress{ID: "c", KeepUserMessages: 0, IndexedSize: 1700, Drops: []Drop{{Keep: 0, At: 1650}}}); err != nil {
				t.Fatal(err)
			}
			dropped, err := s.RolledBack(ctx, "c")
			if err != nil {
				t.Fatal(err)
			}
			if len(dropped) != 1 || dropped[0].Preview != "zebra 0" || dropped[0].Text != "" {
				t.Fatalf("rolled back %+v, want the copy of zebra 0 without text", dropped)
			}
		})
	}
}

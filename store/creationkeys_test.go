package store

import (
	"testing"
)

// TestStatedCreationKeys: a key a file states is recorded with its
// thread; of two threads stating one key, the one whose key expires last
// holds it, in whichever order they are written (a rebuild reads files in
// no order that says which is older), and a thread's own Key is not
// displaced by a stated one that expires first.
func TestStatedCreationKeys(t *testing.T) {
	const older, newer = "019b0000-0000-7000-8000-00000000000a", "019b0000-0000-7000-8000-00000000000b"
	stated := func(created int64) *CreationKey {
		return &CreationKey{Key: "k", RequestHash: []byte{byte(created)}, CreatedAt: created, ExpiresAt: created + 10}
	}
	for _, order := range [][]string{{older, newer}, {newer, older}} {
		t.Run("first "+order[0][len(order[0])-1:], func(t *testing.T) {
			ctx := t.Context()
			s := openTest(t)
			recs := map[string]Record{
				older: {Thread: newThread(older, 1), StatedKey: stated(1)},
				newer: {Thread: newThread(newer, 20), StatedKey: stated(20)},
			}
			for _, id := range order {
				if err := s.Replace(ctx, []Record{recs[id]}); err != nil {
					t.Fatal(err)
				}
			}
			k, err := s.CreationKey(ctx, "", "k", 25)
			if err != nil || k.ThreadID != newer || k.CreatedAt != 20 {
				t.Fatalf("key at 25: %+v, %v; want the newer thread's", k, err)
			}
			if k, err := s.CreationKey(ctx, "", "k", 30); err == nil {
				t.Fatalf("key at 30, expired: %+v", k)
			}
		})
	}
	t.Run("a thread's own key", func(t *testing.T) {
		ctx := t.Context()
		s := openTest(t)
		own := *stated(20)
		mustInsert(t, s, Record{Thread: newThread(newer, 20), Key: &own})
		if err := s.Replace(ctx, []Record{{Thread: newThread(older, 1), StatedKey: stated(1)}}); err != nil {
			t.Fatal(err)
		}
		if k, err := s.CreationKey(ctx, "", "k", 25); err != nil || k.ThreadID != newer {
			t.Fatalf("key: %+v, %v; want the newer thread's", k, err)
		}
	})
}

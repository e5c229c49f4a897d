package store

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"testing"
)

// listBoth lists with o through the cache and straight from the index and
// fails unless the two agree.
func listBoth(t *testing.T, s *Store, o ListOptions) Page {
	t.Helper()
	cached, err := s.List(t.Context(), o)
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	n, err := normalizeList(o)
	if err != nil {
		t.Fatal(err)
	}
	fresh, err := s.list(t.Context(), n)
	if err != nil {
		t.Fatalf("list: %v", err)
	}
	if !reflect.DeepEqual(cached, fresh) {
		t.Fatalf("cached page %v differs from the index's %v", ids(cached), ids(fresh))
	}
	return cached
}

func ids(p Page) []string {
	var out []string
	for _, t := range p.Threads {
		out = append(out, fmt.Sprintf("%s:%d:%s:%v", t.ID, t.UpdatedAt, t.Name, t.Archived))
	}
	return out
}

// TestListCacheSeesEveryWrite primes the cached pages, writes through one
// of the store's write methods, and checks that the next pages are the
// index's.
func TestListCacheSeesEveryWrite(t *testing.T) {
	no := false
	pages := []ListOptions{{Limit: 2}, {Limit: 50}, {Limit: 50, Archived: &no}, {Limit: 50, SortBy: SortCreated, Ascending: true}}
	tests := []struct {
		name  string
		write func(ctx context.Context, s *Store) error
	}{
		{"insert", func(ctx context.Context, s *Store) error {
			return s.Insert(ctx, Record{Thread: newThread("new", 500)})
		}},
		{"insert a fork", func(ctx context.Context, s *Store) error {
			child := newThread("fork", 600)
			child.ParentID, child.ForkOffset, child.UserMessageCount = "t1", 5000, 2
			return s.InsertFork(ctx, Record{Thread: child}, ForkSource{ParentID: "t1", Messages: 2})
		}},
		{"advance", func(ctx context.Context, s *Store) error {
			return s.Advance(ctx, Progress{ID: "t0", KeepUserMessages: 2, UpdatedAt: 900, FileSize: 9000, IndexedSize: 9000})
		}},
		{"advance all", func(ctx context.Context, s *Store) error {
			return s.AdvanceAll(ctx, []Progress{{ID: "t0", KeepUserMessages: 2, UpdatedAt: 950}})
		}},
		{"rename", func(ctx context.Context, s *Store) error { return s.SetName(ctx, "t2", "renamed", 400) }},
		{"archive", func(ctx context.Context, s *Store) error {
			return s.SetArchived(ctx, "t3", true, "archived_sessions/t3.jsonl", 400)
		}},
		{"delete", func(ctx context.Context, s *Store) error { return s.Delete(ctx, "t3") }},
		{"delete at", func(ctx context.Context, s *Store) error {
			_, err := s.DeleteAt(ctx, "t3", newThread("t3", 0).RolloutPath)
			return err
		}},
		{"replace", func(ctx context.Context, s *Store) error {
			r := newThread("t1", 100)
			r.Name = "replaced"
			return s.Replace(ctx, []Record{{Thread: r}})
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := openTest(t)
			for i := range 4 {
				th := newThread(fmt.Sprintf("t%d", i), int64(100*(i+1)))
				th.UserMessageCount = 2
				mustInsert(t, s, Record{Thread: th, Messages: messages(0, 2, "hello")})
			}
			for _, o := range pages {
				listBoth(t, s, o)
			}
			if err := tt.write(t.Context(), s); err != nil {
				t.Fatalf("write: %v", err)
			}
			for _, o := range pages {
				listBoth(t, s, o)
			}
		})
	}
}

// TestListCacheUnderConcurrentWrites lists while threads are inserted:
// once the writers are done, the cached first page is the index's, however
// the reads and the commits interleaved.
func TestListCacheUnderConcurrentWrites(t *testing.T) {
	s := openTest(t)
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for range 2 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				if _, err := s.List(t.Context(), ListOptions{Limit: 10}); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	for i := range 200 {
		if err := s.Insert(t.Context(), Record{Thread: newThread(fmt.Sprintf("c%03d", i), int64(i))}); err != nil {
			t.Fatal(err)
		}
	}
	close(stop)
	wg.Wait()
	if page := listBoth(t, s, ListOptions{Limit: 10}); page.Threads[0].ID != "c199" {
		t.Fatalf("newest thread %s, want c199", page.Threads[0].ID)
	}
}

// TestListCacheWriteDuringRead commits a write after a page's query ran
// and before the page is kept: the page is older than the write, so the
// next List must not be served it (it would be, were the page kept under
// the generation after its query instead of the one before).
func TestListCacheWriteDuringRead(t *testing.T) {
	s := openTest(t)
	mustInsert(t, s, Record{Thread: newThread("old", 1)})
	s.pages.afterRead = func() {
		s.pages.afterRead = nil
		mustInsert(t, s, Record{Thread: newThread("new", 2)})
	}
	if page, err := s.List(t.Context(), ListOptions{Limit: 5}); err != nil || len(page.Threads) != 1 {
		t.Fatalf("List during the write: %v, %v; want the page before it", ids(page), err)
	}
	if page := listBoth(t, s, ListOptions{Limit: 5}); len(page.Threads) != 2 {
		t.Fatalf("List after the write: %v, want both threads", ids(page))
	}
}

// TestListCacheReturnsCopies checks that a caller changing a page it got
// does not change what the next caller gets.
func TestListCacheReturnsCopies(t *testing.T) {
	s := openTest(t)
	mustInsert(t, s, Record{Thread: newThread("a", 1)})
	first := listBoth(t, s, ListOptions{Limit: 5})
	first.Threads[0].Name = "changed by a caller"
	listBoth(t, s, ListOptions{Limit: 5})
}

// TestListCacheHonoursCanceledContext: a canceled call fails with the
// context's error whether or not its page is cached.
func TestListCacheHonoursCanceledContext(t *testing.T) {
	s := openTest(t)
	mustInsert(t, s, Record{Thread: newThread("a", 1)})
	listBoth(t, s, ListOptions{Limit: 5}) // cached now
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := s.List(ctx, ListOptions{Limit: 5}); !errors.Is(err, context.Canceled) {
		t.Fatalf("List with a canceled context: %v, want context.Canceled", err)
	}
}

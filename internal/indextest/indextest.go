// Package indextest checks the promise that the index is a cache of the
// files: an index kept up to date live must equal one rebuilt from the
// files alone.
package indextest

import (
	"context"
	"fmt"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/spoolhq/spool/indexer"
	"github.com/spoolhq/spool/rolloutfs"
	"github.com/spoolhq/spool/store"
)

// Rebuild returns a fresh index of the rollouts under root, built from the
// files alone (a full Sync), closed with the test.
func Rebuild(t testing.TB, root string) *store.Store {
	t.Helper()
	ctx := context.Background() // t.Context is done in a cleanup
	rebuilt, err := store.Open(ctx, filepath.Join(t.TempDir(), "rebuilt.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rebuilt.Close() })
	if _, err := indexer.Sync(ctx, rebuilt, rolloutfs.Local{Root: root}, indexer.SyncOptions{Full: true}); err != nil {
		t.Fatal(err)
	}
	return rebuilt
}

// Compare fails t on every row where the live and the rebuilt index
// disagree: the threads (but their files' mtimes), their user messages,
// the messages their rollbacks dropped, their ancestors and descendants,
// the idempotency keys of their starts and forks live now, and the hits of
// a search for each of queries.
func Compare(t testing.TB, live, rebuilt *store.Store, queries ...string) {
	t.Helper()
	ctx := context.Background()
	now := time.Now().UnixMilli()
	liveIDs, err := live.IDs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	rebuiltIDs, err := rebuilt.IDs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(liveIDs, rebuiltIDs) {
		t.Fatalf("thread ids differ:\nlive    %v\nrebuilt %v", liveIDs, rebuiltIDs)
	}
	for _, id := range liveIDs {
		want, err := live.Get(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		got, err := rebuilt.Get(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		want.FileMtime, got.FileMtime = 0, 0
		if want != got {
			t.Errorf("thread %s differs:\nlive    %+v\nrebuilt %+v", id, want, got)
		}
		for _, q := range []struct {
			name string
			get  func(*store.Store) (any, error)
		}{
			{"user messages", func(s *store.Store) (any, error) { return s.UserMessages(ctx, id) }},
			{"rolled back messages", func(s *store.Store) (any, error) { return s.RolledBack(ctx, id) }},
			{"ancestors", func(s *store.Store) (any, error) { return relatives(s.Ancestors(ctx, id)) }},
			{"descendants", func(s *store.Store) (any, error) { return relatives(s.Descendants(ctx, id)) }},
			{"creation keys", func(s *store.Store) (any, error) { return s.CreationKeysOf(ctx, id, now) }},
		} {
			w, err := q.get(live)
			if err != nil {
				t.Fatal(err)
			}
			g, err := q.get(rebuilt)
			if err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(w) != fmt.Sprint(g) {
				t.Errorf("thread %s %s differ:\nlive    %v\nrebuilt %v", id, q.name, w, g)
			}
		}
	}
	for _, query := range queries {
		w, err := live.Search(ctx, store.SearchOptions{Query: query})
		if err != nil {
			t.Fatal(err)
		}
		g, err := rebuilt.Search(ctx, store.SearchOptions{Query: query})
		if err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(w) != fmt.Sprint(g) {
			t.Errorf("search %q differs:\nlive    %v\nrebuilt %v", query, w, g)
		}
	}
}

// relatives reduces relatives to "id@depth" strings for comparison.
func relatives(rs []store.Relative, err error) ([]string, error) {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = fmt.Sprintf("%s@%d", r.ID, r.Depth)
	}
	return out, err
}

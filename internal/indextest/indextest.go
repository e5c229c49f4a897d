// Package indextest checks the promise that the index is a cache of the
// files: an index kept up to date live must equal one rebuilt from the
// files alone.
package indextest

import (
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pressly/goose/v3"

	"github.com/spoolhq/spool/indexer"
	"github.com/spoolhq/spool/internal/storetest"
	"github.com/spoolhq/spool/migrations"
	"github.com/spoolhq/spool/rolloutfs"
	"github.com/spoolhq/spool/store"
)

// Rebuild returns a fresh index of the rollouts under root, built from the
// files alone (a full Sync), closed with the test.
func Rebuild(t testing.TB, root string) *store.Store {
	t.Helper()
	rebuilt := storetest.Open(t)
	if _, err := indexer.Sync(context.Background(), rebuilt, rolloutfs.Local{Root: root}, indexer.SyncOptions{Full: true}); err != nil {
		t.Fatal(err)
	}
	return rebuilt
}

// RebuildShuffled is Rebuild with the files applied in an order drawn
// from seed, in batches of a size drawn from it too (indexer.SyncOptions
// Shuffle): the index must not depend on the order a rebuild's workers
// finish in. It returns the batch size it drew, for messages.
func RebuildShuffled(t testing.TB, root string, seed uint64) (*store.Store, int) {
	t.Helper()
	rebuilt := storetest.Open(t)
	rng := rand.New(rand.NewPCG(seed, 0x5350_4f4f_4c))
	batch := []int{1, 2, 3, indexer.DefaultBatchSize}[rng.IntN(4)]
	opts := indexer.SyncOptions{Full: true, Shuffle: rng, BatchSize: batch}
	if _, err := indexer.Sync(context.Background(), rebuilt, rolloutfs.Local{Root: root}, opts); err != nil {
		t.Fatal(err)
	}
	return rebuilt, batch
}

// ShuffledRebuilds returns how many rebuilds in drawn orders
// CompareRebuilds checks beside the plain one: SPOOL_REBUILD_SHUFFLES,
// none when it is unset (each costs the race detector most of a second,
// so `make test` runs none and `make random` runs the tests again without
// it, with 8).
func ShuffledRebuilds(t testing.TB) int {
	t.Helper()
	s := os.Getenv("SPOOL_REBUILD_SHUFFLES")
	if s == "" {
		return 0
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		t.Fatalf("SPOOL_REBUILD_SHUFFLES=%q: want a count", s)
	}
	return n
}

// CompareRebuilds compares live (Compare) with a rebuild of the rollouts
// under root, and with ShuffledRebuilds rebuilds that apply the files in
// orders drawn from seeds 1, 2, ... (RebuildShuffled).
func CompareRebuilds(t testing.TB, live *store.Store, root string, queries ...string) {
	t.Helper()
	Compare(t, live, Rebuild(t, root), queries...)
	for seed := range uint64(ShuffledRebuilds(t)) {
		failed := t.Failed()
		rebuilt, batch := RebuildShuffled(t, root, seed+1)
		Compare(t, live, rebuilt, queries...)
		if !failed && t.Failed() {
			t.Logf("the rebuild above applied the files in the order of seed %d, in batches of %d", seed+1, batch)
			return
		}
	}
}

// Compare fails t on every row where the live and the rebuilt index
// disagree: the threads (but their files' mtimes), their user messages,
// the messages their rollbacks dropped, their ancestors and descendants,
// the thread that spawned each, the files of each (thread_segments), the
// idempotency keys of their starts and forks live now, and the hits of
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
			{"spawn parent", func(s *store.Store) (any, error) { return s.SpawnParent(ctx, id) }},
			{"segments", func(s *store.Store) (any, error) { return segments(s.Segments(ctx, id)) }},
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

// segments reduces a file out of the history (length -1) to its path and
// length: a rebuild that meets it after the thread's newest file knows no
// more of it; and such files, numbered after the chain links in the
// order they were met, are put in the order of their paths (docs/SCHEMA.md,
// thread_segments).
func segments(segs []store.Segment, err error) ([]store.Segment, error) {
	var chain, out []store.Segment
	for _, s := range segs {
		if s.InChain() {
			chain = append(chain, s)
			continue
		}
		out = append(out, store.Segment{ThreadID: s.ThreadID, RolloutPath: s.RolloutPath, Length: s.Length})
	}
	slices.SortFunc(out, func(a, b store.Segment) int { return strings.Compare(a.RolloutPath, b.RolloutPath) })
	return append(chain, out...), err
}

// relatives reduces relatives to "id@depth" strings for comparison.
func relatives(rs []store.Relative, err error) ([]string, error) {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = fmt.Sprintf("%s@%d", r.ID, r.Depth)
	}
	return out, err
}

// DownTo takes the closed index at path down to schema version, as an
// older release left it, and returns the newest version the migrations
// know: what opening it again migrates it to.
func DownTo(t testing.TB, path string, version int64) (newest int64) {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	p, err := goose.NewProvider(goose.DialectSQLite3, db, migrations.FS, goose.WithDisableGlobalRegistry(true))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	sources := p.ListSources()
	if _, err := p.DownTo(context.Background(), version); err != nil {
		t.Fatal(err)
	}
	return sources[len(sources)-1].Version
}

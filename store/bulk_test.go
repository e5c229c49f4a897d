package store

import (
	"slices"
	"strings"
	"testing"
)

// indexSchema returns the name and definition of every index in s.
func indexSchema(t *testing.T, s *Store) []string {
	t.Helper()
	var rows []struct {
		Name string `db:"name"`
		SQL  string `db:"sql"`
	}
	const q = `SELECT name, COALESCE(sql, '') AS sql FROM sqlite_master WHERE type = 'index' ORDER BY name`
	if err := s.writer.SelectContext(t.Context(), &rows, q); err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, r := range rows {
		out = append(out, r.Name+": "+r.SQL)
	}
	return out
}

// TestDeferListIndexes: an index with no thread drops the indexes that
// only order lists and builds them again as they were; one with a thread
// keeps every index; lists are answered the same either way.
func TestDeferListIndexes(t *testing.T) {
	tests := []struct {
		name      string
		threads   int
		wantDefer bool
	}{
		{"empty index", 0, true},
		{"index with a thread", 1, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := openTest(t)
			for i := range tt.threads {
				mustInsert(t, s, Record{Thread: newThread(strings.Repeat("a", 35)+string(rune('0'+i)), 1000)})
			}
			before := indexSchema(t, s)
			deferred, err := s.DeferListIndexes(t.Context())
			if err != nil || deferred != tt.wantDefer {
				t.Fatalf("DeferListIndexes = %v, %v; want %v", deferred, err, tt.wantDefer)
			}
			during := indexSchema(t, s)
			for _, name := range listIndexes {
				has := slices.ContainsFunc(during, func(row string) bool { return strings.HasPrefix(row, name+": ") })
				if has == deferred {
					t.Errorf("index %s there: %v, after a defer that reported %v", name, has, deferred)
				}
			}
			// Written without the list indexes, a row lists as before.
			mustInsert(t, s, Record{Thread: newThread("bbbbbbbb-0000-7000-8000-000000000001", 2000)})
			if page, err := s.List(t.Context(), ListOptions{Limit: 10}); err != nil || len(page.Threads) != tt.threads+1 {
				t.Fatalf("list while deferred: %d threads, %v; want %d", len(page.Threads), err, tt.threads+1)
			}
			if built, err := s.RestoreListIndexes(t.Context()); err != nil || built != tt.wantDefer {
				t.Fatalf("RestoreListIndexes = %v, %v; want %v", built, err, tt.wantDefer)
			}
			if after := indexSchema(t, s); !slices.Equal(after, before) {
				t.Fatalf("indexes after restore:\n%s\nwant:\n%s", strings.Join(after, "\n"), strings.Join(before, "\n"))
			}
			if _, ok, err := s.TakeState(t.Context(), deferredKey); ok || err != nil {
				t.Fatalf("definitions still kept after restore (%v)", err)
			}
		})
	}
}

// TestOpenBuildsDeferredIndexes: a first index cut short (a crash, kill
// -9) before it built the list indexes leaves their definitions kept;
// the next Open builds them, so no index stays without them.
func TestOpenBuildsDeferredIndexes(t *testing.T) {
	path := closedIndex(t)
	s, err := Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	want := indexSchema(t, s)
	if deferred, err := s.DeferListIndexes(t.Context()); err != nil || !deferred {
		t.Fatalf("DeferListIndexes = %v, %v; want true", deferred, err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	again, err := Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer again.Close()
	if got := indexSchema(t, again); !slices.Equal(got, want) {
		t.Fatalf("indexes after reopening:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if _, ok, err := again.TakeState(t.Context(), deferredKey); ok || err != nil {
		t.Fatalf("definitions still kept after reopening (%v)", err)
	}
}

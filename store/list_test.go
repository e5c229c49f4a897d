package store

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// listFixture inserts n threads whose timestamps repeat (only 4 distinct
// values per column), so pages must break ties by id.
func listFixture(t testing.TB, s *Store, n int) []Thread {
	t.Helper()
	var all []Thread
	var batch []Record
	for i := range n {
		th := newThread(fmt.Sprintf("t%03d", (i*37)%n), int64(100+i%4))
		th.UpdatedAt = int64(500 + (i*3)%4)
		th.Archived = i%3 == 0
		if th.Archived {
			th.ArchivedAt = 9
		}
		th.Cwd = []string{"/work", "/home", "/tmp"}[i%3/2]
		th.Source = []string{"cli", "vscode"}[i%2]
		th.ModelProvider = []string{"openai", "ollama", ""}[i%3]
		th.Name = []string{"", "Refactor 50% of it", "refactor_db", "Other"}[i%4]
		th.Preview = []string{"fix the parser", "REFACTOR it", "add tests", "x"}[i%4/2]
		if i%5 == 1 {
			th.ParentID = "t000"
		}
		all = append(all, th)
		batch = append(batch, Record{Thread: th})
	}
	if err := s.Replace(context.Background(), batch); err != nil {
		t.Fatal(err)
	}
	return all
}

// TestListLongTextFilter: a text filter longer than SQLite lets a LIKE
// pattern be (50,000 bytes) is matched as a shorter one is, not refused
// with an SQL error (which spoold answered 500).
func TestListLongTextFilter(t *testing.T) {
	s := openTest(t)
	long := strings.Repeat("ab%_", 15000) // 60,000 bytes, twice that escaped
	named := newThread("named", 1)
	named.Name = "Title " + strings.ToUpper(long) + strings.Repeat("ab", 24999) + " end"
	mustInsert(t, s, Record{Thread: named})
	mustInsert(t, s, Record{Thread: newThread("other", 2)})
	for _, tc := range []struct {
		name, text string
		want       []string
	}{
		{"a substring of the name", long, []string{"named"}},
		{"no substring", long + "x", nil},
		{"as long as a LIKE pattern may be", strings.Repeat("AB", 24999), []string{"named"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			page, err := s.List(t.Context(), ListOptions{Text: tc.text})
			if err != nil {
				t.Fatalf("List: %v", err)
			}
			var got []string
			for _, th := range page.Threads {
				got = append(got, th.ID)
			}
			if !slices.Equal(got, tc.want) {
				t.Fatalf("List = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestListPagination(t *testing.T) {
	ctx := context.Background()
	s := openTest(t)
	all := listFixture(t, s, 157)
	yes, no := true, false

	filters := []struct {
		name string
		opts ListOptions
		keep func(Thread) bool
	}{
		{"all", ListOptions{}, func(Thread) bool { return true }},
		{"archived", ListOptions{Archived: &yes}, func(t Thread) bool { return t.Archived }},
		{"live", ListOptions{Archived: &no}, func(t Thread) bool { return !t.Archived }},
		{"cwd", ListOptions{Cwd: "/home"}, func(t Thread) bool { return t.Cwd == "/home" }},
		{"source and provider", ListOptions{Source: "cli", ModelProvider: "openai"},
			func(t Thread) bool { return t.Source == "cli" && t.ModelProvider == "openai" }},
		{"parent", ListOptions{ParentID: "t000"}, func(t Thread) bool { return t.ParentID == "t000" }},
		{"text any case", ListOptions{Text: "reFACTor"}, func(t Thread) bool {
			return strings.Contains(strings.ToLower(t.Name+"\x00"+t.Preview), "refactor")
		}},
		{"text with wildcard", ListOptions{Text: "50%"}, func(t Thread) bool { return strings.Contains(t.Name, "50%") }},
		{"text with underscore", ListOptions{Text: "r_db"}, func(t Thread) bool { return strings.Contains(t.Name, "r_db") }},
		{"live cwd text", ListOptions{Archived: &no, Cwd: "/work", Text: "parser"}, func(t Thread) bool {
			return !t.Archived && t.Cwd == "/work" && strings.Contains(t.Preview, "parser")
		}},
	}
	for _, sortBy := range []SortField{SortUpdated, SortCreated, ""} {
		for _, asc := range []bool{false, true} {
			for _, f := range filters {
				name := fmt.Sprintf("%s/asc=%t/%s", sortBy, asc, f.name)
				t.Run(name, func(t *testing.T) {
					key := func(th Thread) int64 {
						if sortBy == SortCreated {
							return th.CreatedAt
						}
						return th.UpdatedAt
					}
					var want []string
					sorted := slices.Clone(all)
					slices.SortFunc(sorted, func(a, b Thread) int {
						c := cmpInt(key(a), key(b))
						if c == 0 {
							c = strings.Compare(a.ID, b.ID)
						}
						if !asc {
							c = -c
						}
						return c
					})
					for _, th := range sorted {
						if f.keep(th) {
							want = append(want, th.ID)
						}
					}
					if len(want) == 0 {
						t.Fatal("filter matches nothing in the fixture")
					}

					opts := f.opts
					opts.SortBy, opts.Ascending, opts.Limit = sortBy, asc, 7
					var got []string
					for pages := 0; ; pages++ {
						if pages > len(all) {
							t.Fatal("pagination does not end")
						}
						page, err := s.List(ctx, opts)
						if err != nil {
							t.Fatalf("List page %d: %v", pages, err)
						}
						if len(page.Threads) > 7 {
							t.Fatalf("page of %d threads, limit 7", len(page.Threads))
						}
						for _, th := range page.Threads {
							got = append(got, th.ID)
						}
						if page.NextCursor == "" {
							break
						}
						opts.Cursor = page.NextCursor
					}
					if !reflect.DeepEqual(got, want) {
						t.Fatalf("listed %d ids %v\nwant %d ids %v", len(got), got, len(want), want)
					}
				})
			}
		}
	}
}

func cmpInt(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func TestListLimits(t *testing.T) {
	ctx := context.Background()
	s := openTest(t)
	listFixture(t, s, 60)
	for _, tc := range []struct {
		limit, want int
		more        bool
	}{
		{0, DefaultListLimit, true},
		{-3, DefaultListLimit, true},
		{60, 60, false},
		{5000, 60, false},
	} {
		t.Run(fmt.Sprint(tc.limit), func(t *testing.T) {
			page, err := s.List(ctx, ListOptions{Limit: tc.limit})
			if err != nil {
				t.Fatal(err)
			}
			if len(page.Threads) != tc.want || (page.NextCursor != "") != tc.more {
				t.Fatalf("%d threads, cursor %q; want %d, more=%t", len(page.Threads), page.NextCursor, tc.want, tc.more)
			}
		})
	}
}

func TestListBadCursor(t *testing.T) {
	ctx := context.Background()
	s := openTest(t)
	listFixture(t, s, 20)
	page, err := s.List(ctx, ListOptions{Limit: 5})
	if err != nil {
		t.Fatal(err)
	}
	if page.NextCursor == "" {
		t.Fatal("no cursor")
	}
	for _, tc := range []struct {
		name string
		opts ListOptions
	}{
		{"garbage", ListOptions{Cursor: "!!!"}},
		{"not json", ListOptions{Cursor: "bm90IGpzb24"}},
		{"other sort", ListOptions{Cursor: page.NextCursor, SortBy: SortCreated}},
		{"other direction", ListOptions{Cursor: page.NextCursor, Ascending: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := s.List(ctx, tc.opts)
			if !errors.Is(err, ErrBadCursor) {
				t.Fatalf("err = %v, want ErrBadCursor", err)
			}
			// The cursor's bytes are opaque: how they fail to decode is no
			// help to whoever passed them.
			if strings.Contains(err.Error(), "invalid character") || strings.Contains(err.Error(), "base64") {
				t.Fatalf("err = %v, want no word of the cursor's decoding", err)
			}
		})
	}
	if _, err := s.List(ctx, ListOptions{SortBy: "name"}); err == nil {
		t.Fatal("List by an unknown sort field succeeded")
	}
}

// TestListQueryPlan checks that listing pages walk an index in order
// instead of sorting the table (which would be slow at a million threads).
func TestListQueryPlan(t *testing.T) {
	ctx := context.Background()
	s := openTest(t)
	listFixture(t, s, 50)
	if _, err := s.writer.ExecContext(ctx, "ANALYZE"); err != nil {
		t.Fatal(err)
	}
	no := false
	for _, tc := range []struct {
		name string
		opts ListOptions
	}{
		{"updated", ListOptions{}},
		{"created asc", ListOptions{SortBy: SortCreated, Ascending: true}},
		{"live", ListOptions{Archived: &no}},
		{"live created", ListOptions{Archived: &no, SortBy: SortCreated}},
		{"cwd", ListOptions{Cwd: "/work"}},
		{"not spawned", ListOptions{Spawned: &no}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// Take a real cursor so the plan includes the keyset condition.
			opts := tc.opts
			opts.Limit = 2
			page, err := s.List(ctx, opts)
			if err != nil {
				t.Fatal(err)
			}
			opts.Cursor = page.NextCursor
			q, args, err := listQuery(opts)
			if err != nil {
				t.Fatal(err)
			}
			joined := strings.Join(queryPlan(t, s, q, args), "; ")
			if strings.Contains(joined, "TEMP B-TREE") || !strings.Contains(joined, "USING INDEX") {
				t.Fatalf("plan %q sorts or scans without an index", joined)
			}
		})
	}
}

// TestListSpawned lists the threads no thread spawned, the spawned ones, or
// both, each from the index and again from the page cache.
func TestListSpawned(t *testing.T) {
	ctx := t.Context()
	s := openTest(t)
	lead, sub := newThread("lead", 100), newThread("sub", 200)
	if err := s.Replace(ctx, []Record{{Thread: lead}, {Thread: sub, SpawnParentID: "lead"}}); err != nil {
		t.Fatal(err)
	}
	no, yes := false, true
	for round := range 2 {
		for _, tc := range []struct {
			spawned *bool
			want    string
		}{{nil, "[sub lead]"}, {&no, "[lead]"}, {&yes, "[sub]"}} {
			page, err := s.List(ctx, ListOptions{Spawned: tc.spawned})
			if err != nil {
				t.Fatal(err)
			}
			var ids []string
			for _, th := range page.Threads {
				ids = append(ids, th.ID)
			}
			if got := fmt.Sprint(ids); got != tc.want {
				t.Errorf("round %d, Spawned %v: %s, want %s", round, tc.spawned != nil && *tc.spawned, got, tc.want)
			}
		}
	}
}

// fewAmongMany returns a store of 500 threads as newThread makes them, two
// of them changed by few, with statistics when analyzed (a new index has none
// until it is closed): a value few threads have, for the query plans of
// lists filtered by it.
func fewAmongMany(t *testing.T, analyzed bool, few func(*Thread)) *Store {
	t.Helper()
	s := openTest(t)
	var batch []Record
	for i := range 500 {
		th := newThread(fmt.Sprintf("t%03d", i), int64(100+i))
		if i < 2 {
			few(&th)
		}
		batch = append(batch, Record{Thread: th})
	}
	if err := s.Replace(t.Context(), batch); err != nil {
		t.Fatal(err)
	}
	if analyzed {
		if _, err := s.writer.ExecContext(t.Context(), "ANALYZE"); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

// TestListByParentQueryPlan checks that the forks of a thread are listed
// through the parent's index, with statistics and without (a new index has
// none until it is closed): walking the list's order and testing every
// thread reads the whole home when the parent has few forks or none.
func TestListByParentQueryPlan(t *testing.T) {
	ctx := t.Context()
	for _, analyzed := range []bool{false, true} {
		t.Run(fmt.Sprintf("analyzed=%t", analyzed), func(t *testing.T) {
			s := fewAmongMany(t, analyzed, func(th *Thread) { th.ParentID = "p" })
			no := false
			for _, tc := range []struct {
				name string
				opts ListOptions
			}{
				{"any", ListOptions{ParentID: "p"}},
				{"live", ListOptions{ParentID: "p", Archived: &no}},
				{"live created asc", ListOptions{ParentID: "p", Archived: &no, SortBy: SortCreated, Ascending: true}},
				{"cwd", ListOptions{ParentID: "p", Cwd: "/work"}},
			} {
				q, args, err := listQuery(tc.opts)
				if err != nil {
					t.Fatal(err)
				}
				if joined := strings.Join(queryPlan(t, s, q, args), "; "); !strings.Contains(joined, "USING INDEX threads_parent (parent_id=?)") {
					t.Errorf("%s: plan %q, want a search of threads_parent", tc.name, joined)
				}
			}
			page, err := s.List(ctx, ListOptions{ParentID: "p"})
			if err != nil {
				t.Fatal(err)
			}
			if got, want := len(page.Threads), 2; got != want {
				t.Fatalf("forks of p = %d, want %d", got, want)
			}
		})
	}
}

// TestListByFilterQueryPlan checks that a list filtered by a value few
// threads have walks an index in the list's order, with statistics and
// without (a new index has none until it is closed): a working directory
// in either order, a source or model provider in created order (Codex's
// default). Walking threads_archived_* and testing every thread read the
// whole home for a value few threads have, or none; searching by the value
// and sorting every match reads every thread of a common value. A source or
// provider in updated order has no index of its own (it would cost every
// append's index commit): its list walks the order and never sorts.
func TestListByFilterQueryPlan(t *testing.T) {
	ctx := t.Context()
	no, yes := false, true
	filters := []struct {
		name  string
		few   func(*Thread)
		opts  ListOptions
		index map[SortField]string // the index walked, by sort; "" for none of the filter's own
	}{
		{"cwd", func(th *Thread) { th.Cwd = "/rare" }, ListOptions{Cwd: "/rare"},
			map[SortField]string{SortUpdated: "threads_cwd_updated (cwd=?", SortCreated: "threads_cwd_created (cwd=?"}},
		{"source", func(th *Thread) { th.Source = "vscode" }, ListOptions{Source: "vscode"},
			map[SortField]string{SortCreated: "threads_source_created (source=?"}},
		{"provider", func(th *Thread) { th.ModelProvider = "ollama" }, ListOptions{ModelProvider: "ollama"},
			map[SortField]string{SortCreated: "threads_model_provider_created (model_provider=?"}},
	}
	for _, f := range filters {
		for _, analyzed := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/analyzed=%t", f.name, analyzed), func(t *testing.T) {
				s := fewAmongMany(t, analyzed, f.few)
				for _, sort := range []SortField{SortUpdated, SortCreated} {
					for _, tc := range []struct {
						name      string
						archived  *bool
						ascending bool
					}{
						{"all", nil, false},
						{"live", &no, false},
						{"live oldest first", &no, true},
						{"archived", &yes, false},
					} {
						opts := f.opts
						opts.SortBy, opts.Archived, opts.Ascending = sort, tc.archived, tc.ascending
						q, args, err := listQuery(opts)
						if err != nil {
							t.Fatal(err)
						}
						joined := strings.Join(queryPlan(t, s, q, args), "; ")
						if want := f.index[sort]; strings.Contains(joined, "TEMP B-TREE") ||
							(want != "" && !strings.Contains(joined, "USING INDEX "+want)) {
							t.Errorf("%s by %s: plan %q, want a walk of %q in order", tc.name, sort, joined, want)
						}
						page, err := s.List(ctx, opts)
						if err != nil {
							t.Fatal(err)
						}
						want := 2
						if tc.archived != nil && *tc.archived {
							want = 0
						}
						if got := len(page.Threads); got != want {
							t.Errorf("%s by %s: %d threads, want %d", tc.name, sort, got, want)
						}
					}
				}
			})
		}
	}
}

// TestAdvanceLeavesCreatedOrderIndexes checks that an append's row update
// (advanceSet) writes none of the indexes of lists filtered in created order
// (migration 00018): SQLite updates only the indexes that hold a column an
// UPDATE changes, and those hold none an append changes, so they cost an
// append nothing. The update must write threads_updated, which shows the
// check sees index writes at all.
func TestAdvanceLeavesCreatedOrderIndexes(t *testing.T) {
	s := openTest(t)
	roots := map[int64]string{}
	rows, err := s.writer.QueryxContext(t.Context(), `SELECT name, rootpage FROM sqlite_schema WHERE type = 'index' AND tbl_name = 'threads'`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var name string
		var root int64
		if err := rows.Scan(&name, &root); err != nil {
			t.Fatal(err)
		}
		roots[root] = name
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	written := map[string]bool{}
	ops, err := s.writer.QueryxContext(t.Context(), "EXPLAIN "+advanceSet,
		advanceArgs(Progress{ID: "t1", UpdatedAt: 5, Preview: new(string), Name: new(string)})...)
	if err != nil {
		t.Fatal(err)
	}
	for ops.Next() {
		op := map[string]any{}
		if err := ops.MapScan(op); err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(op["opcode"]) != "OpenWrite" {
			continue
		}
		root, _ := op["p2"].(int64)
		if name, ok := roots[root]; ok {
			written[name] = true
		}
	}
	if err := ops.Err(); err != nil {
		t.Fatal(err)
	}
	if !written["threads_updated"] {
		t.Fatalf("indexes written %v: want threads_updated among them", written)
	}
	for _, name := range []string{"threads_cwd_created", "threads_source_created", "threads_model_provider_created", "threads_created"} {
		if written[name] {
			t.Errorf("an append writes %s (indexes written: %v)", name, written)
		}
	}
}

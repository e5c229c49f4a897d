package store

import (
	"context"
	"fmt"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// Ids of the spawn tree (docs/SCHEMA.md shows it by thread name).
const (
	spawnLead   = "f0000000-0000-7000-8000-000000000001"
	spawnScout  = "f0000000-0000-7000-8000-000000000002"
	spawnCritic = "f0000000-0000-7000-8000-000000000003"
	spawnHelper = "f0000000-0000-7000-8000-000000000004"
	spawnRetry  = "f0000000-0000-7000-8000-000000000005"
)

// spawnSource is a meta source as Codex writes it for a sub-agent that
// parent spawned, compacted as the indexer stores it.
func spawnSource(parent, nickname string) string {
	return fmt.Sprintf(`{"subagent":{"thread_spawn":{"parent_thread_id":%q,"depth":1,"agent_nickname":%q,"agent_role":"explorer"}}}`, parent, nickname)
}

// spawnTree inserts the sub-agent threads of the schema document, in cwd
// /agents, older than the fork tree:
//
//	lead ─┬─ scout ── helper      (spawned)
//	      └─ critic ·· retry      (retry: a fork of critic, so spawned by lead too)
func spawnTree(t testing.TB, s *Store) {
	t.Helper()
	for i, n := range []struct{ id, name, spawner, forkParent string }{
		{spawnLead, "lead", "", ""},
		{spawnScout, "scout", spawnLead, ""},
		{spawnCritic, "critic", spawnLead, ""},
		{spawnHelper, "helper", spawnScout, ""},
		{spawnRetry, "retry", spawnLead, spawnCritic},
	} {
		th := newThread(n.id, int64(900+i))
		th.Cwd, th.Name, th.Preview, th.UserMessageCount = "/agents", n.name, "thread "+n.name, 2
		if n.spawner != "" {
			th.Source = spawnSource(n.spawner, n.name)
		}
		if n.forkParent != "" {
			th.ParentID, th.ForkUserMessage, th.ForkOffset = n.forkParent, 1, 2000
		}
		mustInsert(t, s, Record{Thread: th, Messages: messages(0, 2, "about "+n.name), SpawnParentID: n.spawner})
	}
}

func TestSpawns(t *testing.T) {
	ctx := context.Background()
	s := openTest(t)
	spawnTree(t, s)
	forkTree(t, s)

	check := func(t *testing.T) {
		t.Helper()
		for _, tc := range []struct {
			id                    string
			spawns, spawnedBy     []string
			spawnDepths, byDepths []int
		}{
			{spawnLead, []string{spawnScout, spawnCritic, spawnRetry, spawnHelper}, []string{}, []int{1, 1, 1, 2}, []int{}},
			{spawnScout, []string{spawnHelper}, []string{spawnLead}, []int{1}, []int{1}},
			{spawnHelper, []string{}, []string{spawnScout, spawnLead}, []int{}, []int{1, 2}},
			{spawnRetry, []string{}, []string{spawnLead}, []int{}, []int{1}},
			{"root", []string{}, []string{}, []int{}, []int{}},
		} {
			spawns, err := s.Spawns(ctx, tc.id)
			if err != nil {
				t.Fatal(err)
			}
			if got := relIDs(spawns); !reflect.DeepEqual(got, tc.spawns) || !reflect.DeepEqual(relDepths(spawns), tc.spawnDepths) {
				t.Errorf("Spawns(%s) = %v at %v, want %v at %v", tc.id, got, relDepths(spawns), tc.spawns, tc.spawnDepths)
			}
			by, err := s.SpawnedBy(ctx, tc.id)
			if err != nil {
				t.Fatal(err)
			}
			if got := relIDs(by); !reflect.DeepEqual(got, tc.spawnedBy) || !reflect.DeepEqual(relDepths(by), tc.byDepths) {
				t.Errorf("SpawnedBy(%s) = %v at %v, want %v at %v", tc.id, got, relDepths(by), tc.spawnedBy, tc.byDepths)
			}
			for _, r := range append(spawns, by...) {
				if r.Thread == nil || r.Thread.ID != r.ID {
					t.Errorf("relative %s of %s has thread %+v", r.ID, tc.id, r.Thread)
				}
			}
		}
	}
	t.Run("inserted", check)

	// A rebuild replaces every row from the files: the same edges.
	var all []Record
	for _, e := range []struct{ id, spawner string }{
		{spawnLead, ""}, {spawnScout, spawnLead}, {spawnCritic, spawnLead}, {spawnHelper, spawnScout}, {spawnRetry, spawnLead},
	} {
		th, err := s.Get(ctx, e.id)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, Record{Thread: th, Messages: messages(0, 2, "about "+th.Name), SpawnParentID: e.spawner})
	}
	if err := s.Replace(ctx, all); err != nil {
		t.Fatal(err)
	}
	t.Run("replaced", check)

	// The spawner deleted: what it spawned still names it.
	if err := s.Delete(ctx, spawnLead); err != nil {
		t.Fatal(err)
	}
	by, err := s.SpawnedBy(ctx, spawnScout)
	if err != nil {
		t.Fatal(err)
	}
	if len(by) != 1 || by[0].ID != spawnLead || by[0].Thread != nil {
		t.Fatalf("SpawnedBy(scout) after deleting lead = %+v, want lead without a row", by)
	}
	// A spawned thread deleted: its edge goes with it.
	if err := s.Delete(ctx, spawnHelper); err != nil {
		t.Fatal(err)
	}
	if spawns, err := s.Spawns(ctx, spawnScout); err != nil || len(spawns) != 0 {
		t.Fatalf("Spawns(scout) after deleting helper = %v, %v; want none", relIDs(spawns), err)
	}
}

// A record replaced without a spawner loses its edge; one naming itself
// has none.
func TestSpawnEdgeReplaced(t *testing.T) {
	ctx := context.Background()
	s := openTest(t)
	const child = "e0000000-0000-7000-8000-000000000001"
	for _, tc := range []struct{ name, spawner, want string }{
		{"spawned", spawnLead, spawnLead},
		{"spawned by another", spawnScout, spawnScout},
		{"not spawned", "", ""},
		{"itself", child, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := s.Replace(ctx, []Record{{Thread: newThread(child, 1), SpawnParentID: tc.spawner}}); err != nil {
				t.Fatal(err)
			}
			by, err := s.SpawnedBy(ctx, child)
			if err != nil {
				t.Fatal(err)
			}
			if got := strings.Join(relIDs(by), ","); got != tc.want {
				t.Fatalf("spawned by %q, want %q", got, tc.want)
			}
		})
	}
}

// An index written before migration 00004 learns its edges from the
// sources it holds.
func TestSpawnMigrationBackfill(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "index.db")
	s, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	const child = "e0000000-0000-7000-8000-000000000001"
	sources := map[string]string{
		child:                                  spawnSource(strings.ToUpper(spawnLead), "scout"),
		"e0000000-0000-7000-8000-000000000002": spawnSource("lead", "not a uuid"),
		"e0000000-0000-7000-8000-000000000003": `{"subagent":"review"}`,
		"e0000000-0000-7000-8000-000000000004": "cli",
		"e0000000-0000-7000-8000-000000000005": `{"subagent":{"thread_spawn":{"parent_thread_id":7}}}`,
	}
	for id, src := range sources {
		th := newThread(id, 1)
		th.Source = src
		mustInsert(t, s, Record{Thread: th})
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	db, p := migratorAt(t, path)
	before := int64(0)
	for _, src := range p.ListSources() {
		if strings.Contains(src.Path, "_spawn_edges.sql") {
			break
		}
		before = src.Version
	}
	if _, err := p.DownTo(ctx, before); err != nil {
		t.Fatalf("DownTo(%d): %v", before, err)
	}
	if _, err := p.Up(ctx); err != nil {
		t.Fatalf("Up: %v", err)
	}
	var edges []string
	if err := db.SelectContext(ctx, &edges, `SELECT thread_id || ' ' || parent_id FROM thread_spawns ORDER BY thread_id`); err != nil {
		t.Fatal(err)
	}
	if want := []string{child + " " + spawnLead}; !reflect.DeepEqual(edges, want) {
		t.Fatalf("backfilled edges %v, want %v", edges, want)
	}
}

// Edges read from files may form a cycle; the walks still end.
func TestSpawnCycle(t *testing.T) {
	ctx := context.Background()
	s := openTest(t)
	a, b := "a0000000-0000-7000-8000-000000000001", "b0000000-0000-7000-8000-000000000002"
	ta, tb := newThread(a, 1), newThread(b, 2)
	mustInsert(t, s, Record{Thread: ta, SpawnParentID: b})
	mustInsert(t, s, Record{Thread: tb, SpawnParentID: a})
	spawns, err := s.Spawns(ctx, a)
	if err != nil || !reflect.DeepEqual(relIDs(spawns), []string{b}) {
		t.Fatalf("Spawns(a) = %v, %v; want [b]", relIDs(spawns), err)
	}
	by, err := s.SpawnedBy(ctx, a)
	if err != nil || !reflect.DeepEqual(relIDs(by), []string{b}) {
		t.Fatalf("SpawnedBy(a) = %v, %v; want [b]", relIDs(by), err)
	}
}

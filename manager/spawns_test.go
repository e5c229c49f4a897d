package manager

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/spoolhq/spool/rolloutfs"
)

// Spawn edges the manager writes (a start with a spawn source; none for a
// fork of a sub-agent, which is no sub-agent) are the ones a rebuild from
// the files reads.
func TestSpawnsRebuild(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	m, err := Open(ctx, Options{Root: root, Sync: rolloutfs.SyncNone, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	lead := start(t, m, user("plan"))
	scout, err := m.Start(ctx, StartOptions{Cwd: "/work", Source: `{"subagent":{"thread_spawn":{"parent_thread_id":"` + lead.ID + `","depth":1,"agent_nickname":"scout"}}}`})
	if err != nil {
		t.Fatal(err)
	}
	fork, err := m.Fork(ctx, scout.ID, ForkOptions{})
	if err != nil {
		t.Fatal(err)
	}
	type edges struct{ spawns, by [][]string }
	read := func(m *Manager) edges {
		t.Helper()
		var e edges
		for _, id := range []string{lead.ID, scout.ID, fork.ID} {
			sp, err := m.Spawns(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			by, err := m.SpawnedBy(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			e.spawns, e.by = append(e.spawns, relIDs(sp)), append(e.by, relIDs(by))
		}
		return e
	}
	before := read(m)
	want := edges{
		spawns: [][]string{{scout.ID}, {}, {}},
		by:     [][]string{{}, {lead.ID}, {}},
	}
	if !reflect.DeepEqual(before, want) {
		t.Fatalf("edges = %+v, want %+v", before, want)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(root, IndexFile)); err != nil {
		t.Fatal(err)
	}
	m = openTest(t, func(o *Options) { o.Root = root })
	if after := read(m); !reflect.DeepEqual(after, before) {
		t.Fatalf("edges after a rebuild = %+v, want %+v", after, before)
	}
	if _, err := m.Spawns(ctx, "01a20cda-721a-7bfd-9872-ac1825beec06"); err == nil {
		t.Fatal("Spawns of an unknown thread succeeded, want ErrNotFound")
	}
}

func relIDs(rels []Relative) []string {
	ids := []string{}
	for _, r := range rels {
		ids = append(ids, r.ID)
	}
	return ids
}

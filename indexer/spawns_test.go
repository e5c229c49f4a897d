package indexer

import (
	"strings"
	"testing"

	"github.com/spoolhq/spool/rollout"
)

// The index's spawn edge (thread_spawns, kept from threads.source) is the
// spawn parent rollout.ParseSessionMeta reads, for every source, and a
// rebuild from the files gives the same edges.
func TestSpawnEdgesMatchMeta(t *testing.T) {
	const (
		ts     = "2026-06-01T08:00:00.000Z"
		parent = "dddddddd-dddd-7ddd-8ddd-dddddddddddd"
	)
	sources := []string{
		`{"subagent":{"thread_spawn":{"parent_thread_id":"` + parent + `","depth":1,"agent_nickname":"scout","agent_role":"explorer"}}}`,
		`{"subagent":{"thread_spawn":{"parent_thread_id":"` + strings.ToUpper(parent) + `","depth":2}}}`,
		`{"subagent":{"thread_spawn":{"parent_thread_id":"not-a-uuid"}}}`,
		`{"subagent":{"thread_spawn":{"parent_thread_id":null}}}`,
		`{"subagent":{"thread_spawn":{}}}`,
		`{"subagent":"review"}`,
		`{"SubAgent":{"thread_spawn":{"parent_thread_id":"` + parent + `"}}}`,
		`{"subagent":{"Thread_Spawn":{"parent_thread_id":"` + parent + `"}}}`,
		`{"subagent":{"thread_spawn":{"PARENT_THREAD_ID":"` + parent + `"}}}`,
		`{"subagent":{"thread_spawn":{"parent_thread_id":"` + idY + `","parent_thread_id":"` + parent + `"}}}`,
		`"cli"`,
		`"{\"subagent\":{\"thread_spawn\":{\"parent_thread_id\":\"` + parent + `\"}}}"`,
	}
	ids := []string{idX, idY, idZ}
	root := t.TempDir()
	for i, src := range sources {
		id := strings.Replace(ids[i%3], ids[i%3][:2], string(rune('1'+i%9))+string(rune('0'+i/9)), 1)
		meta := strings.Replace(metaLine(ts, id, ""), `"source":"exec"`, `"source":`+src, 1)
		if !strings.Contains(meta, src) {
			t.Fatalf("fixture: source not replaced in %s", meta)
		}
		writeRollout(t, root, relFor(id), meta, userLine(ts, "hi"))
		m, err := rollout.ParseSessionMeta([]byte(strings.TrimSuffix(meta, "\n")))
		if err != nil {
			t.Fatalf("source %s: %v", src, err)
		}
		t.Run(src, func(t *testing.T) {
			st := openStore(t)
			for _, opts := range []SyncOptions{{}, {Full: true}} {
				mustSync(t, st, root, opts)
				by, err := st.SpawnedBy(t.Context(), id)
				if err != nil {
					t.Fatal(err)
				}
				got := ""
				if len(by) > 0 {
					got = by[0].ID
				}
				if got != m.SpawnParentID {
					t.Fatalf("index edge %q, meta's SpawnParentID %q (full rebuild: %v)", got, m.SpawnParentID, opts.Full)
				}
			}
		})
	}
}

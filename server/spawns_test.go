package server_test

import (
	"net/http"
	"testing"

	"github.com/spoolhq/spool/api"
	"github.com/spoolhq/spool/server"
)

func TestSpawns(t *testing.T) {
	e := newEnv(t, server.Config{})
	lead := e.create(map[string]any{"cwd": "/work"})
	spawnedBy := func(parent string) map[string]any {
		return map[string]any{"cwd": "/work", "source": map[string]any{
			"subagent": map[string]any{"thread_spawn": map[string]any{"parent_thread_id": parent, "depth": 1, "agent_nickname": "scout"}},
		}}
	}
	scout := e.create(spawnedBy(lead.ID))
	helper := e.create(spawnedBy(scout.ID))

	type spawns struct {
		SpawnedBy []api.Relative `json:"spawned_by"`
		Spawns    []api.Relative `json:"spawns"`
	}
	ids := func(rels []api.Relative) []string {
		out := []string{}
		for _, r := range rels {
			out = append(out, r.ID)
		}
		return out
	}
	var got spawns
	e.call("GET", "/v1/threads/"+lead.ID+"/spawns", nil, http.StatusOK, &got)
	if by, sp := ids(got.SpawnedBy), ids(got.Spawns); len(by) != 0 || len(sp) != 2 || sp[0] != scout.ID || sp[1] != helper.ID ||
		got.Spawns[0].Depth != 1 || got.Spawns[1].Depth != 2 || got.Spawns[0].Thread == nil {
		t.Fatalf("spawns of lead = %+v, want scout at 1 and helper at 2", got)
	}
	got = spawns{}
	e.call("GET", "/v1/threads/"+helper.ID+"/spawns", nil, http.StatusOK, &got)
	if by := ids(got.SpawnedBy); len(by) != 2 || by[0] != scout.ID || by[1] != lead.ID || len(got.Spawns) != 0 {
		t.Fatalf("spawns of helper = %+v, want spawned by scout, then lead", got)
	}

	// A fork of a sub-agent is no sub-agent, as Codex's own fork of one:
	// no spawner, source vscode; its edge is the other kind, a fork's.
	var fork api.Thread
	e.call("POST", "/v1/threads/"+scout.ID+"/fork", nil, http.StatusCreated, &fork)
	got = spawns{}
	e.call("GET", "/v1/threads/"+fork.ID+"/spawns", nil, http.StatusOK, &got)
	if len(got.SpawnedBy) != 0 || fork.Source != "vscode" || fork.ParentID != scout.ID {
		t.Fatalf("a fork of scout: spawns %+v, source %q, parent %q; want no spawner, vscode, scout", got, fork.Source, fork.ParentID)
	}

	wantError(t, e.do("GET", "/v1/threads/01a20cda-721a-7bfd-9872-ac1825beec06/spawns", "", nil), http.StatusNotFound, server.CodeNotFound)
	wantError(t, e.do("GET", "/v1/threads/nope/spawns", "", nil), http.StatusBadRequest, server.CodeInvalidID)
}

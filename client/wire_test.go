package client_test

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/spoolhq/spool/api"
	"github.com/spoolhq/spool/client"
)

// fullThread has every field of the wire Thread set, so that a field the
// client drops or renames shows.
var fullThread = api.Thread{
	ID: "01a20cda-721a-7bfd-9872-ac1825beec06", RolloutPath: "sessions/2026/11/25/rollout-x.jsonl",
	CreatedAt: 1795649439764, UpdatedAt: 1795649439772, Cwd: "/w", Source: "cli", Originator: "o",
	CLIVersion: "0.169.0", ModelProvider: "openai", GitCommit: "c", GitBranch: "b", GitOrigin: "g",
	Name: "n", Preview: "p", Archived: true, ArchivedAt: 1795649439999, ParentID: "01a20cda-76ab-7b96-a409-f3302bc905a4",
	ForkUserMessage: 2, ForkOffset: 300, LineCount: 9, UserMessageCount: 3, IndexedSize: 900, HistorySize: 1200,
	HistoryMode: "paginated", BaseID: "01a20cda-76ab-7b96-a409-f3302bc905a4", BaseSize: 300,
}

// roundTrip encodes wire, decodes it into a T, encodes that and fails
// unless the two encodings are the same: the client's type reads and
// writes every field of the wire type.
func roundTrip[T any](t *testing.T, wire any) {
	t.Helper()
	want, err := json.Marshal(wire)
	if err != nil {
		t.Fatal(err)
	}
	var v T
	if err := json.Unmarshal(want, &v); err != nil {
		t.Fatalf("decode %s: %v", want, err)
	}
	got, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%T round trip:\n got %s\nwant %s", v, got, want)
	}
}

// TestTypesMatchWire checks that the client's own types, which hold times
// as time.Time and git facts as a GitInfo, carry exactly what the server's
// wire types (package api, checked against openapi.json by the server's
// tests) carry.
func TestTypesMatchWire(t *testing.T) {
	rel := api.Relative{ID: fullThread.ID, Depth: 1, Thread: &fullThread}
	deleted := api.Relative{ID: fullThread.ParentID, Depth: 2}
	t.Run("Thread", func(t *testing.T) { roundTrip[client.Thread](t, fullThread) })
	t.Run("Thread zero times", func(t *testing.T) {
		th := fullThread
		th.Archived, th.ArchivedAt, th.ParentID, th.BaseID, th.BaseSize, th.ForkUserMessage, th.ForkOffset, th.HistorySize = false, 0, "", "", 0, -1, -1, th.IndexedSize
		roundTrip[client.Thread](t, th)
	})
	t.Run("Page", func(t *testing.T) {
		roundTrip[client.Page](t, api.Page{Threads: []api.Thread{fullThread}, NextCursor: "c"})
	})
	t.Run("AppendResult", func(t *testing.T) {
		roundTrip[client.AppendResult](t, api.AppendResult{Offsets: []int64{900}, Thread: fullThread})
	})
	t.Run("Relative", func(t *testing.T) { roundTrip[client.Relative](t, rel) })
	t.Run("Relative deleted", func(t *testing.T) { roundTrip[client.Relative](t, deleted) })
	t.Run("Tree", func(t *testing.T) {
		roundTrip[client.Tree](t, api.Tree{Root: fullThread, Members: []api.Relative{rel, deleted}})
	})
	t.Run("Event", func(t *testing.T) {
		roundTrip[client.Event](t, api.Event{Seq: 7, Type: "appended", ThreadID: fullThread.ID, Size: 900, Offsets: []int64{800}, Thread: &fullThread})
	})
	t.Run("Event deleted", func(t *testing.T) {
		roundTrip[client.Event](t, api.Event{Seq: 8, Type: "deleted", ThreadID: fullThread.ID})
	})
}

// TestTurnIsUserMessage checks that client.Turn carries every field of
// the UserMessage schema, the fork cut and the Codex turn id included.
func TestTurnIsUserMessage(t *testing.T) {
	t.Run("Turn", func(t *testing.T) {
		roundTrip[client.Turn](t, api.UserMessage{Ordinal: 1, Offset: 2, Line: 3, Preview: "p", CutOffset: 1, TurnID: "x"})
	})
	t.Run("Turn without turn id", func(t *testing.T) {
		roundTrip[client.Turn](t, api.UserMessage{Ordinal: 1, Offset: 2, Line: 3, Preview: "p"})
	})
	t.Run("Spawns", func(t *testing.T) {
		rel := api.Relative{ID: fullThread.ID, Depth: 1, Thread: &fullThread}
		roundTrip[client.Spawns](t, api.Spawns{SpawnedBy: []api.Relative{rel}, Spawns: []api.Relative{{ID: fullThread.ParentID, Depth: 2}}})
	})
}

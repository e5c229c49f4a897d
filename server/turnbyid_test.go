package server_test

import (
	"bytes"
	"net/http"
	"strconv"
	"testing"

	"github.com/spoolhq/spool/api"
	"github.com/spoolhq/spool/rollout"
	"github.com/spoolhq/spool/server"
	"github.com/spoolhq/spool/store"
)

// threeTurns creates a thread holding complete Codex turns turn-a, turn-b
// and turn-c (POST /turns) and returns it with its history.
func (e *env) threeTurns() (api.Thread, []byte) {
	e.t.Helper()
	th := e.create(nil)
	for _, id := range []string{"turn-a", "turn-b", "turn-c"} {
		body := map[string]any{"turn_id": id, "prompt": "prompt " + id, "answer": "answer " + id}
		e.call("POST", "/v1/threads/"+th.ID+"/turns", body, http.StatusOK, nil)
	}
	return th, e.history(th.ID)
}

// TestReadTurnByID streams one Codex turn named by its id, with its span
// in the Turn-* headers; an unknown id is a 404.
func TestReadTurnByID(t *testing.T) {
	e := newEnv(t, server.Config{})
	th, data := e.threeTurns()
	h, err := rollout.ScanTurns(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	resp := e.do("GET", "/v1/threads/"+th.ID+"/turns/by-id/turn-b", "", nil)
	got := readAll(t, resp, http.StatusOK)
	want := data[h.Turns[1].Offset:h.Turns[1].End]
	if !bytes.Equal(got, want) {
		t.Fatalf("turn-b = %q, want %q", got, want)
	}
	for name, value := range map[string]string{
		"Turn-Offset":       strconv.FormatInt(h.Turns[1].Offset, 10),
		"Turn-End":          strconv.FormatInt(h.Turns[1].End, 10),
		"Turn-Status":       "completed",
		"Turn-User-Message": "1",
	} {
		if resp.Header.Get(name) != value {
			t.Fatalf("%s = %q, want %q", name, resp.Header.Get(name), value)
		}
	}
	wantError(t, e.do("GET", "/v1/threads/"+th.ID+"/turns/by-id/no-such-turn", "", nil), http.StatusNotFound, server.CodeNotFound)
	// /turns/{k} keeps meaning user message k.
	readAll(t, e.do("GET", "/v1/threads/"+th.ID+"/turns/1", "", nil), http.StatusOK)
}

// TestForkByTurnID forks through a turn (last_turn_id) and before one
// (before_turn_id), and refuses a turn in progress, an unknown turn and
// two fork points with their codes.
func TestForkByTurnID(t *testing.T) {
	e := newEnv(t, server.Config{})
	th, data := e.threeTurns()
	h, err := rollout.ScanTurns(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	path := "/v1/threads/" + th.ID + "/fork"
	var through store.Thread
	e.call("POST", path, map[string]any{"last_turn_id": "turn-b"}, http.StatusCreated, &through)
	if through.ForkOffset != h.Turns[1].End || through.UserMessageCount != 2 {
		t.Fatalf("fork through turn-b: offset %d, %d messages; want %d, 2", through.ForkOffset, through.UserMessageCount, h.Turns[1].End)
	}
	var before store.Thread
	e.call("POST", path, map[string]any{"before_turn_id": "turn-b"}, http.StatusCreated, &before)
	if before.ForkOffset != h.Turns[1].Offset || before.UserMessageCount != 1 {
		t.Fatalf("fork before turn-b: offset %d, %d messages; want %d, 1", before.ForkOffset, before.UserMessageCount, h.Turns[1].Offset)
	}

	e.appendItems(th.ID, map[string]any{"type": "event_msg", "payload": map[string]any{"type": "task_started", "turn_id": "turn-open"}}, userItem("still going"))
	tests := []struct {
		name   string
		body   map[string]any
		status int
		code   string
	}{
		{"in progress", map[string]any{"last_turn_id": "turn-open"}, http.StatusConflict, server.CodeTurnInProgress},
		{"unknown", map[string]any{"last_turn_id": "no-such-turn"}, http.StatusNotFound, server.CodeNotFound},
		{"two points", map[string]any{"last_turn_id": "turn-a", "before_user_message": 1}, http.StatusBadRequest, server.CodeInvalidArgument},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			wantError(t, e.do("POST", path, "", tc.body), tc.status, tc.code)
		})
	}
}

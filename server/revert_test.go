package server_test

import (
	"bytes"
	"net/http"
	"testing"

	"github.com/spoolhq/spool/api"
	"github.com/spoolhq/spool/rollout"
	"github.com/spoolhq/spool/server"
)

// TestRevertThread reverts a thread before a turn: the answer is the
// thread with its turns before the cut, its history reads so, and the
// bad requests are refused with their codes.
func TestRevertThread(t *testing.T) {
	e := newEnv(t, server.Config{})
	th, data := e.threeTurns()
	h, err := rollout.ScanTurns(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	path := "/v1/threads/" + th.ID + "/revert"
	var reverted api.Thread
	e.call("POST", path, map[string]any{"before_turn_id": "turn-b"}, http.StatusOK, &reverted)
	if reverted.UserMessageCount != 1 || reverted.BaseSize != h.Turns[1].Offset || reverted.RolloutPath == th.RolloutPath {
		t.Fatalf("reverted: %d messages, base at %d, path %s; want 1, %d, a new segment", reverted.UserMessageCount, reverted.BaseSize, reverted.RolloutPath, h.Turns[1].Offset)
	}
	after := e.history(th.ID)
	if !bytes.HasPrefix(after, data[:h.Turns[1].Offset]) || int64(len(after)) != reverted.BaseSize+reverted.IndexedSize {
		t.Fatalf("history after revert (%d bytes) is not the old one to the cut and the segment", len(after))
	}
	readAll(t, e.do("GET", "/v1/threads/"+th.ID+"/turns/by-id/turn-a", "", nil), http.StatusOK)
	wantError(t, e.do("GET", "/v1/threads/"+th.ID+"/turns/by-id/turn-b", "", nil), http.StatusNotFound, server.CodeNotFound)

	tests := []struct {
		name   string
		body   any
		status int
		code   string
	}{
		{"unknown turn", map[string]any{"before_turn_id": "turn-z"}, http.StatusNotFound, server.CodeNotFound},
		{"no cut", map[string]any{}, http.StatusBadRequest, server.CodeInvalidArgument},
		{"negative", map[string]any{"before_user_message": -1}, http.StatusBadRequest, server.CodeInvalidArgument},
		{"out of range", map[string]any{"before_user_message": 5}, http.StatusBadRequest, server.CodeOutOfRange},
		{"unknown field", map[string]any{"last_turn_id": "turn-a"}, http.StatusBadRequest, server.CodeInvalidArgument},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			wantError(t, e.do("POST", path, "", tc.body), tc.status, tc.code)
		})
	}
}

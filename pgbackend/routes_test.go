//go:build distributed

package pgbackend

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/spoolhq/spool/internal/disttest"
	"github.com/spoolhq/spool/manager"
	"github.com/spoolhq/spool/rollout"
	"github.com/spoolhq/spool/server"
)

// TestRoutesOnPostgreSQL: the routes of the capabilities this backend
// added for issue #17 (turns by id, forks by turn, reverts, purge) answer
// through the HTTP server as the local backend's do.
func TestRoutesOnPostgreSQL(t *testing.T) {
	b, err := Open(t.Context(), Options{DSN: disttest.DSN(t), Bucket: disttest.Bucket(t), SealBytes: 1, SealEvery: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	srv := httptest.NewServer(server.New(b, server.Config{}).Handler())
	t.Cleanup(srv.Close)

	th, err := b.Start(t.Context(), manager.StartOptions{Cwd: "/work", Source: "cli"})
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"turn-a", "turn-b"} {
		if _, err := b.AppendTurn(t.Context(), th.ID, manager.TurnOptions{TurnID: id, Prompt: "prompt " + id, Answer: "answer"}); err != nil {
			t.Fatal(err)
		}
	}
	open, _ := json.Marshal(map[string]any{"type": "task_started", "turn_id": "turn-open"})
	if _, err := b.AppendWith(t.Context(), th.ID, []rollout.Item{{Type: rollout.TypeEventMsg, Payload: open}}, manager.AppendOptions{}); err != nil {
		t.Fatal(err)
	}
	user, _ := json.Marshal(map[string]any{"type": "message", "role": "user", "content": []map[string]string{{"type": "input_text", "text": "still thinking"}}})
	if _, err := b.AppendWith(t.Context(), th.ID, []rollout.Item{{Type: rollout.TypeResponseItem, Payload: user}}, manager.AppendOptions{}); err != nil {
		t.Fatal(err)
	}

	base := srv.URL + "/v1/threads/" + th.ID
	cases := []struct {
		name, method, url, body string
		status                  int
		code                    string // the error's code, "" for a success
	}{
		{"turn by id", "GET", base + "/turns/by-id/turn-b", "", http.StatusOK, ""},
		{"unknown turn by id", "GET", base + "/turns/by-id/turn-z", "", http.StatusNotFound, ""},
		{"fork through a turn", "POST", base + "/fork", `{"last_turn_id":"turn-a"}`, http.StatusCreated, ""},
		{"fork before a turn", "POST", base + "/fork", `{"before_turn_id":"turn-b"}`, http.StatusCreated, ""},
		{"fork through a turn in progress", "POST", base + "/fork", `{"last_turn_id":"turn-open"}`, http.StatusConflict, "turn_in_progress"},
		{"fork through the last turn", "POST", base + "/fork", `{"last_turn_id":"turn-b"}`, http.StatusCreated, ""},
		{"revert under a fork past the cut", "POST", base + "/revert", `{"before_turn_id":"turn-b"}`, http.StatusConflict, "referenced"},
		{"revert", "POST", base + "/revert", `{"before_turn_id":"turn-open"}`, http.StatusOK, ""},
		{"revert before a turn reverted away", "POST", base + "/revert", `{"before_turn_id":"turn-open"}`, http.StatusNotFound, "not_found"},
		{"purge a base of forks", "POST", base + "/purge", "", http.StatusNoContent, ""},
		{"purge again", "POST", base + "/purge", "", http.StatusNotFound, "not_found"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequestWithContext(t.Context(), tc.method, tc.url, strings.NewReader(tc.body))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Content-Type", "application/json")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tc.status || !strings.Contains(string(body), tc.code) {
				t.Fatalf("%s %s: %d %s, want %d %s", tc.method, tc.url, resp.StatusCode, body, tc.status, tc.code)
			}
		})
	}
}

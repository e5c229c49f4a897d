package server_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spoolhq/spool/api"
	"github.com/spoolhq/spool/internal/storetest"
	"github.com/spoolhq/spool/manager"
	"github.com/spoolhq/spool/server"
)

// env is a real manager on a temporary root served on a loopback port.
type env struct {
	t     *testing.T
	url   string
	token string
	srv   *server.Server
	m     *manager.Manager
}

func newEnv(t *testing.T, cfg server.Config) *env {
	t.Helper()
	return newEnvWith(t, cfg, manager.Options{})
}

// newEnvWith is newEnv with manager options (Root and Logger are filled
// in when empty).
func newEnvWith(t *testing.T, cfg server.Config, o manager.Options) *env {
	t.Helper()
	return newEnvOver(t, cfg, o, func(m *manager.Manager) manager.Backend { return m })
}

// newEnvOver is newEnvWith whose server serves the backend over returns
// for the manager (a wrapper that changes some of its behaviour).
func newEnvOver(t *testing.T, cfg server.Config, o manager.Options, over func(*manager.Manager) manager.Backend) *env {
	t.Helper()
	if o.Root == "" {
		o.Root = t.TempDir()
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.IndexPath == "" {
		storetest.Write(t, filepath.Join(o.Root, manager.IndexFile))
	}
	m, err := manager.Open(context.Background(), o)
	if err != nil {
		t.Fatalf("open manager: %v", err)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	srv := server.New(over(m), cfg)
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(func() {
		srv.Drain() // ends open streams, which ts.Close waits for
		ts.Close()
		if err := m.Close(); err != nil {
			t.Errorf("close manager: %v", err)
		}
	})
	return &env{t: t, url: ts.URL, token: cfg.Token, srv: srv, m: m}
}

// do sends a request; body may be nil, a string, []byte, an io.Reader or a
// value to encode as JSON.
func (e *env) do(method, path, contentType string, body any) *http.Response {
	e.t.Helper()
	var reader io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		reader = strings.NewReader(b)
	case []byte:
		reader = bytes.NewReader(b)
	case io.Reader:
		reader = b
	default:
		data, err := json.Marshal(b)
		if err != nil {
			e.t.Fatalf("marshal request: %v", err)
		}
		reader = bytes.NewReader(data)
		if contentType == "" {
			contentType = "application/json"
		}
	}
	req, err := http.NewRequest(method, e.url+path, reader)
	if err != nil {
		e.t.Fatalf("new request %s %s: %v", method, path, err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if e.token != "" {
		req.Header.Set("Authorization", "Bearer "+e.token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
	return resp
}

// call sends a request, checks the status and decodes a JSON body into out
// (when out is not nil).
func (e *env) call(method, path string, body any, wantStatus int, out any) {
	e.t.Helper()
	resp := e.do(method, path, "", body)
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatalf("%s %s: read body: %v", method, path, err)
	}
	if resp.StatusCode != wantStatus {
		e.t.Fatalf("%s %s: status %d, want %d; body %s", method, path, resp.StatusCode, wantStatus, data)
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			e.t.Fatalf("%s %s: decode %s: %v", method, path, data, err)
		}
	}
}

// apiError is the decoded error body.
type apiError struct {
	Error struct {
		Code         string `json:"code"`
		Message      string `json:"message"`
		UserMessages *int   `json:"user_messages"`
		Size         *int64 `json:"size"`
	} `json:"error"`
}

// wantError checks that resp is an error with the status and code, and
// returns the decoded body.
func wantError(t *testing.T, resp *http.Response, status int, code string) apiError {
	t.Helper()
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	var body apiError
	if err := json.Unmarshal(data, &body); err != nil {
		t.Fatalf("status %d body %q is not a JSON error: %v", resp.StatusCode, data, err)
	}
	if resp.StatusCode != status || body.Error.Code != code {
		t.Fatalf("got %d %s (%s), want %d %s", resp.StatusCode, body.Error.Code, body.Error.Message, status, code)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("error Content-Type = %q, want application/json", ct)
	}
	return body
}

// readAll reads a response body and checks its status.
func readAll(t *testing.T, resp *http.Response, wantStatus int) []byte {
	t.Helper()
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read body: %v", err)
	}
	if resp.StatusCode != wantStatus {
		t.Fatalf("status %d, want %d; body %s", resp.StatusCode, wantStatus, data)
	}
	return data
}

// userItem is a response_item that counts as a user message.
func userItem(text string) map[string]any {
	return map[string]any{
		"type": "response_item",
		"payload": map[string]any{
			"type": "message", "role": "user",
			"content": []any{map[string]any{"type": "input_text", "text": text}},
		},
	}
}

// echoItem is the echo Codex writes after a prompt: a thread's preview
// comes from the first (rollout.Preview).
func echoItem(text string) map[string]any {
	return map[string]any{"type": "event_msg", "payload": map[string]any{"type": "user_message", "message": text, "images": []any{}}}
}

func assistantItem(text string) map[string]any {
	return map[string]any{
		"type": "response_item",
		"payload": map[string]any{
			"type": "message", "role": "assistant",
			"content": []any{map[string]any{"type": "output_text", "text": text}},
		},
	}
}

type appendResult struct {
	Offsets []int64    `json:"offsets"`
	Thread  api.Thread `json:"thread"`
}

// create starts a thread and returns it.
func (e *env) create(body any) api.Thread {
	e.t.Helper()
	var th api.Thread
	e.call("POST", "/v1/threads", body, http.StatusCreated, &th)
	if th.ID == "" {
		e.t.Fatal("created thread has no id")
	}
	return th
}

// appendItems appends items through the JSON route.
func (e *env) appendItems(id string, items ...map[string]any) appendResult {
	e.t.Helper()
	var res appendResult
	e.call("POST", "/v1/threads/"+id+"/items", map[string]any{"items": items}, http.StatusOK, &res)
	if len(res.Offsets) != len(items) {
		e.t.Fatalf("append: %d offsets, want %d", len(res.Offsets), len(items))
	}
	return res
}

// lines splits an NDJSON body into its lines.
func lines(t *testing.T, data []byte) [][]byte {
	t.Helper()
	if len(data) > 0 && data[len(data)-1] != '\n' {
		t.Fatalf("NDJSON body does not end in a newline: %q", data)
	}
	var out [][]byte
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		out = append(out, append([]byte(nil), sc.Bytes()...))
	}
	return out
}

func lineType(t *testing.T, line []byte) string {
	t.Helper()
	var env struct {
		Type    string `json:"type"`
		Payload struct {
			Role    string `json:"role"`
			Content []struct {
				Text string `json:"text"`
			} `json:"content"`
		} `json:"payload"`
	}
	if err := json.Unmarshal(line, &env); err != nil {
		t.Fatalf("line %q: %v", line, err)
	}
	if env.Payload.Role != "" && len(env.Payload.Content) > 0 {
		return env.Type + "/" + env.Payload.Role + ":" + env.Payload.Content[0].Text
	}
	return env.Type
}

func TestThreadLifecycle(t *testing.T) {
	e := newEnv(t, server.Config{})
	th := e.create(map[string]any{
		"cwd": "/work/project", "source": "cli", "originator": "test", "cli_version": "1.0.0",
		"model_provider": "openai", "base_instructions": "be brief", "name": "first",
		"git": map[string]any{"branch": "main", "commit_hash": "abc123"},
	})
	if th.Cwd != "/work/project" || th.Source != "cli" || th.Name != "first" || th.GitBranch != "main" {
		t.Fatalf("created thread = %+v, want the fields sent", th)
	}

	t.Run("get", func(t *testing.T) {
		var got api.Thread
		e.call("GET", "/v1/threads/"+th.ID, nil, http.StatusOK, &got)
		if got.ID != th.ID || got.Cwd != th.Cwd {
			t.Fatalf("get = %+v, want %+v", got, th)
		}
		// Upper-case ids name the same thread.
		e.call("GET", "/v1/threads/"+strings.ToUpper(th.ID), nil, http.StatusOK, &got)
		if got.ID != th.ID {
			t.Fatalf("get by upper-case id = %s, want %s", got.ID, th.ID)
		}
	})

	t.Run("object source", func(t *testing.T) {
		sub := e.create(map[string]any{"source": map[string]any{"custom": "atlas"}})
		if sub.Source != `{"custom":"atlas"}` {
			t.Fatalf("source = %q, want the compact object", sub.Source)
		}
	})

	t.Run("rename", func(t *testing.T) {
		var got api.Thread
		e.call("PATCH", "/v1/threads/"+th.ID, map[string]any{"name": "renamed"}, http.StatusOK, &got)
		if got.Name != "renamed" {
			t.Fatalf("name = %q, want renamed", got.Name)
		}
		e.call("GET", "/v1/threads/"+th.ID, nil, http.StatusOK, &got)
		if got.Name != "renamed" {
			t.Fatalf("name after get = %q, want renamed", got.Name)
		}
		wantError(t, e.do("PATCH", "/v1/threads/"+th.ID, "application/json", `{}`), http.StatusBadRequest, server.CodeInvalidArgument)
		long := map[string]any{"name": strings.Repeat("n", 5000)}
		wantError(t, e.do("PATCH", "/v1/threads/"+th.ID, "application/json", long), http.StatusBadRequest, server.CodeInvalidArgument)
		e.call("PATCH", "/v1/threads/"+th.ID, map[string]any{"name": ""}, http.StatusOK, &got)
		if got.Name != "" {
			t.Fatalf("name after clearing = %q, want none", got.Name)
		}
		e.call("PATCH", "/v1/threads/"+th.ID, map[string]any{"name": "renamed"}, http.StatusOK, &got)
		wantError(t, e.do("GET", "/v1/search?q=", "", nil), http.StatusBadRequest, server.CodeInvalidArgument)
	})

	t.Run("archive and unarchive", func(t *testing.T) {
		var got api.Thread
		e.call("POST", "/v1/threads/"+th.ID+"/archive", nil, http.StatusOK, &got)
		if !got.Archived {
			t.Fatal("archive: thread not archived")
		}
		var page api.Page
		e.call("GET", "/v1/threads", nil, http.StatusOK, &page)
		if containsThread(page.Threads, th.ID) {
			t.Fatal("archived thread listed by default")
		}
		e.call("GET", "/v1/threads?archived=true", nil, http.StatusOK, &page)
		if !containsThread(page.Threads, th.ID) {
			t.Fatal("archived thread missing from archived=true")
		}
		wantError(t, e.do("POST", "/v1/threads/"+th.ID+"/items", "application/json", userItem("late")),
			http.StatusConflict, server.CodeArchived)

		e.call("POST", "/v1/threads/"+th.ID+"/unarchive", nil, http.StatusOK, &got)
		if got.Archived {
			t.Fatal("unarchive: thread still archived")
		}
		wantError(t, e.do("POST", "/v1/threads/"+th.ID+"/unarchive", "", nil), http.StatusConflict, server.CodeNotArchived)
		e.call("GET", "/v1/threads", nil, http.StatusOK, &page)
		if !containsThread(page.Threads, th.ID) {
			t.Fatal("unarchived thread missing from the default list")
		}
	})

	t.Run("delete", func(t *testing.T) {
		doomed := e.create(nil)
		resp := e.do("DELETE", "/v1/threads/"+doomed.ID, "", nil)
		readAll(t, resp, http.StatusNoContent)
		wantError(t, e.do("GET", "/v1/threads/"+doomed.ID, "", nil), http.StatusNotFound, server.CodeNotFound)
		wantError(t, e.do("DELETE", "/v1/threads/"+doomed.ID, "", nil), http.StatusNotFound, server.CodeNotFound)
	})
}

func containsThread(threads []api.Thread, id string) bool {
	for _, th := range threads {
		if th.ID == id {
			return true
		}
	}
	return false
}

func TestAppendAndRead(t *testing.T) {
	e := newEnv(t, server.Config{})
	th := e.create(map[string]any{"cwd": "/w", "history_mode": "legacy"}) // lines kept byte for byte (a paginated thread adds ordinals)

	res := e.appendItems(th.ID, userItem("first prompt"), assistantItem("first answer"))
	if res.Thread.UserMessageCount != 1 {
		t.Fatalf("user messages after one prompt = %d, want 1", res.Thread.UserMessageCount)
	}
	if res.Offsets[0] <= 0 || res.Offsets[1] <= res.Offsets[0] {
		t.Fatalf("offsets = %v, want increasing and past the meta line", res.Offsets)
	}

	// A single item object is accepted too.
	var single appendResult
	e.call("POST", "/v1/threads/"+th.ID+"/items", userItem("second prompt"), http.StatusOK, &single)
	if single.Thread.UserMessageCount != 2 || len(single.Offsets) != 1 {
		t.Fatalf("single append: count %d offsets %v, want 2 and one offset", single.Thread.UserMessageCount, single.Offsets)
	}

	// NDJSON lines, one of an unknown type with an unknown member, kept verbatim.
	unknownLine := `{"timestamp":"2026-04-20T10:15:32.000Z","type":"future_kind","payload":{"nested":{"k":"v"},"n":1.50},"extra":"kept"}`
	answerLine := `{"timestamp":"2026-04-20T10:15:33.000Z","type":"response_item","payload":{"type":"message","role":"assistant","content":[{"type":"output_text","text":"second answer"}]}}`
	resp := e.do("POST", "/v1/threads/"+th.ID+"/items", "application/x-ndjson", unknownLine+"\n\n"+answerLine+"\n")
	var nd appendResult
	if err := json.Unmarshal(readAll(t, resp, http.StatusOK), &nd); err != nil {
		t.Fatal(err)
	}
	if len(nd.Offsets) != 2 {
		t.Fatalf("NDJSON append: %d offsets, want 2 (blank line skipped)", len(nd.Offsets))
	}

	// An unknown type through the JSON route keeps its payload bytes.
	e.appendItems(th.ID, map[string]any{"type": "another_future_kind", "payload": json.RawMessage(`{"b":2,"a":1}`)})

	t.Run("whole history", func(t *testing.T) {
		resp := e.do("GET", "/v1/threads/"+th.ID+"/items", "", nil)
		if ct := resp.Header.Get("Content-Type"); ct != "application/x-ndjson" {
			t.Fatalf("Content-Type = %q, want application/x-ndjson", ct)
		}
		got := lines(t, readAll(t, resp, http.StatusOK))
		var types []string
		for _, l := range got {
			types = append(types, lineType(t, l))
		}
		want := []string{
			"session_meta",
			"response_item/user:first prompt", "response_item/assistant:first answer",
			"response_item/user:second prompt",
			"future_kind", "response_item/assistant:second answer",
			"another_future_kind",
		}
		if strings.Join(types, "|") != strings.Join(want, "|") {
			t.Fatalf("history types = %v, want %v", types, want)
		}
		if !bytes.Equal(got[4], []byte(unknownLine)) {
			t.Fatalf("unknown line read back as\n%s\nwant byte-identical\n%s", got[4], unknownLine)
		}
		if !bytes.Equal(got[5], []byte(answerLine)) {
			t.Fatalf("NDJSON line read back as %s, want %s", got[5], answerLine)
		}
		if !bytes.Contains(got[6], []byte(`"payload":{"b":2,"a":1}`)) {
			t.Fatalf("JSON-route unknown item %s lost its payload bytes", got[6])
		}
	})

	t.Run("from user message", func(t *testing.T) {
		got := lines(t, readAll(t, e.do("GET", "/v1/threads/"+th.ID+"/items?from_user_message=1", "", nil), http.StatusOK))
		if len(got) != 4 || lineType(t, got[0]) != "response_item/user:second prompt" {
			t.Fatalf("from user message 1: %d lines starting %q, want 4 starting with the second prompt", len(got), got[0])
		}
		body := wantError(t, e.do("GET", "/v1/threads/"+th.ID+"/items?from_user_message=7", "", nil),
			http.StatusBadRequest, server.CodeOutOfRange)
		if body.Error.UserMessages == nil || *body.Error.UserMessages != 2 {
			t.Fatalf("out_of_range user_messages = %v, want 2", body.Error.UserMessages)
		}
	})

	t.Run("turns", func(t *testing.T) {
		var turns struct {
			Turns []api.UserMessage `json:"turns"`
		}
		e.call("GET", "/v1/threads/"+th.ID+"/turns", nil, http.StatusOK, &turns)
		if len(turns.Turns) != 2 {
			t.Fatalf("turns = %+v, want 2", turns.Turns)
		}
		for i, turn := range turns.Turns {
			if turn.Ordinal != i {
				t.Fatalf("turn %d ordinal = %d", i, turn.Ordinal)
			}
		}
		if turns.Turns[0].Offset != res.Offsets[0] || !strings.Contains(turns.Turns[0].Preview, "first prompt") {
			t.Fatalf("turn 0 = %+v, want offset %d and preview of the first prompt", turns.Turns[0], res.Offsets[0])
		}

		got := lines(t, readAll(t, e.do("GET", "/v1/threads/"+th.ID+"/turns/0", "", nil), http.StatusOK))
		if len(got) != 2 || lineType(t, got[1]) != "response_item/assistant:first answer" {
			t.Fatalf("turn 0 has %d lines, want the prompt and its answer", len(got))
		}
		wantError(t, e.do("GET", "/v1/threads/"+th.ID+"/turns/5", "", nil), http.StatusBadRequest, server.CodeOutOfRange)
		wantError(t, e.do("GET", "/v1/threads/"+th.ID+"/turns/x", "", nil), http.StatusBadRequest, server.CodeInvalidArgument)
	})

	t.Run("metrics", func(t *testing.T) {
		body := string(readAll(t, e.do("GET", "/metrics", "", nil), http.StatusOK))
		for _, want := range []string{
			`spool_http_requests_total{route="POST /v1/threads",code="201"} 1`,
			`spool_http_request_duration_seconds_count{route="POST /v1/threads/{id}/items"} 4`,
			"spool_appended_lines_total 6",
			"spool_index_threads 1",
			"spool_live_capacity ",
			"# TYPE spool_index_commit_updates_total counter\nspool_index_commit_updates_total 4\n",
			"spool_group_syncs_total 0\n", // the default policy, always, has no group syncs
			"spool_reconciled 1\n",        // the manager's walk ended before Open returned
		} {
			if !strings.Contains(body, want) {
				t.Errorf("metrics lack %q:\n%s", want, body)
			}
		}
	})
}

// TestAppendedMetrics: spool_appended_lines_total and _bytes_total count
// the lines each append route writes, a whole turn's as an item's.
func TestAppendedMetrics(t *testing.T) {
	e := newEnv(t, server.Config{})
	th := e.create(nil)
	var wrote int
	var bytes int64
	for _, tc := range []struct {
		name, path, body string
	}{
		{"item", "/items", mustJSON(t, userItem("u0"))},
		{"items", "/items", `{"items":[` + mustJSON(t, userItem("u1")) + `,` + mustJSON(t, assistantItem("a1")) + `]}`},
		{"turn", "/turns", `{"prompt":"p","answer":"a"}`},
		{"keyed item", "/items", mustJSON(t, userItem("u2"))},
		{"keyed item sent again", "/items", mustJSON(t, userItem("u2"))}, // writes nothing
		{"keyed turn", "/turns", `{"prompt":"q","answer":"b"}`},
		{"keyed turn sent again", "/turns", `{"prompt":"q","answer":"b"}`},
	} {
		var res appendResult
		var headers map[string]string
		if strings.HasPrefix(tc.name, "keyed") {
			headers = map[string]string{"Idempotency-Key": tc.path}
		}
		resp := e.doHeaders("POST", "/v1/threads/"+th.ID+tc.path, headers, "", tc.body)
		if err := json.Unmarshal(readAll(t, resp, http.StatusOK), &res); err != nil {
			t.Fatal(err)
		}
		if !strings.HasSuffix(tc.name, "again") {
			wrote += len(res.Offsets)
			bytes += res.Thread.HistorySize - res.Offsets[0]
		}
		body := string(readAll(t, e.do("GET", "/metrics", "", nil), http.StatusOK))
		for _, want := range []string{
			fmt.Sprintf("spool_appended_lines_total %d\n", wrote),
			fmt.Sprintf("spool_appended_bytes_total %d\n", bytes),
		} {
			if !strings.Contains(body, want) {
				t.Errorf("after the %s: metrics lack %q", tc.name, strings.TrimSpace(want))
			}
		}
	}
}

// TestMetricsOfABackendWithoutLiveStats checks that /metrics leaves out
// the local backend's live threads and counters of appends' syncs and
// commits for a backend that does not keep them (the distributed one),
// rather than report zeros.
func TestMetricsOfABackendWithoutLiveStats(t *testing.T) {
	m, err := manager.Open(t.Context(), manager.Options{Root: t.TempDir(), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	for _, tt := range []struct {
		name     string
		backend  manager.Backend
		counters bool
	}{
		{"local", m, true},
		{"backend only", struct{ manager.Backend }{m}, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			server.New(tt.backend, server.Config{Logger: slog.New(slog.DiscardHandler)}).Handler().ServeHTTP(rec, httptest.NewRequest("GET", "http://127.0.0.1/metrics", nil))
			body := rec.Body.String()
			if rec.Code != http.StatusOK || !strings.Contains(body, "spool_index_threads 0\n") {
				t.Fatalf("GET /metrics: %d\n%s", rec.Code, body)
			}
			for _, name := range []string{"spool_live_threads", "spool_group_syncs_total", "spool_index_commits_total"} {
				if got := strings.Contains(body, "\n"+name+" "); got != tt.counters {
					t.Errorf("%s reported: %v, want %v", name, got, tt.counters)
				}
			}
		})
	}
}

func TestForkAndLineage(t *testing.T) {
	e := newEnv(t, server.Config{})
	parent := e.create(map[string]any{"cwd": "/w", "name": "parent", "history_mode": "legacy"}) // copy forks: the middle one can be deleted
	e.appendItems(parent.ID, userItem("u0"), assistantItem("a0"), userItem("u1"), assistantItem("a1"))

	var fork api.Thread
	e.call("POST", "/v1/threads/"+parent.ID+"/fork", map[string]any{"before_user_message": 1, "name": "fork"}, http.StatusCreated, &fork)
	if fork.ParentID != parent.ID || fork.UserMessageCount != 1 || fork.ForkUserMessage != 1 || fork.Name != "fork" {
		t.Fatalf("fork = %+v, want parent %s, 1 user message, fork point 1", fork, parent.ID)
	}
	history := lines(t, readAll(t, e.do("GET", "/v1/threads/"+fork.ID+"/items", "", nil), http.StatusOK))
	// The fork holds the parent's lines before u1 (its name adds an
	// event_msg after them).
	var messages []string
	for _, l := range history {
		if typ := lineType(t, l); strings.HasPrefix(typ, "response_item/") {
			messages = append(messages, typ)
		}
	}
	if want := "response_item/user:u0|response_item/assistant:a0"; strings.Join(messages, "|") != want {
		t.Fatalf("fork messages = %v, want %s", messages, want)
	}

	var whole, grandchild api.Thread
	e.call("POST", "/v1/threads/"+parent.ID+"/fork", nil, http.StatusCreated, &whole)
	if whole.UserMessageCount != 2 {
		t.Fatalf("whole copy has %d user messages, want 2", whole.UserMessageCount)
	}
	e.call("POST", "/v1/threads/"+fork.ID+"/fork", map[string]any{"before_user_message": 0, "cwd": "/elsewhere"}, http.StatusCreated, &grandchild)
	if grandchild.ParentID != fork.ID || grandchild.UserMessageCount != 0 || grandchild.Cwd != "/elsewhere" {
		t.Fatalf("grandchild = %+v, want parent %s, 0 user messages, cwd /elsewhere", grandchild, fork.ID)
	}

	t.Run("out of range", func(t *testing.T) {
		body := wantError(t, e.do("POST", "/v1/threads/"+parent.ID+"/fork", "application/json", `{"before_user_message":5}`),
			http.StatusBadRequest, server.CodeOutOfRange)
		if body.Error.UserMessages == nil || *body.Error.UserMessages != 2 {
			t.Fatalf("user_messages = %v, want 2", body.Error.UserMessages)
		}
		if !strings.Contains(body.Error.Message, "2 user messages") {
			t.Fatalf("message %q does not say how many user messages exist", body.Error.Message)
		}
		wantError(t, e.do("POST", "/v1/threads/"+parent.ID+"/fork", "application/json", `{"before_user_message":-1}`),
			http.StatusBadRequest, server.CodeInvalidArgument)
	})

	t.Run("ancestors", func(t *testing.T) {
		var got struct {
			Ancestors []api.Relative `json:"ancestors"`
		}
		e.call("GET", "/v1/threads/"+grandchild.ID+"/ancestors", nil, http.StatusOK, &got)
		if len(got.Ancestors) != 2 || got.Ancestors[0].ID != fork.ID || got.Ancestors[0].Depth != 1 ||
			got.Ancestors[1].ID != parent.ID || got.Ancestors[1].Depth != 2 {
			t.Fatalf("ancestors = %+v, want fork at 1 and parent at 2", got.Ancestors)
		}
	})

	t.Run("descendants", func(t *testing.T) {
		var got struct {
			Descendants []api.Relative `json:"descendants"`
		}
		e.call("GET", "/v1/threads/"+parent.ID+"/descendants", nil, http.StatusOK, &got)
		depths := map[string]int{}
		for _, r := range got.Descendants {
			depths[r.ID] = r.Depth
		}
		if len(depths) != 3 || depths[fork.ID] != 1 || depths[whole.ID] != 1 || depths[grandchild.ID] != 2 {
			t.Fatalf("descendants = %v, want fork and whole at 1, grandchild at 2", depths)
		}
	})

	t.Run("tree", func(t *testing.T) {
		var got struct {
			Root    api.Thread     `json:"root"`
			Members []api.Relative `json:"members"`
		}
		e.call("GET", "/v1/threads/"+grandchild.ID+"/tree", nil, http.StatusOK, &got)
		if got.Root.ID != parent.ID || len(got.Members) != 3 {
			t.Fatalf("tree root %s with %d members, want %s with 3", got.Root.ID, len(got.Members), parent.ID)
		}
	})

	t.Run("list by parent", func(t *testing.T) {
		var page api.Page
		e.call("GET", "/v1/threads?parent="+parent.ID, nil, http.StatusOK, &page)
		if len(page.Threads) != 2 || !containsThread(page.Threads, fork.ID) || !containsThread(page.Threads, whole.ID) {
			t.Fatalf("children of parent = %d threads, want fork and whole", len(page.Threads))
		}
	})

	t.Run("parent deleted, lineage kept", func(t *testing.T) {
		readAll(t, e.do("DELETE", "/v1/threads/"+parent.ID, "", nil), http.StatusNoContent)
		var got struct {
			Ancestors []api.Relative `json:"ancestors"`
		}
		e.call("GET", "/v1/threads/"+fork.ID+"/ancestors", nil, http.StatusOK, &got)
		if len(got.Ancestors) != 1 || got.Ancestors[0].ID != parent.ID || got.Ancestors[0].Thread != nil {
			t.Fatalf("ancestors after delete = %+v, want the deleted parent's id without a thread", got.Ancestors)
		}
	})
}

func TestListPagesAndSearch(t *testing.T) {
	e := newEnv(t, server.Config{})
	const total = 7
	created := map[string]bool{}
	for i := range total {
		th := e.create(map[string]any{"cwd": fmt.Sprintf("/w/%d", i%2)})
		created[th.ID] = true
		e.appendItems(th.ID, userItem(fmt.Sprintf("prompt number %d about walruses", i)))
	}
	special := e.create(map[string]any{"cwd": "/w/special"})
	e.appendItems(special.ID, userItem("the quokka is a marsupial"), echoItem("the quokka is a marsupial"))

	for _, order := range []string{"desc", "asc"} {
		for _, sortBy := range []string{"updated", "created"} {
			t.Run(sortBy+" "+order, func(t *testing.T) {
				seen := map[string]bool{}
				cursor := ""
				pages := 0
				for {
					q := url.Values{"limit": {"3"}, "order": {order}, "sort": {sortBy}}
					if cursor != "" {
						q.Set("cursor", cursor)
					}
					var page api.Page
					e.call("GET", "/v1/threads?"+q.Encode(), nil, http.StatusOK, &page)
					pages++
					if len(page.Threads) > 3 {
						t.Fatalf("page of %d threads, limit 3", len(page.Threads))
					}
					for _, th := range page.Threads {
						if seen[th.ID] {
							t.Fatalf("thread %s listed twice", th.ID)
						}
						seen[th.ID] = true
					}
					if page.NextCursor == "" {
						break
					}
					if pages > total+1 {
						t.Fatal("pagination does not end")
					}
					cursor = page.NextCursor
				}
				if len(seen) != total+1 || pages != 3 {
					t.Fatalf("listed %d threads in %d pages, want %d in 3", len(seen), pages, total+1)
				}
			})
		}
	}

	t.Run("filters", func(t *testing.T) {
		var page api.Page
		e.call("GET", "/v1/threads?cwd=/w/1", nil, http.StatusOK, &page)
		if len(page.Threads) != total/2 {
			t.Fatalf("cwd=/w/1 gave %d threads, want %d", len(page.Threads), total/2)
		}
		e.call("GET", "/v1/threads?q=QUOKKA", nil, http.StatusOK, &page)
		if len(page.Threads) != 1 || page.Threads[0].ID != special.ID {
			t.Fatalf("q=QUOKKA gave %d threads, want the special one", len(page.Threads))
		}
	})

	t.Run("search", func(t *testing.T) {
		var got struct {
			Hits []api.SearchHit `json:"hits"`
		}
		e.call("GET", "/v1/search?q=quokka", nil, http.StatusOK, &got)
		if len(got.Hits) != 1 || got.Hits[0].ThreadID != special.ID || got.Hits[0].Ordinal != 0 {
			t.Fatalf("search quokka = %+v, want one hit in %s", got.Hits, special.ID)
		}
		e.call("GET", "/v1/search?q=walruses&limit=5", nil, http.StatusOK, &got)
		if len(got.Hits) != 5 {
			t.Fatalf("search walruses limit 5 = %d hits, want 5", len(got.Hits))
		}
		readAll(t, e.do("POST", "/v1/threads/"+special.ID+"/archive", "", nil), http.StatusOK)
		e.call("GET", "/v1/search?q=quokka&archived=false", nil, http.StatusOK, &got)
		if len(got.Hits) != 0 {
			t.Fatalf("search archived=false found %d hits in an archived thread", len(got.Hits))
		}
		wantError(t, e.do("GET", "/v1/search", "", nil), http.StatusBadRequest, server.CodeInvalidArgument)
	})
}

func TestBadRequests(t *testing.T) {
	e := newEnv(t, server.Config{})
	th := e.create(nil)
	e.appendItems(th.ID, userItem("u0"))
	unknownID := "0190f3a4-7b1c-7def-8123-456789abcdef"
	items := "/v1/threads/" + th.ID + "/items"

	tests := []struct {
		name        string
		method      string
		path        string
		contentType string
		body        string
		status      int
		code        string
	}{
		{"malformed JSON", "POST", "/v1/threads", "application/json", `{"cwd":`, 400, server.CodeInvalidJSON},
		{"JSON array body", "POST", "/v1/threads", "application/json", `[1,2]`, 400, server.CodeInvalidJSON},
		{"JSON string body", "POST", items, "application/json", `"hello"`, 400, server.CodeInvalidJSON},
		{"unknown create field", "POST", "/v1/threads", "application/json", `{"cwdd":"/w"}`, 400, server.CodeInvalidArgument},
		{"wrong field type", "POST", "/v1/threads", "application/json", `{"cwd":5}`, 400, server.CodeInvalidArgument},
		{"bad source", "POST", "/v1/threads", "application/json", `{"source":5}`, 400, server.CodeInvalidArgument},
		{"item without type", "POST", items, "application/json", `{"payload":{}}`, 400, server.CodeInvalidItem},
		{"item payload not object", "POST", items, "application/json", `{"type":"event_msg","payload":"x"}`, 400, server.CodeInvalidItem},
		{"empty items", "POST", items, "application/json", `{"items":[]}`, 400, server.CodeInvalidArgument},
		{"NDJSON malformed line", "POST", items, "application/x-ndjson", "{\"type\":\"a\"}\n{nope\n", 400, server.CodeInvalidJSON},
		{"NDJSON line without type", "POST", items, "application/x-ndjson", "{\"payload\":{}}\n", 400, server.CodeInvalidItem},
		{"unsupported media type", "POST", items, "text/plain", `{}`, 415, server.CodeUnsupportedMediaType},
		{"non-UUID id", "GET", "/v1/threads/not-a-uuid", "", "", 400, server.CodeInvalidID},
		{"dot segments", "GET", "/v1/threads/../etc", "", "", 400, server.CodeInvalidID},
		{"escaped dot segments", "GET", "/v1/threads/%2e%2e%2f", "", "", 400, server.CodeInvalidID},
		{"escaped traversal", "GET", "/v1/threads/..%2F..%2Fetc%2Fpasswd/items", "", "", 400, server.CodeInvalidID},
		{"escaped absolute path", "GET", "/v1/threads/%2Fetc%2Fpasswd", "", "", 400, server.CodeInvalidID},
		{"absolute path", "GET", "/v1/threads//etc/passwd", "", "", 400, server.CodeInvalidID},
		{"bad id on append", "POST", "/v1/threads/x/items", "application/json", `{"type":"a","payload":{}}`, 400, server.CodeInvalidID},
		{"bad parent filter", "GET", "/v1/threads?parent=../x", "", "", 400, server.CodeInvalidID},
		{"unknown thread", "GET", "/v1/threads/" + unknownID, "", "", 404, server.CodeNotFound},
		{"append to unknown thread", "POST", "/v1/threads/" + unknownID + "/items", "application/json", `{"type":"a","payload":{}}`, 404, server.CodeNotFound},
		{"fork unknown thread", "POST", "/v1/threads/" + unknownID + "/fork", "", "", 404, server.CodeNotFound},
		{"unknown route", "GET", "/v1/nothing", "", "", 404, server.CodeNotFound},
		{"unknown root route", "GET", "/index.html", "", "", 404, server.CodeNotFound},
		{"wrong method", "PUT", "/v1/threads", "", "", 405, server.CodeMethodNotAllowed},
		{"wrong method on thread", "POST", "/v1/threads/" + th.ID, "", "", 405, server.CodeMethodNotAllowed},
		{"wrong method on search", "DELETE", "/v1/search", "", "", 405, server.CodeMethodNotAllowed},
		{"limit zero", "GET", "/v1/threads?limit=0", "", "", 400, server.CodeInvalidArgument},
		{"limit not a number", "GET", "/v1/threads?limit=ten", "", "", 400, server.CodeInvalidArgument},
		{"bad sort", "GET", "/v1/threads?sort=name", "", "", 400, server.CodeInvalidArgument},
		{"bad archived", "GET", "/v1/threads?archived=maybe", "", "", 400, server.CodeInvalidArgument},
		{"unknown parameter", "GET", "/v1/threads?colour=red", "", "", 400, server.CodeInvalidArgument},
		{"bad cursor", "GET", "/v1/threads?cursor=not-a-cursor", "", "", 400, server.CodeInvalidArgument},
		{"bad from_user_message", "GET", items + "?from_user_message=x", "", "", 400, server.CodeInvalidArgument},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var body any
			if tt.body != "" {
				body = tt.body
			}
			resp := e.do(tt.method, tt.path, tt.contentType, body)
			wantError(t, resp, tt.status, tt.code)
			if tt.status == http.StatusMethodNotAllowed && resp.Header.Get("Allow") == "" {
				t.Fatal("405 without an Allow header")
			}
		})
	}

	// Nothing above reached the thread.
	var got api.Thread
	e.call("GET", "/v1/threads/"+th.ID, nil, http.StatusOK, &got)
	if got.LineCount != 2 {
		t.Fatalf("thread has %d lines after bad requests, want 2", got.LineCount)
	}
}

// TestNDJSONLineNumbers: every message about a line of an NDJSON append
// body names it as an editor does, counting from 1 and counting blank
// lines, whether the server or the manager finds the fault. The manager
// once counted from 0 among the non-blank lines, so one body had two
// numberings.
func TestNDJSONLineNumbers(t *testing.T) {
	e := newEnv(t, server.Config{})
	th := e.create(nil)
	items := "/v1/threads/" + th.ID + "/items"
	const good = `{"type":"event_msg","payload":{"type":"x"}}`
	tests := []struct {
		name     string
		body     string
		code     string
		wantLine int
	}{
		{"not JSON (server)", good + "\n{nope\n", server.CodeInvalidJSON, 2},
		{"not JSON after a blank line (server)", "\n" + good + "\n{nope\n", server.CodeInvalidJSON, 3},
		{"no type (manager)", good + "\n" + `{"payload":{}}` + "\n", server.CodeInvalidItem, 2},
		{"no type after blank lines (manager)", "\n" + good + "\n\n" + `{"payload":{}}` + "\n", server.CodeInvalidItem, 4},
		{"an ordinal after a blank line (manager)", good + "\n\r\n" + `{"ordinal":3,"type":"event_msg","payload":{}}` + "\n", server.CodeInvalidItem, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := wantError(t, e.do("POST", items, "application/x-ndjson", tt.body), http.StatusBadRequest, tt.code)
			if want := fmt.Sprintf("line %d", tt.wantLine); !strings.Contains(got.Error.Message, want+" ") && !strings.Contains(got.Error.Message, want+":") {
				t.Fatalf("message %q does not name %q", got.Error.Message, want)
			}
		})
	}
}

// TestBodilessRoutes: archive, unarchive and purge take no body. One
// that holds members is refused, as unknown fields are everywhere, so an
// option the server does not have (a purge's "dry_run") fails instead of
// being ignored; nothing is changed. An empty body or {} is no option.
func TestBodilessRoutes(t *testing.T) {
	for _, tc := range []struct {
		name, route, body string
		archived          bool // the thread is archived first
		status            int
		code              string
	}{
		{"purge with an option", "purge", `{"dry_run":true}`, false, 400, server.CodeInvalidArgument},
		{"archive with an option", "archive", `{"force":true}`, false, 400, server.CodeInvalidArgument},
		{"unarchive with an option", "unarchive", `{"force":true}`, true, 400, server.CodeInvalidArgument},
		{"archive with a body that is not JSON", "archive", `force`, false, 400, server.CodeInvalidJSON},
		{"purge with {}", "purge", `{}`, false, 204, ""},
		{"archive with {}", "archive", `{}`, false, 200, ""},
		{"unarchive with {}", "unarchive", `{}`, true, 200, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, server.Config{})
			th := e.create(nil)
			if tc.archived {
				e.call("POST", "/v1/threads/"+th.ID+"/archive", nil, http.StatusOK, nil)
			}
			resp := e.do("POST", "/v1/threads/"+th.ID+"/"+tc.route, "application/json", tc.body)
			if tc.code == "" {
				readAll(t, resp, tc.status)
				return
			}
			wantError(t, resp, tc.status, tc.code)
			var got api.Thread
			e.call("GET", "/v1/threads/"+th.ID, nil, http.StatusOK, &got)
			if got.Archived != tc.archived {
				t.Fatalf("archived = %v after a refused %s, want %v", got.Archived, tc.route, tc.archived)
			}
		})
	}
}

// TestQueryOnRoutesWithoutParameters: a route that takes no query
// parameter refuses one, as every route refuses unknown ones, so that an
// option put in the query fails instead of being ignored (a fork's
// before_user_message there made a fork of the whole thread, 201).
// Nothing is changed; a bad thread id is still answered invalid_id.
func TestQueryOnRoutesWithoutParameters(t *testing.T) {
	e := newEnv(t, server.Config{})
	th := e.create(nil)
	before := e.appendItems(th.ID, userItem("u0"), userItem("u1")).Thread
	thread := "/v1/threads/" + th.ID
	for _, tc := range []struct {
		name, method, path, body string
		code                     string
	}{
		{"fork", "POST", thread + "/fork?before_user_message=1", `{}`, server.CodeInvalidArgument},
		{"delete", "DELETE", thread + "?dry_run=1", "", server.CodeInvalidArgument},
		{"purge", "POST", thread + "/purge?dry_run=1", "", server.CodeInvalidArgument},
		{"archive", "POST", thread + "/archive?force=1", "", server.CodeInvalidArgument},
		{"rename", "PATCH", thread + "?name=x", `{"name":"y"}`, server.CodeInvalidArgument},
		{"append", "POST", thread + "/items?expected_size=1", mustJSON(t, userItem("u2")), server.CodeInvalidArgument},
		{"append a turn", "POST", thread + "/turns?model=m", `{"prompt":"p"}`, server.CodeInvalidArgument},
		{"revert", "POST", thread + "/revert?before_user_message=1", `{"before_user_message":0}`, server.CodeInvalidArgument},
		{"create", "POST", "/v1/threads?name=x", `{}`, server.CodeInvalidArgument},
		{"get", "GET", thread + "?view=full", "", server.CodeInvalidArgument},
		{"turn", "GET", thread + "/turns/0?view=full", "", server.CodeInvalidArgument},
		{"turn by id", "GET", thread + "/turns/by-id/t?view=full", "", server.CodeInvalidArgument},
		{"ancestors", "GET", thread + "/ancestors?depth=1", "", server.CodeInvalidArgument},
		{"descendants", "GET", thread + "/descendants?depth=1", "", server.CodeInvalidArgument},
		{"tree", "GET", thread + "/tree?depth=1", "", server.CodeInvalidArgument},
		{"spawns", "GET", thread + "/spawns?depth=1", "", server.CodeInvalidArgument},
		{"bad id first", "DELETE", "/v1/threads/not-a-uuid?dry_run=1", "", server.CodeInvalidID},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var body any
			if tc.body != "" {
				body = tc.body
			}
			wantError(t, e.do(tc.method, tc.path, "application/json", body), http.StatusBadRequest, tc.code)
		})
	}
	var page api.Page
	e.call("GET", "/v1/threads?archived=all", nil, http.StatusOK, &page)
	if len(page.Threads) != 1 || page.Threads[0].HistorySize != before.HistorySize || page.Threads[0].Archived {
		t.Fatalf("threads after refused requests: %+v, want the one thread unchanged", page.Threads)
	}
}

func TestBodyLimit(t *testing.T) {
	const limit = 4 << 10
	e := newEnv(t, server.Config{MaxBody: limit})
	th := e.create(nil)
	big := `{"type":"event_msg","payload":{"text":"` + strings.Repeat("x", 2*limit) + `"}}`

	tests := []struct {
		name string
		body func() io.Reader
	}{
		// Content-Length known: refused before the body is read.
		{"with length", func() io.Reader { return strings.NewReader(big) }},
		// Chunked: cut by the reader at the limit.
		{"chunked", func() io.Reader { return io.MultiReader(strings.NewReader(big)) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := e.do("POST", "/v1/threads/"+th.ID+"/items", "application/json", tt.body())
			wantError(t, resp, http.StatusRequestEntityTooLarge, server.CodeTooLarge)
		})
	}
	// A body under the limit still works.
	e.appendItems(th.ID, userItem("small"))
}

func TestAuth(t *testing.T) {
	const sse = " (event stream)" // a path ending so is asked for with Accept: text/event-stream
	const missingID = "00000000-0000-7000-8000-000000000000"
	tests := []struct {
		name       string
		token      string // server token
		sendHeader string // Authorization header sent
		path       string
		wantStatus int
	}{
		{"no token configured", "", "", "/v1/threads", 200},
		{"missing header", "s3cret", "", "/v1/threads", 401},
		{"wrong token", "s3cret", "Bearer nope", "/v1/threads", 401},
		{"prefix of token", "s3cret", "Bearer s3cre", "/v1/threads", 401},
		{"wrong scheme", "s3cret", "Basic s3cret", "/v1/threads", 401},
		{"right token", "s3cret", "Bearer s3cret", "/v1/threads", 200},
		{"lower-case scheme", "s3cret", "bearer s3cret", "/v1/threads", 200},
		{"healthz open", "s3cret", "", "/healthz", 200},
		{"metrics closed", "s3cret", "", "/metrics", 401},
		{"openapi closed", "s3cret", "", "/openapi.json", 401},
		{"unknown route closed", "s3cret", "", "/v1/nothing", 401},
		// A browser's EventSource cannot send the header: an event
		// stream may carry the token in access_token, nothing else may.
		{"event stream, token in query", "s3cret", "", "/v1/events?access_token=s3cret" + sse, 200},
		{"event stream, wrong token in query", "s3cret", "", "/v1/events?access_token=nope" + sse, 401},
		{"event stream, empty token in query", "s3cret", "", "/v1/events?access_token=" + sse, 401},
		{"token in query, not a stream", "s3cret", "", "/v1/threads?access_token=s3cret", 401},
		// Accept: text/event-stream alone does not make a request a
		// stream: only the routes that stream take the token so.
		{"token in query, a list that accepts an event stream", "s3cret", "", "/v1/threads?access_token=s3cret" + sse, 401},
		{"token in query, items not followed", "s3cret", "", "/v1/threads/" + missingID + "/items?access_token=s3cret" + sse, 401},
		{"token in query, items followed", "s3cret", "", "/v1/threads/" + missingID + "/items?follow=1&access_token=s3cret" + sse, 404},
		{"token in query, items followed, true", "s3cret", "", "/v1/threads/" + missingID + "/items?follow=true&access_token=s3cret" + sse, 404},
		{"token in query, a turn followed", "s3cret", "", "/v1/threads/" + missingID + "/turns?follow=1&access_token=s3cret" + sse, 401},
		{"a handler does not see the parameter", "", "", "/v1/events?access_token=x" + sse, 200},
	}
	// Headers are set by hand below, so env.token stays empty.
	envs := map[string]*env{
		"":       newEnv(t, server.Config{}),
		"s3cret": newEnv(t, server.Config{Token: "s3cret"}),
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := envs[tt.token]
			path, stream := strings.CutSuffix(tt.path, sse)
			req, err := http.NewRequestWithContext(t.Context(), "GET", e.url+path, nil)
			if err != nil {
				t.Fatal(err)
			}
			if tt.sendHeader != "" {
				req.Header.Set("Authorization", tt.sendHeader)
			}
			if stream {
				req.Header.Set("Accept", "text/event-stream")
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			if stream && tt.wantStatus == http.StatusOK {
				// An event stream does not end: its status is the answer.
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
					t.Fatalf("status %d, Content-Type %q; want 200 and an event stream", resp.StatusCode, resp.Header.Get("Content-Type"))
				}
				return
			}
			if tt.wantStatus == http.StatusUnauthorized {
				wantError(t, resp, http.StatusUnauthorized, server.CodeUnauthorized)
				if resp.Header.Get("WWW-Authenticate") == "" {
					t.Fatal("401 without WWW-Authenticate")
				}
				return
			}
			readAll(t, resp, tt.wantStatus)
		})
	}
}

func TestHealthzAndOpenAPI(t *testing.T) {
	e := newEnv(t, server.Config{})
	var health map[string]string
	e.call("GET", "/healthz", nil, http.StatusOK, &health)
	if health["status"] != "ok" {
		t.Fatalf("healthz = %v, want status ok", health)
	}

	var doc map[string]any
	e.call("GET", "/openapi.json", nil, http.StatusOK, &doc)
	if doc["openapi"] != "3.1.0" {
		t.Fatalf("openapi = %v, want 3.1.0", doc["openapi"])
	}

	e.srv.Drain()
	e.call("GET", "/healthz", nil, http.StatusServiceUnavailable, &health)
	if health["status"] != "shutting_down" {
		t.Fatalf("healthz while draining = %v, want shutting_down", health)
	}
	// Other routes still serve requests in flight and stragglers.
	e.call("GET", "/v1/threads", nil, http.StatusOK, nil)
}

// TestMemberNamesAreExact: a body's member names are matched exactly and
// once: encoding/json alone would take NAME for name and keep the last of
// two, so a body would mean other than it says. Each is refused, and
// nothing changes.
func TestMemberNamesAreExact(t *testing.T) {
	for _, tc := range []struct {
		name, method, route, body string
	}{
		{"a name in capitals", "PATCH", "", `{"NAME":"renamed"}`},
		{"a name given twice", "PATCH", "", `{"name":"one","name":"two"}`},
		{"a fork point given twice, in two cases", "POST", "/fork", `{"before_user_message":1,"Before_User_Message":0}`},
		{"a mode given twice, in two cases", "POST", "/fork", `{"mode":"copy","Mode":"reference"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, server.Config{})
			th := e.create(nil)
			wantError(t, e.do(tc.method, "/v1/threads/"+th.ID+tc.route, "application/json", tc.body), http.StatusBadRequest, server.CodeInvalidArgument)
			var got api.Thread
			e.call("GET", "/v1/threads/"+th.ID, nil, http.StatusOK, &got)
			var page api.Page
			e.call("GET", "/v1/threads", nil, http.StatusOK, &page)
			if got.Name != "" || len(page.Threads) != 1 {
				t.Fatalf("after a refused body the thread is named %q and there are %d threads", got.Name, len(page.Threads))
			}
		})
	}
	// A nested object's members are matched exactly too.
	e := newEnv(t, server.Config{})
	wantError(t, e.do("POST", "/v1/threads", "application/json", `{"cwd":"/w","git":{"COMMIT_HASH":"abc"}}`), http.StatusBadRequest, server.CodeInvalidArgument)
}

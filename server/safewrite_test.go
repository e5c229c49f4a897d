package server_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"testing"

	"github.com/spoolhq/spool/api"
	"github.com/spoolhq/spool/manager"
	"github.com/spoolhq/spool/server"
)

// doHeaders sends a JSON request with extra headers.
func (e *env) doHeaders(method, path string, headers map[string]string, contentType, body string) *http.Response {
	e.t.Helper()
	req, err := http.NewRequestWithContext(e.t.Context(), method, e.url+path, bytes.NewReader([]byte(body)))
	if err != nil {
		e.t.Fatalf("new request: %v", err)
	}
	if contentType == "" {
		contentType = "application/json"
	}
	req.Header.Set("Content-Type", contentType)
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
	return resp
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	data, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// history returns the thread's file as GET /items streams it.
func (e *env) history(id string) []byte {
	e.t.Helper()
	return readAll(e.t, e.do("GET", "/v1/threads/"+id+"/items", "", nil), http.StatusOK)
}

func TestExpectedSize(t *testing.T) {
	e := newEnv(t, server.Config{})
	th := e.create(nil)
	path := "/v1/threads/" + th.ID + "/items"
	before := e.history(th.ID)

	// A stale size: nothing is written, and the answer says the real size.
	resp := e.doHeaders("POST", path, map[string]string{"Expected-Size": strconv.FormatInt(th.IndexedSize+1, 10)}, "", mustJSON(t, userItem("lost")))
	body := wantError(t, resp, http.StatusConflict, "size_mismatch")
	if body.Error.Size == nil || *body.Error.Size != th.IndexedSize {
		t.Fatalf("size in the error = %v, want %d", body.Error.Size, th.IndexedSize)
	}
	if after := e.history(th.ID); !bytes.Equal(after, before) {
		t.Fatalf("a refused append changed the file:\n%s\nwant\n%s", after, before)
	}

	// NDJSON bodies take the same header.
	resp = e.doHeaders("POST", path, map[string]string{"Expected-Size": "1"}, "application/x-ndjson", mustJSON(t, userItem("lost"))+"\n")
	wantError(t, resp, http.StatusConflict, "size_mismatch")

	// The right size: written at that offset.
	resp = e.doHeaders("POST", path, map[string]string{"Expected-Size": strconv.FormatInt(th.IndexedSize, 10)}, "", mustJSON(t, userItem("kept")))
	var res appendResult
	if err := json.Unmarshal(readAll(t, resp, http.StatusOK), &res); err != nil {
		t.Fatal(err)
	}
	if got, want := res.Offsets[0], th.IndexedSize; got != want {
		t.Fatalf("offset = %d, want %d", got, want)
	}

	for _, bad := range []string{"0", "-5", "+5", "abc", "0x10"} {
		resp := e.doHeaders("POST", path, map[string]string{"Expected-Size": bad}, "", mustJSON(t, userItem("x")))
		wantError(t, resp, http.StatusBadRequest, "invalid_argument")
	}

	// A reference fork's history begins with its base's bytes: the size
	// to expect is its history_size, not its own file's indexed_size.
	var fork api.Thread
	e.call("POST", "/v1/threads/"+th.ID+"/fork", map[string]any{}, http.StatusCreated, &fork)
	if fork.BaseSize == 0 || fork.HistorySize != fork.BaseSize+fork.IndexedSize {
		t.Fatalf("fork: base_size %d, indexed_size %d, history_size %d; want a reference fork whose history_size is their sum", fork.BaseSize, fork.IndexedSize, fork.HistorySize)
	}
	forkPath := "/v1/threads/" + fork.ID + "/items"
	resp = e.doHeaders("POST", forkPath, map[string]string{"Expected-Size": strconv.FormatInt(fork.IndexedSize, 10)}, "", mustJSON(t, userItem("lost")))
	wantError(t, resp, http.StatusConflict, "size_mismatch")
	resp = e.doHeaders("POST", forkPath, map[string]string{"Expected-Size": strconv.FormatInt(fork.HistorySize, 10)}, "", mustJSON(t, userItem("kept")))
	if err := json.Unmarshal(readAll(t, resp, http.StatusOK), &res); err != nil {
		t.Fatal(err)
	}
	if res.Offsets[0] != fork.HistorySize {
		t.Fatalf("fork append offset = %d, want its history_size %d", res.Offsets[0], fork.HistorySize)
	}
}

func TestIdempotencyKey(t *testing.T) {
	e := newEnv(t, server.Config{})
	th := e.create(nil)
	path := "/v1/threads/" + th.ID + "/items"
	key := map[string]string{"Idempotency-Key": "req-1"}
	item := mustJSON(t, userItem("once"))

	first := readAll(t, e.doHeaders("POST", path, key, "", item), http.StatusOK)
	// Another append in between: the retry must still answer what the
	// first call answered, not describe the thread as it is now.
	e.appendItems(th.ID, assistantItem("between"))
	retry := readAll(t, e.doHeaders("POST", path, key, "", item), http.StatusOK)
	if !bytes.Equal(first, retry) {
		t.Fatalf("retry answered\n%s\nfirst call answered\n%s", retry, first)
	}
	if n := bytes.Count(e.history(th.ID), []byte(`"once"`)); n != 1 {
		t.Fatalf("the item is in the file %d times, want 1", n)
	}

	// The same key with another body is refused, and writes nothing.
	before := e.history(th.ID)
	resp := e.doHeaders("POST", path, key, "", mustJSON(t, userItem("other")))
	wantError(t, resp, http.StatusUnprocessableEntity, "idempotency_key_reused")
	if after := e.history(th.ID); !bytes.Equal(after, before) {
		t.Fatal("a reused key with another body changed the file")
	}

	// Keys belong to a thread: the same key on another thread is new.
	other := e.create(nil)
	readAll(t, e.doHeaders("POST", "/v1/threads/"+other.ID+"/items", key, "", item), http.StatusOK)
	if n := bytes.Count(e.history(other.ID), []byte(`"once"`)); n != 1 {
		t.Fatalf("other thread holds the item %d times, want 1", n)
	}
}

// TestIdempotencyKeyAcrossRestart appends with a key, stops the server
// and its manager, and serves the same root again: the retry answers what
// the first call answered and writes nothing, and the key with another
// body is still refused.
func TestIdempotencyKeyAcrossRestart(t *testing.T) {
	root := t.TempDir()
	e := newEnvWith(t, server.Config{}, manager.Options{Root: root})
	th := e.create(nil)
	path := "/v1/threads/" + th.ID + "/items"
	key := map[string]string{"Idempotency-Key": "req-1"}
	item := mustJSON(t, userItem("once"))
	first := readAll(t, e.doHeaders("POST", path, key, "", item), http.StatusOK)
	if err := e.m.Close(); err != nil { // a restart: the next manager takes the root's lock
		t.Fatal(err)
	}

	e = newEnvWith(t, server.Config{}, manager.Options{Root: root})
	retry := readAll(t, e.doHeaders("POST", path, key, "", item), http.StatusOK)
	if !bytes.Equal(first, retry) {
		t.Fatalf("retry after a restart answered\n%s\nfirst call answered\n%s", retry, first)
	}
	if n := bytes.Count(e.history(th.ID), []byte(`"once"`)); n != 1 {
		t.Fatalf("the item is in the file %d times, want 1", n)
	}
	before := e.history(th.ID)
	resp := e.doHeaders("POST", path, key, "", mustJSON(t, userItem("other")))
	wantError(t, resp, http.StatusUnprocessableEntity, "idempotency_key_reused")
	if after := e.history(th.ID); !bytes.Equal(after, before) {
		t.Fatal("a reused key with another body changed the file")
	}
}

// TestIdempotencyKeyConcurrentRetries sends one append many times at once
// with one key: exactly one copy is written and every answer is the same.
func TestIdempotencyKeyConcurrentRetries(t *testing.T) {
	e := newEnv(t, server.Config{})
	th := e.create(nil)
	path := "/v1/threads/" + th.ID + "/items"
	line := mustJSON(t, userItem("racing")) + "\n"
	const n = 8
	answers := make([][]byte, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			resp := e.doHeaders("POST", path, map[string]string{"Idempotency-Key": "race"}, "application/x-ndjson", line)
			defer resp.Body.Close()
			var buf bytes.Buffer
			buf.ReadFrom(resp.Body)
			answers[i] = []byte(fmt.Sprintf("%d %s", resp.StatusCode, buf.Bytes()))
		})
	}
	wg.Wait()
	for i := 1; i < n; i++ {
		if !bytes.Equal(answers[i], answers[0]) {
			t.Fatalf("answer %d = %s, answer 0 = %s", i, answers[i], answers[0])
		}
	}
	if n := bytes.Count(e.history(th.ID), []byte(`"racing"`)); n != 1 {
		t.Fatalf("the item is in the file %d times, want 1", n)
	}
}

// TestTurnSafeWrites: POST …/turns takes Idempotency-Key and Expected-Size
// as an append of items does: a retry answers the first call and writes
// one turn, another body under the key is 422, and a stale size is 409.
func TestTurnSafeWrites(t *testing.T) {
	e := newEnv(t, server.Config{})
	th := e.create(nil)
	path := "/v1/threads/" + th.ID + "/turns"
	key := map[string]string{"Idempotency-Key": "turn-1"}
	body := `{"prompt":"once","answer":"only once"}`
	first := readAll(t, e.doHeaders("POST", path, key, "", body), http.StatusOK)
	retry := readAll(t, e.doHeaders("POST", path, key, "", body), http.StatusOK)
	if !bytes.Equal(first, retry) {
		t.Fatalf("retry answered\n%s\nfirst call answered\n%s", retry, first)
	}
	if n := bytes.Count(e.history(th.ID), []byte(`"task_started"`)); n != 1 {
		t.Fatalf("the thread holds %d turns, want 1", n)
	}
	wantError(t, e.doHeaders("POST", path, key, "", `{"prompt":"other"}`), http.StatusUnprocessableEntity, "idempotency_key_reused")
	stale := map[string]string{"Expected-Size": "1"}
	wantError(t, e.doHeaders("POST", path, stale, "", body), http.StatusConflict, "size_mismatch")
	if n := bytes.Count(e.history(th.ID), []byte(`"task_started"`)); n != 1 {
		t.Fatalf("refused turns wrote: the thread holds %d turns, want 1", n)
	}
}

// TestIdempotentCreates: POST /v1/threads and POST …/fork take an
// Idempotency-Key: the retry answers 201 with the thread the first made
// and makes none; the key with another body is 422
// idempotency_key_reused; an Expected-Size there is refused, not ignored.
func TestIdempotentCreates(t *testing.T) {
	e := newEnv(t, server.Config{})
	key := map[string]string{"Idempotency-Key": "create-1"}
	created := func(resp *http.Response) api.Thread {
		t.Helper()
		var th api.Thread
		if err := json.Unmarshal(readAll(t, resp, http.StatusCreated), &th); err != nil {
			t.Fatal(err)
		}
		return th
	}
	body := `{"cwd":"/work"}`
	first := created(e.doHeaders("POST", "/v1/threads", key, "", body))
	retry := created(e.doHeaders("POST", "/v1/threads", key, "", body))
	if retry.ID != first.ID {
		t.Fatalf("retried start made %s, want %s", retry.ID, first.ID)
	}
	wantError(t, e.doHeaders("POST", "/v1/threads", key, "", `{"cwd":"/elsewhere"}`), http.StatusUnprocessableEntity, "idempotency_key_reused")
	wantError(t, e.doHeaders("POST", "/v1/threads", map[string]string{"Expected-Size": "10"}, "", body), http.StatusBadRequest, "invalid_argument")

	e.appendItems(first.ID, userItem("one"), userItem("two"))
	forkPath := "/v1/threads/" + first.ID + "/fork"
	fork := created(e.doHeaders("POST", forkPath, key, "", `{"before_user_message":1}`))
	again := created(e.doHeaders("POST", forkPath, key, "", `{"before_user_message":1}`))
	if again.ID != fork.ID || fork.ID == first.ID {
		t.Fatalf("retried fork made %s, want %s (a fork of %s)", again.ID, fork.ID, first.ID)
	}
	// The mode the first fork defaulted to, spelled out, is the same
	// request; the other mode is not.
	if spelled := created(e.doHeaders("POST", forkPath, key, "", `{"before_user_message":1,"mode":"reference"}`)); spelled.ID != fork.ID {
		t.Fatalf("fork retried with its default mode spelled out made %s, want %s", spelled.ID, fork.ID)
	}
	wantError(t, e.doHeaders("POST", forkPath, key, "", `{"before_user_message":1,"mode":"copy"}`), http.StatusUnprocessableEntity, "idempotency_key_reused")
	wantError(t, e.doHeaders("POST", forkPath, key, "", `{}`), http.StatusUnprocessableEntity, "idempotency_key_reused")
	var page api.Page
	e.call("GET", "/v1/threads", nil, http.StatusOK, &page)
	if len(page.Threads) != 2 {
		t.Fatalf("%d threads listed, want 2: a retry created one", len(page.Threads))
	}
}

// TestEmptySafeWriteHeadersAreRefused: an Expected-Size or Idempotency-Key
// sent empty (a client whose size or key came out blank) is 400 and
// writes nothing; it was taken as no header, so a conditional append went
// through unconditionally and a keyed one unkeyed.
func TestEmptySafeWriteHeadersAreRefused(t *testing.T) {
	e := newEnv(t, server.Config{})
	th := e.create(nil)
	items := "/v1/threads/" + th.ID + "/items"
	tests := []struct {
		name, path, header, body string
	}{
		{name: "append with an empty Expected-Size", path: items, header: "Expected-Size", body: mustJSON(t, userItem("x"))},
		{name: "append with an empty Idempotency-Key", path: items, header: "Idempotency-Key", body: mustJSON(t, userItem("x"))},
		{name: "turn with an empty Expected-Size", path: "/v1/threads/" + th.ID + "/turns", header: "Expected-Size", body: `{"prompt":"p","answer":"a"}`},
		{name: "start with an empty Idempotency-Key", path: "/v1/threads", header: "Idempotency-Key", body: `{}`},
		{name: "fork with an empty Idempotency-Key", path: "/v1/threads/" + th.ID + "/fork", header: "Idempotency-Key", body: `{}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := e.history(th.ID)
			resp := e.doHeaders("POST", tt.path, map[string]string{tt.header: ""}, "", tt.body)
			wantError(t, resp, http.StatusBadRequest, "invalid_argument")
			if after := e.history(th.ID); !bytes.Equal(after, before) {
				t.Fatalf("a refused request changed the file:\n%s\nwant\n%s", after, before)
			}
		})
	}
	var page api.Page
	e.call("GET", "/v1/threads", nil, http.StatusOK, &page)
	if len(page.Threads) != 1 {
		t.Fatalf("%d threads, want only the first: a refused start or fork made one", len(page.Threads))
	}
}

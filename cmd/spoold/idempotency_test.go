package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
)

// postKeyed sends an append with an Idempotency-Key and returns the status
// and body.
func (p *spoold) postKeyed(t *testing.T, path, key, body string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest("POST", p.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Idempotency-Key", key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, data
}

// TestBinaryRestartKeepsIdempotencyKeys appends with a key to the real
// spoold, stops it with SIGTERM and starts another on the root: the retry
// gets the first answer and writes nothing, another body with the key is
// 422 idempotency_key_reused.
func TestBinaryRestartKeepsIdempotencyKeys(t *testing.T) {
	bin := buildSpoold(t)
	root := filepath.Join(t.TempDir(), "root")
	first := startSpoold(t, bin, root)
	var thread struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal(first.call(t, "POST", "/v1/threads", `{}`, http.StatusCreated), &thread); err != nil {
		t.Fatal(err)
	}
	path := "/v1/threads/" + thread.ID + "/items"
	prompt := `{"type":"response_item","payload":{"type":"message","role":"user","content":[{"type":"input_text","text":"exactly once"}]}}`
	status, answer := first.postKeyed(t, path, "k-1", prompt)
	if status != http.StatusOK {
		t.Fatalf("first append: status %d: %s", status, answer)
	}
	first.Stop(t)

	second := startSpoold(t, bin, root)
	defer second.Stop(t)
	status, retry := second.postKeyed(t, path, "k-1", prompt)
	if status != http.StatusOK || !bytes.Equal(retry, answer) {
		t.Fatalf("retry after a restart: status %d\n%s\nwant 200 and the first answer\n%s", status, retry, answer)
	}
	if n := bytes.Count(second.call(t, "GET", path, "", http.StatusOK), []byte("exactly once")); n != 1 {
		t.Fatalf("the prompt is in the history %d times, want 1", n)
	}
	other := strings.Replace(prompt, "exactly once", "something else", 1)
	if status, body := second.postKeyed(t, path, "k-1", other); status != http.StatusUnprocessableEntity || !strings.Contains(string(body), `"idempotency_key_reused"`) {
		t.Fatalf("the key with another body after a restart: status %d: %s; want 422 idempotency_key_reused", status, body)
	}
}

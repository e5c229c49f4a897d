package main

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// TestSecondSignalStillDrains: a second SIGINT or SIGTERM while spoold
// drains (a wrapper such as npm run forwards the signal the terminal also
// sent) does not end it: the request in flight completes and spoold exits
// cleanly, having closed its store.
func TestSecondSignalStillDrains(t *testing.T) {
	bin := buildSpoold(t)
	p := startSpoold(t, bin, filepath.Join(t.TempDir(), "root"))
	var thread struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal(p.call(t, "POST", "/v1/threads", `{}`, http.StatusCreated), &thread); err != nil {
		t.Fatal(err)
	}
	// An append whose body is still coming holds the drain.
	body, more := io.Pipe()
	req, err := http.NewRequestWithContext(t.Context(), "POST", p.url+"/v1/threads/"+thread.ID+"/items", body)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	answered := make(chan *http.Response, 1)
	failed := make(chan error, 1)
	go func() {
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			failed <- err
			return
		}
		answered <- resp
	}()
	item := `{"type":"response_item","payload":{"type":"message","role":"user","content":[{"type":"input_text","text":"in flight"}]}}`
	if _, err := io.WriteString(more, item[:20]); err != nil { // the handler is reading it
		t.Fatal(err)
	}
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	p.waitLog(t, "shutting down")
	if err := p.cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(more, item[20:]); err != nil {
		t.Fatalf("spoold gone after a second signal: %v", err)
	}
	more.Close()
	select {
	case resp := <-answered:
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("the append in flight answered %s", resp.Status)
		}
	case err := <-failed:
		t.Fatalf("the append in flight failed after a second signal: %v", err)
	}
	<-p.done
	if p.err != nil || !strings.Contains(p.stderr.String(), `msg=stopped`) {
		t.Fatalf("spoold after two signals: %v, want a clean stop:\n%s", p.err, p.stderr)
	}
}

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
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/spoolhq/spool/api"
	"github.com/spoolhq/spool/manager"
	"github.com/spoolhq/spool/server"
)

// openStream starts a GET that stays open, with its own context so the
// test can hang up; the returned cancel does.
func (e *env) openStream(path string, headers map[string]string) (*http.Response, context.CancelFunc) {
	e.t.Helper()
	ctx, cancel := context.WithCancel(e.t.Context())
	req, err := http.NewRequestWithContext(ctx, "GET", e.url+path, nil)
	if err != nil {
		e.t.Fatal(err)
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		cancel()
		e.t.Fatalf("GET %s: %v", path, err)
	}
	if resp.StatusCode != http.StatusOK {
		defer cancel()
		e.t.Fatalf("GET %s: status %d: %s", path, resp.StatusCode, readAll(e.t, resp, resp.StatusCode))
	}
	e.t.Cleanup(func() { cancel(); resp.Body.Close() })
	return resp, cancel
}

// readLines reads n lines (with their newlines) from r, blocking until
// they come.
func readLines(t *testing.T, r *bufio.Reader, n int) [][]byte {
	t.Helper()
	out := make([][]byte, 0, n)
	for range n {
		line, err := r.ReadBytes('\n')
		if err != nil {
			t.Fatalf("read line %d of %d: %v (got %q)", len(out), n, err, line)
		}
		out = append(out, line)
	}
	return out
}

// TestFollowAcrossReconnect appends from another client while a follower
// reads; the follower hangs up half way and reconnects from the offset it
// reached. What it read, put together, must be the file byte for byte: no
// line missing, none twice, in order.
func TestFollowAcrossReconnect(t *testing.T) {
	e := newEnv(t, server.Config{})
	th := e.create(nil)
	path := "/v1/threads/" + th.ID + "/items?follow=1&from_offset="
	resp, hangUp := e.openStream(path+"0", nil)
	if ct := resp.Header.Get("Content-Type"); ct != "application/x-ndjson" {
		t.Fatalf("Content-Type = %q", ct)
	}
	r := bufio.NewReader(resp.Body)
	var got bytes.Buffer
	for _, l := range readLines(t, r, 1) { // the session_meta
		got.Write(l)
	}
	for i := range 10 {
		e.appendItems(th.ID, userItem(fmt.Sprintf("prompt %d", i)))
		for _, l := range readLines(t, r, 1) {
			got.Write(l)
		}
	}
	hangUp()

	// Lines appended while no one follows are read on reconnect.
	for i := 10; i < 15; i++ {
		e.appendItems(th.ID, userItem(fmt.Sprintf("prompt %d", i)))
	}
	resp, _ = e.openStream(path+strconv.Itoa(got.Len()), nil)
	r = bufio.NewReader(resp.Body)
	for _, l := range readLines(t, r, 5) {
		got.Write(l)
	}
	// A batch of three in one append arrives whole.
	e.appendItems(th.ID, assistantItem("a"), assistantItem("b"), assistantItem("c"))
	for _, l := range readLines(t, r, 3) {
		got.Write(l)
	}
	if want := e.history(th.ID); !bytes.Equal(got.Bytes(), want) {
		t.Fatalf("followed bytes differ from the file:\ngot\n%s\nwant\n%s", got.Bytes(), want)
	}
}

// sseEvent is one server-sent event.
type sseEvent struct{ id, event, data string }

func readEvent(t *testing.T, r *bufio.Reader) sseEvent {
	t.Helper()
	var ev sseEvent
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("read event: %v", err)
		}
		line = strings.TrimSuffix(line, "\n")
		if line == "" {
			return ev
		}
		field, value, _ := strings.Cut(line, ": ")
		switch field {
		case "id":
			ev.id = value
		case "event":
			ev.event = value
		case "data":
			ev.data = value
		}
	}
}

// TestFollowSSE follows as server-sent events: each event's id is the
// offset past its line, and Last-Event-ID resumes there.
func TestFollowSSE(t *testing.T) {
	e := newEnv(t, server.Config{})
	th := e.create(nil)
	res := e.appendItems(th.ID, userItem("one"), userItem("two"))
	sse := map[string]string{"Accept": "text/event-stream"}
	resp, hangUp := e.openStream("/v1/threads/"+th.ID+"/items?follow=1", sse)
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("Content-Type = %q", ct)
	}
	r := bufio.NewReader(resp.Body)
	file := e.history(th.ID)
	wantIDs := []int64{res.Offsets[0], res.Offsets[1], int64(len(file))}
	for i, want := range wantIDs {
		ev := readEvent(t, r)
		if ev.event != "line" || ev.id != strconv.FormatInt(want, 10) {
			t.Fatalf("event %d: %q id %q, want line id %d", i, ev.event, ev.id, want)
		}
	}
	hangUp()
	e.appendItems(th.ID, userItem("three"))
	resp, _ = e.openStream("/v1/threads/"+th.ID+"/items?follow=1", map[string]string{"Accept": "text/event-stream", "Last-Event-ID": strconv.Itoa(len(file))})
	ev := readEvent(t, bufio.NewReader(resp.Body))
	if !strings.Contains(ev.data, `"three"`) {
		t.Fatalf("first event after reconnect = %q, want the line of \"three\"", ev.data)
	}
}

// TestFollowSSEResumesWhereTheClientGotTo reconnects as a browser's
// EventSource does: to the URL it first opened, whatever start that names,
// with Last-Event-ID set to the id of the last event it got. The stream
// must go on from there: not start again at the URL's from_offset (every
// line twice), nor refuse the URL's from_user_message beside the header
// (400, which ends an EventSource for good).
func TestFollowSSEResumesWhereTheClientGotTo(t *testing.T) {
	for _, tc := range []struct{ name, start string }{
		{"no start", ""},
		{"from_offset", "&from_offset=0"},
		{"from_user_message", "&from_user_message=1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, server.Config{})
			th := e.create(nil)
			e.appendItems(th.ID, userItem("one"), userItem("two"))
			got := len(e.history(th.ID))
			e.appendItems(th.ID, userItem("three"))
			resp, _ := e.openStream("/v1/threads/"+th.ID+"/items?follow=1"+tc.start,
				map[string]string{"Accept": "text/event-stream", "Last-Event-ID": strconv.Itoa(got)})
			ev := readEvent(t, bufio.NewReader(resp.Body))
			if !strings.Contains(ev.data, `"three"`) {
				t.Fatalf("first event after reconnect = %q, want the line of \"three\"", ev.data)
			}
		})
	}
}

// TestFollowSSEFramesLinesWithCR: a rollout line may hold a raw CR where
// JSON allows space (an NDJSON append keeps its line byte for byte), but
// in server-sent events a CR ends a line: sent as it is, it would cut the
// event's data short, and two would end the event. Each event's data is
// the line with its CRs as spaces, the same JSON.
func TestFollowSSEFramesLinesWithCR(t *testing.T) {
	e := newEnv(t, server.Config{})
	th := e.create(nil)
	line := "{\"type\":\"event_msg\",\r\r\"payload\":{\"type\":\"agent_message\",\r\"message\":\"hi\"}}\r \n"
	readAll(t, e.doHeaders("POST", "/v1/threads/"+th.ID+"/items", nil, "application/x-ndjson", line), http.StatusOK)
	file := e.history(th.ID)
	resp, _ := e.openStream("/v1/threads/"+th.ID+"/items?follow=1", map[string]string{"Accept": "text/event-stream"})
	r := bufio.NewReader(resp.Body)
	readEvent(t, r) // the session_meta
	ev := readEvent(t, r)
	if strings.ContainsRune(ev.data, '\r') || !json.Valid([]byte(ev.data)) || !strings.Contains(ev.data, `"message":"hi"`) {
		t.Fatalf("event data %q, want the appended line, valid JSON without a CR", ev.data)
	}
	if ev.id != strconv.Itoa(len(file)) {
		t.Fatalf("event id %s, want %d, the offset past the line", ev.id, len(file))
	}
}

// TestFollowEnds checks that a follow stream ends, saying why, when its
// thread is deleted and when the server drains.
func TestFollowEnds(t *testing.T) {
	for _, tc := range []struct {
		name   string
		end    func(e *env, id string)
		reason string
	}{
		{"deleted", func(e *env, id string) { e.call("DELETE", "/v1/threads/"+id, nil, http.StatusNoContent, nil) }, server.EndDeleted},
		{"drained", func(e *env, id string) { e.srv.Drain() }, server.EndShutdown},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, server.Config{})
			th := e.create(nil)
			resp, _ := e.openStream("/v1/threads/"+th.ID+"/items?follow=1", nil)
			r := bufio.NewReader(resp.Body)
			readLines(t, r, 1)
			tc.end(e, th.ID)
			rest, err := io.ReadAll(r)
			if err != nil {
				t.Fatalf("stream did not end cleanly: %v", err)
			}
			if len(rest) != 0 {
				t.Fatalf("unexpected bytes before the end: %q", rest)
			}
			if got := resp.Trailer.Get("Spool-Stream-End"); got != tc.reason {
				t.Fatalf("Spool-Stream-End = %q, want %q", got, tc.reason)
			}
		})
	}
}

// TestFollowEndsOnRevert: a revert makes the history past its cut
// another's, so the offsets a follower holds name other bytes: its
// stream ends with the reason "reverted" after the lines it was sent,
// never going on from its old offset into the new history.
func TestFollowEndsOnRevert(t *testing.T) {
	e := newEnv(t, server.Config{})
	th, data := e.threeTurns()
	resp, _ := e.openStream("/v1/threads/"+th.ID+"/items?follow=1", nil)
	r := bufio.NewReader(resp.Body)
	readLines(t, r, bytes.Count(data, []byte("\n")))
	e.call("POST", "/v1/threads/"+th.ID+"/revert", map[string]any{"before_turn_id": "turn-b"}, http.StatusOK, nil)
	e.appendItems(th.ID, map[string]any{"type": "response_item", "payload": map[string]any{"type": "message", "role": "user",
		"content": []map[string]any{{"type": "input_text", "text": "after the revert"}}}})
	type result struct {
		rest []byte
		err  error
	}
	done := make(chan result, 1)
	go func() {
		rest, err := io.ReadAll(r)
		done <- result{rest, err}
	}()
	select {
	case res := <-done:
		if res.err != nil || len(res.rest) != 0 {
			t.Fatalf("after the revert the stream sent %q, %v; want its end", res.rest, res.err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the follow stream did not end after the revert")
	}
	if got := resp.Trailer.Get("Spool-Stream-End"); got != server.EndReverted {
		t.Fatalf("Spool-Stream-End = %q, want %q", got, server.EndReverted)
	}
}

// TestFollowEndsWhenAPurgeRewritesTheThread: a follower of a reference
// fork whose base is purged (the fork made self-contained: its history
// laid out anew, so the follower's offset names other bytes) is ended with
// "reverted", as after a revert, not left to go on in the new bytes.
func TestFollowEndsWhenAPurgeRewritesTheThread(t *testing.T) {
	e := newEnv(t, server.Config{})
	base, _ := e.threeTurns()
	var fork api.Thread
	e.call("POST", "/v1/threads/"+base.ID+"/fork", map[string]any{}, http.StatusCreated, &fork)
	resp, _ := e.openStream("/v1/threads/"+fork.ID+"/items?follow=1", nil)
	r := bufio.NewReader(resp.Body)
	history := readAll(t, e.do("GET", "/v1/threads/"+fork.ID+"/items", "", nil), http.StatusOK)
	readLines(t, r, bytes.Count(history, []byte("\n")))
	e.call("POST", "/v1/threads/"+base.ID+"/purge", nil, http.StatusNoContent, nil)
	done := make(chan []byte, 1)
	go func() {
		rest, _ := io.ReadAll(r)
		done <- rest
	}()
	select {
	case rest := <-done:
		if len(rest) != 0 {
			t.Fatalf("after the purge the stream sent %q; want its end", rest)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the follow stream did not end after the purge rewrote its thread")
	}
	if got := resp.Trailer.Get("Spool-Stream-End"); got != server.EndReverted {
		t.Fatalf("Spool-Stream-End = %q, want %q", got, server.EndReverted)
	}
}

// appendAsCodex appends to thread th's file, whose history is data, a user
// message "from codex", as another process (a running Codex) would.
func appendAsCodex(t *testing.T, root string, th api.Thread, data []byte) {
	t.Helper()
	line := `{"timestamp":"2026-11-25T10:00:00.000Z","type":"response_item","payload":{"type":"message","role":"user","content":[{"type":"input_text","text":"from codex"}]}}`
	if th.HistoryMode == "paginated" {
		line = strings.Replace(line, `{"timestamp"`, fmt.Sprintf(`{"ordinal":%d,"timestamp"`, bytes.Count(data, []byte("\n"))), 1)
	}
	f, err := os.OpenFile(filepath.Join(root, filepath.FromSlash(th.RolloutPath)), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(line + "\n"); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestFollowSeesAnotherProcessAppend: a line another process (a running
// Codex) appends to the thread's file reaches a follower once the
// manager's watcher has indexed it.
func TestFollowSeesAnotherProcessAppend(t *testing.T) {
	root := t.TempDir()
	e := newEnvWith(t, server.Config{}, manager.Options{Root: root, Watch: true})
	th, data := e.threeTurns()
	resp, _ := e.openStream("/v1/threads/"+th.ID+"/items?follow=1", nil)
	r := bufio.NewReader(resp.Body)
	readLines(t, r, bytes.Count(data, []byte("\n")))
	appendAsCodex(t, root, th, data)
	got := make(chan []byte, 1)
	go func() {
		l, _ := r.ReadBytes('\n')
		got <- l
	}()
	select {
	case l := <-got:
		if !bytes.Contains(l, []byte("from codex")) {
			t.Fatalf("the follower got %q, want the line another process appended", l)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the follower did not get the line another process appended")
	}
}

// TestHeadOfAStream: HEAD of a follow or of the event stream is answered
// at once, as the stream's headers, and leaves its connection and its
// stream slot free for the next request.
func TestHeadOfAStream(t *testing.T) {
	for _, tc := range []struct{ name, path string }{
		{"follow", "/items?follow=1"},
		{"events", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, server.Config{MaxStreams: 1})
			th, _ := e.threeTurns()
			path := "/v1/events"
			if tc.path != "" {
				path = "/v1/threads/" + th.ID + tc.path
			}
			client := &http.Client{Timeout: 10 * time.Second}
			for range 2 { // a second HEAD gets the one stream slot the first took, if it was held
				resp, err := client.Head(e.url + path)
				if err != nil {
					t.Fatalf("HEAD %s: %v", path, err)
				}
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					t.Fatalf("HEAD %s: status %d, want 200", path, resp.StatusCode)
				}
			}
			resp, err := client.Get(e.url + "/v1/threads/" + th.ID + "/items")
			if err != nil {
				t.Fatalf("GET after the HEADs: %v", err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("GET after the HEADs: status %d, want 200", resp.StatusCode)
			}
		})
	}
}

func TestFollowBadRequests(t *testing.T) {
	e := newEnv(t, server.Config{})
	th := e.create(nil)
	e.appendItems(th.ID, userItem("one"))
	for _, tc := range []struct {
		name, query string
		status      int
		code        string
	}{
		{"mid-line offset", "follow=1&from_offset=3", http.StatusBadRequest, "invalid_argument"},
		{"offset past the end", "follow=1&from_offset=999999", http.StatusBadRequest, "invalid_argument"},
		{"negative offset", "from_offset=-1", http.StatusBadRequest, "invalid_argument"},
		{"both starts", "from_offset=0&from_user_message=0", http.StatusBadRequest, "invalid_argument"},
		{"bad follow", "follow=yes", http.StatusBadRequest, "invalid_argument"},
		{"user message out of range", "follow=1&from_user_message=5", http.StatusBadRequest, "out_of_range"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wantError(t, e.do("GET", "/v1/threads/"+th.ID+"/items?"+tc.query, "", nil), tc.status, tc.code)
		})
	}
	resp := e.do("GET", "/v1/threads/00000000-0000-7000-8000-000000000000/items?follow=1", "", nil)
	wantError(t, resp, http.StatusNotFound, "not_found")
}

// TestReadFromOffset reads without following from a line's offset.
func TestReadFromOffset(t *testing.T) {
	e := newEnv(t, server.Config{})
	th := e.create(nil)
	res := e.appendItems(th.ID, userItem("one"), userItem("two"))
	file := e.history(th.ID)
	got := readAll(t, e.do("GET", fmt.Sprintf("/v1/threads/%s/items?from_offset=%d", th.ID, res.Offsets[1]), "", nil), http.StatusOK)
	if want := file[res.Offsets[1]:]; !bytes.Equal(got, want) {
		t.Fatalf("got %q, want %q", got, want)
	}
}

// TestEvents checks that the event stream reports every kind of change, in
// order.
func TestEvents(t *testing.T) {
	e := newEnv(t, server.Config{})
	resp, _ := e.openStream("/v1/events", nil)
	r := bufio.NewReader(resp.Body)
	th := e.create(map[string]any{"history_mode": "legacy"}) // a copy fork: the parent can be deleted
	e.appendItems(th.ID, userItem("one"))
	e.call("PATCH", "/v1/threads/"+th.ID, map[string]string{"name": "n"}, http.StatusOK, nil)
	var fork struct{ ID string }
	e.call("POST", "/v1/threads/"+th.ID+"/fork", nil, http.StatusCreated, &fork)
	e.call("POST", "/v1/threads/"+th.ID+"/archive", nil, http.StatusOK, nil)
	e.call("POST", "/v1/threads/"+th.ID+"/unarchive", nil, http.StatusOK, nil)
	e.call("DELETE", "/v1/threads/"+th.ID, nil, http.StatusNoContent, nil)

	want := []struct {
		typ manager.EventType
		id  string
	}{
		{manager.EventCreated, th.ID},
		{manager.EventAppended, th.ID},
		{manager.EventAppended, th.ID}, // the rename's line
		{manager.EventRenamed, th.ID},
		// The fork keeps its parent's name (as Codex's fork does): its
		// rename line and rename come before it is announced forked.
		{manager.EventAppended, fork.ID},
		{manager.EventRenamed, fork.ID},
		{manager.EventForked, fork.ID},
		{manager.EventArchived, th.ID},
		{manager.EventUnarchived, th.ID},
		{manager.EventDeleted, th.ID},
	}
	var lastSeq uint64
	for i, w := range want {
		var ev api.Event
		line := readLines(t, r, 1)[0]
		if err := json.Unmarshal(line, &ev); err != nil {
			t.Fatalf("event %d: %v: %s", i, err, line)
		}
		if ev.Type != string(w.typ) || ev.ThreadID != w.id {
			t.Fatalf("event %d = %s %s, want %s %s", i, ev.Type, ev.ThreadID, w.typ, w.id)
		}
		if ev.Seq <= lastSeq {
			t.Fatalf("event %d: seq %d after %d", i, ev.Seq, lastSeq)
		}
		lastSeq = ev.Seq
	}
	e.srv.Drain()
	var end struct{ Type, Reason string }
	if err := json.Unmarshal(readLines(t, r, 1)[0], &end); err != nil || end.Type != "stream_end" || end.Reason != server.EndShutdown {
		t.Fatalf("last record = %+v (%v), want stream_end shutdown", end, err)
	}
}

// TestFollowConcurrentWriters follows a thread that four clients append to
// at once, without waiting for the follower: it must receive the file's
// bytes exactly, however the wake-ups and reads interleave.
func TestFollowConcurrentWriters(t *testing.T) {
	e := newEnv(t, server.Config{})
	th := e.create(nil)
	resp, _ := e.openStream("/v1/threads/"+th.ID+"/items?follow=1", nil)
	r := bufio.NewReader(resp.Body)
	readLines(t, r, 1) // the session_meta: the stream is open
	const writers, each = 4, 25
	done := make(chan struct{})
	for w := range writers {
		go func() {
			defer func() { done <- struct{}{} }()
			for i := range each {
				resp := e.doHeaders("POST", "/v1/threads/"+th.ID+"/items", nil, "", mustJSON(t, userItem(fmt.Sprintf("w%d-%d", w, i))))
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					t.Errorf("append: status %d", resp.StatusCode)
					return
				}
			}
		}()
	}
	var got bytes.Buffer
	got.Write(e.history(th.ID)[:th.IndexedSize])
	for _, l := range readLines(t, r, writers*each) {
		got.Write(l)
	}
	for range writers {
		<-done
	}
	if want := e.history(th.ID); !bytes.Equal(got.Bytes(), want) {
		t.Fatalf("followed bytes differ from the file (%d vs %d bytes)", got.Len(), len(want))
	}
}

// TestEventsSSE reads the event stream as server-sent events: the id of
// each is its seq, and a drained server ends it with a stream_end record.
func TestEventsSSE(t *testing.T) {
	e := newEnv(t, server.Config{})
	resp, _ := e.openStream("/v1/events", map[string]string{"Accept": "text/event-stream"})
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("Content-Type = %q", ct)
	}
	r := bufio.NewReader(resp.Body)
	th := e.create(nil)
	ev := readEvent(t, r)
	var created api.Event
	if err := json.Unmarshal([]byte(ev.data), &created); err != nil {
		t.Fatalf("event data %q: %v", ev.data, err)
	}
	if created.Type != string(manager.EventCreated) || created.ThreadID != th.ID || ev.id != strconv.FormatUint(created.Seq, 10) {
		t.Fatalf("event id %q data %+v, want created %s with id = seq", ev.id, created, th.ID)
	}
	e.srv.Drain()
	if end := readEvent(t, r); !strings.Contains(end.data, `"reason":"shutdown"`) {
		t.Fatalf("last event %+v, want stream_end shutdown", end)
	}
}

// lossyBackend is a local manager whose events come from a bus the test
// breaks off (Lost) and whose Get fails once storage is down: a
// distributed backend whose database went away with its listening
// connection.
type lossyBackend struct {
	*manager.Manager
	bus  manager.Bus
	down atomic.Bool
}

func (b *lossyBackend) Subscribe(buffer int) *manager.Subscription { return b.bus.Subscribe(buffer) }

func (b *lossyBackend) Get(ctx context.Context, id string) (manager.Thread, error) {
	if b.down.Load() {
		return manager.Thread{}, fmt.Errorf("get %s: %w: connection refused", id, manager.ErrUnavailable)
	}
	return b.Manager.Get(ctx, id)
}

// TestFollowEndsWithErrorWhenStorageGoesAway: a follow stream whose
// events broke off while its thread cannot be read again ends as other
// failed reads end it, with the reason "error" in its trailer, not cut
// short.
func TestFollowEndsWithErrorWhenStorageGoesAway(t *testing.T) {
	e := newEnv(t, server.Config{})
	th := e.create(nil)
	b := &lossyBackend{Manager: e.m}
	srv := server.New(b, server.Config{Logger: slog.New(slog.DiscardHandler)})
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(func() { srv.Drain(); ts.Close() })
	resp, err := http.Get(ts.URL + "/v1/threads/" + th.ID + "/items?follow=1")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	r := bufio.NewReader(resp.Body)
	readLines(t, r, 1)
	b.down.Store(true)
	b.bus.Lost()
	if _, err := io.ReadAll(r); err != nil {
		t.Fatalf("stream did not end cleanly: %v", err)
	}
	if got := resp.Trailer.Get("Spool-Stream-End"); got != server.EndError {
		t.Fatalf("Spool-Stream-End = %q, want %q", got, server.EndError)
	}
}

// TestEventsEndWhenTheirSourceBreaksOff: an event stream whose backend
// lost events at their source (its database connection broke) ends with
// the reason events_lost, not slow_subscriber: the client did nothing
// wrong, and must list again and subscribe again.
func TestEventsEndWhenTheirSourceBreaksOff(t *testing.T) {
	e := newEnv(t, server.Config{})
	b := &lossyBackend{Manager: e.m}
	srv := server.New(b, server.Config{Logger: slog.New(slog.DiscardHandler)})
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(func() { srv.Drain(); ts.Close() })
	resp, err := http.Get(ts.URL + "/v1/events")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /v1/events: status %d", resp.StatusCode)
	}
	b.bus.Lost() // the stream subscribed before it sent its headers
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("stream did not end cleanly: %v", err)
	}
	var end api.StreamEnd
	if err := json.Unmarshal(bytes.TrimSpace(body), &end); err != nil {
		t.Fatalf("last record %q: %v", body, err)
	}
	if end.Type != "stream_end" || end.Reason != server.EndLost {
		t.Fatalf("last record %+v, want stream_end %s", end, server.EndLost)
	}
}

package server_test

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/spoolhq/spool/api"
	"github.com/spoolhq/spool/manager"
	"github.com/spoolhq/spool/rollout"
	"github.com/spoolhq/spool/server"
)

// TestFollowEndsAtAnotherProcessRevert: Codex reverts a thread a client
// follows (thread/revert writes a segment file whose history_base cuts
// the thread's file before its last turn), then appends to the segment.
// The watcher indexes the segment without an event (another process's
// revert is not one) and announces the append as appended. The follower
// read on from the offset it held in the old history, which names other
// bytes in the new one: it got a line of the segment as if it followed
// the lines of the turn the revert removed. The stream must end as after
// spool's own revert (Spool-Stream-End: reverted).
func TestFollowEndsAtAnotherProcessRevert(t *testing.T) {
	root := t.TempDir()
	e := newEnvWith(t, server.Config{}, manager.Options{Root: root, Watch: true})
	th, data, h, r, resp := e.followThreeTurns()

	// The segment, as Codex writes it: its meta, then a line that ends
	// exactly where the follower's offset is (so the read after it is
	// not refused as mid-line), then the line appended after the revert.
	cut := h.Turns[2].Offset
	end := bytes.IndexByte(data[cut:], '\n')
	ordinal, ok, err := rollout.LineOrdinal(data[cut : cut+int64(end)])
	if err != nil || !ok {
		t.Fatalf("no ordinal at the cut %d: %v", cut, err)
	}
	at := time.Now().UTC().Add(time.Minute)
	ts := rollout.FormatTimestamp(at)
	meta, err := rollout.SegmentMetaLine(ts, rollout.MetaPayload{SessionMeta: rollout.SessionMeta{ID: th.ID, Cwd: "/work", Source: "cli"}},
		rollout.HistoryBase{EndByteOffset: cut, EndOrdinalExclusive: ordinal})
	if err != nil {
		t.Fatal(err)
	}
	line := func(n int64, typ, text string) string {
		return fmt.Sprintf(`{"ordinal":%d,"timestamp":%q,"type":"event_msg","payload":{"type":%q,"text":%q}}`+"\n", n, ts, typ, text)
	}
	pad := int64(len(data)) - cut - int64(len(meta)) - int64(len(line(ordinal+1, "padding", "")))
	if pad < 0 {
		t.Fatalf("the removed turn (%d bytes) is shorter than the segment's meta (%d)", int64(len(data))-cut, len(meta))
	}
	segment := string(meta) + line(ordinal+1, "padding", strings.Repeat("p", int(pad)))
	if got := cut + int64(len(segment)); got != int64(len(data)) {
		t.Fatalf("the segment's history ends at %d, want %d", got, len(data))
	}
	name, err := rollout.SegmentFileName(at, th.ID, uuid.Must(uuid.NewV7()).String())
	if err != nil {
		t.Fatal(err)
	}
	abs := filepath.Join(root, filepath.FromSlash(path.Dir(th.RolloutPath)), name)
	if err := os.WriteFile(abs+".tmp", []byte(segment), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(abs+".tmp", abs); err != nil {
		t.Fatal(err)
	}
	// Codex appends once the watcher has taken the segment (its revert
	// answered before its next turn).
	deadline := time.Now().Add(20 * time.Second)
	for {
		var got struct {
			RolloutPath string `json:"rollout_path"`
		}
		e.call("GET", "/v1/threads/"+th.ID, nil, 200, &got)
		if path.Base(got.RolloutPath) == name {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the watcher did not index Codex's revert segment")
		}
		time.Sleep(10 * time.Millisecond) // polling the API: no event tells a client
	}
	f, err := os.OpenFile(abs, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(line(ordinal+2, "after_revert", "from codex after its revert")); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}

	awaitReverted(t, r, resp, "Codex's revert")
}

// awaitReverted reads on from a follow stream (r, of resp's body) after
// what, and fails t unless the stream ends, with no line more, and ends
// reverted (its Spool-Stream-End trailer).
func awaitReverted(t *testing.T, r *bufio.Reader, resp *http.Response, what string) {
	t.Helper()
	awaitEnd(t, r, resp, what, server.EndReverted)
}

// awaitEnd waits for the follow stream read by r to end, sending nothing
// more, after what, and checks it ended for the reason want.
func awaitEnd(t *testing.T, r *bufio.Reader, resp *http.Response, what, want string) {
	t.Helper()
	done := make(chan []byte, 1)
	go func() {
		next, _ := r.ReadBytes('\n') // a line, or nothing at the stream's end
		done <- next
	}()
	select {
	case next := <-done:
		if len(next) != 0 {
			t.Fatalf("after %s the follower got %q; want the stream's end", what, next)
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("the follow stream neither ended nor sent anything after %s", what)
	}
	io.Copy(io.Discard, r) // the trailer comes after the body
	if got := resp.Trailer.Get("Spool-Stream-End"); got != want {
		t.Fatalf("after %s Spool-Stream-End = %q, want %q", what, got, want)
	}
}

// TestFollowEndsWhenAnotherProgramRewritesTheFile: another program cuts
// the file of a thread a client follows (an editor drops its last turn)
// or rewrites it in place (Codex's migrate-rollouts --apply), then the
// thread goes on. The watcher announced nothing for a cut file and an
// append for a grown one, so the follower read on from its old offset
// into the rewritten bytes (or failed with error when the offset was past
// the new end). The stream must end as after a revert
// (Spool-Stream-End: reverted).
func TestFollowEndsWhenAnotherProgramRewritesTheFile(t *testing.T) {
	for _, tc := range []struct {
		name string
		// rewrite returns the file's new content; turnC is where its last
		// turn starts.
		rewrite func(data []byte, turnC int64) []byte
	}{
		{"cut before its last turn", func(data []byte, turnC int64) []byte { return data[:turnC] }},
		{"rewritten longer", func(data []byte, turnC int64) []byte { return migrated(data) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			e := newEnvWith(t, server.Config{}, manager.Options{Root: root, Watch: true})
			th, data, h, r, resp := e.followThreeTurns()
			abs := filepath.Join(root, filepath.FromSlash(th.RolloutPath))
			f, err := os.OpenFile(abs, os.O_WRONLY|os.O_TRUNC, 0) // in place
			if err != nil {
				t.Fatal(err)
			}
			if _, err := f.Write(tc.rewrite(data, h.Turns[2].Offset)); err != nil {
				t.Fatal(err)
			}
			if err := f.Close(); err != nil {
				t.Fatal(err)
			}

			awaitReverted(t, r, resp, "the rewrite")
		})
	}
}

// migrated returns a rollout's bytes with a member added to every line
// but the meta, as a migration adds ordinals: the old end is no longer a
// line's end.
func migrated(data []byte) []byte {
	first := bytes.IndexByte(data, '\n') + 1
	out := append([]byte(nil), data[:first]...)
	for _, line := range bytes.SplitAfter(data[first:], []byte("\n")) {
		if len(line) > 0 {
			out = append(out, `{"migrated":true,`...)
			out = append(out, line[1:]...)
		}
	}
	return out
}

// followThreeTurns starts a thread of three turns (threeTurns) and
// follows it, the stream read to the thread's end: the thread, its bytes,
// its turns, and the stream (r reads resp's body).
func (e *env) followThreeTurns() (api.Thread, []byte, rollout.History, *bufio.Reader, *http.Response) {
	e.t.Helper()
	th, data := e.threeTurns()
	resp, _ := e.openStream("/v1/threads/"+th.ID+"/items?follow=1", nil) // closed with the test
	r := bufio.NewReader(resp.Body)
	readLines(e.t, r, bytes.Count(data, []byte("\n")))
	h, err := rollout.ScanTurns(bytes.NewReader(data))
	if err != nil {
		e.t.Fatal(err)
	}
	return th, data, h, r, resp
}

package client_test

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/spoolhq/spool/client"
	"github.com/spoolhq/spool/server"
)

// TestTurnsByID appends Codex turns, reads one by its id, forks through it
// and is refused a fork through a turn in progress, against a real server.
func TestTurnsByID(t *testing.T) {
	c := serve(t, server.Config{})
	ctx := t.Context()
	th, err := c.Create(ctx, client.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var ends []int64
	for _, id := range []string{"turn-a", "turn-b", "turn-c"} {
		res, err := c.AppendTurn(ctx, th.ID, client.TurnOptions{TurnID: id, Prompt: "prompt " + id, Answer: "answer " + id})
		if err != nil {
			t.Fatalf("AppendTurn %s: %v", id, err)
		}
		ends = append(ends, res.Thread.IndexedSize+res.Thread.BaseSize)
	}
	rc, span, err := c.ReadTurnByID(ctx, th.ID, "turn-b")
	if err != nil {
		t.Fatalf("ReadTurnByID: %v", err)
	}
	data, err := io.ReadAll(rc)
	rc.Close()
	if err != nil {
		t.Fatal(err)
	}
	if span.Offset != ends[0] || span.End != ends[1] || span.Status != "completed" || span.UserMessage != 1 {
		t.Fatalf("span = %+v, want [%d, %d) completed at user message 1", span, ends[0], ends[1])
	}
	if int64(len(data)) != span.End-span.Offset || !strings.Contains(string(data), `"prompt turn-b"`) {
		t.Fatalf("turn-b body (%d bytes) = %q", len(data), data)
	}
	if _, _, err := c.ReadTurnByID(ctx, th.ID, "no-such-turn"); !errors.Is(err, client.ErrNotFound) {
		t.Fatalf("unknown turn: %v, want ErrNotFound", err)
	}

	child, err := c.Fork(ctx, th.ID, client.ForkOptions{LastTurnID: "turn-b"})
	if err != nil {
		t.Fatalf("Fork through turn-b: %v", err)
	}
	if child.ForkOffset != span.End || child.UserMessageCount != 2 {
		t.Fatalf("fork through turn-b: offset %d, %d messages; want %d, 2", child.ForkOffset, child.UserMessageCount, span.End)
	}
	open := client.Item{Type: "event_msg", Payload: []byte(`{"type":"task_started","turn_id":"turn-open"}`)}
	if _, err := c.Append(ctx, th.ID, open, userItem("still going")); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Fork(ctx, th.ID, client.ForkOptions{LastTurnID: "turn-open"}); !errors.Is(err, client.ErrTurnInProgress) {
		t.Fatalf("fork through a turn in progress: %v, want ErrTurnInProgress", err)
	}

	// Revert before turn-b: refused while the fork through turn-b
	// continues the history past the cut; then the thread keeps turn-a,
	// and an append lands right after the new segment's meta.
	if _, err := c.Revert(ctx, th.ID, client.RevertOptions{BeforeTurnID: "turn-b"}); !errors.Is(err, client.ErrReferenced) {
		t.Fatalf("revert under a fork past the cut: %v, want ErrReferenced", err)
	}
	if err := c.Delete(ctx, child.ID); err != nil {
		t.Fatal(err)
	}
	reverted, err := c.Revert(ctx, th.ID, client.RevertOptions{BeforeTurnID: "turn-b"})
	if err != nil {
		t.Fatalf("Revert: %v", err)
	}
	if reverted.UserMessageCount != 1 || reverted.BaseSize != span.Offset {
		t.Fatalf("reverted: %d messages, base at %d; want 1 at %d", reverted.UserMessageCount, reverted.BaseSize, span.Offset)
	}
	res, err := c.AppendTurn(ctx, th.ID, client.TurnOptions{TurnID: "turn-x", Prompt: "again", Answer: "ok"})
	if err != nil {
		t.Fatal(err)
	}
	if res.Offsets[0] != reverted.BaseSize+reverted.IndexedSize || res.Thread.UserMessageCount != 2 {
		t.Fatalf("append after revert at %d with %d messages, want %d and 2", res.Offsets[0], res.Thread.UserMessageCount, reverted.BaseSize+reverted.IndexedSize)
	}
	if _, err := c.Revert(ctx, th.ID, client.RevertOptions{BeforeTurnID: "turn-c"}); !errors.Is(err, client.ErrNotFound) {
		t.Fatalf("revert before a turn reverted away: %v, want ErrNotFound", err)
	}
}

// TestTurnsPage pages through a thread's user messages, oldest and newest
// first, and finds each one's Codex turn id, against a real server.
func TestTurnsPage(t *testing.T) {
	c := serve(t, server.Config{})
	ctx := t.Context()
	th, err := c.Create(ctx, client.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	turnIDs := []string{"turn-a", "turn-b", "turn-c"}
	for _, id := range turnIDs {
		if _, err := c.AppendTurn(ctx, th.ID, client.TurnOptions{TurnID: id, Prompt: "prompt " + id, Answer: "answer " + id}); err != nil {
			t.Fatalf("AppendTurn %s: %v", id, err)
		}
	}
	all, err := c.Turns(ctx, th.ID)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		o    client.TurnsOptions
		want []int // ordinals, page after page
	}{
		{"oldest first", client.TurnsOptions{Limit: 2}, []int{0, 1, 2}},
		{"newest first", client.TurnsOptions{Limit: 2, Descending: true}, []int{2, 1, 0}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var got []int
			pages := 0
			for o := tc.o; ; {
				pages++
				page, err := c.TurnsPage(ctx, th.ID, o)
				if err != nil {
					t.Fatalf("TurnsPage(%+v): %v", o, err)
				}
				for _, turn := range page.Turns {
					if turn != all[turn.Ordinal] {
						t.Fatalf("paged turn = %+v, Turns has %+v", turn, all[turn.Ordinal])
					}
					if turn.TurnID != turnIDs[turn.Ordinal] || turn.CutOffset == 0 || turn.CutOffset >= turn.Offset {
						t.Fatalf("turn %d: turn id %q, cut at %d (message at %d); want %s, cut before its turn's opening lines",
							turn.Ordinal, turn.TurnID, turn.CutOffset, turn.Offset, turnIDs[turn.Ordinal])
					}
					got = append(got, turn.Ordinal)
				}
				if page.NextCursor == "" {
					break
				}
				o.Cursor = page.NextCursor
			}
			if !slices.Equal(got, tc.want) || pages != 2 {
				t.Fatalf("ordinals = %v over %d pages, want %v over 2", got, pages, tc.want)
			}
		})
	}
}

// TestTurnIDsThatNeedEscaping: a turn id with a space, a '%' or a
// non-ASCII letter is read back by its id as it was appended.
func TestTurnIDsThatNeedEscaping(t *testing.T) {
	c := serve(t, server.Config{})
	ctx := t.Context()
	th, err := c.Create(ctx, client.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"turn 1", "50%", "tour-é", "a+b?c#d"} {
		if _, err := c.AppendTurn(ctx, th.ID, client.TurnOptions{TurnID: id, Prompt: "prompt " + id, Answer: "answer"}); err != nil {
			t.Fatalf("AppendTurn %q: %v", id, err)
		}
		rc, _, err := c.ReadTurnByID(ctx, th.ID, id)
		if err != nil {
			t.Fatalf("ReadTurnByID %q: %v", id, err)
		}
		data, err := io.ReadAll(rc)
		rc.Close()
		if err != nil || !strings.Contains(string(data), "prompt "+id) {
			t.Fatalf("turn %q: %q, %v", id, data, err)
		}
	}
}

// TestReadTurnByIDRefusesBadAnswersAndIDs: a blank turn id fails with
// ErrInvalidArgument before any request (it would name another route), and
// an answer without its Turn-* headers fails with an error that says it
// comes from the client.
func TestReadTurnByIDRefusesBadAnswersAndIDs(t *testing.T) {
	const thread = "01a20cda-721a-7bfd-9872-ac1825beec06"
	var requests atomic.Int32
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		w.Header().Set("Content-Type", "application/x-ndjson")
		io.WriteString(w, `{"type":"event_msg","payload":{}}`+"\n")
	}))
	t.Cleanup(ts.Close)
	c, err := client.New(ts.URL)
	if err != nil {
		t.Fatal(err)
	}
	for _, turnID := range []string{"", " "} {
		if _, _, err := c.ReadTurnByID(t.Context(), thread, turnID); !errors.Is(err, client.ErrInvalidArgument) {
			t.Errorf("ReadTurnByID(%q) = %v, want ErrInvalidArgument", turnID, err)
		}
	}
	if n := requests.Load(); n != 0 {
		t.Fatalf("blank turn ids sent %d requests, want none", n)
	}
	_, _, err = c.ReadTurnByID(t.Context(), thread, "turn-a")
	if err == nil || !strings.HasPrefix(err.Error(), "client: ") || !strings.Contains(err.Error(), "Turn-") {
		t.Fatalf("answer without Turn-* headers: %v, want a client: error naming them", err)
	}
}

// TestAppendTurnWithExpectedSize: AppendTurn sends ExpectedSize as the
// Expected-Size header, as the server's POST .../turns takes it, so a turn
// can be appended safely (docs/API.md, "Safe writes"): a stale size writes
// nothing and fails with ErrSizeMismatch, the current one appends.
func TestAppendTurnWithExpectedSize(t *testing.T) {
	c := serve(t, server.Config{})
	ctx := t.Context()
	th, err := c.Create(ctx, client.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		expected int64
		wantErr  error
		wantUser int
	}{
		{"stale size", th.HistorySize() + 1, client.ErrSizeMismatch, 0},
		{"current size", th.HistorySize(), nil, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := c.AppendTurn(ctx, th.ID, client.TurnOptions{Prompt: "p", Answer: "a", ExpectedSize: tt.expected})
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("AppendTurn with ExpectedSize %d: %v, want %v", tt.expected, err, tt.wantErr)
			}
			got, err := c.Get(ctx, th.ID)
			if err != nil {
				t.Fatal(err)
			}
			if got.UserMessageCount != tt.wantUser {
				t.Fatalf("user messages = %d, want %d", got.UserMessageCount, tt.wantUser)
			}
		})
	}
}

package client_test

import (
	"errors"
	"io"
	"strings"
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
	var apiErr *client.Error
	if _, err := c.Revert(ctx, th.ID, client.RevertOptions{BeforeTurnID: "turn-b"}); !errors.As(err, &apiErr) || apiErr.Code != "referenced" {
		t.Fatalf("revert under a fork past the cut: %v, want a referenced error", err)
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

//go:build compat

package compat

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spoolhq/spool/indexer"
	"github.com/spoolhq/spool/manager"
	"github.com/spoolhq/spool/rollout"
)

// previewTurn is a turn of a hand-written thread: the prompt's
// response_item content, its echo's payload (nil for none), and a
// rollback of so many turns after it.
type previewTurn struct {
	parts    []map[string]any
	echo     map[string]any
	rollback int
}

// previewLine encodes one line, numbered when ordinal is not nil.
func previewLine(t *testing.T, at time.Time, typ string, payload any, ordinal *int64) []byte {
	t.Helper()
	body, err := json.Marshal(payload)
	if err != nil {
		t.Fatal(err)
	}
	line, err := rollout.EncodeItem(rollout.Item{Timestamp: rollout.FormatTimestamp(at), Type: typ, Payload: body}, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if ordinal != nil {
		if line, err = rollout.WithOrdinal(line, *ordinal); err != nil {
			t.Fatal(err)
		}
		*ordinal++
	}
	return line
}

// TestPreviewsAsCodex: spool lists every thread with the preview Codex's
// thread/list shows for it on the same home (cut to indexer.PreviewRunes
// runes, spool's one deliberate difference), for the cases of
// docs/CODEX.md, Previews: a blank, image-only, text-and-image or
// rolled-back first prompt, a prompt without echo, an echo that differs
// from its prompt, the request marker, legacy and paginated echoes (in
// either mode), Codex's reference forks before and after the prompt that
// gave the preview, a thread Codex reverted before its first prompt, and
// spool's copy forks (legacy and paginated, before and after the prompt
// that gave the preview), which a Codex started afterwards lists.
func TestPreviewsAsCodex(t *testing.T) {
	home := newHome(t)
	text := func(s string) map[string]any { return map[string]any{"type": "input_text", "text": s} }
	img := map[string]any{"type": "input_image", "image_url": "data:image/png;base64,iVBORw0KGgo="}
	echo := func(msg string, images, local []string) map[string]any {
		return map[string]any{"type": "user_message", "message": msg, "images": append([]string{}, images...),
			"local_images": append([]string{}, local...), "text_elements": []any{}}
	}
	item := func(content ...map[string]any) map[string]any {
		for _, c := range content {
			if c["type"] == "text" {
				c["text_elements"] = []any{}
			}
		}
		return map[string]any{"type": "item_completed", "thread_id": "019dab90-0000-7000-8000-000000000999", "turn_id": "turn-0",
			"item":          map[string]any{"type": "UserMessage", "id": "019dab90-2222-7000-8000-000000000001", "content": content},
			"started_at_ms": 1, "completed_at_ms": 1}
	}
	itemText := func(s string) map[string]any { return map[string]any{"type": "text", "text": s} }
	image := []string{"data:image/png;base64,iVBORw0KGgo="}
	long := strings.Repeat("long words ", 30)
	legacy, paginated := rollout.HistoryLegacy, rollout.HistoryPaginated
	cases := []struct {
		name  string
		mode  rollout.HistoryMode
		turns []previewTurn
	}{
		{"blank first prompt", legacy, []previewTurn{{parts: []map[string]any{text("   ")}, echo: echo("   ", nil, nil)}, {parts: []map[string]any{text("second")}, echo: echo("second", nil, nil)}}},
		{"image-only first prompt", legacy, []previewTurn{{parts: []map[string]any{img}, echo: echo("", image, nil)}, {parts: []map[string]any{text("second")}, echo: echo("second", nil, nil)}}},
		{"local image only", legacy, []previewTurn{{parts: []map[string]any{img}, echo: echo("  ", nil, []string{"/tmp/a.png"})}}},
		{"text and image", legacy, []previewTurn{{parts: []map[string]any{text(" hi there "), img}, echo: echo(" hi there ", image, nil)}}},
		{"rolled-back first prompt", legacy, []previewTurn{{parts: []map[string]any{text("first")}, echo: echo("first", nil, nil), rollback: 1}, {parts: []map[string]any{text("second")}, echo: echo("second", nil, nil)}}},
		{"long prompt", legacy, []previewTurn{{parts: []map[string]any{text(long)}, echo: echo(long, nil, nil)}}},
		{"request marker", legacy, []previewTurn{{parts: []map[string]any{text("ctx\n## My request for Codex:\n  do it ")}, echo: echo("ctx\n## My request for Codex:\n  do it ", nil, nil)}}},
		{"prompt without echo", legacy, []previewTurn{{parts: []map[string]any{text("only item")}}, {parts: []map[string]any{text("echoed")}, echo: echo("echoed", nil, nil)}}},
		{"echo differs", legacy, []previewTurn{{parts: []map[string]any{text("item text")}, echo: echo("echo text", nil, nil)}}},
		{"context echo", legacy, []previewTurn{{parts: []map[string]any{text("<environment_context>x</environment_context>")}, echo: echo("<environment_context>x</environment_context>", nil, nil)}, {parts: []map[string]any{text("real")}, echo: echo("real", nil, nil)}}},
		{"two parts", legacy, []previewTurn{{parts: []map[string]any{text("a"), text("b")}, echo: echo("\ta\nb\n", nil, nil)}}},
		{"paginated blank first prompt", paginated, []previewTurn{{parts: []map[string]any{text(" ")}, echo: item(itemText(" "))}, {parts: []map[string]any{text("second")}, echo: item(itemText("second"))}}},
		{"paginated image only", paginated, []previewTurn{{parts: []map[string]any{img}, echo: item(map[string]any{"type": "image", "image_url": image[0]})}, {parts: []map[string]any{text("second")}, echo: item(itemText("second"))}}},
		{"paginated local image only", paginated, []previewTurn{{parts: []map[string]any{img}, echo: item(map[string]any{"type": "local_image", "path": "/tmp/a.png"})}}},
		{"paginated text and image", paginated, []previewTurn{{parts: []map[string]any{text("t"), img}, echo: item(map[string]any{"type": "image", "image_url": image[0]}, itemText(" with image "))}}},
		{"paginated text parts", paginated, []previewTurn{{parts: []map[string]any{text("a"), text("b")}, echo: item(itemText(" a "), itemText("  "), itemText("b"))}}},
		{"paginated rolled-back first prompt", paginated, []previewTurn{{parts: []map[string]any{text("first")}, echo: item(itemText("first")), rollback: 1}, {parts: []map[string]any{text("second")}, echo: item(itemText("second"))}}},
		{"legacy echo in a paginated thread", paginated, []previewTurn{{parts: []map[string]any{text("x")}, echo: echo("legacy echo", nil, nil)}}},
		{"paginated echo in a legacy thread", legacy, []previewTurn{{parts: []map[string]any{text("x")}, echo: item(itemText("paginated echo"))}}},
	}
	names := map[string]string{}
	for i, c := range cases {
		st := newSpoolThread(t, c.mode, 0, 300+i)
		data := st.metaLine(t)
		var ordinal *int64
		if c.mode == paginated {
			next := int64(1)
			ordinal = &next
		}
		at := st.Created
		for j, tn := range c.turns {
			at = at.Add(time.Minute)
			turnID := fmt.Sprintf("turn-%d", j)
			data = append(data, previewLine(t, at, "event_msg", map[string]any{"type": "task_started", "turn_id": turnID}, ordinal)...)
			data = append(data, previewLine(t, at, "response_item", map[string]any{"type": "message", "role": "user", "content": tn.parts}, ordinal)...)
			if tn.echo != nil {
				data = append(data, previewLine(t, at, "event_msg", tn.echo, ordinal)...)
			}
			data = append(data, previewLine(t, at, "response_item", map[string]any{"type": "message", "role": "assistant",
				"content": []map[string]any{{"type": "output_text", "text": "ok"}}}, ordinal)...)
			data = append(data, previewLine(t, at, "event_msg", map[string]any{"type": "task_complete", "turn_id": turnID}, ordinal)...)
			if tn.rollback > 0 {
				data = append(data, previewLine(t, at, "event_msg", map[string]any{"type": "thread_rolled_back", "num_turns": tn.rollback}, ordinal)...)
			}
		}
		rel, err := rollout.SessionPath(rollout.FileName(st.Created, st.ID))
		if err != nil {
			t.Fatal(err)
		}
		writeFile(t, filepath.Join(home, filepath.FromSlash(rel)), data)
		names[st.ID] = c.name
	}
	// Codex's own reference forks and revert, of threads rendered as
	// Codex writes turns.
	blank := newSpoolThread(t, paginated, 3, 350)
	blank.Turns[0].UserText = "  "
	blank.write(t, home)
	plain := newSpoolThread(t, paginated, 3, 351)
	plain.write(t, home)
	reverted := newSpoolThread(t, paginated, 2, 352)
	reverted.write(t, home)
	names[blank.ID], names[plain.ID], names[reverted.ID] = "blank first prompt, rendered", "rendered", "reverted before its first prompt"
	s := startCodex(t, home)
	for _, st := range []*spoolThread{blank, plain, reverted} {
		call(t, s, "thread/resume", map[string]any{"threadId": st.ID, "excludeTurns": true}, nil)
	}
	for _, f := range []struct {
		parent *spoolThread
		turn   int
		name   string
	}{{blank, 0, "reference fork before the preview's prompt"}, {blank, 1, "reference fork after the preview's prompt"}, {plain, 0, "reference fork through the first turn"}} {
		var fork threadAnswer
		call(t, s, "thread/fork", map[string]any{"threadId": f.parent.ID, "lastTurnId": f.parent.Turns[f.turn].TurnID, "excludeTurns": true}, &fork)
		names[fork.Thread.ID] = f.name
	}
	call(t, s, "thread/revert", map[string]any{"threadId": reverted.ID, "beforeTurnId": reverted.Turns[0].TurnID}, nil)
	var list listAnswer
	call(t, s, "thread/list", map[string]any{"limit": 100}, &list)
	codex := map[string]string{}
	for _, th := range list.Data {
		codex[th.ID] = th.Preview
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	spool := map[string]string{}
	withManager(t, home, func(m *manager.Manager) {
		page, err := m.List(t.Context(), manager.ListOptions{Limit: 1000})
		if err != nil {
			t.Fatal(err)
		}
		for _, th := range page.Threads {
			spool[th.ID] = th.Preview
		}
		// spool's copy forks of threads whose first prompt is blank.
		for _, f := range []struct {
			parent string
			before int
			name   string
		}{
			{"019dab90-0000-7000-8000-000000000300", 1, "spool's legacy copy before the preview's prompt"},
			{blank.ID, 1, "spool's paginated copy before the preview's prompt"},
			{blank.ID, 2, "spool's paginated copy after the preview's prompt"},
		} {
			fork, err := m.Fork(t.Context(), f.parent, manager.ForkOptions{BeforeUserMessage: &f.before, Mode: manager.ForkCopy})
			if err != nil {
				t.Fatal(err)
			}
			names[fork.ID], spool[fork.ID] = f.name, fork.Preview
		}
	})
	s = startCodex(t, home)
	call(t, s, "thread/list", map[string]any{"limit": 100}, &list)
	for _, th := range list.Data {
		if _, seen := codex[th.ID]; !seen {
			codex[th.ID] = th.Preview
		}
	}
	for id, name := range names {
		want, listed := codex[id]
		if !listed {
			want = "" // Codex lists no thread without a preview it did not make itself
		}
		if got := spool[id]; got != indexer.Preview(want) {
			t.Errorf("%s (%s): spool's preview %q, Codex's %q (listed %v)", name, id, got, want, listed)
		}
	}
}

package server_test

import (
	"fmt"
	"net/http"
	"slices"
	"testing"

	"github.com/spoolhq/spool/api"
	"github.com/spoolhq/spool/manager"
	"github.com/spoolhq/spool/server"
)

type fullTurnsPage struct {
	Turns []struct {
		Ordinal int   `json:"ordinal"`
		Offset  int64 `json:"offset"`
		End     int64 `json:"end"`
		Items   []struct {
			Type      string `json:"type"`
			Offset    int64  `json:"offset"`
			Text      string `json:"text"`
			Name      string `json:"name"`
			CallID    string `json:"call_id"`
			Arguments string `json:"arguments"`
			Output    any    `json:"output"`
		} `json:"items"`
	} `json:"turns"`
	NextCursor string `json:"next_cursor"`
}

func toolTurn(i int) []map[string]any {
	call := fmt.Sprintf("call-%d", i)
	return []map[string]any{
		userItem(fmt.Sprintf("question %d", i)),
		{"type": "response_item", "payload": map[string]any{"type": "reasoning", "summary": []any{map[string]any{"type": "summary_text", "text": "thinking"}}}},
		{"type": "event_msg", "payload": map[string]any{"type": "token_count"}},
		{"type": "response_item", "payload": map[string]any{"type": "function_call", "name": "shell", "call_id": call, "arguments": `{"cmd":"ls"}`}},
		{"type": "response_item", "payload": map[string]any{"type": "function_call_output", "call_id": call, "output": "a b"}},
		assistantItem(fmt.Sprintf("answer %d", i)),
	}
}

// TestTurnsFull pages through turns with their items decoded, forwards
// and backwards, and checks each item against what was appended.
func TestTurnsFull(t *testing.T) {
	e := newEnv(t, server.Config{})
	th := e.create(nil)
	var starts []int64
	for i := range 3 {
		res := e.appendItems(th.ID, toolTurn(i)...)
		starts = append(starts, res.Offsets[0])
	}
	size := int64(len(e.history(th.ID)))
	path := "/v1/threads/" + th.ID + "/turns?view=full"

	var page fullTurnsPage
	e.call("GET", path+"&limit=2", nil, http.StatusOK, &page)
	if len(page.Turns) != 2 || page.NextCursor != "2" {
		t.Fatalf("first page: %d turns, cursor %q; want 2 and \"2\"", len(page.Turns), page.NextCursor)
	}
	for i, turn := range page.Turns {
		if turn.Ordinal != i || turn.Offset != starts[i] || turn.End != starts[i+1] {
			t.Fatalf("turn %d = ordinal %d [%d, %d), want [%d, %d)", i, turn.Ordinal, turn.Offset, turn.End, starts[i], starts[i+1])
		}
		want := []string{"user_message", "reasoning", "tool_call", "tool_output", "agent_message"}
		if len(turn.Items) != len(want) {
			t.Fatalf("turn %d has %d items, want %d: %+v", i, len(turn.Items), len(want), turn.Items)
		}
		for j, w := range want {
			if turn.Items[j].Type != w {
				t.Fatalf("turn %d item %d is %s, want %s", i, j, turn.Items[j].Type, w)
			}
		}
		if turn.Items[0].Text != fmt.Sprintf("question %d", i) || turn.Items[0].Offset != starts[i] ||
			turn.Items[1].Text != "thinking" ||
			turn.Items[2].Name != "shell" || turn.Items[2].Arguments != `{"cmd":"ls"}` || turn.Items[2].CallID != fmt.Sprintf("call-%d", i) ||
			turn.Items[3].Output != "a b" || turn.Items[4].Text != fmt.Sprintf("answer %d", i) {
			t.Fatalf("turn %d items decoded wrong: %+v", i, turn.Items)
		}
	}
	page = fullTurnsPage{}
	e.call("GET", path+"&limit=2&cursor=2", nil, http.StatusOK, &page)
	if len(page.Turns) != 1 || page.Turns[0].Ordinal != 2 || page.Turns[0].End != size || page.NextCursor != "" {
		t.Fatalf("last page: %+v", page)
	}
	// Newest first, as a UI loads a long thread.
	page = fullTurnsPage{}
	e.call("GET", path+"&limit=1&order=desc", nil, http.StatusOK, &page)
	if len(page.Turns) != 1 || page.Turns[0].Ordinal != 2 || page.NextCursor != "1" {
		t.Fatalf("desc page: %d turns, first %d, cursor %q", len(page.Turns), page.Turns[0].Ordinal, page.NextCursor)
	}
	// The summary view pages the user messages.
	var summary struct {
		Turns []struct {
			Ordinal int `json:"ordinal"`
		} `json:"turns"`
		NextCursor string `json:"next_cursor"`
	}
	e.call("GET", "/v1/threads/"+th.ID+"/turns?limit=2&cursor=1", nil, http.StatusOK, &summary)
	if len(summary.Turns) != 2 || summary.Turns[0].Ordinal != 1 || summary.NextCursor != "" {
		t.Fatalf("summary page: %+v", summary)
	}
	for _, bad := range []string{"view=raw", "limit=0", "cursor=3", "cursor=-1", "order=up"} {
		wantError(t, e.do("GET", "/v1/threads/"+th.ID+"/turns?"+bad, "", nil), http.StatusBadRequest, "invalid_argument")
	}
	// A bad parameter is refused before the thread is looked for.
	unknown := "/v1/threads/01930000-0000-7000-8000-000000000000/turns?"
	for _, bad := range []string{"view=raw", "limit=0", "order=up"} {
		wantError(t, e.do("GET", unknown+bad, "", nil), http.StatusBadRequest, "invalid_argument")
	}
}

// TestTurnsPagesOfAFork: every page of a fork of a fork's turns (the first
// inherited from the grandparent, then from the parent, then its own),
// one turn at a time in both orders, is that turn of the whole list.
func TestTurnsPagesOfAFork(t *testing.T) {
	e := newEnv(t, server.Config{})
	th := e.create(nil)
	for i := range 3 {
		e.appendItems(th.ID, toolTurn(i)...)
	}
	var child, grandchild api.Thread
	e.call("POST", "/v1/threads/"+th.ID+"/fork", map[string]any{"before_user_message": 2}, http.StatusCreated, &child)
	e.appendItems(child.ID, toolTurn(10)...)
	e.appendItems(child.ID, toolTurn(11)...)
	e.call("POST", "/v1/threads/"+child.ID+"/fork", map[string]any{"before_user_message": 3}, http.StatusCreated, &grandchild)
	e.appendItems(grandchild.ID, toolTurn(20)...)

	path := "/v1/threads/" + grandchild.ID + "/turns?view=full"
	var whole fullTurnsPage
	e.call("GET", path+"&limit=200", nil, http.StatusOK, &whole)
	if len(whole.Turns) != 4 {
		t.Fatalf("the fork has %d turns, want 4 (2 of the grandparent's, 1 of the parent's, its own)", len(whole.Turns))
	}
	for _, order := range []string{"asc", "desc"} {
		var got []int
		cursor := ""
		for page := 0; ; page++ {
			if page > len(whole.Turns) {
				t.Fatalf("%s: more pages than turns", order)
			}
			var p fullTurnsPage
			e.call("GET", path+"&limit=1&order="+order+"&cursor="+cursor, nil, http.StatusOK, &p)
			if len(p.Turns) != 1 {
				t.Fatalf("%s page %d: %d turns, want 1", order, page, len(p.Turns))
			}
			k := p.Turns[0].Ordinal
			if w := whole.Turns[k]; p.Turns[0].Offset != w.Offset || p.Turns[0].End != w.End || len(p.Turns[0].Items) != len(w.Items) ||
				p.Turns[0].Items[0].Text != w.Items[0].Text {
				t.Fatalf("%s page %d: turn %d = %+v, want %+v", order, page, k, p.Turns[0], w)
			}
			got = append(got, k)
			if cursor = p.NextCursor; cursor == "" {
				break
			}
		}
		want := []int{0, 1, 2, 3}
		if order == "desc" {
			want = []int{3, 2, 1, 0}
		}
		if !slices.Equal(got, want) {
			t.Fatalf("%s pages gave turns %v, want %v", order, got, want)
		}
	}
}

// TestTurnsPageCatchesUp: a page of turns asked for right after another
// process (a running Codex) appended a turn to the thread's file, before
// anything indexed it, holds that turn.
func TestTurnsPageCatchesUp(t *testing.T) {
	root := t.TempDir()
	e := newEnvWith(t, server.Config{}, manager.Options{Root: root})
	th, data := e.threeTurns()
	appendAsCodex(t, root, th, data)
	for _, view := range []string{"summary", "full"} {
		var page fullTurnsPage
		e.call("GET", "/v1/threads/"+th.ID+"/turns?view="+view+"&order=desc&limit=1", nil, http.StatusOK, &page)
		if len(page.Turns) != 1 || page.Turns[0].Ordinal != 3 || page.NextCursor != "2" {
			t.Fatalf("%s: newest page %+v, want turn 3 (the one another process appended), cursor 2", view, page)
		}
		if view == "full" && (len(page.Turns[0].Items) != 1 || page.Turns[0].Items[0].Text != "from codex") {
			t.Fatalf("full: turn 3 holds %+v, want the prompt another process appended", page.Turns[0].Items)
		}
	}
}

// TestTurnsPageCatchesUpFromNothing: a page of turns asked for right after
// another process appended the first turn of a thread the index holds none
// of, or with the cursor of a turn only the file holds yet, holds that turn
// (the first page came back empty and the cursor a 400 with the page laid
// out by the index's count before catching the thread up with its file).
func TestTurnsPageCatchesUpFromNothing(t *testing.T) {
	for _, c := range []struct {
		name   string
		turns  int
		query  string
		wantAt int
	}{
		{"first page of an empty thread", 0, "view=summary", 0},
		{"newest page of an empty thread", 0, "view=full&order=desc", 0},
		{"cursor of the appended turn", 3, "view=summary&cursor=3", 3},
		{"cursor of the appended turn, desc", 3, "view=full&order=desc&limit=1&cursor=3", 3},
	} {
		t.Run(c.name, func(t *testing.T) {
			root := t.TempDir()
			e := newEnvWith(t, server.Config{}, manager.Options{Root: root})
			th := e.create(nil)
			for i := range c.turns {
				body := map[string]any{"prompt": fmt.Sprintf("prompt %d", i), "answer": "answer"}
				e.call("POST", "/v1/threads/"+th.ID+"/turns", body, http.StatusOK, nil)
			}
			appendAsCodex(t, root, th, e.history(th.ID))
			var page fullTurnsPage
			e.call("GET", "/v1/threads/"+th.ID+"/turns?"+c.query, nil, http.StatusOK, &page)
			if len(page.Turns) != 1 || page.Turns[0].Ordinal != c.wantAt {
				t.Fatalf("page %+v, want turn %d alone (the one another process appended)", page, c.wantAt)
			}
		})
	}
}

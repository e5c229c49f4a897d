// Structured turns: GET /v1/threads/{id}/turns with view=full decodes each
// turn's lines into items, a page at a time, reading only the bytes of the
// page's turns (found by the indexed offsets of their user messages).

package server

import (
	"bufio"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/spoolhq/spool/api"
	"github.com/spoolhq/spool/manager"
)

// Limits of a page of turns.
const (
	defaultTurnsLimit = 20
	maxTurnsLimit     = 200
)

// TurnItem and FullTurn are the answer of /turns?view=full.
type (
	TurnItem = api.TurnItem
	FullTurn = api.FullTurn
)

// turnsPage is the answer of /turns with paging or a view.
type turnsPage struct {
	Turns      any    `json:"turns"`
	NextCursor string `json:"next_cursor,omitempty"`
}

func (s *Server) listTurns(w http.ResponseWriter, r *http.Request) error {
	id, err := threadID(r)
	if err != nil {
		return err
	}
	values, err := query(r, "view", "limit", "cursor", "order")
	if err != nil {
		return err
	}
	messages, err := s.m.UserMessages(r.Context(), id)
	if err != nil {
		return err
	}
	if len(values) == 0 {
		// The original answer: every counted user message.
		writeJSON(w, http.StatusOK, turnsResponse{Turns: wireUserMessages(messages)})
		return nil
	}
	view := values.Get("view")
	if view != "" && view != "summary" && view != "full" {
		return errorf(http.StatusBadRequest, CodeInvalidArgument, "view must be summary or full, not %q", view)
	}
	limit, err := intParam(values, "limit", defaultTurnsLimit, 1, maxTurnsLimit)
	if err != nil {
		return err
	}
	desc := false
	switch order := values.Get("order"); order {
	case "", "asc":
	case "desc":
		desc = true
	default:
		return errorf(http.StatusBadRequest, CodeInvalidArgument, "order must be asc or desc, not %q", order)
	}
	// The cursor is the ordinal of the next turn to answer.
	first := 0
	if desc {
		first = len(messages) - 1
	}
	if c := values.Get("cursor"); c != "" {
		n, err := parseDecimal(c, false)
		if err != nil || n >= len(messages) {
			return errorf(http.StatusBadRequest, CodeInvalidArgument, "cursor %q is not a turn of this thread", c)
		}
		first = n
	}
	var ordinals []int
	for k := first; k >= 0 && k < len(messages) && len(ordinals) < limit; {
		ordinals = append(ordinals, k)
		if desc {
			k--
		} else {
			k++
		}
	}
	page := turnsPage{}
	if len(ordinals) > 0 {
		next := ordinals[len(ordinals)-1] + 1
		if desc {
			next = ordinals[len(ordinals)-1] - 1
		}
		if next >= 0 && next < len(messages) {
			page.NextCursor = strconv.Itoa(next)
		}
	}
	if view != "full" {
		summary := make([]api.UserMessage, 0, len(ordinals))
		for _, k := range ordinals {
			summary = append(summary, api.UserMessage(messages[k]))
		}
		page.Turns = summary
		writeJSON(w, http.StatusOK, page)
		return nil
	}
	turns, err := s.fullTurns(r, id, messages, ordinals)
	if err != nil {
		return err
	}
	page.Turns = turns
	writeJSON(w, http.StatusOK, page)
	return nil
}

// fullTurns reads the turns of the given ordinals, in that order: one read
// of the byte range from the lowest turn's start to the highest turn's
// end, nothing before or after it.
func (s *Server) fullTurns(r *http.Request, id string, messages []manager.UserMessage, ordinals []int) ([]FullTurn, error) {
	out := make([]FullTurn, 0, len(ordinals))
	if len(ordinals) == 0 {
		return out, nil
	}
	lo, hi := ordinals[0], ordinals[len(ordinals)-1]
	if lo > hi {
		lo, hi = hi, lo
	}
	rc, size, err := s.m.ReadAfter(r.Context(), id, messages[lo].Offset)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	end := func(k int) int64 {
		if k+1 < len(messages) {
			return min(messages[k+1].Offset, size)
		}
		return size
	}
	byOrdinal := map[int]*FullTurn{}
	turns := make([]FullTurn, hi-lo+1)
	for k := lo; k <= hi; k++ {
		turns[k-lo] = FullTurn{Ordinal: k, Offset: messages[k].Offset, End: end(k), Items: []TurnItem{}}
		byOrdinal[k] = &turns[k-lo]
	}
	br := bufio.NewReaderSize(io.LimitReader(rc, end(hi)-messages[lo].Offset), 64<<10)
	offset, k := messages[lo].Offset, lo
	for {
		line, err := br.ReadBytes('\n')
		if len(line) > 0 && line[len(line)-1] == '\n' {
			for k < hi && offset >= turns[k+1-lo].Offset {
				k++
			}
			if item, ok := decodeTurnItem(line[:len(line)-1], offset); ok {
				byOrdinal[k].Items = append(byOrdinal[k].Items, item)
			}
			offset += int64(len(line))
		}
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
	}
	for _, k := range ordinals {
		out = append(out, *byOrdinal[k])
	}
	return out, nil
}

// decodeTurnItem decodes a response_item line; other lines (events,
// turn contexts, metadata) are not items.
func decodeTurnItem(line []byte, offset int64) (TurnItem, bool) {
	var env struct {
		Timestamp string          `json:"timestamp"`
		Type      string          `json:"type"`
		Payload   json.RawMessage `json:"payload"`
	}
	if json.Unmarshal(line, &env) != nil || env.Type != "response_item" {
		return TurnItem{}, false
	}
	var p struct {
		Type    string `json:"type"`
		Role    string `json:"role"`
		Content []struct {
			Type string `json:"type"`
			Text string `json:"text"`
		} `json:"content"`
		Summary []struct {
			Text string `json:"text"`
		} `json:"summary"`
		Name      string          `json:"name"`
		CallID    string          `json:"call_id"`
		Arguments string          `json:"arguments"`
		Input     string          `json:"input"`
		Output    json.RawMessage `json:"output"`
	}
	if json.Unmarshal(env.Payload, &p) != nil {
		return TurnItem{}, false
	}
	it := TurnItem{Type: p.Type, Offset: offset, Timestamp: env.Timestamp}
	texts := func() string {
		var parts []string
		for _, c := range p.Content {
			if c.Text != "" {
				parts = append(parts, c.Text)
			}
		}
		return strings.Join(parts, "\n")
	}
	switch p.Type {
	case "message":
		switch p.Role {
		case "user":
			it.Type = "user_message"
		case "assistant":
			it.Type = "agent_message"
		default:
			it.Type, it.Payload = p.Role+"_message", env.Payload
		}
		it.Text = texts()
	case "reasoning":
		var parts []string
		for _, s := range p.Summary {
			parts = append(parts, s.Text)
		}
		it.Text = strings.Join(parts, "\n")
	case "function_call", "custom_tool_call", "local_shell_call":
		it.Type, it.Name, it.CallID = "tool_call", p.Name, p.CallID
		it.Arguments = p.Arguments
		if it.Arguments == "" {
			it.Arguments = p.Input
		}
		if p.Type == "local_shell_call" {
			it.Payload = env.Payload
		}
	case "function_call_output", "custom_tool_call_output":
		it.Type, it.CallID, it.Output = "tool_output", p.CallID, p.Output
	default:
		it.Payload = env.Payload
	}
	return it, true
}

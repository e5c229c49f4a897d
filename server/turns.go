// Structured turns: GET /v1/threads/{id}/turns with view=full decodes each
// turn's lines into items, a page at a time, reading only the index rows
// of the page's user messages and the bytes of its turns.

package server

import (
	"bufio"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/spoolhq/spool/api"
	"github.com/spoolhq/spool/manager"
	"github.com/spoolhq/spool/rollout"
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
	if len(values) == 0 {
		// The original answer: every counted user message.
		messages, err := s.m.UserMessages(r.Context(), id)
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, turnsResponse{Turns: wireUserMessages(messages)})
		return nil
	}
	// The parameters are checked before the thread is read: a bad one is
	// 400 whatever the thread.
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
	// The count the page is laid out by, the thread caught up with its
	// file first (another process may have appended turns).
	_, count, err := s.m.UserMessagesBetween(r.Context(), id, 0, 0)
	if err != nil {
		return err
	}
	ordinals, next, err := turnOrdinals(values.Get("cursor"), count, limit, desc)
	if err != nil {
		return err
	}
	page := turnsPage{NextCursor: next}
	if len(ordinals) == 0 {
		page.Turns = []api.UserMessage{}
		writeJSON(w, http.StatusOK, page)
		return nil
	}
	// The page reads the rows of its own turns; message hi+1, when there
	// is one, ends turn hi.
	lo, hi := min(ordinals[0], ordinals[len(ordinals)-1]), max(ordinals[0], ordinals[len(ordinals)-1])
	msgs, _, err := s.m.UserMessagesBetween(r.Context(), id, lo, hi+2)
	if err != nil {
		return err
	}
	byOrdinal := make(map[int]manager.UserMessage, len(msgs))
	for _, m := range msgs {
		byOrdinal[m.Ordinal] = m
	}
	// A rollback since the count was read leaves the page shorter.
	ordinals = slices.DeleteFunc(ordinals, func(k int) bool { _, ok := byOrdinal[k]; return !ok })
	if view != "full" {
		summary := make([]api.UserMessage, 0, len(ordinals))
		for _, k := range ordinals {
			summary = append(summary, api.UserMessage(byOrdinal[k]))
		}
		page.Turns = summary
		writeJSON(w, http.StatusOK, page)
		return nil
	}
	turns, err := s.fullTurns(r, id, byOrdinal, ordinals)
	if err != nil {
		return err
	}
	page.Turns = turns
	writeJSON(w, http.StatusOK, page)
	return nil
}

// turnOrdinals lays out a page of turns of a thread with count of them:
// up to limit ordinals from the cursor's (the first or, desc, the last
// turn without one), and the cursor of the page after it ("" for none).
func turnOrdinals(cursor string, count, limit int, desc bool) ([]int, string, error) {
	// The cursor is the ordinal of the next turn to answer.
	first := 0
	if desc {
		first = count - 1
	}
	if cursor != "" {
		n, err := parseDecimal(cursor, false)
		if err != nil || n >= count {
			return nil, "", errorf(http.StatusBadRequest, CodeInvalidArgument, "cursor %q is not a turn of this thread", cursor)
		}
		first = n
	}
	step := 1
	if desc {
		step = -1
	}
	var ordinals []int
	for k := first; k >= 0 && k < count && len(ordinals) < limit; k += step {
		ordinals = append(ordinals, k)
	}
	if len(ordinals) == 0 {
		return nil, "", nil
	}
	if next := ordinals[len(ordinals)-1] + step; next >= 0 && next < count {
		return ordinals, strconv.Itoa(next), nil
	}
	return ordinals, "", nil
}

// fullTurns reads the turns of the given ordinals, in that order, from
// their messages (and the message after the highest, which ends it): one
// read of the byte range from the lowest turn's start to the highest
// turn's end, nothing before or after it.
func (s *Server) fullTurns(r *http.Request, id string, messages map[int]manager.UserMessage, ordinals []int) ([]FullTurn, error) {
	out := make([]FullTurn, 0, len(ordinals))
	if len(ordinals) == 0 {
		return out, nil
	}
	lo, hi := min(ordinals[0], ordinals[len(ordinals)-1]), max(ordinals[0], ordinals[len(ordinals)-1])
	rc, size, err := s.m.ReadAfter(r.Context(), id, messages[lo].Offset)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	end := func(k int) int64 {
		if next, ok := messages[k+1]; ok {
			return min(next.Offset, size)
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

// itemFields are the payload types whose fields an item shows (decodeTurnItem);
// any other payload is passed on as it is, without decoding it.
var itemFields = map[string]bool{
	"message": true, "reasoning": true,
	"function_call": true, "custom_tool_call": true, "local_shell_call": true,
	"function_call_output": true, "custom_tool_call_output": true,
}

// decodeTurnItem decodes a response_item line; other lines (events,
// turn contexts, metadata) are not items. Lines are told apart by the
// rollout scanner, as the indexer tells them, before anything is decoded:
// the lines of a turn that are no items are not decoded, a payload an item
// passes on as it is (a generated image's base64, hundreds of KB) is
// decoded once, and an item's fields are decoded with its envelope, in one
// pass over a line that may carry a pasted image.
func decodeTurnItem(line []byte, offset int64) (TurnItem, bool) {
	l := rollout.NewLine(line, offset, 0)
	if l.Err != nil || l.Type != rollout.TypeResponseItem {
		return TurnItem{}, false
	}
	// One payload member: a line with more (duplicate or case-variant
	// names) is decoded in two passes, whose item shows the last payload
	// alone, where one pass would merge them.
	if itemFields[l.PayloadType] && l.PayloadMembers() == 1 {
		var env struct {
			Timestamp string      `json:"timestamp"`
			Payload   itemPayload `json:"payload"`
		}
		if json.Unmarshal(line, &env) != nil {
			return TurnItem{}, false
		}
		return itemOf(env.Payload, offset, env.Timestamp, func() json.RawMessage { return rawPayload(line) }), true
	}
	var env struct {
		Timestamp string          `json:"timestamp"`
		Payload   json.RawMessage `json:"payload"`
	}
	if json.Unmarshal(line, &env) != nil {
		return TurnItem{}, false
	}
	if l.PayloadType != "" && !itemFields[l.PayloadType] {
		return TurnItem{Type: l.PayloadType, Offset: offset, Timestamp: env.Timestamp, Payload: env.Payload}, true
	}
	// No type the scanner could read, or more than one payload member:
	// what encoding/json makes of the payload it keeps.
	var p itemPayload
	if json.Unmarshal(env.Payload, &p) != nil {
		return TurnItem{}, false
	}
	return itemOf(p, offset, env.Timestamp, func() json.RawMessage { return env.Payload }), true
}

// itemPayload is what an item shows of its payload.
type itemPayload struct {
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

// itemOf is the item of payload p at offset; raw returns the payload as
// written, for the items that carry it.
func itemOf(p itemPayload, offset int64, timestamp string, raw func() json.RawMessage) TurnItem {
	it := TurnItem{Type: p.Type, Offset: offset, Timestamp: timestamp}
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
			it.Type, it.Payload = p.Role+"_message", raw()
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
			it.Payload = raw()
		}
	case "function_call_output", "custom_tool_call_output":
		it.Type, it.CallID, it.Output = "tool_output", p.CallID, p.Output
	default:
		it.Payload = raw()
	}
	return it
}

// rawPayload returns the payload member of line, a valid JSON object, as
// written.
func rawPayload(line []byte) json.RawMessage {
	var env struct {
		Payload json.RawMessage `json:"payload"`
	}
	json.Unmarshal(line, &env) // valid: it decoded once already
	return env.Payload
}

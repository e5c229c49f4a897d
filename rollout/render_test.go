package rollout

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
)

func renderSpec(i int) TurnSpec {
	start := time.Date(2026, 11, 20, 9, i, 0, 0, time.UTC)
	return TurnSpec{
		ThreadID: "019dab90-0000-7000-8000-000000000001", TurnID: "turn-" + string(rune('a'+i)),
		UserText: "prompt \"" + string(rune('a'+i)) + "\"\nline 2", AgentText: "answer",
		Cwd: "/w", Model: "gpt-5", Started: start, Completed: start.Add(1500 * time.Millisecond),
		UserItemID: "u" + string(rune('a'+i)), AgentItemID: "a" + string(rune('a'+i)),
	}
}

// lineKinds returns "type/payload.type" of each line.
func lineKinds(t *testing.T, data []byte) []string {
	t.Helper()
	var kinds []string
	rd := NewReader(bytes.NewReader(data), 0, 0)
	for rd.Next() {
		l := rd.Line()
		if l.Err != nil {
			t.Fatalf("rendered line %d malformed: %v", l.Number, l.Err)
		}
		kinds = append(kinds, l.Type+"/"+l.PayloadType)
	}
	return kinds
}

func TestRenderTurn(t *testing.T) {
	tests := []struct {
		mode      HistoryMode
		wantKinds string
		wantLines int64
	}{
		{HistoryLegacy, "event_msg/task_started turn_context/ response_item/message event_msg/user_message event_msg/agent_message response_item/message event_msg/task_complete", 0},
		{HistoryPaginated, "event_msg/task_started turn_context/ response_item/message event_msg/item_completed event_msg/item_completed response_item/message event_msg/task_complete", 7},
	}
	for _, tt := range tests {
		t.Run(string(tt.mode), func(t *testing.T) {
			var thread []byte
			next := int64(1)
			for i := range 2 {
				lines, n, err := RenderTurn(tt.mode, next, renderSpec(i))
				if err != nil {
					t.Fatal(err)
				}
				if got := strings.Join(lineKinds(t, lines), " "); got != tt.wantKinds {
					t.Fatalf("turn %d lines:\n%s\nwant\n%s", i, got, tt.wantKinds)
				}
				if n != next+tt.wantLines {
					t.Fatalf("next ordinal = %d, want %d", n, next+tt.wantLines)
				}
				// Paginated lines carry the ordinals next, next+1, ...;
				// legacy lines carry none.
				rd := NewReader(bytes.NewReader(lines), 0, 0)
				for want := next; rd.Next(); want++ {
					got, ok, err := LineOrdinal(rd.Line().Raw)
					if err != nil || ok != (tt.mode == HistoryPaginated) || (ok && got != want) {
						t.Fatalf("line %d ordinal %d ok=%v err=%v, want %d (%s)", rd.Line().Number, got, ok, err, want, tt.mode)
					}
				}
				thread, next = append(thread, lines...), n
			}
			h, err := ScanTurns(bytes.NewReader(thread))
			if err != nil {
				t.Fatal(err)
			}
			if len(h.Turns) != 2 || len(h.Messages) != 2 {
				t.Fatalf("rendered thread: %d turns, %d messages, want 2 and 2", len(h.Turns), len(h.Messages))
			}
			for i, tn := range h.Turns {
				spec := renderSpec(i)
				m := h.Messages[i]
				if tn.ID != spec.TurnID || tn.Status != TurnCompleted || tn.UserMessages != 1 || m.Text != spec.UserText || m.CutOffset != tn.Offset || m.TurnID != spec.TurnID {
					t.Fatalf("turn %d = %+v, message %+v", i, tn, m)
				}
			}
		})
	}
}

func TestRenderTurnErrors(t *testing.T) {
	good := renderSpec(0)
	tests := []struct {
		name    string
		mode    HistoryMode
		edit    func(*TurnSpec)
		wantErr error
	}{
		{"unknown mode", "columnar", func(*TurnSpec) {}, ErrUnknownHistoryMode},
		{"bad thread id", HistoryLegacy, func(s *TurnSpec) { s.ThreadID = "x" }, ErrInvalidID},
		{"no turn id", HistoryLegacy, func(s *TurnSpec) { s.TurnID = "" }, ErrInvalidTurn},
		{"no start", HistoryLegacy, func(s *TurnSpec) { s.Started = time.Time{} }, ErrInvalidTurn},
		{"paginated without item ids", HistoryPaginated, func(s *TurnSpec) { s.AgentItemID = "" }, ErrInvalidTurn},
		{"invalid utf8", HistoryLegacy, func(s *TurnSpec) { s.Model = "\xff" }, ErrInvalidUTF8},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			spec := good
			tt.edit(&spec)
			if _, _, err := RenderTurn(tt.mode, 0, spec); !errors.Is(err, tt.wantErr) {
				t.Fatalf("RenderTurn error = %v, want %v", err, tt.wantErr)
			}
		})
	}
	if _, _, err := RenderTurn(HistoryPaginated, -1, good); !errors.Is(err, ErrInvalidOrdinal) {
		t.Fatalf("RenderTurn from ordinal -1: %v, want ErrInvalidOrdinal", err)
	}
	// Legacy ignores item ids; a legacy thread has no "" mode problem.
	spec := good
	spec.UserItemID, spec.AgentItemID = "", ""
	if _, _, err := RenderTurn("", 0, spec); err != nil {
		t.Fatalf("legacy (\"\") without item ids: %v", err)
	}
}

// TestRenderTurnLinesAsEncoded: each line RenderTurn writes is the one
// EncodeItem makes of its timestamp, type and payload (the payload as
// encoding/json marshals it), with WithOrdinal's ordinal in a paginated
// thread, for texts that need escaping of every kind.
func TestRenderTurnLinesAsEncoded(t *testing.T) {
	spec := renderSpec(0)
	spec.UserText = "<b>&amp;</b> \"quoted\" \\ \t\x01 \u2028 é😀 " + strings.Repeat("long ", 1000)
	spec.AgentText = "answer </script> & more\n"
	for _, mode := range []HistoryMode{HistoryLegacy, HistoryPaginated} {
		t.Run(string(mode), func(t *testing.T) {
			lines, _, err := RenderTurn(mode, 41, spec)
			if err != nil {
				t.Fatal(err)
			}
			ordinal := int64(41)
			for line := range bytes.Lines(lines) {
				var envelope struct {
					Timestamp string          `json:"timestamp"`
					Type      string          `json:"type"`
					Payload   json.RawMessage `json:"payload"`
				}
				if err := json.Unmarshal(line, &envelope); err != nil {
					t.Fatal(err)
				}
				dec := json.NewDecoder(bytes.NewReader(envelope.Payload))
				dec.UseNumber()
				var payload map[string]any
				if err := dec.Decode(&payload); err != nil {
					t.Fatal(err)
				}
				body, err := json.Marshal(payload)
				if err != nil {
					t.Fatal(err)
				}
				want, err := EncodeItem(Item{Timestamp: envelope.Timestamp, Type: envelope.Type, Payload: body}, time.Time{})
				if err == nil && mode == HistoryPaginated {
					want, err = WithOrdinal(want, ordinal)
					ordinal++
				}
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(line, want) {
					t.Fatalf("rendered line\n%s\nwant\n%s", line, want)
				}
			}
		})
	}
}

package server

import (
	"bytes"
	"encoding/json"
	"fmt"
	"testing"
)

// turnLines returns the lines of a Codex turn (without newlines) whose
// image generation's base64 result is imageBytes long, as in the 1 GiB
// thread of bench-codex.
func turnLines(imageBytes int) [][]byte {
	ts := `"timestamp":"2026-11-20T09:00:00.000Z"`
	lines := []string{
		`{` + ts + `,"type":"event_msg","payload":{"type":"task_started","turn_id":"turn-1"}}`,
		`{` + ts + `,"type":"turn_context","payload":{"cwd":"/src","model":"gpt-5"}}`,
		`{` + ts + `,"type":"response_item","payload":{"type":"message","role":"user","content":[{"type":"input_text","text":"draw a cat"}]}}`,
		`{` + ts + `,"type":"event_msg","payload":{"type":"user_message","message":"draw a cat"}}`,
		`{` + ts + `,"type":"response_item","payload":{"type":"reasoning","summary":[{"type":"summary_text","text":"thinking"}],"encrypted_content":"` + string(bytes.Repeat([]byte("e"), 2048)) + `"}}`,
		`{` + ts + `,"type":"response_item","payload":{"type":"function_call","name":"shell","call_id":"c1","arguments":"{\"cmd\":\"ls\"}"}}`,
		`{` + ts + `,"type":"response_item","payload":{"type":"function_call_output","call_id":"c1","output":"a b"}}`,
		`{` + ts + `,"type":"response_item","payload":{"type":"image_generation_call","id":"ig_1","status":"completed","result":"` + string(bytes.Repeat([]byte("QUJD"), imageBytes/4)) + `"}}`,
		`{` + ts + `,"type":"response_item","payload":{"type":"message","role":"assistant","content":[{"type":"output_text","text":"here it is"}]}}`,
		`{` + ts + `,"type":"event_msg","payload":{"type":"task_complete","turn_id":"turn-1"}}`,
	}
	out := make([][]byte, len(lines))
	for i, l := range lines {
		if !json.Valid([]byte(l)) {
			panic(fmt.Sprintf("line %d is not JSON", i))
		}
		out[i] = []byte(l)
	}
	return out
}

// BenchmarkDecodeTurn decodes the lines of a turn with a 350 KB generated
// image into items and encodes them as the answer of /turns?view=full.
func BenchmarkDecodeTurn(b *testing.B) {
	lines := turnLines(350 << 10)
	size := 0
	for _, l := range lines {
		size += len(l) + 1
	}
	b.SetBytes(int64(size))
	for b.Loop() {
		var items []TurnItem
		for i, l := range lines {
			if it, ok := decodeTurnItem(l, int64(i)); ok {
				items = append(items, it)
			}
		}
		if len(items) != 6 {
			b.Fatalf("%d items, want 6", len(items))
		}
		if _, err := json.Marshal(items); err != nil {
			b.Fatal(err)
		}
	}
}

// TestDecodeTurnItem: which lines of a turn are items, and what each shows;
// a payload the item passes on is the line's payload byte for byte.
func TestDecodeTurnItem(t *testing.T) {
	lines := turnLines(1 << 10)
	var types []string
	for i, l := range lines {
		it, ok := decodeTurnItem(l, int64(i))
		if !ok {
			continue
		}
		types = append(types, it.Type)
		if it.Offset != int64(i) || it.Timestamp != "2026-11-20T09:00:00.000Z" {
			t.Errorf("line %d: offset %d, timestamp %q", i, it.Offset, it.Timestamp)
		}
		if it.Type == "image_generation_call" {
			var line struct{ Payload json.RawMessage }
			if err := json.Unmarshal(l, &line); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(it.Payload, line.Payload) {
				t.Errorf("the image's payload is not the line's")
			}
		}
	}
	want := []string{"user_message", "reasoning", "tool_call", "tool_output", "image_generation_call", "agent_message"}
	if fmt.Sprint(types) != fmt.Sprint(want) {
		t.Fatalf("items %v, want %v", types, want)
	}
	for _, tc := range []struct {
		name     string
		line     string
		item     bool
		wantType string
	}{
		{"not JSON", `{"type":"response_item","payload":{"type":"message"`, false, ""},
		{"an event", `{"type":"event_msg","payload":{"type":"agent_message","message":"hi"}}`, false, ""},
		{"a payload that is no object", `{"type":"response_item","payload":"x"}`, false, ""},
		{"a payload without a type", `{"type":"response_item","payload":{"id":"x"}}`, true, ""},
		{"the last type of the line wins", `{"type":"event_msg","type":"response_item","payload":{"type":"web_search_call"}}`, true, "web_search_call"},
		{"a message whose content does not decode", `{"type":"response_item","payload":{"type":"message","role":"user","content":"hi"}}`, false, ""},
		// Codex writes a tool search's arguments as an object: the item
		// passes its payload on (an earlier decoding dropped the line).
		{"a tool search", `{"type":"response_item","payload":{"type":"tool_search_call","call_id":"c1","arguments":{"query":"calendar create","limit":1}}}`, true, "tool_search_call"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			it, ok := decodeTurnItem([]byte(tc.line), 0)
			if ok != tc.item || it.Type != tc.wantType {
				t.Fatalf("item %t of type %q, want %t of type %q", ok, it.Type, tc.item, tc.wantType)
			}
		})
	}
}

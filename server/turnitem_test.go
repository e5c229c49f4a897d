package server

import (
	"bytes"
	"encoding/json"
	"fmt"
	"testing"
)

// turnLines returns the lines of a Codex turn (without newlines) whose
// image generation's base64 result is imageBytes long, as in the 1 GiB
// thread of bench-codex, and whose user message carries a pasted image
// (a data URL) of pastedBytes.
func turnLines(imageBytes, pastedBytes int) [][]byte {
	ts := `"timestamp":"2026-11-20T09:00:00.000Z"`
	pasted := ""
	if pastedBytes > 0 {
		pasted = `,{"type":"input_image","image_url":"data:image/png;base64,` + string(bytes.Repeat([]byte("QUJD"), pastedBytes/4)) + `"}`
	}
	lines := []string{
		`{` + ts + `,"type":"event_msg","payload":{"type":"task_started","turn_id":"turn-1"}}`,
		`{` + ts + `,"type":"turn_context","payload":{"cwd":"/src","model":"gpt-5"}}`,
		`{` + ts + `,"type":"response_item","payload":{"type":"message","role":"user","content":[{"type":"input_text","text":"draw a cat"}` + pasted + `]}}`,
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

// BenchmarkDecodeTurn decodes the lines of a turn into items and encodes
// them as the answer of /turns?view=full: a turn with a 350 KB generated
// image (passed on as it is), and one whose prompt carries a 350 KB pasted
// image (a field of an item, not shown).
func BenchmarkDecodeTurn(b *testing.B) {
	for _, bc := range []struct {
		name              string
		generated, pasted int
	}{
		{"generated-image", 350 << 10, 0},
		{"pasted-image", 0, 350 << 10},
	} {
		b.Run(bc.name, func(b *testing.B) {
			lines := turnLines(bc.generated, bc.pasted)
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
		})
	}
}

// TestDecodeTurnItem: which lines of a turn are items, and what each shows;
// a payload the item passes on is the line's payload byte for byte.
func TestDecodeTurnItem(t *testing.T) {
	lines := turnLines(1<<10, 1<<10)
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

// TestDecodeTurnItemCarriesItsPayload: the items that carry their payload
// (a message of another role, a local shell call, any other type) carry it
// as the line holds it.
func TestDecodeTurnItemCarriesItsPayload(t *testing.T) {
	for _, tc := range []struct {
		line     string
		wantType string
	}{
		{`{"timestamp":"t","type":"response_item","payload":{"type":"message","role":"developer","content":[{"type":"input_text","text":"be brief"}]}}`, "developer_message"},
		{`{"timestamp":"t","type":"response_item","payload":{"type":"local_shell_call","call_id":"c1","action":{"type":"exec","command":["ls"]}}}`, "tool_call"},
		{`{"timestamp":"t","type":"response_item","payload":{"type":"web_search_call","status":"completed","action":{"type":"search","query":"go"}}}`, "web_search_call"},
	} {
		it, ok := decodeTurnItem([]byte(tc.line), 7)
		var line struct{ Payload json.RawMessage }
		if err := json.Unmarshal([]byte(tc.line), &line); err != nil {
			t.Fatal(err)
		}
		if !ok || it.Type != tc.wantType || !bytes.Equal(it.Payload, line.Payload) || it.Timestamp != "t" || it.Offset != 7 {
			t.Errorf("%s: item %t %+v, want a %s carrying %s", tc.wantType, ok, it, tc.wantType, line.Payload)
		}
	}
}

// TestDecodeTurnItemOfMorePayloads: a line with more than one member that
// encoding/json takes for its payload (a duplicate name, or one differing
// in case or escapes) is the item of the last payload alone, as the
// decoding of the payload kept raw (before 59ba43b) gave it: it is not
// merged with the earlier ones, and an earlier one of another JSON type
// does not drop the line.
func TestDecodeTurnItemOfMorePayloads(t *testing.T) {
	user := `{"type":"message","role":"user","content":[{"type":"input_text","text":"hi"}]}`
	for _, tc := range []struct {
		line string
		ok   bool
		want string // the item's JSON
	}{
		{`{"type":"response_item","payload":` + user + `,"payload":{"type":"message","role":"user"}}`,
			true, `{"type":"user_message","offset":7}`},
		{`{"type":"response_item","payload":` + user + `,"Payload":null}`,
			true, `{"type":"","offset":7,"payload":null}`},
		{`{"type":"response_item","payload":` + user + `,"PAYLOAD":{"role":"developer"}}`,
			true, `{"type":"","offset":7,"payload":{"role":"developer"}}`},
		{`{"type":"response_item","p\u0061yload":"x","payload":` + user + `}`,
			true, `{"type":"user_message","offset":7,"text":"hi"}`},
		{`{"type":"response_item","payload":1,"payload":{"type":"function_call","name":"shell","call_id":"c1","arguments":"{}"}}`,
			true, `{"type":"tool_call","offset":7,"name":"shell","call_id":"c1","arguments":"{}"}`},
		{`{"type":"response_item","payload":{"type":"message","role":"user","content":"x"},"payload":` + user + `}`,
			true, `{"type":"user_message","offset":7,"text":"hi"}`},
		{`{"type":"response_item","payload":` + user + `,"payload":{"type":"message","role":"user","content":"x"}}`,
			false, `{"type":"","offset":0}`},
	} {
		it, ok := decodeTurnItem([]byte(tc.line), 7)
		got, err := json.Marshal(it)
		if err != nil {
			t.Fatal(err)
		}
		if ok != tc.ok || string(got) != tc.want {
			t.Errorf("%s:\n item %t %s, want %t %s", tc.line, ok, got, tc.ok, tc.want)
		}
	}
}

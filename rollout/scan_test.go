package rollout

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"strings"
	"testing"
)

func TestScanLine(t *testing.T) {
	tests := []struct {
		name        string
		in          string
		wantErr     error
		typ         string
		payloadType string
		role        string
		timestamp   bool
	}{
		{"envelope", `{"timestamp":"t","type":"response_item","payload":{"type":"message","role":"user"}}`, nil, "response_item", "message", "user", true},
		{"no payload", `{"type":"x"}`, nil, "x", "", "", false},
		{"space around", " \t{ \"type\" : \"x\" } \r", nil, "x", "", "", false},
		{"non-string type", `{"type":1,"payload":{"type":null}}`, nil, "", "", "", false},
		{"last type wins", `{"type":"a","type":"b"}`, nil, "b", "", "", false},
		{"last payload wins", `{"payload":{"type":"a"},"payload":{"role":"user"}}`, nil, "", "", "user", false},
		{"payload not object", `{"payload":{"type":"a"},"payload":[1]}`, nil, "", "", "", false},
		{"nested type ignored", `{"payload":{"inner":{"type":"deep"}}}`, nil, "", "", "", false},
		{"escaped key and value", `{"t\u0079pe":"\u0073ession_meta"}`, nil, "session_meta", "", "", false},
		{"escaped payload key", `{"type":"response_item","p\u0061yload":{"type":"message","role":"user"}}`, nil, "response_item", "message", "user", false},
		{"escapes in strings", `{"type":"a","s":"\" \\ \/ \b \f \n \r \t \u00e9 \uD83D\uDE00"}`, nil, "a", "", "", false},
		{"numbers", `{"n":[0,-0,1.5,-2e10,3E+2,4e-3,123456789012345678901234567890]}`, nil, "", "", "", false},
		{"literals", `{"a":[true,false,null]}`, nil, "", "", "", false},
		{"invalid utf8 accepted", "{\"type\":\"a\xff\"}", nil, "a\ufffd", "", "", false},
		{"empty", ``, ErrInvalidJSON, "", "", "", false},
		{"array", `[1,2]`, ErrNotObject, "", "", "", false},
		{"string", `"x"`, ErrNotObject, "", "", "", false},
		{"number", `12`, ErrNotObject, "", "", "", false},
		{"trailing data", `{"a":1} x`, ErrInvalidJSON, "", "", "", false},
		{"two objects", `{}{}`, ErrInvalidJSON, "", "", "", false},
		{"trailing comma", `{"a":1,}`, ErrInvalidJSON, "", "", "", false},
		{"array trailing comma", `{"a":[1,]}`, ErrInvalidJSON, "", "", "", false},
		{"leading zero", `{"a":01}`, ErrInvalidJSON, "", "", "", false},
		{"bare dot", `{"a":1.}`, ErrInvalidJSON, "", "", "", false},
		{"bare exponent", `{"a":1e}`, ErrInvalidJSON, "", "", "", false},
		{"plus sign", `{"a":+1}`, ErrInvalidJSON, "", "", "", false},
		{"bad literal", `{"a":tru}`, ErrInvalidJSON, "", "", "", false},
		{"control char", "{\"a\":\"x\x01y\"}", ErrInvalidJSON, "", "", "", false},
		{"control char after escape", "{\"a\":\"\\n\x1f\"}", ErrInvalidJSON, "", "", "", false},
		{"tab in string", "{\"a\":\"x\ty\"}", ErrInvalidJSON, "", "", "", false},
		{"bad escape", `{"a":"\x"}`, ErrInvalidJSON, "", "", "", false},
		{"short unicode escape", `{"a":"\u12"}`, ErrInvalidJSON, "", "", "", false},
		{"unterminated string", `{"a":"abc`, ErrInvalidJSON, "", "", "", false},
		{"unterminated object", `{"a":1`, ErrInvalidJSON, "", "", "", false},
		{"missing colon", `{"a" 1}`, ErrInvalidJSON, "", "", "", false},
		{"non-string key", `{1:2}`, ErrInvalidJSON, "", "", "", false},
		{"single quotes", `{'a':1}`, ErrInvalidJSON, "", "", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := scanLine([]byte(tt.in))
			if !errors.Is(err, tt.wantErr) || (err == nil) != (tt.wantErr == nil) {
				t.Fatalf("scanLine error = %v, want %v", err, tt.wantErr)
			}
			if got, want := err == nil || errors.Is(err, ErrNotObject), json.Valid([]byte(tt.in)); got != want {
				t.Errorf("valid = %v, json.Valid = %v", got, want)
			}
			if res.Type != tt.typ || res.PayloadType != tt.payloadType || res.Role != tt.role || res.HasTimestamp != tt.timestamp {
				t.Errorf("got type %q payload %q role %q timestamp %v; want %q %q %q %v",
					res.Type, res.PayloadType, res.Role, res.HasTimestamp, tt.typ, tt.payloadType, tt.role, tt.timestamp)
			}
		})
	}
}

func TestScanDepth(t *testing.T) {
	for _, depth := range []int{maxNestingDepth, maxNestingDepth + 1} {
		in := `{"a":` + strings.Repeat("[", depth-1) + strings.Repeat("]", depth-1) + "}"
		_, err := scanLine([]byte(in))
		if got, want := err == nil, json.Valid([]byte(in)); got != want {
			t.Errorf("depth %d: scanLine error %v, json.Valid %v", depth, err, want)
		}
	}
}

func TestIndexControl(t *testing.T) {
	for n := 0; n < 20; n++ {
		for at := -1; at < n; at++ {
			b := []byte(strings.Repeat("a", n))
			if at >= 0 {
				b[at] = 0x1f
			}
			if got := indexControl(b); got != at {
				t.Fatalf("indexControl(len %d, control at %d) = %d", n, at, got)
			}
		}
	}
	// Bytes >= 0x80 must not trip the word test.
	if got := indexControl([]byte("\x80\xff\xa0\x9f\x20\x7f\xc3\xa9\x90")); got != -1 {
		t.Fatalf("indexControl(high bytes) = %d, want -1", got)
	}
}

// envelope is what encoding/json makes of the fields the scanner extracts,
// with map semantics for duplicate keys (the last member wins wholesale).
func envelope(b []byte) (typ, payloadType, role string, hasTimestamp, isObject bool) {
	var top map[string]json.RawMessage
	if json.Unmarshal(b, &top) != nil {
		return "", "", "", false, false
	}
	_, hasTimestamp = top["timestamp"]
	json.Unmarshal(top["type"], &typ)
	var payload map[string]json.RawMessage
	if json.Unmarshal(top["payload"], &payload) == nil {
		json.Unmarshal(payload["type"], &payloadType)
		json.Unmarshal(payload["role"], &role)
	}
	return typ, payloadType, role, hasTimestamp, true
}

func FuzzScanner(f *testing.F) {
	for _, path := range fixtureFiles(f) {
		data, err := os.ReadFile(path)
		if err != nil {
			f.Fatal(err)
		}
		for _, line := range strings.Split(string(data), "\n") {
			f.Add([]byte(line))
		}
	}
	f.Add([]byte(`{"type":"a","type":{"x":1},"payload":{"type":"b"},"payload":null}`))
	f.Add([]byte(`{"typ\u0065":"\u00e9","payload":{"role":"us\u0065r"}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		res, err := scanLine(data)
		valid := err == nil || errors.Is(err, ErrNotObject)
		if want := json.Valid(data); valid != want {
			t.Fatalf("scanner valid = %v (%v), json.Valid = %v", valid, err, want)
		}
		if validJSON(data) != valid {
			t.Fatalf("validJSON disagrees with scanLine")
		}
		if err != nil {
			return
		}
		typ, payloadType, role, hasTimestamp, isObject := envelope(data)
		if !isObject {
			t.Fatalf("scanner accepted a non-object")
		}
		if res.Type != typ || res.PayloadType != payloadType || res.Role != role || res.HasTimestamp != hasTimestamp {
			t.Fatalf("scanner = (%q, %q, %q, %v), encoding/json = (%q, %q, %q, %v)",
				res.Type, res.PayloadType, res.Role, res.HasTimestamp, typ, payloadType, role, hasTimestamp)
		}
	})
}

// TestScanManyEscapesLinear guards against rescanning the rest of a string
// after every escape: a string of a million escapes is searched for its
// closing quote once (a search per escape is quadratic), and scanning it
// allocates nothing.
func TestScanManyEscapesLinear(t *testing.T) {
	const escapes = 1 << 20
	body := strings.Repeat(`ab\n`, escapes)
	line := []byte(`{"type":"x","s":"` + body + `"}`)
	s := scanner{buf: line}
	s.pos = bytes.Index(line, []byte(`"ab`))
	got, escaped := s.str()
	if s.err != nil || !escaped || len(got) != len(body) {
		t.Fatalf("str = %d bytes, escaped %t, err %v; want %d bytes with escapes", len(got), escaped, s.err, len(body))
	}
	if s.quoteSearches != 1 {
		t.Fatalf("the closing quote was searched for %d times for %d escapes, want once", s.quoteSearches, escapes)
	}
	// Averaged over runs, so that an allocation of the runtime's own (a
	// stray one under the race detector) does not count as the scan's: a
	// scan that allocates allocates on every run.
	if allocs := testing.AllocsPerRun(10, func() {
		if _, err := scanLine(line); err != nil {
			t.Fatal(err)
		}
	}); allocs >= 1 {
		t.Fatalf("scanLine allocated %.1f times for a plain line", allocs)
	}
}

// slowTurnID is what Line.PayloadTurnID promises: encoding/json's reading.
func slowTurnID(b []byte) (string, bool) {
	var tl struct {
		Payload struct {
			TurnID string `json:"turn_id"`
		} `json:"payload"`
	}
	err := json.Unmarshal(b, &tl)
	return tl.Payload.TurnID, err == nil
}

func TestPayloadTurnID(t *testing.T) {
	tests := []struct {
		name, line string
	}{
		{"task_started", `{"timestamp":"t","type":"event_msg","payload":{"type":"task_started","turn_id":"019a-1"}}`},
		{"no turn_id", `{"type":"turn_context","payload":{"cwd":"/x"}}`},
		{"null", `{"type":"turn_context","payload":{"turn_id":null}}`},
		{"number", `{"type":"turn_context","payload":{"turn_id":7}}`},
		{"object", `{"type":"turn_context","payload":{"turn_id":{"a":"b"}}}`},
		{"escaped value", `{"type":"turn_context","payload":{"turn_id":"a\u0062"}}`},
		{"invalid UTF-8", "{\"type\":\"turn_context\",\"payload\":{\"turn_id\":\"a\xffb\"}}"},
		{"escaped key", `{"type":"turn_context","payload":{"turn\u005fid":"k"}}`},
		{"key in another case", `{"type":"turn_context","payload":{"Turn_ID":"k"}}`},
		{"both cases, exact first", `{"payload":{"turn_id":"a","TURN_ID":"b"}}`},
		{"both cases, exact last", `{"payload":{"TURN_ID":"b","turn_id":"a"}}`},
		{"twice", `{"payload":{"turn_id":"a","turn_id":"b"}}`},
		{"twice, null last", `{"payload":{"turn_id":"a","turn_id":null}}`},
		{"payload in another case", `{"Payload":{"turn_id":"a"}}`},
		{"payload key escaped", `{"p\u0061yload":{"turn_id":"a"}}`},
		{"payload twice", `{"payload":{"turn_id":"a"},"payload":{"x":1}}`},
		{"payload twice, other case last", `{"payload":{"turn_id":"a"},"PAYLOAD":{"turn_id":"b"}}`},
		{"payload null", `{"payload":null}`},
		{"payload a string", `{"payload":"turn_id"}`},
		{"payload an array", `{"payload":[{"turn_id":"a"}]}`},
		{"no payload", `{"type":"x"}`},
		{"turn_id at the top", `{"turn_id":"a","payload":{}}`},
		{"nested turn_id", `{"payload":{"x":{"turn_id":"a"}}}`},
		{"not an object", `["payload"]`},
		{"malformed", `{"payload":{"turn_id":"a"}`},
		{"empty", `{"payload":{"turn_id":""}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := NewLine([]byte(tt.line), 0, 0)
			got, err := l.PayloadTurnID()
			want, ok := slowTurnID([]byte(tt.line))
			if got != want || (err == nil) != ok {
				t.Fatalf("PayloadTurnID = %q, %v; encoding/json: %q, ok %v", got, err, want, ok)
			}
		})
	}
}

func FuzzPayloadTurnID(f *testing.F) {
	for _, path := range fixtureFiles(f) {
		data, err := os.ReadFile(path)
		if err != nil {
			f.Fatal(err)
		}
		for _, line := range strings.Split(string(data), "\n") {
			f.Add([]byte(line))
		}
	}
	f.Add([]byte(`{"payload":{"TURN_ID":"b","turn_id":"a"}}`))
	f.Add([]byte(`{"payload":{"turn_id":"a"},"Payload":{"turn_id":null}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		got, err := NewLine(data, 0, 0).PayloadTurnID()
		want, ok := slowTurnID(data)
		if got != want || (err == nil) != ok {
			t.Fatalf("PayloadTurnID = %q, %v; encoding/json: %q, ok %v", got, err, want, ok)
		}
	})
}

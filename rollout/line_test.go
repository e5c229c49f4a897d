package rollout

import (
	"encoding/json"
	"errors"
	"testing"
	"time"
)

// fixedNow is the clock of the encoding tests.
var fixedNow = time.Date(2026, 5, 1, 9, 30, 0, 123_456_789, time.FixedZone("CEST", 2*3600))

const fixedStamp = "2026-05-01T07:30:00.123Z"

func TestFormatTimestamp(t *testing.T) {
	if got := FormatTimestamp(fixedNow); got != fixedStamp {
		t.Fatalf("FormatTimestamp = %q, want %q", got, fixedStamp)
	}
}

func TestEncodeItem(t *testing.T) {
	tests := []struct {
		name    string
		item    Item
		want    string
		wantErr error
	}{
		{"stamped", Item{Type: "event_msg", Payload: json.RawMessage(`{"type":"task_started"}`)},
			`{"timestamp":"` + fixedStamp + `","type":"event_msg","payload":{"type":"task_started"}}` + "\n", nil},
		{"given timestamp", Item{Timestamp: "2020-01-01T00:00:00.000Z", Type: "x", Payload: json.RawMessage(` {"a" : [1, 2]} `)},
			`{"timestamp":"2020-01-01T00:00:00.000Z","type":"x","payload":{"a" : [1, 2]}}` + "\n", nil},
		{"escaped type", Item{Timestamp: "t", Type: "a\"b\\c\u0001", Payload: json.RawMessage(`{}`)},
			`{"timestamp":"t","type":"a\"b\\c\u0001","payload":{}}` + "\n", nil},
		{"missing type", Item{Payload: json.RawMessage(`{}`)}, "", ErrMissingType},
		{"empty payload", Item{Type: "x"}, "", ErrInvalidJSON},
		{"invalid payload", Item{Type: "x", Payload: json.RawMessage(`{"a":}`)}, "", ErrInvalidJSON},
		{"array payload", Item{Type: "x", Payload: json.RawMessage(`[1]`)}, "", ErrNotObject},
		{"newline in payload", Item{Type: "x", Payload: json.RawMessage("{\"a\":\n1}")}, "", ErrRawNewline},
		{"invalid utf8 payload", Item{Type: "x", Payload: json.RawMessage("{\"a\":\"\xff\"}")}, "", ErrInvalidUTF8},
		{"invalid utf8 type", Item{Type: "x\xff", Payload: json.RawMessage(`{}`)}, "", ErrInvalidUTF8},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := EncodeItem(tt.item, fixedNow)
			if !errors.Is(err, tt.wantErr) || (err == nil) != (tt.wantErr == nil) {
				t.Fatalf("EncodeItem error = %v, want %v", err, tt.wantErr)
			}
			if string(got) != tt.want {
				t.Fatalf("EncodeItem = %q, want %q", got, tt.want)
			}
			if err != nil {
				return
			}
			l := NewLine(got[:len(got)-1], 0, 0)
			if l.Err != nil || l.Type != tt.item.Type {
				t.Fatalf("encoded line reads back as type %q, err %v", l.Type, l.Err)
			}
			// A checked item with an ordinal is the line WithOrdinal
			// makes of EncodeItem's.
			checked, err := CheckItem(tt.item, fixedNow)
			if err != nil {
				t.Fatalf("CheckItem: %v", err)
			}
			numbered, err := checked.EncodeWithOrdinal(7)
			if err != nil {
				t.Fatalf("EncodeWithOrdinal: %v", err)
			}
			if want, _ := WithOrdinal(got, 7); string(numbered) != string(want) {
				t.Fatalf("EncodeWithOrdinal(7) =\n%s\nwant WithOrdinal's\n%s", numbered, want)
			}
		})
	}
}

func TestCheckedItemRefusesNegativeOrdinal(t *testing.T) {
	checked, err := CheckItem(Item{Type: "x", Payload: json.RawMessage(`{}`)}, fixedNow)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := checked.EncodeWithOrdinal(-1); !errors.Is(err, ErrInvalidOrdinal) {
		t.Fatalf("EncodeWithOrdinal(-1) error = %v, want ErrInvalidOrdinal", err)
	}
}

func TestEncodeLine(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    string
		wantErr error
	}{
		{"kept verbatim", `{"timestamp":"x","type":"a","payload":{"b" : 1}}`, `{"timestamp":"x","type":"a","payload":{"b" : 1}}` + "\n", nil},
		{"newline kept single", `{"timestamp":"x","type":"a"}` + "\n", `{"timestamp":"x","type":"a"}` + "\n", nil},
		{"timestamp inserted", `{"type":"a","payload":{}}`, `{"timestamp":"` + fixedStamp + `","type":"a","payload":{}}` + "\n", nil},
		{"type only", `{"type":"a"}`, `{"timestamp":"` + fixedStamp + `","type":"a"}` + "\n", nil},
		{"leading space", ` { "type":"a"}`, ` {"timestamp":"` + fixedStamp + `", "type":"a"}` + "\n", nil},
		{"null timestamp kept", `{"timestamp":null,"type":"a"}`, `{"timestamp":null,"type":"a"}` + "\n", nil},
		{"nested timestamp does not count", `{"type":"a","payload":{"timestamp":"x"}}`, `{"timestamp":"` + fixedStamp + `","type":"a","payload":{"timestamp":"x"}}` + "\n", nil},
		{"empty object", `{}`, "", ErrMissingType},
		{"non-string type", `{"type":1}`, "", ErrMissingType},
		{"array", `[]`, "", ErrNotObject},
		{"invalid", `{"type":"a"`, "", ErrInvalidJSON},
		{"empty", ``, "", ErrInvalidJSON},
		{"two newlines", "{\"type\":\"a\"}\n\n", "", ErrRawNewline},
		{"inner newline", "{\"type\":\n\"a\"}", "", ErrRawNewline},
		{"invalid utf8", "{\"type\":\"a\",\"s\":\"\xc3\"}", "", ErrInvalidUTF8},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := EncodeLine([]byte(tt.in), fixedNow)
			if !errors.Is(err, tt.wantErr) || (err == nil) != (tt.wantErr == nil) {
				t.Fatalf("EncodeLine error = %v, want %v", err, tt.wantErr)
			}
			if string(got) != tt.want {
				t.Fatalf("EncodeLine = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestParseTimestamp(t *testing.T) {
	tests := []struct {
		in   string
		want time.Time
		ok   bool
	}{
		{"2026-04-20T10:15:36.412Z", time.Date(2026, 4, 20, 10, 15, 36, 412e6, time.UTC), true},
		{"2025-01-05T12:00:00Z", time.Date(2025, 1, 5, 12, 0, 0, 0, time.UTC), true},
		{"2026-04-20T12:15:36.412345+02:00", time.Date(2026, 4, 20, 10, 15, 36, 412345e3, time.UTC), true},
		{"2026-04-20 10:15:36", time.Date(2026, 4, 20, 10, 15, 36, 0, time.UTC), true},
		{" 2026-04-20T10:15:36.5 ", time.Date(2026, 4, 20, 10, 15, 36, 500e6, time.UTC), true},
		{"", time.Time{}, false},
		{"yesterday", time.Time{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, ok := ParseTimestamp(tt.in)
			if ok != tt.ok || !got.Equal(tt.want) {
				t.Fatalf("ParseTimestamp = %v, %v; want %v, %v", got, ok, tt.want, tt.ok)
			}
		})
	}
	if got, ok := ParseTimestamp(FormatTimestamp(fixedNow)); !ok || !got.Equal(fixedNow.Truncate(time.Millisecond)) {
		t.Fatalf("ParseTimestamp(FormatTimestamp) = %v, %v", got, ok)
	}
}

// TestPayloadMembers: the members encoding/json decodes into a payload
// field, whatever their case or escapes.
func TestPayloadMembers(t *testing.T) {
	for _, tc := range []struct {
		line string
		want int
	}{
		{`{"type":"response_item"}`, 0},
		{`{"type":"response_item","payload":{"type":"message"}}`, 1},
		{`{"type":"response_item","payload":{},"payload":null}`, 2},
		{`{"type":"response_item","payload":{},"Payload":1,"p\u0061yLoad":"x"}`, 3},
		{`{"type":"response_item","payloads":{},"pay_load":{}}`, 0},
		{`{"type":"response_item","payload":{}`, 0},
	} {
		if got := NewLine([]byte(tc.line), 0, 0).PayloadMembers(); got != tc.want {
			t.Errorf("%s: %d payload members, want %d", tc.line, got, tc.want)
		}
	}
}

// FuzzCheckedLine checks CheckLine's encodings against the functions they
// stand for: Encode is EncodeLine, and EncodeWithOrdinal(n) is WithOrdinal
// of EncodeLine's line, byte for byte or with the same sentinel error.
func FuzzCheckedLine(f *testing.F) {
	for _, seed := range []string{
		`{"timestamp":"x","type":"a","payload":{"b" : 1}}`,
		`{"type":"a","payload":{}}` + "\n",
		` { "type":"a"}`,
		`{ "timestamp" : "t" , "type":"x"}`,
		`{"type":"x","timestamp":"t"}`,
		`{"timestamp":null,"type":"a"}`,
		`{"timestamp":"t","ordinal":1,"type":"x"}`,
		`{"type":"x","ordinal":"one"}`,
		`{"type":"x","ordin\u0061l":2}`,
		`{"type":"a","payload":{"ordinal":3,"timestamp":"x"}}`,
		`{}`, `[]`, `{"type":"a"`, ``, "{\"type\":\"a\"}\n\n", "{\"type\":\"a\",\"s\":\"\xc3\"}",
	} {
		f.Add([]byte(seed), int64(4))
	}
	f.Add([]byte(`{"type":"a"}`), int64(-1))
	sentinels := []error{ErrInvalidJSON, ErrNotObject, ErrRawNewline, ErrMissingType, ErrInvalidUTF8, ErrLineTooLong, ErrInvalidOrdinal}
	sameError := func(t *testing.T, what string, got, want error) {
		t.Helper()
		if (got == nil) != (want == nil) {
			t.Fatalf("%s: error %v, want %v", what, got, want)
		}
		for _, s := range sentinels {
			if errors.Is(got, s) != errors.Is(want, s) {
				t.Fatalf("%s: error %v, want %v", what, got, want)
			}
		}
	}
	f.Fuzz(func(t *testing.T, line []byte, n int64) {
		want, wantErr := EncodeLine(line, fixedNow)
		checked, err := CheckLine(line, fixedNow)
		if err == nil {
			var got []byte
			got, err = checked.Encode()
			if err == nil && string(got) != string(want) {
				t.Fatalf("Encode = %q, want EncodeLine's %q", got, want)
			}
		}
		sameError(t, "Encode", err, wantErr)
		if wantErr != nil {
			return
		}
		numbered, wantErr := WithOrdinal(want, n)
		got, err := checked.EncodeWithOrdinal(n)
		sameError(t, "EncodeWithOrdinal", err, wantErr)
		if string(got) != string(numbered) {
			t.Fatalf("EncodeWithOrdinal(%d) = %q, want WithOrdinal's %q", n, got, numbered)
		}
		// Appended after other bytes, in a buffer with room to spare.
		const before = "earlier lines\n"
		dst := append(make([]byte, 0, 1<<10), before...)
		appended, err := checked.AppendLineWithOrdinal(dst, n)
		sameError(t, "AppendLineWithOrdinal", err, wantErr)
		if string(appended) != before+string(numbered) {
			t.Fatalf("AppendLineWithOrdinal(%q, %d) = %q, want %q", before, n, appended, before+string(numbered))
		}
	})
}

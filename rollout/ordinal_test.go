package rollout

import (
	"errors"
	"testing"
)

func TestLineOrdinal(t *testing.T) {
	tests := []struct {
		name    string
		line    string
		want    int64
		wantOK  bool
		wantErr error
	}{
		{"codex line", `{"timestamp":"t","ordinal":12,"type":"event_msg","payload":{"ordinal":99}}`, 12, true, nil},
		{"zero", `{"ordinal":0,"type":"x"}`, 0, true, nil},
		{"none", `{"timestamp":"t","type":"x","payload":{"ordinal":3}}`, 0, false, nil},
		{"escaped key", `{"ordin\u0061l":7,"type":"x"}`, 7, true, nil},
		{"last duplicate wins", `{"ordinal":1,"ordinal":2}`, 2, true, nil},
		{"negative", `{"ordinal":-1}`, 0, false, ErrInvalidOrdinal},
		{"fraction", `{"ordinal":1.5}`, 0, false, ErrInvalidOrdinal},
		{"string", `{"ordinal":"1"}`, 0, false, ErrInvalidOrdinal},
		{"null", `{"ordinal":null}`, 0, false, ErrInvalidOrdinal},
		{"too large", `{"ordinal":9223372036854775808}`, 0, false, ErrInvalidOrdinal},
		{"not an object", `[1]`, 0, false, ErrNotObject},
		{"malformed", `{"ordinal":1`, 0, false, ErrInvalidJSON},
		{"trailing data", `{"ordinal":1} x`, 0, false, ErrInvalidJSON},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok, err := LineOrdinal([]byte(tt.line))
			if !errors.Is(err, tt.wantErr) || (err == nil) != (tt.wantErr == nil) {
				t.Fatalf("LineOrdinal error = %v, want %v", err, tt.wantErr)
			}
			if got != tt.want || ok != tt.wantOK {
				t.Fatalf("LineOrdinal = %d, %v, want %d, %v", got, ok, tt.want, tt.wantOK)
			}
		})
	}
}

func TestWithOrdinal(t *testing.T) {
	tests := []struct {
		name    string
		line    string
		n       int64
		want    string
		wantErr error
	}{
		{"after timestamp", `{"timestamp":"2026-11-25T10:00:00.000Z","type":"event_msg","payload":{}}` + "\n", 3,
			`{"timestamp":"2026-11-25T10:00:00.000Z","ordinal":3,"type":"event_msg","payload":{}}` + "\n", nil},
		{"no newline", `{"timestamp":"t","type":"x"}`, 0, `{"timestamp":"t","ordinal":0,"type":"x"}` + "\n", nil},
		{"no leading timestamp", `{"type":"x","timestamp":"t"}`, 5, `{"ordinal":5,"type":"x","timestamp":"t"}` + "\n", nil},
		{"spaces", `{ "timestamp" : "t" , "type":"x"}`, 1, `{ "timestamp" : "t","ordinal":1 , "type":"x"}` + "\n", nil},
		{"already has one", `{"timestamp":"t","ordinal":1,"type":"x"}`, 2, "", ErrInvalidOrdinal},
		{"negative", `{"timestamp":"t","type":"x"}`, -1, "", ErrInvalidOrdinal},
		{"no type", `{"timestamp":"t"}`, 1, "", ErrMissingType},
		{"malformed", `{"timestamp":"t"`, 1, "", ErrInvalidJSON},
		{"raw newline", "{\"timestamp\":\"t\",\n\"type\":\"x\"}", 1, "", ErrRawNewline},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := WithOrdinal([]byte(tt.line), tt.n)
			if !errors.Is(err, tt.wantErr) || (err == nil) != (tt.wantErr == nil) {
				t.Fatalf("WithOrdinal error = %v, want %v", err, tt.wantErr)
			}
			if string(got) != tt.want {
				t.Fatalf("WithOrdinal =\n%s\nwant\n%s", got, tt.want)
			}
			// AppendWithOrdinal appends the same line, or nothing.
			const before = "earlier lines\n"
			appended, err := AppendWithOrdinal([]byte(before), []byte(tt.line), tt.n)
			if !errors.Is(err, tt.wantErr) || string(appended) != before+tt.want {
				t.Fatalf("AppendWithOrdinal = %q, %v; want %q, %v", appended, err, before+tt.want, tt.wantErr)
			}
			if err != nil {
				return
			}
			if n, ok, err := LineOrdinal(got[:len(got)-1]); err != nil || !ok || n != tt.n {
				t.Fatalf("LineOrdinal of the result = %d, %v, %v", n, ok, err)
			}
		})
	}
}

package rollout_test

import (
	"errors"
	"testing"

	"github.com/spoolhq/spool/rollout"
)

func TestRenumber(t *testing.T) {
	tests := []struct {
		name string
		line string
		n    int64
		want string
		err  error
	}{
		{"codex layout", `{"timestamp":"2026-01-01T00:00:00.000Z","ordinal":7,"type":"event_msg","payload":{}}`, 12,
			`{"timestamp":"2026-01-01T00:00:00.000Z","ordinal":12,"type":"event_msg","payload":{}}` + "\n", nil},
		{"newline kept once", `{"timestamp":"t","ordinal":0,"type":"x"}` + "\n", 1,
			`{"timestamp":"t","ordinal":1,"type":"x"}` + "\n", nil},
		{"ordinal last", `{"timestamp":"t","type":"x","ordinal":3}`, 40,
			`{"timestamp":"t","type":"x","ordinal":40}` + "\n", nil},
		{"spaces kept", `{ "type" : "x", "ordinal" : 3 , "p":1}`, 4,
			`{ "type" : "x", "ordinal" : 4 , "p":1}` + "\n", nil},
		{"the word inside a payload is not the member", `{"timestamp":"t","ordinal":1,"type":"x","payload":{"ordinal":9,"text":"\"ordinal\""}}`, 2,
			`{"timestamp":"t","ordinal":2,"type":"x","payload":{"ordinal":9,"text":"\"ordinal\""}}` + "\n", nil},
		{"duplicate: the last wins, as in LineOrdinal", `{"timestamp":"t","ordinal":1,"type":"x","ordinal":5}`, 9,
			`{"timestamp":"t","ordinal":1,"type":"x","ordinal":9}` + "\n", nil},
		{"no ordinal: inserted after the timestamp", `{"timestamp":"t","type":"x"}`, 5,
			`{"timestamp":"t","ordinal":5,"type":"x"}` + "\n", nil},
		{"not json", `{"type":"x","ordinal":1,`, 2, "", rollout.ErrInvalidJSON},
		{"negative", `{"timestamp":"t","ordinal":1,"type":"x"}`, -1, "", rollout.ErrInvalidOrdinal},
		{"invalid ordinal", `{"timestamp":"t","ordinal":-1,"type":"x"}`, 2, "", rollout.ErrInvalidOrdinal},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := rollout.Renumber([]byte("prefix|"), []byte(tt.line), tt.n)
			if tt.err != nil {
				if !errors.Is(err, tt.err) {
					t.Fatalf("Renumber err = %v, want %v", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got, want := string(got), "prefix|"+tt.want; got != want {
				t.Fatalf("Renumber = %q, want %q", got, want)
			}
			n, ok, err := rollout.LineOrdinal([]byte(tt.want[:len(tt.want)-1]))
			if err != nil || !ok || n != tt.n {
				t.Fatalf("LineOrdinal of the result = %d, %t, %v; want %d", n, ok, err, tt.n)
			}
		})
	}
}

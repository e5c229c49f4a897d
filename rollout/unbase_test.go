package rollout_test

import (
	"errors"
	"testing"

	"github.com/spoolhq/spool/rollout"
)

func TestWithoutHistoryBase(t *testing.T) {
	const base = `{"thread_id":"x","end_ordinal_exclusive":3,"end_byte_offset":10}`
	tests := []struct {
		name, line, want string
		err              error
	}{
		{"middle", `{"timestamp":"t","ordinal":0,"type":"session_meta","payload":{"id":"a","history_base":` + base + `,"cwd":"/"}}`,
			`{"timestamp":"t","ordinal":0,"type":"session_meta","payload":{"id":"a","cwd":"/"}}`, nil},
		{"first", `{"type":"session_meta","payload":{"history_base":` + base + `, "id":"a"}}`,
			`{"type":"session_meta","payload":{ "id":"a"}}`, nil},
		{"last", `{"type":"session_meta","payload":{"id":"a" , "history_base":` + base + `}}`,
			`{"type":"session_meta","payload":{"id":"a" }}`, nil},
		{"alone", `{"type":"session_meta","payload":{"history_base":` + base + `}}`,
			`{"type":"session_meta","payload":{}}`, nil},
		{"duplicates", `{"type":"session_meta","payload":{"history_base":1,"id":"a","history_base":` + base + `}}`,
			`{"type":"session_meta","payload":{"id":"a"}}`, nil},
		{"nested one kept", `{"type":"session_meta","payload":{"id":"a","x":{"history_base":1}}}`,
			`{"type":"session_meta","payload":{"id":"a","x":{"history_base":1}}}`, nil},
		{"none", `{"type":"session_meta","payload":{"id":"a"}}`, `{"type":"session_meta","payload":{"id":"a"}}`, nil},
		{"not an object", `[1]`, "", rollout.ErrNotObject},
		{"torn", `{"type":"session_meta","payload":{"history_base":`, "", rollout.ErrInvalidJSON},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := rollout.WithoutHistoryBase([]byte(tt.line + "\n"))
			if tt.err != nil {
				if !errors.Is(err, tt.err) {
					t.Fatalf("err = %v, want %v", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tt.want+"\n" {
				t.Fatalf("WithoutHistoryBase = %q, want %q", got, tt.want+"\n")
			}
		})
	}
}

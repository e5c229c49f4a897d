package rollout

import (
	"encoding/json"
	"testing"
)

// FuzzAppendJSON holds appendJSON to encoding/json's Marshal for strings
// of any bytes and the payload shapes a rendered turn holds.
func FuzzAppendJSON(f *testing.F) {
	for _, s := range []string{"", "plain", `"quoted" \ back`, "<b>&amp;</b>", "\b\f\n\r\t\x00\x1f\x7f",
		"\u2028\u2029", "é😀", "\xff\xfe\xed\xa0\x80", "\xe2\x82"} {
		f.Add(s, int64(-7))
	}
	f.Fuzz(func(t *testing.T, s string, n int64) {
		values := []any{
			s, n, nil, []any{}, []any(nil),
			map[string]any{"type": s, "n": n, "none": nil, s: "key", "list": []any{}},
			map[string]string{"b": s, "a": s},
			[]map[string]string{{"type": "input_text", "text": s}},
			map[string]any{"item": map[string]any{"content": []map[string]any{{"text": s, "text_elements": []any{}}}}},
		}
		for _, v := range values {
			want, err := json.Marshal(v)
			if err != nil {
				t.Fatal(err)
			}
			got, err := appendJSON([]byte("x"), v)
			if err != nil || string(got) != "x"+string(want) {
				t.Fatalf("appendJSON(%#v) = %s, %v; want x%s", v, got, err, want)
			}
		}
	})
}

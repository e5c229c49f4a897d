package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"testing"
)

// FuzzCompactInPlace checks compactInPlace against json.Compact on every
// valid JSON input: the in-place result must be the same bytes.
func FuzzCompactInPlace(f *testing.F) {
	for _, seed := range []string{
		`{"a" : [1, 2 ,{"b":"x y"}], "c":"\" \\ "}`,
		"{\n\t\"payload\": {\"text\": \"a\\u0000 b\"}\r\n}",
		`[ ]`, `"  "`, ` 1 `, `{"k":"\\"}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if !json.Valid(data) {
			return
		}
		var want bytes.Buffer
		if err := json.Compact(&want, data); err != nil {
			t.Fatalf("json.Compact: %v", err)
		}
		got := compactInPlace(bytes.Clone(data))
		if !bytes.Equal(got, want.Bytes()) {
			t.Fatalf("compactInPlace(%q) = %q, want %q", data, got, want.Bytes())
		}
	})
}

func TestClientString(t *testing.T) {
	tests := []struct {
		name    string
		raw     string
		want    string
		wantErr error
	}{
		{"plain", `"response_item"`, "response_item", nil},
		{"escapes", `"a\"b\\c\n\u00e9"`, "a\"b\\c\né", nil},
		{"surrogate pair", `"\ud83d\ude00"`, "😀", nil},
		{"NUL escape", `"a\u0000"`, "", errNUL},
		{"lone high surrogate", `"\ud800"`, "", errLoneSurrogate},
		{"lone high before text", `"\ud800x"`, "", errLoneSurrogate},
		{"lone low surrogate", `"\udc00"`, "", errLoneSurrogate},
		{"high then escape", `"\ud800\n"`, "", errLoneSurrogate},
		{"invalid UTF-8", "\"a\xffb\"", "", errInvalidUTF8},
		{"not a string", `12`, "", errNotString},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := clientString([]byte(tt.raw))
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("clientString(%s) error = %v, want %v", tt.raw, err, tt.wantErr)
			}
			if err == nil && got != tt.want {
				t.Fatalf("clientString(%s) = %q, want %q", tt.raw, got, tt.want)
			}
		})
	}
}

func TestEachMember(t *testing.T) {
	obj := []byte(`{ "type" : "t", "payload": {"a": [1, {"b": "}"}]}, "n" :null , "x":-1.5e3}`)
	var got []string
	err := eachMember(obj, func(key, value []byte) error {
		got = append(got, string(key)+"="+string(value))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{`"type"="t"`, `"payload"={"a": [1, {"b": "}"}]}`, `"n"=null`, `"x"=-1.5e3`}
	if len(got) != len(want) {
		t.Fatalf("members = %q, want %q", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("member %d = %q, want %q", i, got[i], want[i])
		}
	}
}

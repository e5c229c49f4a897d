package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestDecodeAppend(t *testing.T) {
	tests := []struct {
		name      string
		ndjson    bool
		body      string
		wantCode  string // "" for success
		wantItems int
		wantLines int
	}{
		{name: "single item", body: `{"type":"response_item","payload":{"type":"message"}}`, wantItems: 1},
		{name: "batch", body: `{"items":[{"type":"a","payload":{}},{"type":"b","payload":{},"timestamp":"t"}]}`, wantItems: 2},
		{name: "pretty payload compacted", body: "{\"type\":\"x\",\n \"payload\": {\n  \"k\": [1, 2]\n }\n}", wantItems: 1},
		{name: "empty body", body: "", wantCode: CodeInvalidJSON},
		{name: "malformed", body: `{"type":`, wantCode: CodeInvalidJSON},
		{name: "not an object", body: `[{"type":"a","payload":{}}]`, wantCode: CodeInvalidJSON},
		{name: "string", body: `"hello"`, wantCode: CodeInvalidJSON},
		{name: "trailing data", body: `{"type":"a","payload":{}} {}`, wantCode: CodeInvalidJSON},
		{name: "missing type", body: `{"payload":{}}`, wantCode: CodeInvalidItem},
		{name: "empty type", body: `{"type":"","payload":{}}`, wantCode: CodeInvalidItem},
		{name: "type not string", body: `{"type":3,"payload":{}}`, wantCode: CodeInvalidItem},
		{name: "payload not object", body: `{"type":"a","payload":[1]}`, wantCode: CodeInvalidItem},
		{name: "payload missing", body: `{"type":"a"}`, wantCode: CodeInvalidItem},
		{name: "unknown item field", body: `{"type":"a","payload":{},"extra":1}`, wantCode: CodeInvalidItem},
		{name: "type twice", body: `{"type":"a","type":"b","payload":{}}`, wantCode: CodeInvalidItem},
		{name: "payload twice", body: `{"type":"a","payload":{},"payload":{"k":1}}`, wantCode: CodeInvalidItem},
		{name: "timestamp twice", body: `{"type":"a","timestamp":"t","timestamp":null,"payload":{}}`, wantCode: CodeInvalidItem},
		{name: "type twice in batch", body: `{"items":[{"type":"a","payload":{}},{"type":"b","payload":{},"type":"c"}]}`, wantCode: CodeInvalidItem},
		{name: "items not array", body: `{"items":{}}`, wantCode: CodeInvalidJSON},
		{name: "items null", body: `{"items":null}`, wantCode: CodeInvalidJSON},
		{name: "items empty", body: `{"items":[]}`, wantCode: CodeInvalidArgument},
		{name: "items with sibling", body: `{"items":[],"type":"a"}`, wantCode: CodeInvalidJSON},
		{name: "bad item in batch", body: `{"items":[{"type":"a","payload":{}},{"type":"b"}]}`, wantCode: CodeInvalidItem},
		{name: "ndjson lines", ndjson: true, body: "{\"type\":\"a\"}\n\n{\"type\":\"b\"}\r\n", wantLines: 2},
		{name: "ndjson last line without newline", ndjson: true, body: "{\"type\":\"a\"}\n{\"type\":\"b\"}", wantLines: 2},
		{name: "ndjson empty", ndjson: true, body: "\n\n", wantCode: CodeInvalidArgument},
		{name: "ndjson malformed", ndjson: true, body: "{\"type\":\"a\"}\n{oops\n", wantCode: CodeInvalidJSON},
		{name: "ndjson array line", ndjson: true, body: "[1]\n", wantCode: CodeInvalidJSON},
		{name: "ndjson type twice", ndjson: true, body: "{\"type\":\"a\",\"type\":\"b\"}\n", wantCode: CodeInvalidItem},
		{name: "ndjson payload twice", ndjson: true, body: "{\"type\":\"a\",\"payload\":{},\"payload\":{}}\n", wantCode: CodeInvalidItem},
		{name: "ndjson payload members kept as sent", ndjson: true, body: "{\"type\":\"a\",\"payload\":{\"k\":1,\"k\":2}}\n", wantLines: 1},
		{name: "ndjson invalid utf8", ndjson: true, body: "{\"type\":\"\xff\"}\n", wantCode: CodeInvalidJSON},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := decodeAppend(tt.ndjson, []byte(tt.body))
			if tt.wantCode != "" {
				var apiErr *Error
				if !errors.As(err, &apiErr) {
					t.Fatalf("decodeAppend error = %v, want code %s", err, tt.wantCode)
				}
				if apiErr.Code != tt.wantCode {
					t.Fatalf("code = %s (%s), want %s", apiErr.Code, apiErr.Message, tt.wantCode)
				}
				return
			}
			if err != nil {
				t.Fatalf("decodeAppend: %v", err)
			}
			if len(got.items) != tt.wantItems || len(got.lines) != tt.wantLines {
				t.Fatalf("got %d items and %d lines, want %d and %d", len(got.items), len(got.lines), tt.wantItems, tt.wantLines)
			}
			checkAppendBody(t, got)
		})
	}
}

func TestDecodeAppendKeepsPayloadBytes(t *testing.T) {
	body := `{"type":"future_kind","payload":{"z":1,"a":[true,null],"u":"\u00e9"}}`
	got, err := decodeAppend(false, []byte(body))
	if err != nil {
		t.Fatalf("decodeAppend: %v", err)
	}
	if want := `{"z":1,"a":[true,null],"u":"\u00e9"}`; string(got.items[0].Payload) != want {
		t.Fatalf("payload = %s, want %s", got.items[0].Payload, want)
	}
}

// checkAppendBody checks the invariants of a successful decode.
func checkAppendBody(t *testing.T, got appendBody) {
	t.Helper()
	if len(got.items) == 0 && len(got.lines) == 0 {
		t.Fatal("decode succeeded with nothing to append")
	}
	if len(got.items) > 0 && len(got.lines) > 0 {
		t.Fatal("decode returned both items and lines")
	}
	for i, it := range got.items {
		if it.Type == "" {
			t.Fatalf("item %d has no type", i)
		}
		// The string rule (issue #14): what spool parses is text.
		for _, field := range []string{it.Type, it.Timestamp} {
			if checkText(field) != nil {
				t.Fatalf("item %d field %q is not text", i, field)
			}
		}
		if !json.Valid(it.Payload) || it.Payload[0] != '{' || bytes.ContainsRune(it.Payload, '\n') {
			t.Fatalf("item %d payload %q is not a one-line JSON object", i, it.Payload)
		}
	}
	for i, line := range got.lines {
		if !json.Valid(line) || bytes.ContainsRune(line, '\n') {
			t.Fatalf("line %d %q is not one line of JSON", i, line)
		}
	}
}

// addSeeds adds every file of testdata/server as a fuzz seed.
func addSeeds(f *testing.F, add func(data []byte)) {
	paths, err := filepath.Glob(filepath.Join("..", "testdata", "server", "*"))
	if err != nil || len(paths) == 0 {
		f.Fatalf("no seeds in testdata/server: %v", err)
	}
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		add(data)
	}
}

func FuzzDecodeAppend(f *testing.F) {
	addSeeds(f, func(data []byte) {
		f.Add(false, data)
		f.Add(true, data)
	})
	f.Add(false, []byte(`{"items":[{"type":"a","payload":{"k":"v"}}]}`))
	f.Add(true, []byte("{\"type\":\"a\"}\r\n\n[]\n"))
	f.Fuzz(func(t *testing.T, ndjson bool, data []byte) {
		got, err := decodeAppend(ndjson, data)
		if err != nil {
			var apiErr *Error
			if !errors.As(err, &apiErr) {
				t.Fatalf("error %v (%T) is not an *Error", err, err)
			}
			if apiErr.Status != http.StatusBadRequest {
				t.Fatalf("status = %d, want 400", apiErr.Status)
			}
			return
		}
		checkAppendBody(t, got)
	})
}

func FuzzDecodeStrictObject(f *testing.F) {
	f.Add([]byte(`{"cwd":"/w","source":{"custom":"atlas"},"git":{"branch":"main"}}`))
	f.Add([]byte(`{"before_user_message":1,"name":"n"}`))
	f.Add([]byte(`{"name":null}`))
	f.Add([]byte(``))
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, target := range []any{new(createRequest), new(forkRequest), new(renameRequest)} {
			err := decodeStrictObject(data, target, true)
			var apiErr *Error
			if err != nil && !errors.As(err, &apiErr) {
				t.Fatalf("error %v (%T) is not an *Error", err, err)
			}
			if err != nil && apiErr.Status != http.StatusBadRequest {
				t.Fatalf("status = %d, want 400", apiErr.Status)
			}
		}
	})
}

func TestIsNDJSON(t *testing.T) {
	tests := []struct {
		contentType string
		want        bool
		wantErr     bool
	}{
		{"", false, false},
		{"application/json", false, false},
		{"application/json; charset=utf-8", false, false},
		{"application/vnd.spool+json", false, false},
		{"application/x-www-form-urlencoded", false, true}, // curl -d: a browser form can send it cross-site (issue #14)
		{"application/x-ndjson", true, false},
		{"application/jsonl", true, false},
		{"text/plain", false, true},
		{"multipart/form-data; boundary=x", false, true},
		{"application/json; =", false, true},
	}
	for _, tt := range tests {
		t.Run(tt.contentType, func(t *testing.T) {
			got, err := isNDJSON(tt.contentType, true)
			if (err != nil) != tt.wantErr {
				t.Fatalf("isNDJSON(%q) error = %v, want error %v", tt.contentType, err, tt.wantErr)
			}
			if got != tt.want {
				t.Fatalf("isNDJSON(%q) = %v, want %v", tt.contentType, got, tt.want)
			}
		})
	}
}

// TestUnsupportedTypeNamesWhatTheRouteReads: a 415 names the types the
// route reads: JSON or NDJSON on the append route, JSON alone elsewhere.
func TestUnsupportedTypeNamesWhatTheRouteReads(t *testing.T) {
	for _, tt := range []struct {
		pattern    string
		wantNDJSON bool
	}{
		{appendPattern, true},
		{"POST /v1/threads", false},
	} {
		err := checkContentType("text/plain", tt.pattern, false)
		var apiErr *Error
		if !errors.As(err, &apiErr) || apiErr.Status != http.StatusUnsupportedMediaType {
			t.Fatalf("%s: %v, want a 415", tt.pattern, err)
		}
		if got := strings.Contains(apiErr.Message, mediaNDJSON); got != tt.wantNDJSON {
			t.Errorf("%s: message %q names %s: %v, want %v", tt.pattern, apiErr.Message, mediaNDJSON, got, tt.wantNDJSON)
		}
	}
}

// TestStrictObjectAtEveryDepth: decodeStrictObject refuses a member not
// named exactly as a field in every object that decodes into a struct,
// array elements and map values among them, as the json.Decoder with
// DisallowUnknownFields it replaced did for unknown names (and more: that
// one matched names regardless of case).
func TestStrictObjectAtEveryDepth(t *testing.T) {
	type leaf struct {
		Name string `json:"name"`
	}
	type body struct {
		One  *leaf           `json:"one"`
		List []leaf          `json:"list"`
		ByID map[string]leaf `json:"by_id"`
	}
	tests := []struct {
		name, body, wantErr string // wantErr: "" for success, else in the message
	}{
		{"known", `{"one":{"name":"a"},"list":[{"name":"b"}],"by_id":{"x":{"name":"c"}}}`, ""},
		{"unknown at the top", `{"two":1}`, `unknown field "two"`},
		{"unknown in a field's object", `{"one":{"nmae":"a"}}`, `unknown field "nmae"`},
		{"unknown in an array element", `{"list":[{"name":"b"},{"extra":1}]}`, `unknown field "extra"`},
		{"unknown in a map value", `{"by_id":{"x":{"name":"c","more":true}}}`, `unknown field "more"`},
		{"other case in an array element", `{"list":[{"Name":"b"}]}`, `unknown field "Name"`},
		{"twice in a map value", `{"by_id":{"x":{"name":"c","name":"d"}}}`, `field "name" given twice`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got body
			err := decodeStrictObject([]byte(tt.body), &got, false)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("decodeStrictObject(%s): %v", tt.body, err)
				}
				if got.One.Name != "a" || got.List[0].Name != "b" || got.ByID["x"].Name != "c" {
					t.Fatalf("decoded %+v", got)
				}
				return
			}
			var apiErr *Error
			if !errors.As(err, &apiErr) || apiErr.Code != CodeInvalidArgument || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("decodeStrictObject(%s) = %v, want invalid_argument saying %s", tt.body, err, tt.wantErr)
			}
		})
	}
}

package server

import (
	"encoding/json"
	"reflect"
	"testing"

	"github.com/spoolhq/spool/api"
)

// TestThreadJSONMatchesMarshal: the hand-written encoding of a page is
// byte for byte json.Marshal's, for every field set and unset (omitempty)
// and strings that need escaping. A field added to api.Thread with a
// JSON name fails the field count check until appendThread writes it.
func TestThreadJSONMatchesMarshal(t *testing.T) {
	full := api.Thread{
		ID: "019dab4f-6b3e-7c21-9a40-5d3e2f1a0b9c", RolloutPath: "sessions/2026/04/20/r.jsonl",
		CreatedAt: 1, UpdatedAt: -2, Cwd: "/w", Source: "cli", Originator: "o", CLIVersion: "0.169.0",
		ModelProvider: "openai", GitCommit: "abc", GitBranch: "main", GitOrigin: "git@x:y",
		Name: "name", Preview: "preview", Archived: true, ArchivedAt: 3, ParentID: "p",
		ForkUserMessage: -1, ForkOffset: 4, LineCount: 5, UserMessageCount: 6, IndexedSize: 7,
		HistoryMode: "paginated", BaseID: "b", BaseSize: 10,
	}
	odd := full
	odd.Name = "quote \" backslash \\ <html> & tab\t nl\n nul\x00 del\x7f é 😀 \u2028 bad \xff"
	odd.Preview = "\x1f\b\f\r"
	odd.Cwd = "C:\\Users\\<me>"
	for _, tc := range []struct {
		name string
		page api.Page
	}{
		{"empty", api.Page{Threads: []api.Thread{}}},
		{"zero thread", api.Page{Threads: []api.Thread{{}}}},
		{"every field", api.Page{Threads: []api.Thread{full}, NextCursor: "eyJzIjoidXBkYXRlZF9hdCJ9"}},
		{"escapes", api.Page{Threads: []api.Thread{odd, full, {}}, NextCursor: "a&b"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			want, err := json.Marshal(tc.page)
			if err != nil {
				t.Fatal(err)
			}
			if got := appendPage(nil, tc.page); string(got) != string(want) {
				t.Fatalf("appendPage =\n%s\njson.Marshal =\n%s", got, want)
			}
		})
	}

	// Every field with a JSON name must be written by appendThread: with
	// all of them set, the object has one key per such field.
	var named int
	for f := range reflect.TypeFor[api.Thread]().Fields() {
		if tag := f.Tag.Get("json"); tag != "-" {
			named++
		}
	}
	var keys map[string]json.RawMessage
	if err := json.Unmarshal(appendThread(nil, &full), &keys); err != nil {
		t.Fatal(err)
	}
	if len(keys) != named {
		t.Fatalf("appendThread writes %d keys, api.Thread has %d JSON fields", len(keys), named)
	}
}

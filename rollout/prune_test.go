package rollout

import (
	"encoding/json"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// TestMetaFieldsAreMetaLines checks that prunePayload keeps every field
// ParseSessionMeta decodes: metaFields are metaLine's payload tags.
func TestMetaFieldsAreMetaLines(t *testing.T) {
	payload, ok := reflect.TypeFor[metaLine]().FieldByName("Payload")
	if !ok {
		t.Fatal("metaLine has no Payload")
	}
	var tags []string
	for f := range payload.Type.Fields() {
		tags = append(tags, strings.Split(f.Tag.Get("json"), ",")[0])
	}
	if !slices.Equal(tags, metaFields) {
		t.Errorf("metaFields = %q, metaLine's payload tags = %q", metaFields, tags)
	}
}

// pruneSeeds are lines whose pruning encoding/json could tell from the
// line itself if prunePayload got a rule wrong.
var pruneSeeds = []string{
	`{"timestamp":"t","type":"session_meta","payload":{"base_instructions":{"text":"long"},"id":"019b9f8f-b510-73c6-818e-12b5db2a44f7","cwd":"/w"}}`,
	`{"payload":{"id":"a","cwd":"/one"},"payload":{"cwd":"/two"}}`, // duplicates merge
	`{"PAYLOAD":{"ID":"a","Cwd":"/x"}}`,                                 // names fold
	`{"p\u0061yload":{"\u0069d":"a","c\u0077d":"/x"}}`,                  // escaped names
	`{"payload":{"\u212aey":1,"ſource":"cli","ſpool_fork_point":null}}`, // non-ASCII letters that fold to k and s
	`{"payload":"not an object"}`,                                       // a payload that fails to decode
	`{"payload":{"id":5}}`,                                              // a known member of the wrong type
	`{"payload":{"git":{"branch":"b"},"git":null,"x":[1,{"y":2}],"source":{"subagent":{}}}}`,
	`{"payload":null,"other":{"payload":{"id":"x"}}}`,
	`{"payload":{}}`,
	`{}`,
	` { "payload" : { "id" : "a" , "zz" : [ ] } } `,
	`[1,2]`,
}

// FuzzPrunePayload checks prunePayload against encoding/json: decoding a
// valid line and decoding its pruned copy into metaLine give the same
// value, or both fail.
func FuzzPrunePayload(f *testing.F) {
	for _, path := range fixtureFiles(f) {
		data, err := os.ReadFile(path)
		if err != nil {
			f.Fatal(err)
		}
		for line := range strings.SplitSeq(string(data), "\n") {
			f.Add([]byte(line))
		}
	}
	for _, seed := range pruneSeeds {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		if !json.Valid(line) {
			return
		}
		var whole, pruned metaLine
		wholeErr := json.Unmarshal(line, &whole)
		prunedLine := prunePayload(line, metaFields)
		prunedErr := json.Unmarshal(prunedLine, &pruned)
		if (wholeErr == nil) != (prunedErr == nil) {
			t.Fatalf("line %s: decoding it: %v; decoding %s: %v", line, wholeErr, prunedLine, prunedErr)
		}
		if wholeErr == nil && !reflect.DeepEqual(whole, pruned) {
			t.Fatalf("line %s decodes to %+v, pruned %s to %+v", line, whole.Payload, prunedLine, pruned.Payload)
		}
	})
}

// TestPrunePayloadLeavesOut checks what the pruning is for: members no
// field of the payload can take are not in the copy.
func TestPrunePayloadLeavesOut(t *testing.T) {
	tests := []struct{ line, want string }{
		{`{"timestamp":"t","type":"session_meta","payload":{"base_instructions":{"text":"long"},"id":"a"}}`, `{"payload":{"id":"a"}}`},
		{` { "payload" : { "ID" : "a" , "zz" : [ ] } } `, `{"payload":{"ID":"a"}}`},
		{`{"payload":{"\u0078":1,"ſ":2,"y":3}}`, `{"payload":{"\u0078":1,"ſ":2}}`},
		{`{"payload":[1],"Payload":{"cwd":"/"}}`, `{"payload":[1],"Payload":{"cwd":"/"}}`},
		{`{"payload":{"id":"a"`, `{"payload":{"id":"a"`}, // not JSON: as it was
	}
	for _, tt := range tests {
		if got := string(prunePayload([]byte(tt.line), metaFields)); got != tt.want {
			t.Errorf("prunePayload(%s) = %s, want %s", tt.line, got, tt.want)
		}
	}
}

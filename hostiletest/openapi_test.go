package hostiletest_test

import (
	"encoding/json"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/spoolhq/spool/server"
)

// operation is one documented operation: its statuses and, per status, the
// response headers it names.
type operation struct {
	pattern  *regexp.Regexp
	method   string
	statuses map[int][]string
}

var (
	operationsOnce sync.Once
	operations     []operation
	operationsErr  error
)

// loadOperations reads the OpenAPI document spoold serves, resolving
// response references.
func loadOperations() ([]operation, error) {
	operationsOnce.Do(func() {
		var doc struct {
			Paths      map[string]map[string]json.RawMessage `json:"paths"`
			Components struct {
				Responses map[string]json.RawMessage `json:"responses"`
			} `json:"components"`
		}
		if operationsErr = json.Unmarshal(server.OpenAPI(), &doc); operationsErr != nil {
			return
		}
		type response struct {
			Ref     string                     `json:"$ref"`
			Headers map[string]json.RawMessage `json:"headers"`
		}
		resolve := func(raw json.RawMessage) response {
			var r response
			json.Unmarshal(raw, &r)
			if name, ok := strings.CutPrefix(r.Ref, "#/components/responses/"); ok {
				var target response
				json.Unmarshal(doc.Components.Responses[name], &target)
				return target
			}
			return r
		}
		segment := regexp.MustCompile(`\\\{[a-z]+\\\}`)
		for path, item := range doc.Paths {
			re := regexp.MustCompile("^" + segment.ReplaceAllString(regexp.QuoteMeta(path), `[^/]+`) + "$")
			for method, raw := range item {
				var op struct {
					Responses map[string]json.RawMessage `json:"responses"`
				}
				if json.Unmarshal(raw, &op) != nil || op.Responses == nil {
					continue // path-level parameters
				}
				o := operation{pattern: re, method: strings.ToUpper(method), statuses: map[int][]string{}}
				for status, resp := range op.Responses {
					code, _ := strconv.Atoi(status)
					for name := range resolve(resp).Headers {
						o.statuses[code] = append(o.statuses[code], strings.ToLower(name))
					}
					if o.statuses[code] == nil {
						o.statuses[code] = []string{}
					}
				}
				operations = append(operations, o)
			}
		}
	})
	return operations, operationsErr
}

// checkDocumented fails unless the OpenAPI document lists status for
// method and path (a request path, query removed), with the headers the
// answer carried among Location, Retry-After and X-Request-Id. Paths that
// match no documented route are not checked.
func checkDocumented(t *testing.T, method, path string, resp rawResponse) {
	t.Helper()
	ops, err := loadOperations()
	if err != nil {
		t.Fatalf("load openapi.json: %v", err)
	}
	path, _, _ = strings.Cut(path, "?")
	for _, op := range ops {
		if op.method != method || !op.pattern.MatchString(path) {
			continue
		}
		headers, ok := op.statuses[resp.status]
		if !ok {
			t.Errorf("openapi.json: %s %s does not document status %d", method, op.pattern, resp.status)
			return
		}
		for _, name := range []string{"location", "retry-after", "x-request-id"} {
			if resp.header.Get(name) == "" {
				continue
			}
			found := false
			for _, h := range headers {
				found = found || h == name
			}
			if !found {
				t.Errorf("openapi.json: %s %s %d does not document header %s", method, op.pattern, resp.status, name)
			}
		}
		return
	}
}

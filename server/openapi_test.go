package server

import (
	"encoding/json"
	"go/ast"
	"go/parser"
	"go/token"
	"maps"
	"net/http/httptest"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/spoolhq/spool/api"
)

// TestOpenAPIMatchesRoutes fails when a route is registered but not
// documented, or documented but not registered.
func TestOpenAPIMatchesRoutes(t *testing.T) {
	var doc struct {
		OpenAPI string                                `json:"openapi"`
		Paths   map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(OpenAPI(), &doc); err != nil {
		t.Fatalf("parse openapi.json: %v", err)
	}
	if !strings.HasPrefix(doc.OpenAPI, "3.1") {
		t.Fatalf("openapi = %q, want 3.1.x", doc.OpenAPI)
	}
	var documented []string
	for path, item := range doc.Paths {
		for method := range item {
			switch method {
			case "get", "put", "post", "delete", "options", "head", "patch", "trace":
				documented = append(documented, strings.ToUpper(method)+" "+path)
			}
		}
	}
	s := New(nil, Config{})
	var registered []string
	for _, rt := range s.routes() {
		registered = append(registered, rt.pattern())
	}
	slices.Sort(documented)
	slices.Sort(registered)
	for _, p := range registered {
		if !slices.Contains(documented, p) {
			t.Errorf("route %q is registered but not in openapi.json", p)
		}
	}
	for _, p := range documented {
		if !slices.Contains(registered, p) {
			t.Errorf("route %q is in openapi.json but not registered", p)
		}
	}

	// The mux must route every documented operation to that very pattern.
	fill := strings.NewReplacer("{id}", "0190f3a4-7b1c-7def-8123-456789abcdef", "{k}", "0")
	for _, p := range documented {
		method, path, _ := strings.Cut(p, " ")
		r := httptest.NewRequest(method, fill.Replace(path), nil)
		if _, got := s.mux.Handler(r); got != p {
			t.Errorf("%s %s routes to %q, want %q", method, fill.Replace(path), got, p)
		}
	}
}

// TestOpenAPIDocumentsEdgeAnswers checks that every operation documents the
// answers the middleware can give on any route (400 for odd bytes, 403 for
// a foreign Host or Origin, 503 with Retry-After for saturation; 408, 413
// and 415 on routes with bodies), that 201 answers name Location, and that
// every answer names X-Request-Id (issues #14 and #15).
func TestOpenAPIDocumentsEdgeAnswers(t *testing.T) {
	var doc struct {
		Paths      map[string]map[string]json.RawMessage `json:"paths"`
		Components struct {
			Responses map[string]json.RawMessage `json:"responses"`
		} `json:"components"`
	}
	if err := json.Unmarshal(OpenAPI(), &doc); err != nil {
		t.Fatalf("parse openapi.json: %v", err)
	}
	type response struct {
		Ref     string                     `json:"$ref"`
		Headers map[string]json.RawMessage `json:"headers"`
	}
	headersOf := func(raw json.RawMessage) map[string]json.RawMessage {
		var r response
		json.Unmarshal(raw, &r)
		if name, ok := strings.CutPrefix(r.Ref, "#/components/responses/"); ok {
			json.Unmarshal(doc.Components.Responses[name], &r)
		}
		return r.Headers
	}
	for path, item := range doc.Paths {
		for method, raw := range item {
			if method == "parameters" {
				continue
			}
			var op struct {
				Responses map[string]json.RawMessage `json:"responses"`
			}
			if err := json.Unmarshal(raw, &op); err != nil {
				t.Fatalf("%s %s: %v", method, path, err)
			}
			want := []string{"400", "403"}
			if path != "/healthz" {
				want = append(want, "503")
			}
			if method == "post" || method == "patch" {
				want = append(want, "408", "413", "415")
			}
			for _, status := range want {
				if _, ok := op.Responses[status]; !ok {
					t.Errorf("%s %s does not document %s", method, path, status)
				}
			}
			for status, resp := range op.Responses {
				headers := headersOf(resp)
				need := []string{"X-Request-Id"}
				switch {
				case status == "201":
					need = append(need, "Location")
				case status == "503" && path != "/healthz":
					need = append(need, "Retry-After")
				}
				for _, h := range need {
					if _, ok := headers[h]; !ok {
						t.Errorf("%s %s %s does not document header %s", method, path, status, h)
					}
				}
			}
		}
	}
}

// TestOpenAPISchemasMatchTypes checks each schema against the Go type the
// server encodes (api's, or the server's own for turns): every JSON field
// is a property and every property a field, and the fields always present
// (no omitempty) are exactly the required ones, so a generated client
// neither misses a field nor makes a present one optional.
func TestOpenAPISchemasMatchTypes(t *testing.T) {
	var doc struct {
		Components struct {
			Schemas map[string]struct {
				Required   []string                   `json:"required"`
				Properties map[string]json.RawMessage `json:"properties"`
			} `json:"schemas"`
		} `json:"components"`
	}
	if err := json.Unmarshal(OpenAPI(), &doc); err != nil {
		t.Fatal(err)
	}
	for name, v := range map[string]any{
		"Thread":       api.Thread{},
		"Page":         api.Page{},
		"Item":         api.Item{},
		"AppendResult": api.AppendResult{},
		"UserMessage":  api.UserMessage{},
		"Relative":     api.Relative{},
		"SearchHit":    api.SearchHit{},
		"Event":        api.Event{},
		"StreamEnd":    api.StreamEnd{},
		"FullTurn":     FullTurn{},
		"TurnItem":     TurnItem{},
	} {
		t.Run(name, func(t *testing.T) {
			schema, ok := doc.Components.Schemas[name]
			if !ok {
				t.Fatalf("no schema %s", name)
			}
			var fields, required []string
			typ := reflect.TypeOf(v)
			for i := range typ.NumField() {
				tag := typ.Field(i).Tag.Get("json")
				field, opts, _ := strings.Cut(tag, ",")
				if field == "-" || field == "" {
					continue
				}
				fields = append(fields, field)
				if opts != "omitempty" {
					required = append(required, field)
				}
			}
			slices.Sort(fields)
			if props := slices.Sorted(maps.Keys(schema.Properties)); !slices.Equal(props, fields) {
				t.Errorf("properties = %v, want the fields %v", props, fields)
			}
			slices.Sort(required)
			got := slices.Sorted(slices.Values(schema.Required))
			if !slices.Equal(got, required) {
				t.Errorf("required = %v, want %v", got, required)
			}
		})
	}
}

// TestOpenAPIListsEveryErrorCode fails when a Code constant of errors.go
// is missing from the Error schema's code enum, or the enum lists a code
// the server does not have.
func TestOpenAPIListsEveryErrorCode(t *testing.T) {
	var doc struct {
		Components struct {
			Schemas map[string]struct {
				Properties struct {
					Error struct {
						Properties struct {
							Code struct {
								Enum []string `json:"enum"`
							} `json:"code"`
						} `json:"properties"`
					} `json:"error"`
				} `json:"properties"`
			} `json:"schemas"`
		} `json:"components"`
	}
	if err := json.Unmarshal(OpenAPI(), &doc); err != nil {
		t.Fatal(err)
	}
	documented := doc.Components.Schemas["Error"].Properties.Error.Properties.Code.Enum
	f, err := parser.ParseFile(token.NewFileSet(), "errors.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	var codes []string
	ast.Inspect(f, func(n ast.Node) bool {
		vs, ok := n.(*ast.ValueSpec)
		if !ok {
			return true
		}
		for i, name := range vs.Names {
			if i >= len(vs.Values) || !strings.HasPrefix(name.Name, "Code") {
				continue
			}
			if lit, ok := vs.Values[i].(*ast.BasicLit); ok && lit.Kind == token.STRING {
				code, err := strconv.Unquote(lit.Value)
				if err != nil {
					t.Fatal(err)
				}
				codes = append(codes, code)
			}
		}
		return true
	})
	slices.Sort(codes)
	slices.Sort(documented)
	if len(codes) == 0 || !slices.Equal(codes, documented) {
		t.Fatalf("error codes in errors.go %v\nin the OpenAPI document %v", codes, documented)
	}
}

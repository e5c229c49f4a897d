package server

import (
	"encoding/json"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
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

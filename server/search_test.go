package server_test

import (
	"net/http"
	"net/url"
	"testing"

	"github.com/spoolhq/spool/server"
)

type searchPage struct {
	Hits []struct {
		ThreadID string `json:"thread_id"`
		Ordinal  int    `json:"ordinal"`
		Name     string `json:"name"`
	} `json:"hits"`
	NextCursor string `json:"next_cursor"`
}

// TestSearchLanguage goes through the query language, filters and pages
// over HTTP; malformed queries are 400 invalid_query, never 500.
func TestSearchLanguage(t *testing.T) {
	e := newEnv(t, server.Config{})
	a := e.create(map[string]any{"cwd": "/a", "name": "alpha"})
	b := e.create(map[string]any{"cwd": "/b", "source": "exec", "name": "beta"})
	e.appendItems(a.ID, userItem("list hidden files"), userItem("remove temporary files"))
	e.appendItems(b.ID, userItem("list hidden directories"))

	search := func(q url.Values) searchPage {
		t.Helper()
		var page searchPage
		e.call("GET", "/v1/search?"+q.Encode(), nil, http.StatusOK, &page)
		return page
	}
	for _, tc := range []struct {
		name string
		q    url.Values
		want int
	}{
		{"words", url.Values{"q": {"hidden list"}}, 2},
		{"phrase", url.Values{"q": {`"hidden files"`}}, 1},
		{"or", url.Values{"q": {"temporary OR directories"}}, 2},
		{"minus", url.Values{"q": {"files -hidden"}}, 1},
		{"prefix", url.Values{"q": {"direct*"}}, 1},
		{"cwd", url.Values{"q": {"hidden"}, "cwd": {"/b"}}, 1},
		{"source", url.Values{"q": {"hidden"}, "source": {"exec"}}, 1},
		{"thread", url.Values{"q": {"files"}, "thread": {a.ID}}, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := len(search(tc.q).Hits); got != tc.want {
				t.Fatalf("%d hits, want %d", got, tc.want)
			}
		})
	}
	page := search(url.Values{"q": {"directories"}})
	if len(page.Hits) != 1 || page.Hits[0].Name != "beta" {
		t.Fatalf("hits %+v, want one in thread named beta", page.Hits)
	}
	first := search(url.Values{"q": {"list"}, "limit": {"1"}})
	if len(first.Hits) != 1 || first.NextCursor == "" {
		t.Fatalf("first page %+v, want one hit and a cursor", first)
	}
	second := search(url.Values{"q": {"list"}, "limit": {"1"}, "cursor": {first.NextCursor}})
	if len(second.Hits) != 1 || second.NextCursor != "" || second.Hits[0].ThreadID == first.Hits[0].ThreadID {
		t.Fatalf("second page %+v after %+v", second, first)
	}
	for _, bad := range []string{`"open`, "(a", "a OR", "-a", "NOT", "a)"} {
		resp := e.do("GET", "/v1/search?"+url.Values{"q": {bad}}.Encode(), "", nil)
		wantError(t, resp, http.StatusBadRequest, "invalid_query")
	}
	wantError(t, e.do("GET", "/v1/search?q=a&thread=nope", "", nil), http.StatusBadRequest, "invalid_id")
	wantError(t, e.do("GET", "/v1/search?q=a&cursor=%21", "", nil), http.StatusBadRequest, "invalid_argument")
}

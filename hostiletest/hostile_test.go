package hostiletest_test

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const (
	jsonType  = "Content-Type: application/json"
	userItem  = `{"type":"response_item","payload":{"type":"message","role":"user","content":[{"type":"input_text","text":"hi"}]}}`
	evilSite  = "https://evil.example"
	allowedUI = "https://app.example"
)

// TestHostileRequestsRefused sends, on raw connections to a real spoold
// with the default settings, each request of issue #14 that must be
// refused, checks its status and error code, and checks after each one that
// no thread was created and no rollout file changed. Each answer must also
// carry an X-Request-Id, echoed in the error body, and be documented in
// openapi.json.
func TestHostileRequestsRefused(t *testing.T) {
	p := startSpoold(t)
	id := p.createThread(t)
	items := "/v1/threads/" + id + "/items"
	port := p.port()

	tests := []struct {
		name       string
		method     string
		target     string
		headers    []string
		body       string
		wantStatus int
		wantCode   string
	}{
		// A web page the user opens (issue #14: a cross-site POST was 201).
		{"cross-site form POST", "POST", "/v1/threads",
			[]string{"Origin: " + evilSite, "Content-Type: application/x-www-form-urlencoded"}, `{"cwd":"/x"}`,
			http.StatusForbidden, "forbidden_origin"},
		{"cross-site fetch text/plain", "POST", items,
			[]string{"Origin: " + evilSite, "Content-Type: text/plain"}, userItem,
			http.StatusForbidden, "forbidden_origin"},
		{"cross-site JSON with allowed-looking origin prefix", "POST", "/v1/threads",
			[]string{"Origin: " + allowedUI + ".evil.example", jsonType}, `{}`,
			http.StatusForbidden, "forbidden_origin"},
		{"sandboxed page Origin null", "POST", "/v1/threads",
			[]string{"Origin: null", jsonType}, `{}`,
			http.StatusForbidden, "forbidden_origin"},
		{"cross-site GET without Origin", "GET", "/v1/threads",
			[]string{"Sec-Fetch-Site: cross-site"}, "",
			http.StatusForbidden, "forbidden_origin"},
		{"DNS rebinding read", "GET", "/v1/threads",
			[]string{"Host: rebind.evil.example:" + port}, "",
			http.StatusForbidden, "forbidden_host"},
		{"DNS rebinding write, same-origin to the page", "POST", "/v1/threads",
			[]string{"Host: rebind.evil.example:" + port, "Origin: http://rebind.evil.example:" + port, jsonType}, `{}`,
			http.StatusForbidden, "forbidden_host"},
		{"no Host", "GET", "/v1/threads", []string{"Host:"}, "",
			http.StatusForbidden, "forbidden_host"},
		// Simple content types. The form type is curl -d's, read as JSON
		// from a client that is not a browser; from a page it is refused.
		{"form post a browser marks", "POST", "/v1/threads",
			[]string{"Sec-Fetch-Site: same-origin", "Content-Type: application/x-www-form-urlencoded"}, `{"cwd":"/x"}`,
			http.StatusUnsupportedMediaType, "unsupported_media_type"},
		{"multipart body", "POST", items,
			[]string{"Content-Type: multipart/form-data; boundary=x"}, "--x\r\n\r\n" + userItem + "\r\n--x--\r\n",
			http.StatusUnsupportedMediaType, "unsupported_media_type"},
		{"text/plain body", "PATCH", "/v1/threads/" + id,
			[]string{"Content-Type: text/plain"}, `{"name":"x"}`,
			http.StatusUnsupportedMediaType, "unsupported_media_type"},
		{"NDJSON on a JSON route", "POST", "/v1/threads",
			[]string{"Content-Type: application/x-ndjson"}, `{}`,
			http.StatusUnsupportedMediaType, "unsupported_media_type"},
		{"body past -max-body", "POST", items,
			[]string{jsonType, fmt.Sprintf("Content-Length: %d", 64<<20+1)}, "",
			http.StatusRequestEntityTooLarge, "too_large"},
		// Odd bytes.
		{"search q=%00 (was 500)", "GET", "/v1/search?q=%00", nil, "",
			http.StatusBadRequest, "invalid_argument"},
		{"search q invalid UTF-8", "GET", "/v1/search?q=%ff", nil, "",
			http.StatusBadRequest, "invalid_argument"},
		{"search of 30,000 words", "GET", "/v1/search?q=" + strings.Repeat("x+", 30000), nil, "",
			http.StatusBadRequest, "invalid_query"},
		{"list filter q=%00 (matched every thread)", "GET", "/v1/threads?q=a%00", nil, "",
			http.StatusBadRequest, "invalid_argument"},
		{"list filter cwd invalid UTF-8", "GET", "/v1/threads?cwd=%c3%28", nil, "",
			http.StatusBadRequest, "invalid_argument"},
		{"query name with NUL", "GET", "/v1/threads?%00=1", nil, "",
			http.StatusBadRequest, "invalid_argument"},
		{"path %2e%2e (was 404)", "GET", "/v1/threads/%2e%2e", nil, "",
			http.StatusBadRequest, "invalid_id"},
		{"path %2e%2e/items", "POST", "/v1/threads/%2e%2e/items",
			[]string{jsonType}, userItem,
			http.StatusBadRequest, "invalid_id"},
		{"path %2F in id", "GET", "/v1/threads/" + id + "%2Fx", nil, "",
			http.StatusBadRequest, "invalid_id"},
		{"path NUL", "GET", "/v1/threads/%00", nil, "",
			http.StatusBadRequest, "invalid_id"},
		{"path invalid UTF-8", "GET", "/v1/threads/%ff%fe", nil, "",
			http.StatusBadRequest, "invalid_id"},
		{"turns/+1 (was accepted)", "GET", "/v1/threads/" + id + "/turns/+1", nil, "",
			http.StatusBadRequest, "invalid_argument"},
		{"turns/%2B1", "GET", "/v1/threads/" + id + "/turns/%2B1", nil, "",
			http.StatusBadRequest, "invalid_argument"},
		{"limit=+5", "GET", "/v1/threads?limit=+5", nil, "",
			http.StatusBadRequest, "invalid_argument"},
		{"header invalid UTF-8", "GET", "/v1/threads",
			[]string{"X-Note: caf\xe9"}, "",
			http.StatusBadRequest, "invalid_argument"},
		{"X-Request-Id too long", "GET", "/v1/threads",
			[]string{"X-Request-Id: " + strings.Repeat("a", 129)}, "",
			http.StatusBadRequest, "invalid_argument"},
		{"item type with \\u0000", "POST", items,
			[]string{jsonType}, `{"type":"response\u0000item","payload":{}}`,
			http.StatusBadRequest, "invalid_item"},
		{"item type invalid UTF-8 (was U+FFFD)", "POST", items,
			[]string{jsonType}, "{\"type\":\"response\xffitem\",\"payload\":{}}",
			http.StatusBadRequest, "invalid_json"},
		{"item timestamp lone surrogate (was U+FFFD)", "POST", items,
			[]string{jsonType}, `{"type":"event_msg","timestamp":"2026-01-01T00:00:00.000Z\ud800","payload":{}}`,
			http.StatusBadRequest, "invalid_item"},
		{"batch item type with \\u0000", "POST", items,
			[]string{jsonType}, `{"items":[` + userItem + `,{"type":"a\u0000","payload":{}}]}`,
			http.StatusBadRequest, "invalid_item"},
		{"payload invalid UTF-8", "POST", items,
			[]string{jsonType}, "{\"type\":\"event_msg\",\"payload\":{\"text\":\"\xc3\x28\"}}",
			http.StatusBadRequest, "invalid_json"},
		{"NDJSON line type with \\u0000", "POST", items,
			[]string{"Content-Type: application/x-ndjson"}, `{"type":"event\u0000msg","payload":{}}` + "\n",
			http.StatusBadRequest, "invalid_item"},
		{"create cwd with \\u0000", "POST", "/v1/threads",
			[]string{jsonType}, `{"cwd":"/home/\u0000"}`,
			http.StatusBadRequest, "invalid_argument"},
		{"create cwd invalid UTF-8 (was U+FFFD)", "POST", "/v1/threads",
			[]string{jsonType}, "{\"cwd\":\"/home/\xff\"}",
			http.StatusBadRequest, "invalid_json"},
		{"create git branch lone surrogate", "POST", "/v1/threads",
			[]string{jsonType}, `{"git":{"branch":"\udc00"}}`,
			http.StatusBadRequest, "invalid_argument"},
		{"rename with \\u0000", "PATCH", "/v1/threads/" + id,
			[]string{jsonType}, `{"name":"a\u0000b"}`,
			http.StatusBadRequest, "invalid_argument"},
		{"fork cwd with \\u0000", "POST", "/v1/threads/" + id + "/fork",
			[]string{jsonType}, `{"cwd":"\u0000"}`,
			http.StatusBadRequest, "invalid_argument"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := p.snapshot(t)
			resp := p.sendRaw(t, p.request(tt.method, tt.target, tt.headers, tt.body))
			if resp.status != tt.wantStatus || resp.code() != tt.wantCode {
				t.Errorf("%s %s: got %d %s (%s), want %d %s", tt.method, tt.target,
					resp.status, resp.code(), bytes.TrimSpace(resp.body), tt.wantStatus, tt.wantCode)
			}
			checkRequestID(t, resp)
			checkDocumented(t, tt.method, tt.target, resp)
			p.snapshot(t).sameAs(t, before, tt.method+" "+tt.target)
		})
	}
}

// checkRequestID fails unless resp carries an X-Request-Id and, for an
// error, the same id in its body.
func checkRequestID(t *testing.T, resp rawResponse) {
	t.Helper()
	id := resp.header.Get("X-Request-Id")
	if id == "" {
		t.Errorf("answer %d has no X-Request-Id", resp.status)
	}
	if resp.status >= 400 && !bytes.Contains(resp.body, []byte(`"request_id":"`+id+`"`)) {
		t.Errorf("error body %s does not name request %s", resp.body, id)
	}
}

// TestFriendlyRequestsAccepted is the other side of
// TestHostileRequestsRefused: the same routes with the names, types and
// bytes a legitimate client uses succeed, so the refusals above are not a
// server that refuses everything. A \u0000 inside a payload is data and is
// stored byte for byte.
func TestFriendlyRequestsAccepted(t *testing.T) {
	p := startSpoold(t, "-allow-host", "spool.internal")
	id := p.createThread(t)
	items := "/v1/threads/" + id + "/items"
	nulPayload := `{"type":"response_item","payload":{"type":"function_call_output","call_id":"c1","output":"a\u0000b \ud83d\ude00 \u00e9"}}`

	tests := []struct {
		name       string
		method     string
		target     string
		headers    []string
		body       string
		wantStatus int
	}{
		{"curl --json", "POST", "/v1/threads", []string{jsonType, "Accept: application/json"}, `{"cwd":"/w"}`, http.StatusCreated},
		{"curl -d (form type, no Origin)", "POST", "/v1/threads", []string{"Content-Type: application/x-www-form-urlencoded"}, `{"cwd":"/w"}`, http.StatusCreated},
		{"curl -d on append (form type, no Origin)", "POST", items, []string{"Content-Type: application/x-www-form-urlencoded"},
			`{"type":"event_msg","payload":{"type":"x"}}`, http.StatusOK},
		{"no Content-Type", "POST", "/v1/threads", nil, `{"cwd":"/w"}`, http.StatusCreated},
		{"Host localhost", "GET", "/v1/threads", []string{"Host: localhost:" + p.port()}, "", http.StatusOK},
		{"Host [::1]", "GET", "/v1/threads", []string{"Host: [::1]:" + p.port()}, "", http.StatusOK},
		{"Host from -allow-host", "GET", "/v1/threads", []string{"Host: spool.internal"}, "", http.StatusOK},
		{"same-origin Origin", "POST", "/v1/threads", []string{"Origin: http://" + p.Addr, jsonType}, `{}`, http.StatusCreated},
		{"Sec-Fetch-Site none (typed URL)", "GET", "/v1/threads", []string{"Sec-Fetch-Site: none"}, "", http.StatusOK},
		{"NUL escape in a payload is data", "POST", items, []string{jsonType}, nulPayload, http.StatusOK},
		{"NDJSON line with NUL escape in payload", "POST", items, []string{"Content-Type: application/x-ndjson"},
			`{"type":"event_msg","payload":{"type":"x","text":"\u0000"}}` + "\n", http.StatusOK},
		{"turns/0 digits", "GET", "/v1/threads/" + id + "/turns", nil, "", http.StatusOK},
		{"X-Request-Id given", "GET", "/v1/threads", []string{"X-Request-Id: abc-123"}, "", http.StatusOK},
		{"unicode cwd filter", "GET", "/v1/threads?cwd=%C3%A9", nil, "", http.StatusOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := p.sendRaw(t, p.request(tt.method, tt.target, tt.headers, tt.body))
			if resp.status != tt.wantStatus {
				t.Fatalf("%s %s: got %d (%s), want %d", tt.method, tt.target, resp.status, bytes.TrimSpace(resp.body), tt.wantStatus)
			}
			checkRequestID(t, resp)
			checkDocumented(t, tt.method, tt.target, resp)
			for _, h := range tt.headers {
				if given, ok := strings.CutPrefix(h, "X-Request-Id: "); ok && resp.header.Get("X-Request-Id") != given {
					t.Errorf("X-Request-Id = %q, want the client's %q", resp.header.Get("X-Request-Id"), given)
				}
			}
		})
	}

	// The payload's escapes are in the rollout byte for byte.
	history := p.call(t, "GET", items, "", http.StatusOK)
	if !bytes.Contains(history, []byte(`"output":"a\u0000b \ud83d\ude00 \u00e9"`)) {
		t.Fatalf("history does not hold the payload verbatim:\n%s", history)
	}
}

// TestCORS runs spoold with -cors for one origin: a preflight from it is
// answered with the CORS headers and its POST is served with
// Access-Control-Allow-Origin, while a preflight and a POST from another
// origin are refused and write nothing.
func TestCORS(t *testing.T) {
	p := startSpoldCORS(t)
	before := p.snapshot(t)

	preflight := func(origin string) rawResponse {
		return p.sendRaw(t, p.request("OPTIONS", "/v1/threads", []string{
			"Origin: " + origin,
			"Access-Control-Request-Method: POST",
			"Access-Control-Request-Headers: content-type, authorization",
		}, ""))
	}
	ok := preflight(allowedUI)
	if ok.status != http.StatusNoContent {
		t.Fatalf("preflight from %s: status %d (%s), want 204", allowedUI, ok.status, ok.body)
	}
	for name, want := range map[string]string{
		"Access-Control-Allow-Origin":  allowedUI,
		"Access-Control-Allow-Methods": "GET, POST",
		"Access-Control-Allow-Headers": "Authorization, Content-Type, X-Request-Id, Expected-Size, Idempotency-Key, Last-Event-ID",
		"Vary":                         "Origin",
	} {
		if got := ok.header.Get(name); got != want {
			t.Errorf("preflight %s = %q, want %q", name, got, want)
		}
	}
	if bad := preflight(evilSite); bad.status != http.StatusForbidden || bad.code() != "forbidden_origin" ||
		bad.header.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("preflight from %s: %d %s ACAO %q, want 403 forbidden_origin without CORS headers",
			evilSite, bad.status, bad.code(), bad.header.Get("Access-Control-Allow-Origin"))
	}
	refused := p.sendRaw(t, p.request("POST", "/v1/threads", []string{"Origin: " + evilSite, jsonType}, `{}`))
	if refused.status != http.StatusForbidden {
		t.Errorf("POST from %s: status %d, want 403", evilSite, refused.status)
	}
	p.snapshot(t).sameAs(t, before, "refused CORS requests")

	created := p.sendRaw(t, p.request("POST", "/v1/threads", []string{"Origin: " + allowedUI, jsonType}, `{}`))
	if created.status != http.StatusCreated {
		t.Fatalf("POST from %s: status %d (%s), want 201", allowedUI, created.status, created.body)
	}
	if got := created.header.Get("Access-Control-Allow-Origin"); got != allowedUI {
		t.Errorf("POST from %s: Access-Control-Allow-Origin %q", allowedUI, got)
	}
	if got := created.header.Get("Access-Control-Expose-Headers"); !strings.Contains(got, "Location") {
		t.Errorf("POST from %s: Access-Control-Expose-Headers %q lacks Location", allowedUI, got)
	}
	checkDocumented(t, "POST", "/v1/threads", created)
}

func startSpoldCORS(t *testing.T) *spoold {
	t.Helper()
	return startSpoold(t, "-cors", allowedUI)
}

// TestTokenChallenge checks issue #15's 401: with -token, a request
// without it is answered 401 with WWW-Authenticate: Bearer, writes
// nothing, and is logged at INFO (a client error) with its request id.
func TestTokenChallenge(t *testing.T) {
	p := startSpoold(t, "-token", "s3cret")
	resp := p.sendRaw(t, p.request("POST", "/v1/threads", []string{jsonType, "X-Request-Id: req-401"}, `{}`))
	if resp.status != http.StatusUnauthorized || resp.code() != "unauthorized" {
		t.Fatalf("no token: %d %s, want 401 unauthorized", resp.status, resp.code())
	}
	if got := resp.header.Get("WWW-Authenticate"); !strings.HasPrefix(got, "Bearer") {
		t.Errorf("WWW-Authenticate = %q, want Bearer", got)
	}
	checkDocumented(t, "POST", "/v1/threads", resp)
	authed := p.sendRaw(t, p.request("GET", "/v1/threads?archived=all", []string{"Authorization: Bearer s3cret"}, ""))
	if authed.status != http.StatusOK || !bytes.Contains(authed.body, []byte(`"threads":[]`)) {
		t.Fatalf("with token: %d %s, want 200 and no thread", authed.status, authed.body)
	}
	p.Stop(t)
	var line string
	for l := range strings.Lines(p.Log()) {
		if strings.Contains(l, "request_id=req-401") && strings.Contains(l, "msg=request") {
			line = l
		}
	}
	if !strings.Contains(line, "level=INFO") || !strings.Contains(line, "status=401") {
		t.Errorf("log line of the 401 = %q, want level=INFO status=401 request_id=req-401", line)
	}
}

// TestNonLoopbackNeedsToken checks that spoold refuses to listen beyond
// loopback without a token, and does so with -insecure-no-token and a
// warning.
func TestNonLoopbackNeedsToken(t *testing.T) {
	root := filepath.Join(t.TempDir(), "root")
	out, err := runSpoold(t, "-root", root, "-addr", "0.0.0.0:0")
	if err == nil || !strings.Contains(out, "-insecure-no-token") {
		t.Fatalf("spoold -addr 0.0.0.0:0 without a token: err %v, output:\n%s\nwant a refusal naming -insecure-no-token", err, out)
	}
	if _, err := os.Stat(filepath.Join(root, "spool.db")); err == nil {
		t.Errorf("the refused start created an index")
	}
	p := startSpooldOn(t, root, "-addr", "0.0.0.0:0", "-insecure-no-token")
	if !strings.Contains(p.Log(), "level=WARN msg=\"listening beyond loopback without a token") {
		t.Errorf("no warning logged:\n%s", p.Log())
	}
	// Reached through loopback, so the Host is 127.0.0.1.
	conn, err := net.Dial("tcp", "127.0.0.1:"+p.port())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1:%s\r\nConnection: close\r\n\r\n", p.port())
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("healthz on 0.0.0.0: %v %v", resp, err)
	}
	resp.Body.Close()
	p.Stop(t)
}

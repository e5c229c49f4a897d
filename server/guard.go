package server

import (
	"errors"
	"net"
	"net/http"
	"net/url"
	"strings"
	"unicode/utf8"
)

// errInvalidUTF8 is the reason given for strings that are not UTF-8.
var errInvalidUTF8 = errors.New("is not valid UTF-8")

// checkText applies the one rule for strings from clients: valid UTF-8,
// no NUL.
func checkText(s string) error {
	if !utf8.ValidString(s) {
		return errInvalidUTF8
	}
	if strings.IndexByte(s, 0) >= 0 {
		return errNUL
	}
	return nil
}

// hostPolicy decides which Host headers are the server's own names. A
// DNS-rebinding page reaches a loopback server under a name of the
// attacker's (evil.example:7878); refusing foreign names makes such a page
// unable to read or write anything.
type hostPolicy struct {
	port     string          // the listen port; "" accepts any
	listenIP net.IP          // the listen address; nil when unknown
	anyIP    bool            // bound to 0.0.0.0 or [::]: any IP literal names the server
	names    map[string]bool // configured names, lower case, each "host" or "host:port"
}

func newHostPolicy(listenAddr string, allow []string) hostPolicy {
	p := hostPolicy{names: map[string]bool{}}
	for _, name := range allow {
		p.names[strings.ToLower(name)] = true
	}
	if host, port, err := net.SplitHostPort(listenAddr); err == nil {
		p.port = port
		p.listenIP = net.ParseIP(host)
		p.anyIP = host == "" || (p.listenIP != nil && p.listenIP.IsUnspecified())
	}
	return p
}

// allows reports whether hostport, a Host header, names this server: a
// configured name (with any port, or the port given), or localhost, a
// loopback address or the listen address, on the listen port. An IP literal
// is allowed on a server bound to every interface: a rebinding attack needs
// a DNS name.
func (p hostPolicy) allows(hostport string) bool {
	hostport = strings.ToLower(hostport)
	if hostport == "" {
		return false
	}
	host, port, err := net.SplitHostPort(hostport)
	if err != nil { // no port: the default one
		host, port = strings.TrimSuffix(strings.TrimPrefix(hostport, "["), "]"), "80"
	}
	if p.names[host] || p.names[net.JoinHostPort(host, port)] {
		return true
	}
	if p.port != "" && port != p.port {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	switch {
	case ip == nil:
		return false
	case ip.IsLoopback(), p.anyIP:
		return true
	default:
		return p.listenIP != nil && ip.Equal(p.listenIP)
	}
}

// corsHeaders are the request headers a cross-origin client may send.
const corsHeaders = "Authorization, Content-Type, X-Request-Id, Expected-Size, Idempotency-Key, Last-Event-ID"

// corsExposed are the response headers a cross-origin client may read.
const corsExposed = "Location, Retry-After, X-Request-Id, Turn-Offset, Turn-End, Turn-Status, Turn-User-Message"

// guard refuses, before anything else is done, requests a browser could be
// tricked into sending and requests with malformed strings:
//   - 400 for a path, query parameter or header that is not valid UTF-8 or
//     holds a NUL, and for non-id segments under /v1/threads/;
//   - 403 forbidden_host for a Host that is not one of the server's names
//     (DNS rebinding);
//   - 403 forbidden_origin for a foreign Origin not allowed by Config.CORS,
//     and for a request a browser marks cross-site (Sec-Fetch-Site) without
//     an allowed Origin.
//
// It answers CORS preflights for allowed origins, and adds the CORS headers
// to their other answers.
func (s *Server) guard(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Content-Type-Options", "nosniff")
		if err := checkRequestStrings(r); err != nil {
			s.writeError(w, r, err)
			return
		}
		if !s.hosts.allows(r.Host) {
			s.writeError(w, r, errorf(http.StatusForbidden, CodeForbiddenHost,
				"host %q is not a name of this server (see -allow-host)", r.Host))
			return
		}
		origin := r.Header.Get("Origin")
		switch {
		case origin != "" && s.cors[origin]:
			h := w.Header()
			h.Set("Access-Control-Allow-Origin", origin)
			h.Add("Vary", "Origin")
			if r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != "" {
				s.preflight(w, r)
				return
			}
			h.Set("Access-Control-Expose-Headers", corsExposed)
		case origin != "" && !sameOrigin(origin, r.Host):
			s.writeError(w, r, errorf(http.StatusForbidden, CodeForbiddenOrigin,
				"origin %q is not allowed (see -cors)", origin))
			return
		case origin == "":
			// A browser sends no Origin on a cross-site GET (an <img>
			// or <script> tag) but marks it.
			if site := r.Header.Get("Sec-Fetch-Site"); site == "cross-site" || site == "same-site" {
				s.writeError(w, r, errorf(http.StatusForbidden, CodeForbiddenOrigin,
					"a %s request without an allowed Origin", site))
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

// preflight answers a CORS preflight of an allowed origin: 204 with the
// methods the path has, or 405 when it has none.
func (s *Server) preflight(w http.ResponseWriter, r *http.Request) {
	allowed := s.allowedMethods(r)
	if len(allowed) == 0 {
		s.writeError(w, r, errorf(http.StatusNotFound, CodeNotFound, "no route for %s", r.URL.Path))
		return
	}
	h := w.Header()
	h.Set("Access-Control-Allow-Methods", strings.Join(allowed, ", "))
	h.Set("Access-Control-Allow-Headers", corsHeaders)
	h.Set("Access-Control-Max-Age", "600")
	w.WriteHeader(http.StatusNoContent)
}

// allowedMethods lists the methods registered for r's path.
func (s *Server) allowedMethods(r *http.Request) []string {
	var allowed []string
	for _, method := range probeMethods {
		probe := r.Clone(r.Context())
		probe.Method = method
		if _, p := s.mux.Handler(probe); p != "" {
			allowed = append(allowed, method)
		}
	}
	return allowed
}

// sameOrigin reports whether origin is http://host, the origin of a page
// served by this server under the name the request used.
func sameOrigin(origin, host string) bool {
	return strings.EqualFold(origin, "http://"+host)
}

// checkRequestStrings applies the string rule to r's path segments, query
// parameters and header values. Under /v1/threads/ a bad path segment is
// an invalid_id, as are ".", ".." and empty segments, escaped or not.
func checkRequestStrings(r *http.Request) error {
	escaped := r.URL.EscapedPath()
	underThreads := strings.HasPrefix(escaped, "/v1/threads/")
	badSegment := func(format string, args ...any) error {
		if underThreads {
			return errorf(http.StatusBadRequest, CodeInvalidID, format, args...)
		}
		return errorf(http.StatusBadRequest, CodeInvalidArgument, format, args...)
	}
	if !strings.HasPrefix(escaped, "/") {
		return badSegment("path %q is not absolute", escaped)
	}
	if escaped != "/" {
		for seg := range strings.SplitSeq(strings.TrimSuffix(escaped[1:], "/"), "/") {
			decoded, err := url.PathUnescape(seg)
			if err != nil {
				return badSegment("path segment %q: %v", seg, err)
			}
			if err := checkText(decoded); err != nil {
				return badSegment("path segment %q %v", seg, err)
			}
			if decoded == "" || decoded == "." || decoded == ".." || strings.Contains(decoded, "/") {
				if underThreads {
					return badSegment("path %q has an empty, dot or slash segment", escaped)
				}
				return errorf(http.StatusNotFound, CodeNotFound, "path %q has an empty, dot or slash segment", escaped)
			}
		}
	}
	values, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return errorf(http.StatusBadRequest, CodeInvalidArgument, "cannot parse query: %v", err)
	}
	for name, vs := range values {
		if err := checkText(name); err != nil {
			return errorf(http.StatusBadRequest, CodeInvalidArgument, "query parameter name %q %v", name, err)
		}
		for _, v := range vs {
			if err := checkText(v); err != nil {
				return errorf(http.StatusBadRequest, CodeInvalidArgument, "query parameter %s %v", name, err)
			}
		}
	}
	for name, vs := range r.Header {
		for _, v := range vs {
			if err := checkText(v); err != nil {
				return errorf(http.StatusBadRequest, CodeInvalidArgument, "header %s %v", name, err)
			}
		}
	}
	if id, _ := r.Context().Value(requestIDKey{}).(requestID); id.refused {
		return errorf(http.StatusBadRequest, CodeInvalidArgument,
			"X-Request-Id must be 1 to %d printable ASCII characters", maxRequestIDLen)
	}
	return nil
}

// Package server is spool's HTTP JSON API over a manager.Manager: threads,
// their history as NDJSON streams, forks and lineage, search, health,
// Prometheus metrics and an OpenAPI document. Every error response has the
// shape {"error":{"code":...,"message":...}} with a stable code (see the
// Code constants); docs/API.md describes the routes.
package server

import (
	"crypto/sha256"
	"crypto/subtle"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/spoolhq/spool/manager"
)

// Defaults for the zero fields of Config.
const (
	DefaultMaxBody           = 64 << 20
	DefaultMaxInFlight       = 256
	DefaultReadHeaderTimeout = 10 * time.Second
	// DefaultMaxBodyBytesInFlight is four bodies of the default size.
	DefaultMaxBodyBytesInFlight = 4 * DefaultMaxBody
	// DefaultBodyTimeout and DefaultBodyMinRate give a body of n bytes
	// 10 s + n / 256 KiB/s to arrive: 4 min 26 s for 64 MiB.
	DefaultBodyTimeout  = 10 * time.Second
	DefaultBodyMinRate  = 256 << 10
	DefaultWriteTimeout = 5 * time.Minute
	DefaultIdleTimeout  = 2 * time.Minute
	// DefaultMaxStreams bounds the follow and event streams open at once.
	DefaultMaxStreams = 1024
	// DefaultStreamWriteTimeout bounds each write of an NDJSON stream; the
	// stream as a whole may take as long as it needs.
	DefaultStreamWriteTimeout = 30 * time.Second
)

// Config configures a Server. Zero fields take the defaults above.
type Config struct {
	// Token, when set, is the bearer token every route but /healthz
	// requires ("Authorization: Bearer <token>").
	Token string
	// MaxBody is the largest request body accepted, in bytes; a larger one
	// is answered 413 too_large.
	MaxBody int64
	// MaxBodyBytesInFlight bounds the bytes of request bodies held in
	// memory at once over all requests; a body that would pass it is
	// answered 503 unavailable with Retry-After. A whole turn's body
	// (POST .../turns) counts four times its size: its prompt and answer
	// are held several times over while the turn is written and indexed.
	// It is raised to MaxBody when smaller.
	MaxBodyBytesInFlight int64
	// BodyTimeout and BodyMinRate (bytes per second) bound the time a
	// request body may take: after BodyTimeout, it must have arrived at
	// BodyMinRate on average, or the request is answered 408 timeout.
	BodyTimeout time.Duration
	BodyMinRate int64
	// MaxInFlight bounds the requests handled at once, counted once their
	// body has been read; past it a request is answered 503 unavailable at
	// once instead of queueing.
	MaxInFlight int
	// ListenAddr is the address the server is bound to (host:port, as
	// net.Listener.Addr gives it). A request whose Host is not localhost, a
	// loopback address or this address, on this port, nor in AllowHosts, is
	// answered 403 forbidden_host. Empty: any port is accepted.
	ListenAddr string
	// AllowHosts are further names the server answers to, each a host name
	// (any port) or host:port.
	AllowHosts []string
	// CORS lists the origins ("https://app.example") whose pages may call
	// the API; a request with another foreign Origin is answered 403
	// forbidden_origin.
	CORS []string
	// Timeouts of the http.Server returned by HTTPServer. Request bodies are
	// bounded by BodyTimeout and BodyMinRate instead of a ReadTimeout.
	ReadHeaderTimeout time.Duration
	WriteTimeout      time.Duration
	IdleTimeout       time.Duration
	// StreamWriteTimeout bounds each write of an NDJSON stream, which
	// replaces WriteTimeout for those responses.
	StreamWriteTimeout time.Duration
	// MaxStreams bounds the follow and event streams open at once; past
	// it a new stream is answered 503 unavailable. An open stream does not
	// count against MaxInFlight once its first bytes are sent.
	MaxStreams int
	// Logger receives one line per request (server errors at level Error,
	// 503 at Warn, others at Info) and internal errors, each with the
	// request's id; default slog.Default().
	Logger *slog.Logger
}

// Server serves the API of one backend. Create it with New.
type Server struct {
	m       manager.Backend
	cfg     Config
	log     *slog.Logger
	mux     *http.ServeMux
	handler http.Handler
	metrics *metrics
	// tokenHash is the SHA-256 of cfg.Token, compared in constant time.
	tokenHash [sha256.Size]byte
	// inFlight is the semaphore bounding concurrent requests.
	inFlight chan struct{}
	// budget bounds the bytes of request bodies in memory.
	budget *bodyBudget
	// hosts and cors are the Host and Origin checks of guard.
	hosts hostPolicy
	cors  map[string]bool
	// draining is set once shutdown begins: /healthz then answers 503.
	draining atomic.Bool
	// drained is closed by Drain: streams end when it is.
	drained   chan struct{}
	drainOnce sync.Once
	// streams is the semaphore bounding open streams (follow, events).
	streams chan struct{}
}

// New returns a Server for m: a *manager.Manager or another Backend. The
// routes of optional capabilities m lacks (manager.Searcher and the rest)
// answer 501 not_supported. The caller keeps ownership of m and closes it
// after the HTTP server has shut down.
func New(m manager.Backend, cfg Config) *Server {
	if cfg.MaxBody <= 0 {
		cfg.MaxBody = DefaultMaxBody
	}
	if cfg.MaxInFlight <= 0 {
		cfg.MaxInFlight = DefaultMaxInFlight
	}
	if cfg.ReadHeaderTimeout <= 0 {
		cfg.ReadHeaderTimeout = DefaultReadHeaderTimeout
	}
	if cfg.MaxBodyBytesInFlight <= 0 {
		cfg.MaxBodyBytesInFlight = DefaultMaxBodyBytesInFlight
	}
	cfg.MaxBodyBytesInFlight = max(cfg.MaxBodyBytesInFlight, cfg.MaxBody)
	if cfg.BodyTimeout <= 0 {
		cfg.BodyTimeout = DefaultBodyTimeout
	}
	if cfg.BodyMinRate <= 0 {
		cfg.BodyMinRate = DefaultBodyMinRate
	}
	if cfg.WriteTimeout <= 0 {
		cfg.WriteTimeout = DefaultWriteTimeout
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = DefaultIdleTimeout
	}
	if cfg.MaxStreams <= 0 {
		cfg.MaxStreams = DefaultMaxStreams
	}
	if cfg.StreamWriteTimeout <= 0 {
		cfg.StreamWriteTimeout = DefaultStreamWriteTimeout
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	s := &Server{
		m:        m,
		cfg:      cfg,
		log:      slog.New(WithRequestID(cfg.Logger.Handler())),
		mux:      http.NewServeMux(),
		metrics:  newMetrics(),
		inFlight: make(chan struct{}, cfg.MaxInFlight),
		budget:   &bodyBudget{limit: cfg.MaxBodyBytesInFlight},
		hosts:    newHostPolicy(cfg.ListenAddr, cfg.AllowHosts),
		cors:     map[string]bool{},
		drained:  make(chan struct{}),
		streams:  make(chan struct{}, cfg.MaxStreams),
	}
	for _, origin := range cfg.CORS {
		s.cors[origin] = true
	}
	if cfg.Token != "" {
		s.tokenHash = sha256.Sum256([]byte(cfg.Token))
	}
	for _, rt := range s.routes() {
		s.mux.Handle(rt.pattern(), rt.handler)
	}
	s.handler = s.observe(s.bodyDeadline(s.recoverPanics(s.guard(s.authenticate(s.bufferBody(s.limit(http.HandlerFunc(s.dispatch))))))))
	return s
}

// Handler returns the API's root handler. In order, a request gets an id
// (X-Request-Id) and is logged and counted; its strings, Host and Origin
// are checked (guard); its token; its body is read within the budget and
// the deadline (bufferBody); it takes an in-flight slot (limit); it is
// routed.
func (s *Server) Handler() http.Handler { return s.handler }

// HTTPServer returns an http.Server for addr that serves Handler with the
// configured timeouts.
func (s *Server) HTTPServer(addr string) *http.Server {
	return &http.Server{
		Addr:              addr,
		Handler:           s.handler,
		ReadHeaderTimeout: s.cfg.ReadHeaderTimeout,
		WriteTimeout:      s.cfg.WriteTimeout,
		IdleTimeout:       s.cfg.IdleTimeout,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
}

// Drain marks the server as shutting down: /healthz answers 503 from now
// on so load balancers stop sending work, open streams (follow, events)
// end, and requests still in flight finish. Call it before
// http.Server.Shutdown, which otherwise waits for streams that never end.
func (s *Server) Drain() {
	s.draining.Store(true)
	s.drainOnce.Do(func() { close(s.drained) })
}

// route is one registered route: a method, a path pattern in ServeMux
// syntax, and its handler.
type route struct {
	method, path string
	handler      http.Handler
}

func (rt route) pattern() string { return rt.method + " " + rt.path }

// routes lists every route the server registers. The OpenAPI document is
// checked against this list by a test.
func (s *Server) routes() []route {
	h := func(f func(http.ResponseWriter, *http.Request) error) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if err := f(w, r); err != nil {
				s.writeError(w, r, err)
			}
		})
	}
	// bare is h for a route under /v1 that takes no query parameters: one
	// sent anyway is refused, as unknown parameters are on every route, so
	// that an option the route does not have fails instead of being
	// ignored. The thread id is checked first, as on every route.
	bare := func(f func(http.ResponseWriter, *http.Request) error) http.Handler {
		return h(func(w http.ResponseWriter, r *http.Request) error {
			if r.PathValue("id") != "" {
				if _, err := threadID(r); err != nil {
					return err
				}
			}
			if _, err := query(r); err != nil {
				return err
			}
			return f(w, r)
		})
	}
	return []route{
		{"GET", "/healthz", http.HandlerFunc(s.healthz)},
		{"GET", "/metrics", h(s.serveMetrics)},
		{"GET", "/openapi.json", http.HandlerFunc(serveOpenAPI)},

		{"POST", "/v1/threads", bare(s.createThread)},
		{"GET", "/v1/threads", h(s.listThreads)},
		{"GET", "/v1/threads/{id}", bare(s.getThread)},
		{"PATCH", "/v1/threads/{id}", bare(s.renameThread)},
		{"DELETE", "/v1/threads/{id}", bare(s.deleteThread)},
		{"POST", "/v1/threads/{id}/archive", bare(s.archiveThread)},
		{"POST", "/v1/threads/{id}/unarchive", bare(s.unarchiveThread)},
		{"POST", "/v1/threads/{id}/purge", bare(s.purgeThread)},

		{"POST", appendPath, bare(s.appendItems)},
		{"GET", "/v1/threads/{id}/items", h(s.readItems)},
		{"GET", "/v1/threads/{id}/turns", h(s.listTurns)},
		{"POST", turnsPath, bare(s.appendTurn)},
		{"GET", "/v1/threads/{id}/turns/{k}", bare(s.readTurn)},
		{"GET", "/v1/threads/{id}/turns/by-id/{turn_id}", bare(s.readTurnByID)},

		{"POST", "/v1/threads/{id}/fork", bare(s.forkThread)},
		{"POST", "/v1/threads/{id}/revert", bare(s.revertThread)},
		{"GET", "/v1/threads/{id}/ancestors", bare(s.ancestors)},
		{"GET", "/v1/threads/{id}/descendants", bare(s.descendants)},
		{"GET", "/v1/threads/{id}/tree", bare(s.tree)},
		{"GET", "/v1/threads/{id}/spawns", bare(s.spawns)},

		{"GET", "/v1/search", h(s.search)},
		{"GET", "/v1/events", h(s.events)},
	}
}

// appendPath is the one route that reads NDJSON bodies.
const (
	appendPath    = "/v1/threads/{id}/items"
	appendPattern = "POST " + appendPath
)

// turnsPath is the route of whole turns, whose bodies weigh more in the
// budget of bodies in flight (bodyWeight).
const (
	turnsPath    = "/v1/threads/{id}/turns"
	turnsPattern = "POST " + turnsPath
)

// probeMethods are the methods tried to tell 405 from 404.
var probeMethods = []string{"GET", "POST", "PATCH", "PUT", "DELETE"}

// dispatch routes r through the mux, answering unknown routes and wrong
// methods with structured errors instead of the mux's plain text, and
// refusing non-canonical paths instead of redirecting them (a request path
// never reaches the filesystem; ids are parsed as UUIDs by the handlers).
func (s *Server) dispatch(w http.ResponseWriter, r *http.Request) {
	if escaped := r.URL.EscapedPath(); !canonicalPath(escaped) {
		code := CodeNotFound
		status := http.StatusNotFound
		if strings.HasPrefix(escaped, "/v1/threads/") {
			code, status = CodeInvalidID, http.StatusBadRequest
		}
		s.writeError(w, r, errorf(status, code, "path %q has empty or dot segments", escaped))
		return
	}
	if _, pattern := s.mux.Handler(r); pattern == "" {
		if allowed := s.allowedMethods(r); len(allowed) > 0 {
			w.Header().Set("Allow", strings.Join(allowed, ", "))
			s.writeError(w, r, errorf(http.StatusMethodNotAllowed, CodeMethodNotAllowed,
				"method %s is not allowed on %s; allowed: %s", r.Method, r.URL.Path, strings.Join(allowed, ", ")))
			return
		}
		s.writeError(w, r, errorf(http.StatusNotFound, CodeNotFound, "no route for %s %s", r.Method, r.URL.Path))
		return
	}
	s.mux.ServeHTTP(w, r)
}

// canonicalPath reports whether an escaped request path is absolute and
// free of empty, "." and ".." segments (a trailing slash aside).
func canonicalPath(p string) bool {
	if !strings.HasPrefix(p, "/") {
		return false
	}
	segments := strings.Split(strings.TrimSuffix(p[1:], "/"), "/")
	if len(segments) == 1 && segments[0] == "" {
		return true // "/"
	}
	for _, seg := range segments {
		if seg == "" || seg == "." || seg == ".." {
			return false
		}
	}
	return true
}

// authorized reports whether r carries the configured bearer token, in
// its Authorization header or as queryToken (streamToken's: "" for none).
func (s *Server) authorized(r *http.Request, queryToken string) bool {
	if s.cfg.Token == "" {
		return true
	}
	token := queryToken
	if token == "" {
		var scheme string
		var ok bool
		scheme, token, ok = strings.Cut(r.Header.Get("Authorization"), " ")
		if !ok || !strings.EqualFold(scheme, "Bearer") {
			return false
		}
	}
	// Hashing first makes the comparison independent of the lengths.
	got := sha256.Sum256([]byte(strings.TrimSpace(token)))
	return subtle.ConstantTimeCompare(got[:], s.tokenHash[:]) == 1
}

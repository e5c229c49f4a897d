// Command spoold serves the spool HTTP API over a store root.
//
// Every flag has an environment variable that sets its default:
//
//	-root              SPOOL_ROOT          store root (default ~/.spool)
//	-index             SPOOL_INDEX         index file (default ROOT/spool.db); the lock goes beside it
//	-watch             SPOOL_WATCH         follow files other processes write under the root (default true)
//	-addr              SPOOL_ADDR          listen address (default 127.0.0.1:7878; port 0 picks one)
//	-capacity          SPOOL_CAPACITY      live threads held in memory (default 1000)
//	-sync              SPOOL_SYNC          always | batch | none (default always)
//	-token             SPOOL_TOKEN         bearer token required on every route but /healthz
//	-insecure-no-token                     allow a non-loopback -addr without a token
//	-allow-host        SPOOL_ALLOW_HOST    further Host names the server answers to (comma-separated)
//	-cors              SPOOL_CORS          origins whose pages may call the API (comma-separated)
//	-max-conns         SPOOL_MAX_CONNS     connections held open at once (default: the open-file limit less 1024, at most 16384; 0: no limit)
//	-max-body          SPOOL_MAX_BODY      largest request body (default 64MiB)
//	-max-body-in-flight SPOOL_MAX_BODY_IN_FLIGHT  request bodies held in memory at once (default 256MiB)
//	-body-timeout      SPOOL_BODY_TIMEOUT  time any body may take (default 10s) ...
//	-body-min-rate     SPOOL_BODY_MIN_RATE ... plus one second per this many bytes (default 256KiB)
//	-file-mode         SPOOL_FILE_MODE     permission bits of what spool creates: rollouts, side files, spool.db and its WAL and SHM (default 0600; directories get x where r is set)
//	-log-format        SPOOL_LOG_FORMAT    text | json (default text)
//	-log-level         SPOOL_LOG_LEVEL     debug | info | warn | error (default info)
//	-pg                SPOOL_PG            serve the distributed backend on this PostgreSQL DSN instead of -root (pool size: its pool_max_conns, default 24; answer bound: spool_query_timeout, default 30s)
//	-s3                SPOOL_S3            with -pg: S3-compatible endpoint URL for sealed segments
//	-s3-bucket         SPOOL_S3_BUCKET     with -s3: bucket (default spool; created if missing)
//	-seal-bytes        SPOOL_SEAL_BYTES    with -s3: unsealed bytes a thread gathers before they go to a segment (default 4MiB)
//	-segment-cache     SPOOL_SEGMENT_CACHE with -s3: a directory where segments read are kept (emptied of them at start; default none)
//	-segment-cache-size SPOOL_SEGMENT_CACHE_SIZE  its size (default 1GiB)
//
// The S3 credentials come from SPOOL_S3_ACCESS_KEY and SPOOL_S3_SECRET_KEY
// only, never from flags (which other users can read in the process list).
// With -pg any number of spoold processes may serve one database and one
// bucket (docs/DISTRIBUTED.md); -root, -index, -watch, -sync and
// -torn-grace then do not apply.
//
// Sizes take a unit: 1048576, 64KiB, 64MiB, 1GiB, 1GB (decimal units are
// powers of 1000). A root that does not exist is created 0700. An existing
// -root must be empty, a spool root or a Codex home (it holds spool.db,
// sessions/, archived_sessions/, session_index.jsonl or config.toml):
// another directory, most likely named by mistake, is refused before
// anything is written into it.
//
// On startup it opens the index and listens at once (logging a line
// "listening" with addr=HOST:PORT); the reconcile of the index with the
// files runs in the background (a line "reconciled store" when done), and
// with -watch the index then follows the root as other processes (Codex)
// write to it. On SIGINT or
// SIGTERM /healthz answers 503 (for -drain-delay, 0 by default, while
// spoold still serves), then it stops accepting connections, lets requests in flight finish,
// then closes the manager (flushing every thread, the index and the lock),
// within -shutdown-timeout; a second signal changes nothing. A listener
// that fails stops it the same way, without -drain-delay, and it exits 1.
// -h prints the flags and exits 0.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	iofs "io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/spoolhq/spool/internal/connlimit"
	"github.com/spoolhq/spool/internal/flagorigin"
	"github.com/spoolhq/spool/internal/shellquote"
	"github.com/spoolhq/spool/manager"
	"github.com/spoolhq/spool/objstore"
	"github.com/spoolhq/spool/pgbackend"
	"github.com/spoolhq/spool/pgstore"
	"github.com/spoolhq/spool/rollout"
	"github.com/spoolhq/spool/rolloutfs"
	"github.com/spoolhq/spool/server"
	"github.com/spoolhq/spool/store"
)

func main() {
	// Every SIGINT and SIGTERM asks for the same orderly stop, whose
	// drain -shutdown-timeout bounds: a wrapper that forwards the signal
	// the terminal also sent (npm run, an init in a container) delivers
	// two at once, and the second must not skip the drain and the clean
	// close, which spares the next start its walk. SIGKILL ends it at once.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stderr); err != nil {
		stop()
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		if errors.As(err, new(usageError)) {
			os.Exit(2) // a mistake in the command line, printed by the flag package
		}
		fmt.Fprintln(os.Stderr, "spoold:", err)
		os.Exit(1)
	}
}

// usageError is a command line the flag package refused; it has printed
// the error and the usage already.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

// config is the parsed command line.
type config struct {
	root            string
	index           string
	pg, s3          string // the distributed backend's DSN and endpoint
	s3Bucket        string
	sealBytes       int64
	segmentCache    string
	segmentCacheMax int64
	s3Access        string
	s3Secret        string
	watch           bool
	addr            string
	capacity        int
	maxConns        int // 0: no limit
	sync            rolloutfs.SyncPolicy
	token           string
	insecureNoToken bool
	allowHosts      []string
	cors            []string
	maxBody         int64
	maxBodyInFlight int64
	bodyTimeout     time.Duration
	bodyMinRate     int64
	fileMode        iofs.FileMode
	shutdownTimeout time.Duration
	drainDelay      time.Duration // how long /healthz answers 503 before the listener closes
	tornGrace       time.Duration
	logger          *slog.Logger
}

// parseConfig reads flags, with defaults taken from the environment.
func parseConfig(args []string, getenv func(string) string, stderr io.Writer) (config, error) {
	env := func(name, def string) string {
		if v := getenv(name); v != "" {
			return v
		}
		return def
	}
	defaultRoot := "~/.spool"
	if home, err := os.UserHomeDir(); err == nil {
		defaultRoot = filepath.Join(home, ".spool")
	}
	fs := flag.NewFlagSet("spoold", flag.ContinueOnError)
	fs.SetOutput(stderr)
	root := fs.String("root", env("SPOOL_ROOT", defaultRoot), "store root `dir` ($SPOOL_ROOT)")
	index := fs.String("index", getenv("SPOOL_INDEX"), "index `file` (default ROOT/spool.db); the lock file goes beside it, so a Codex home can be served without spool's index in it ($SPOOL_INDEX)")
	watch := fs.String("watch", env("SPOOL_WATCH", "true"), "`true` or false: follow files other processes create, append to, move and delete under the root ($SPOOL_WATCH)")
	addr := fs.String("addr", env("SPOOL_ADDR", "127.0.0.1:7878"), "listen `address` ($SPOOL_ADDR)")
	capacity := fs.String("capacity", env("SPOOL_CAPACITY", "1000"), "the `number` of live threads held in memory ($SPOOL_CAPACITY)")
	syncPolicy := fs.String("sync", env("SPOOL_SYNC", "always"), "when appends reach the disk: always, batch or none ($SPOOL_SYNC)")
	token := fs.String("token", getenv("SPOOL_TOKEN"), "bearer `token` required on every route but /healthz ($SPOOL_TOKEN)")
	insecureNoToken := fs.Bool("insecure-no-token", false, "allow listening beyond loopback without -token: anyone who reaches the port reads and writes every thread")
	allowHosts := fs.String("allow-host", getenv("SPOOL_ALLOW_HOST"), "further `names` (host or host:port, comma-separated) the Host header may give ($SPOOL_ALLOW_HOST)")
	cors := fs.String("cors", getenv("SPOOL_CORS"), "`origins` (https://app.example, comma-separated) whose web pages may call the API ($SPOOL_CORS)")
	maxConns := fs.String("max-conns", env("SPOOL_MAX_CONNS", strconv.Itoa(defaultMaxConns())), "the `number` of connections held open at once; when all are, idle ones are closed, and new ones wait (0: no limit) ($SPOOL_MAX_CONNS)")
	maxBody := fs.String("max-body", env("SPOOL_MAX_BODY", "64MiB"), "largest request body, a `size` such as 64MiB ($SPOOL_MAX_BODY)")
	maxBodyInFlight := fs.String("max-body-in-flight", env("SPOOL_MAX_BODY_IN_FLIGHT", "256MiB"), "request bodies held in memory at once, a `size`; past it 503 ($SPOOL_MAX_BODY_IN_FLIGHT)")
	bodyTimeout := fs.String("body-timeout", env("SPOOL_BODY_TIMEOUT", server.DefaultBodyTimeout.String()), "the `duration` any request body may take, plus 1s per -body-min-rate bytes ($SPOOL_BODY_TIMEOUT)")
	bodyMinRate := fs.String("body-min-rate", env("SPOOL_BODY_MIN_RATE", "256KiB"), "slowest average rate of a request body, a `size` per second ($SPOOL_BODY_MIN_RATE)")
	fileMode := fs.String("file-mode", env("SPOOL_FILE_MODE", "0600"), "permission `bits` (octal) of the rollouts, side files, spool.db and its WAL and SHM spool creates; directories get x where r is set ($SPOOL_FILE_MODE)")
	shutdownTimeout := fs.Duration("shutdown-timeout", 30*time.Second, "how long requests in flight may take to finish on shutdown")
	drainDelay := fs.Duration("drain-delay", 0, "on shutdown, how long the server goes on serving with /healthz answering 503, so a load balancer stops sending work, before its listener closes")
	tornGrace := fs.Duration("torn-grace", manager.DefaultTornGrace, "how old an unfinished last line must be before an append cuts it (its writer may still finish it)")
	logFormat := fs.String("log-format", env("SPOOL_LOG_FORMAT", "text"), "log format: text or json ($SPOOL_LOG_FORMAT)")
	logLevel := fs.String("log-level", env("SPOOL_LOG_LEVEL", "info"), "log level: debug, info, warn or error ($SPOOL_LOG_LEVEL)")
	pg := fs.String("pg", getenv("SPOOL_PG"), fmt.Sprintf("serve the distributed backend on this PostgreSQL `dsn` instead of -root; its pool_max_conns sets the connection pool's size (default %d), its spool_query_timeout how long PostgreSQL may take to answer (default %v) ($SPOOL_PG)", pgstore.DefaultMaxConns, pgstore.DefaultQueryTimeout))
	s3 := fs.String("s3", getenv("SPOOL_S3"), "with -pg: S3-compatible endpoint `url` for sealed segments; credentials from $SPOOL_S3_ACCESS_KEY and $SPOOL_S3_SECRET_KEY ($SPOOL_S3)")
	s3Bucket := fs.String("s3-bucket", env("SPOOL_S3_BUCKET", "spool"), "with -s3: the `bucket` ($SPOOL_S3_BUCKET)")
	sealBytes := fs.String("seal-bytes", env("SPOOL_SEAL_BYTES", "4MiB"), "with -s3: unsealed bytes a thread gathers before they go to a segment, a `size` ($SPOOL_SEAL_BYTES)")
	segmentCache := fs.String("segment-cache", getenv("SPOOL_SEGMENT_CACHE"), "with -s3: a new or empty `dir` where the segments read are kept ($SPOOL_SEGMENT_CACHE)")
	segmentCacheSize := fs.String("segment-cache-size", env("SPOOL_SEGMENT_CACHE_SIZE", "1GiB"), "with -segment-cache: its `size` ($SPOOL_SEGMENT_CACHE_SIZE)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return config{}, err
		}
		return config{}, usageError{err} // fs printed it, with the usage
	}
	if fs.NArg() > 0 {
		return config{}, fmt.Errorf("unexpected arguments: %s", strings.Join(fs.Args(), " "))
	}
	origin := flagorigin.Namer(fs, "-", getenv)
	from := func(name string) string {
		return origin(name, "SPOOL_"+strings.ToUpper(strings.ReplaceAll(name, "-", "_")))
	}

	cfg := config{
		root:            *root,
		index:           *index,
		addr:            *addr,
		token:           *token,
		insecureNoToken: *insecureNoToken,
		allowHosts:      splitList(*allowHosts),
		cors:            splitList(*cors),
		shutdownTimeout: *shutdownTimeout,
		drainDelay:      *drainDelay,
		tornGrace:       *tornGrace,
		pg:              *pg,
		s3:              *s3,
		s3Bucket:        *s3Bucket,
		s3Access:        getenv("SPOOL_S3_ACCESS_KEY"),
		s3Secret:        getenv("SPOOL_S3_SECRET_KEY"),
	}
	if cfg.drainDelay < 0 || cfg.shutdownTimeout < 0 {
		return config{}, fmt.Errorf("-drain-delay %v, -shutdown-timeout %v: want durations of 0 or more", cfg.drainDelay, cfg.shutdownTimeout)
	}
	if cfg.s3 != "" && cfg.pg == "" {
		return config{}, fmt.Errorf("%s needs -pg: object storage holds the distributed backend's segments", from("s3"))
	}
	var err error
	if cfg.sealBytes, err = parseSize(*sealBytes); err != nil || cfg.sealBytes < 1 {
		return config{}, fmt.Errorf("%s %q: want a positive size such as 4MiB", from("seal-bytes"), *sealBytes)
	}
	cfg.segmentCache = *segmentCache
	if cfg.segmentCacheMax, err = parseSize(*segmentCacheSize); err != nil || cfg.segmentCacheMax < 1 {
		return config{}, fmt.Errorf("%s %q: want a positive size such as 1GiB", from("segment-cache-size"), *segmentCacheSize)
	}
	if cfg.segmentCache != "" && cfg.s3 == "" {
		return config{}, fmt.Errorf("%s needs -s3: it holds segments read from object storage", from("segment-cache"))
	}
	if cfg.watch, err = strconv.ParseBool(*watch); err != nil {
		return config{}, fmt.Errorf("%s %q: want true or false", from("watch"), *watch)
	}
	if cfg.index == "" {
		cfg.index = filepath.Join(cfg.root, manager.IndexFile)
	}
	if cfg.capacity, err = strconv.Atoi(*capacity); err != nil || cfg.capacity < 1 {
		return config{}, fmt.Errorf("%s %q: want a positive integer", from("capacity"), *capacity)
	}
	if cfg.maxConns, err = strconv.Atoi(*maxConns); err != nil || cfg.maxConns < 0 {
		return config{}, fmt.Errorf("%s %q: want a number of connections, or 0 for no limit", from("max-conns"), *maxConns)
	}
	if cfg.maxBody, err = parseSize(*maxBody); err != nil {
		return config{}, fmt.Errorf("%s: %w", from("max-body"), err)
	}
	if cfg.maxBodyInFlight, err = parseSize(*maxBodyInFlight); err != nil {
		return config{}, fmt.Errorf("%s: %w", from("max-body-in-flight"), err)
	}
	if cfg.maxBodyInFlight < cfg.maxBody {
		return config{}, fmt.Errorf("%s %s is smaller than %s %s: no body of the largest size could be read", from("max-body-in-flight"), *maxBodyInFlight, from("max-body"), *maxBody)
	}
	if cfg.bodyTimeout, err = time.ParseDuration(*bodyTimeout); err != nil || cfg.bodyTimeout <= 0 {
		return config{}, fmt.Errorf("%s %q: want a positive duration such as 10s", from("body-timeout"), *bodyTimeout)
	}
	if cfg.bodyMinRate, err = parseSize(*bodyMinRate); err != nil {
		return config{}, fmt.Errorf("%s: %w", from("body-min-rate"), err)
	}
	mode, err := strconv.ParseUint(*fileMode, 8, 32)
	if err != nil || mode&^0o777 != 0 || mode&0o600 != 0o600 {
		return config{}, fmt.Errorf("%s %q: want octal permission bits that let the owner read and write, such as 0600 or 0640", from("file-mode"), *fileMode)
	}
	cfg.fileMode = iofs.FileMode(mode)
	for _, origin := range cfg.cors {
		if err := checkOrigin(origin); err != nil {
			return config{}, fmt.Errorf("%s: %w", from("cors"), err)
		}
	}
	if cfg.sync, err = rolloutfs.ParseSyncPolicy(*syncPolicy); err != nil {
		return config{}, fmt.Errorf("%s: %w", from("sync"), err)
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		return config{}, fmt.Errorf("%s %q: want debug, info, warn or error", from("log-level"), *logLevel)
	}
	handlerOpts := &slog.HandlerOptions{Level: level}
	switch *logFormat {
	case "text":
		cfg.logger = slog.New(slog.NewTextHandler(stderr, handlerOpts))
	case "json":
		cfg.logger = slog.New(slog.NewJSONHandler(stderr, handlerOpts))
	default:
		return config{}, fmt.Errorf("%s %q: want text or json", from("log-format"), *logFormat)
	}
	return cfg, nil
}

// dirMode is the mode of directories for files of mode m: each class that
// may read the files may also enter the directories.
func dirMode(m iofs.FileMode) iofs.FileMode {
	return m | (m&0o444)>>2
}

// run serves until ctx is done, then shuts down gracefully.
func run(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer) error {
	cfg, err := parseConfig(args, getenv, stderr)
	if err != nil {
		return err
	}
	log := cfg.logger

	ln, err := net.Listen("tcp", cfg.addr)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	if !isLoopback(ln.Addr()) && cfg.token == "" {
		if !cfg.insecureNoToken {
			ln.Close()
			return fmt.Errorf("listen on %s: not a loopback address and no -token: anyone who reaches it could read and write every thread; set -token, or -insecure-no-token if that is what you want", shownAddr(cfg.addr, ln.Addr()))
		}
		log.Warn("listening beyond loopback without a token: anyone who reaches this address can read and write every thread", "addr", shownAddr(cfg.addr, ln.Addr()))
	}
	return serve(ctx, cfg, ln)
}

// serve opens the backend and serves it on ln until ctx is done or ln
// fails, then shuts down gracefully: requests in flight finish and
// streams end before the backend closes.
func serve(ctx context.Context, cfg config, ln net.Listener) error {
	log := cfg.logger
	m, where, err := openBackend(ctx, cfg, log)
	if err != nil {
		return errors.Join(err, ln.Close())
	}
	srv := server.New(m, server.Config{
		Token:                cfg.token,
		MaxBody:              cfg.maxBody,
		MaxBodyBytesInFlight: cfg.maxBodyInFlight,
		BodyTimeout:          cfg.bodyTimeout,
		BodyMinRate:          cfg.bodyMinRate,
		ListenAddr:           ln.Addr().String(),
		AllowHosts:           cfg.allowHosts,
		CORS:                 cfg.cors,
		Logger:               log,
	})
	httpServer := srv.HTTPServer(cfg.addr)
	log.Info("listening", append([]any{"addr", shownAddr(cfg.addr, ln.Addr())}, append(where, "auth", cfg.token != "", "cors", strings.Join(cfg.cors, ","))...)...)

	if cfg.maxConns > 0 {
		var stop func()
		ln, stop = limitConns(ln, cfg.maxConns, httpServer, log)
		defer stop()
	}
	serveErr := make(chan error, 1)
	go func() { serveErr <- httpServer.Serve(ln) }()

	// Serve only returns early on a listener failure. The connections it
	// accepted go on serving: they stop as on a signal, so that requests
	// in flight finish (an append is answered, not cut off by the exit
	// once written) and streams end with their end line, before the
	// manager closes.
	var failed error // Serve's, once it returned
	select {
	case err := <-serveErr:
		failed = fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	srv.Drain() // before the line, which says /healthz answers 503
	log.Info("shutting down", "timeout", cfg.shutdownTimeout, "drain_delay", cfg.drainDelay)
	if failed == nil {
		failed = serveDraining(cfg.drainDelay, serveErr)
	}
	if failed != nil {
		// The error itself is returned, and printed on exit.
		log.Error("the listener failed: requests in flight finish, then the store closes")
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), cfg.shutdownTimeout)
	defer cancel()
	shutdownErr := httpServer.Shutdown(shutdownCtx)
	if shutdownErr != nil {
		shutdownErr = fmt.Errorf("shutdown: %w", shutdownErr)
		// Requests still running hold threads; cut them before closing.
		httpServer.Close()
	}
	if failed == nil { // Serve returns once Shutdown closed its listener
		if err := <-serveErr; err != nil && !errors.Is(err, http.ErrServerClosed) {
			shutdownErr = errors.Join(shutdownErr, fmt.Errorf("serve: %w", err))
		}
	}
	shutdownErr = errors.Join(failed, shutdownErr)
	if err := m.Close(); err != nil {
		return errors.Join(shutdownErr, fmt.Errorf("close store: %w", err))
	}
	if shutdownErr != nil {
		return shutdownErr
	}
	log.Info("stopped")
	return nil
}

// serveDraining lets the server serve for delay after Drain, /healthz
// answering 503, so that a load balancer probing it stops sending work
// before the listener closes. It returns Serve's error if Serve ends first.
func serveDraining(delay time.Duration, serveErr <-chan error) error {
	if delay <= 0 {
		return nil
	}
	timer := time.NewTimer(delay)
	defer timer.Stop()
	select {
	case err := <-serveErr:
		return fmt.Errorf("serve: %w", err)
	case <-timer.C:
		return nil
	}
}

// fdReserve is how many of the process's open files -max-conns leaves to
// the store by default: rollouts, the index, its WAL and SHM, watches.
const fdReserve = 1024

// defaultMaxConns is -max-conns' default: the open-file limit (which Go
// raises to the hard limit at start) less fdReserve, at most 16384, at
// least 64.
func defaultMaxConns() int {
	n := 16384
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err == nil && uint64(lim.Cur) < uint64(n+fdReserve) { // Cur is an int64 on the BSDs
		n = int(lim.Cur) - fdReserve
	}
	return max(n, 64)
}

// limitConns bounds the connections srv holds open through ln to max:
// once all are open, srv closes its idle ones and keeps none open after a
// request until half are free again, so clients holding connections idle
// cannot keep others out, nor take the files the store needs; a new
// connection meanwhile waits in the kernel's queue. stop ends the
// goroutine that does it.
func limitConns(ln net.Listener, max int, srv *http.Server, log *slog.Logger) (limited net.Listener, stop func()) {
	l := connlimit.New(ln, max)
	var full atomic.Bool
	changed := make(chan struct{}, 1)
	l.Full = func(f bool) {
		full.Store(f)
		select {
		case changed <- struct{}{}:
		default:
		}
	}
	done := make(chan struct{})
	go func() {
		for {
			select {
			case <-done:
				return
			case <-changed:
			}
			f := full.Load()
			// Closing idle connections calls Full: never from Full.
			srv.SetKeepAlivesEnabled(!f)
			if f {
				log.Warn("every connection the server may hold is open: idle ones are closed, and new ones wait", "max_conns", max)
			} else {
				log.Info("half the connections are free again: keeping connections open after a request", "open", l.Open(), "max_conns", max)
			}
		}
	}()
	return l, func() { close(done) }
}

// openBackend opens the backend cfg names: the distributed one with -pg,
// the local root otherwise. It returns log attributes saying which.
func openBackend(ctx context.Context, cfg config, log *slog.Logger) (manager.Backend, []any, error) {
	if cfg.pg != "" {
		o := pgbackend.Options{DSN: cfg.pg, Logger: log, SealBytes: cfg.sealBytes}
		if cfg.s3 != "" {
			bucket, err := objstore.OpenS3(ctx, objstore.S3Config{Endpoint: cfg.s3, Bucket: cfg.s3Bucket,
				AccessKey: cfg.s3Access, SecretKey: cfg.s3Secret})
			if err != nil {
				return nil, nil, err
			}
			o.Bucket = bucket
			if cfg.segmentCache != "" {
				if o.Bucket, err = objstore.NewCache(bucket, cfg.segmentCache, cfg.segmentCacheMax); err != nil {
					return nil, nil, fmt.Errorf("segment cache: %w", err)
				}
			}
		}
		b, err := pgbackend.Open(ctx, o)
		if err != nil {
			return nil, nil, fmt.Errorf("open distributed backend: %w", err)
		}
		return b, []any{"backend", "distributed", "s3", cfg.s3, "bucket", cfg.s3Bucket}, nil
	}
	// A directory named by mistake gets nothing written into it.
	if err := manager.CheckRoot(cfg.root, cfg.index); errors.Is(err, manager.ErrNotRoot) {
		return nil, nil, fmt.Errorf("root %w; -root or $SPOOL_ROOT names a spool root, a Codex home, or a new or empty directory (to make this one a root: %s)",
			err, shellquote.Join("mkdir", "-m", "0700", filepath.Join(cfg.root, rollout.SessionsDir)))
	} else if err != nil {
		return nil, nil, fmt.Errorf("root: %w", err)
	}
	// The index holds every user message: keep the root and the index
	// private unless told otherwise. The root is made once the index is
	// known to be spool's: another program's database, named by mistake,
	// is refused with nothing created (its directory was there).
	if err := os.MkdirAll(filepath.Dir(cfg.index), 0o700); err != nil {
		return nil, nil, fmt.Errorf("create index directory: %w", err)
	}
	if err := store.SetFileMode(cfg.index, cfg.fileMode); err != nil {
		return nil, nil, err
	}
	if err := os.MkdirAll(cfg.root, 0o700); err != nil {
		return nil, nil, fmt.Errorf("create root: %w", err)
	}
	m, err := manager.Open(ctx, manager.Options{
		Root:      cfg.root,
		IndexPath: cfg.index,
		// Serve at once; a thread used before the reconcile reaches it
		// is caught up on first use.
		Background: true,
		Watch:      cfg.watch,
		FS:         rolloutfs.Local{Root: cfg.root, FilePerm: cfg.fileMode, DirPerm: dirMode(cfg.fileMode)},
		Capacity:   cfg.capacity,
		Sync:       cfg.sync,
		TornGrace:  cfg.tornGrace,
		// Lines the manager logs with a request's context name the request.
		Logger: slog.New(server.WithRequestID(log.Handler())),
	})
	if err != nil {
		return nil, nil, err // manager.Open names the root
	}
	// The lock beside the index names its holder: as private as the index.
	if err := os.Chmod(filepath.Join(filepath.Dir(cfg.index), manager.LockFile), cfg.fileMode); err != nil {
		m.Close()
		return nil, nil, fmt.Errorf("lock file mode: %w", err)
	}
	return m, []any{"root", m.Root(), "index", cfg.index, "watch", cfg.watch, "sync", cfg.sync.String()}, nil
}

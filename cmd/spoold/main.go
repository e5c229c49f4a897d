// Command spoold serves the spool HTTP API over a store root.
//
// Every flag has an environment variable that sets its default:
//
//	-root       SPOOL_ROOT       store root (default ~/.spool)
//	-addr       SPOOL_ADDR       listen address (default 127.0.0.1:7878; port 0 picks one)
//	-capacity   SPOOL_CAPACITY   live threads held in memory (default 1000)
//	-sync       SPOOL_SYNC       always | batch | none (default always)
//	-token      SPOOL_TOKEN      bearer token required on every route but /healthz
//	-max-body   SPOOL_MAX_BODY   largest request body in bytes (default 64 MiB)
//	-log-format SPOOL_LOG_FORMAT text | json (default text)
//	-log-level  SPOOL_LOG_LEVEL  debug | info | warn | error (default info)
//
// On startup it logs a line "listening" with addr=HOST:PORT. On SIGINT or
// SIGTERM it stops accepting connections, lets requests in flight finish,
// then closes the manager (flushing every thread, the index and the lock).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spoolhq/spool/manager"
	"github.com/spoolhq/spool/rolloutfs"
	"github.com/spoolhq/spool/server"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stderr); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "spoold:", err)
		}
		stop()
		os.Exit(1)
	}
}

// config is the parsed command line.
type config struct {
	root            string
	addr            string
	capacity        int
	sync            rolloutfs.SyncPolicy
	token           string
	maxBody         int64
	shutdownTimeout time.Duration
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
	addr := fs.String("addr", env("SPOOL_ADDR", "127.0.0.1:7878"), "listen `address` ($SPOOL_ADDR)")
	capacity := fs.String("capacity", env("SPOOL_CAPACITY", "1000"), "live threads held in memory ($SPOOL_CAPACITY)")
	syncPolicy := fs.String("sync", env("SPOOL_SYNC", "always"), "when appends reach the disk: always, batch or none ($SPOOL_SYNC)")
	token := fs.String("token", getenv("SPOOL_TOKEN"), "bearer `token` required on every route but /healthz ($SPOOL_TOKEN)")
	maxBody := fs.String("max-body", env("SPOOL_MAX_BODY", strconv.Itoa(server.DefaultMaxBody)), "largest request body in `bytes` ($SPOOL_MAX_BODY)")
	shutdownTimeout := fs.Duration("shutdown-timeout", 30*time.Second, "how long requests in flight may take to finish on shutdown")
	logFormat := fs.String("log-format", env("SPOOL_LOG_FORMAT", "text"), "log format: text or json ($SPOOL_LOG_FORMAT)")
	logLevel := fs.String("log-level", env("SPOOL_LOG_LEVEL", "info"), "log level: debug, info, warn or error ($SPOOL_LOG_LEVEL)")
	if err := fs.Parse(args); err != nil {
		return config{}, err
	}
	if fs.NArg() > 0 {
		return config{}, fmt.Errorf("unexpected arguments: %s", strings.Join(fs.Args(), " "))
	}

	cfg := config{root: *root, addr: *addr, token: *token, shutdownTimeout: *shutdownTimeout}
	var err error
	if cfg.capacity, err = strconv.Atoi(*capacity); err != nil || cfg.capacity < 1 {
		return config{}, fmt.Errorf("-capacity %q: want a positive integer", *capacity)
	}
	if cfg.maxBody, err = strconv.ParseInt(*maxBody, 10, 64); err != nil || cfg.maxBody < 1 {
		return config{}, fmt.Errorf("-max-body %q: want a positive number of bytes", *maxBody)
	}
	if cfg.sync, err = rolloutfs.ParseSyncPolicy(*syncPolicy); err != nil {
		return config{}, fmt.Errorf("-sync: %w", err)
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		return config{}, fmt.Errorf("-log-level %q: want debug, info, warn or error", *logLevel)
	}
	handlerOpts := &slog.HandlerOptions{Level: level}
	switch *logFormat {
	case "text":
		cfg.logger = slog.New(slog.NewTextHandler(stderr, handlerOpts))
	case "json":
		cfg.logger = slog.New(slog.NewJSONHandler(stderr, handlerOpts))
	default:
		return config{}, fmt.Errorf("-log-format %q: want text or json", *logFormat)
	}
	return cfg, nil
}

// run serves until ctx is done, then shuts down gracefully.
func run(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer) error {
	cfg, err := parseConfig(args, getenv, stderr)
	if err != nil {
		return err
	}
	log := cfg.logger

	m, err := manager.Open(ctx, manager.Options{
		Root:     cfg.root,
		Capacity: cfg.capacity,
		Sync:     cfg.sync,
		Logger:   log,
	})
	if err != nil {
		return fmt.Errorf("open store %s: %w", cfg.root, err)
	}
	srv := server.New(m, server.Config{Token: cfg.token, MaxBody: cfg.maxBody, Logger: log})
	httpServer := srv.HTTPServer(cfg.addr)

	ln, err := net.Listen("tcp", cfg.addr)
	if err != nil {
		return errors.Join(fmt.Errorf("listen: %w", err), m.Close())
	}
	log.Info("listening", "addr", ln.Addr().String(), "root", m.Root(),
		"sync", cfg.sync.String(), "auth", cfg.token != "")

	serveErr := make(chan error, 1)
	go func() { serveErr <- httpServer.Serve(ln) }()

	select {
	case err := <-serveErr:
		// Serve only returns early on a listener failure.
		return errors.Join(fmt.Errorf("serve: %w", err), m.Close())
	case <-ctx.Done():
	}

	log.Info("shutting down", "timeout", cfg.shutdownTimeout)
	srv.Drain()
	shutdownCtx, cancel := context.WithTimeout(context.Background(), cfg.shutdownTimeout)
	defer cancel()
	shutdownErr := httpServer.Shutdown(shutdownCtx)
	if shutdownErr != nil {
		shutdownErr = fmt.Errorf("shutdown: %w", shutdownErr)
		// Requests still running hold threads; cut them before closing.
		httpServer.Close()
	}
	if err := <-serveErr; err != nil && !errors.Is(err, http.ErrServerClosed) {
		shutdownErr = errors.Join(shutdownErr, fmt.Errorf("serve: %w", err))
	}
	if err := m.Close(); err != nil {
		return errors.Join(shutdownErr, fmt.Errorf("close store: %w", err))
	}
	if shutdownErr != nil {
		return shutdownErr
	}
	log.Info("stopped")
	return nil
}

//go:build distributed

package pgbackend

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/spoolhq/spool/internal/disttest"
	"github.com/spoolhq/spool/manager"
	"github.com/spoolhq/spool/objstore"
	"github.com/spoolhq/spool/server"
)

// wantUnavailable sends a request to srv and fails unless it is answered
// 503 unavailable with a Retry-After; it returns the error's message.
func wantUnavailable(t *testing.T, srv *httptest.Server, method, path, body string) string {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, srv.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := (&http.Client{Timeout: time.Minute}).Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	got, err := io.ReadAll(resp.Body)
	var e struct {
		Error struct{ Code, Message string } `json:"error"`
	}
	json.Unmarshal(got, &e)
	if err != nil || resp.StatusCode != http.StatusServiceUnavailable || e.Error.Code != "unavailable" || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("%s %s: %s (Retry-After %q) %.200s, %v; want 503 unavailable with Retry-After",
			method, path, resp.Status, resp.Header.Get("Retry-After"), got, err)
	}
	return e.Error.Message
}

// TestStorageDownAnswersUnavailable: with PostgreSQL unreachable (its
// connections broken, new ones refused), reads and writes are answered
// 503 unavailable with Retry-After, not 500 internal, and served again
// once it is back; with the object store unreachable, a read of a sealed
// thread is answered 503 before any of its bytes, not 200 with a body
// cut short, also when it follows the thread.
func TestStorageDownAnswersUnavailable(t *testing.T) {
	t.Run("postgres", func(t *testing.T) {
		dsn, pg := disttest.ProxyURL(t, disttest.DSN(t))
		b, err := Open(t.Context(), Options{DSN: dsn})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { b.Close() })
		srv := httptest.NewServer(server.New(b, server.Config{}).Handler())
		t.Cleanup(srv.Close)
		th, err := b.AppendTurn(t.Context(), bigThread(t, b, 1).ID, manager.TurnOptions{Prompt: "hello", Answer: "hi"})
		if err != nil {
			t.Fatal(err)
		}
		id := th.Thread.ID
		pg.Down()
		thread := "/v1/threads/" + id
		wantUnavailable(t, srv, "GET", "/v1/threads", "")
		wantUnavailable(t, srv, "GET", thread, "")
		wantUnavailable(t, srv, "GET", thread+"/items", "")
		wantUnavailable(t, srv, "GET", "/v1/search?q=hello", "")
		wantUnavailable(t, srv, "POST", thread+"/items", `{"items":[{"type":"event_msg","payload":{"type":"agent_message","message":"x"}}]}`)
		pg.Up()
		if _, err := b.Get(t.Context(), id); err != nil {
			t.Fatalf("get once PostgreSQL is back: %v", err)
		}
	})
	t.Run("object store", func(t *testing.T) {
		cfg := disttest.S3Config(t)
		var s3 *disttest.Proxy
		cfg.Endpoint, s3 = disttest.ProxyURL(t, cfg.Endpoint)
		th, srv := sealedThreadServer(t, cfg, 1<<20)
		s3.Down()
		wantUnavailable(t, srv, "GET", "/v1/threads/"+th.ID+"/items", "")
		wantUnavailable(t, srv, "GET", "/v1/threads/"+th.ID+"/items?follow=1", "")
	})
}

// TestPostgresNotAnsweringAnswersUnavailable: with PostgreSQL accepting
// connections but answering nothing (a frozen host, a stalled network),
// a call that needs a new connection fails as unavailable (503 with
// Retry-After, logged) once the connect times out, not left waiting for
// as long as the server stays silent, nor taken for a caller that gave
// up; the node serves again once it answers.
func TestPostgresNotAnsweringAnswersUnavailable(t *testing.T) {
	dsn, pg := disttest.ProxyURL(t, disttest.DSN(t))
	b, err := Open(t.Context(), Options{DSN: dsn})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	id := bigThread(t, b, 1).ID
	pg.Mute()
	const within = 20 * time.Second
	for _, c := range []struct {
		name string
		call func() error
	}{
		{"get", func() error { _, err := b.Get(t.Context(), id); return err }},
		{"list", func() error { _, err := b.List(t.Context(), manager.ListOptions{Limit: 1}); return err }},
		{"append", func() error {
			_, err := b.AppendTurn(t.Context(), id, manager.TurnOptions{Prompt: "hello", Answer: "hi"})
			return err
		}},
	} {
		done := make(chan error, 1)
		go func() { done <- c.call() }()
		select {
		case err := <-done:
			if !errors.Is(err, manager.ErrUnavailable) {
				t.Fatalf("%s with PostgreSQL silent: %v; want manager.ErrUnavailable", c.name, err)
			}
		case <-time.After(within):
			pg.Down() // lets the call end
			t.Fatalf("%s with PostgreSQL silent: no answer within %s; want manager.ErrUnavailable", c.name, within)
		}
	}
	pg.Down()
	pg.Up()
	if _, err := b.Get(t.Context(), id); err != nil {
		t.Fatalf("get once PostgreSQL answers again: %v", err)
	}
}

// brokenReads is a bucket whose reads fail, once ok of them succeeded, as
// a connection to the object store that broke does.
type brokenReads struct {
	objstore.Bucket
	mu sync.Mutex
	ok int
}

func (b *brokenReads) ReadRange(ctx context.Context, key string, off, n int64) ([]byte, error) {
	b.mu.Lock()
	broken := b.ok <= 0
	b.ok--
	b.mu.Unlock()
	if broken {
		return nil, &net.OpError{Op: "read", Net: "tcp", Err: syscall.ECONNRESET}
	}
	return b.Bucket.ReadRange(ctx, key, off, n)
}

// TestCopyForkUnavailableMidway: a copy fork of a paginated thread reads
// the parent's history twice (its lines counted, then copied); the object
// store going away in the second read fails the fork as unavailable, as
// in the first, not as lines of the request that are invalid (400, which
// a client does not retry).
func TestCopyForkUnavailableMidway(t *testing.T) {
	ctx := t.Context()
	bucket := &brokenReads{Bucket: disttest.Bucket(t), ok: 1 << 30}
	b, err := Open(ctx, Options{DSN: disttest.DSN(t), Bucket: bucket, SealEvery: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	th := bigThread(t, b, 1<<20)
	if _, err := b.store.Seal(ctx, th.ID, 1); err != nil {
		t.Fatal(err)
	}
	bucket.mu.Lock()
	bucket.ok = 1 // the count's read of the one segment
	bucket.mu.Unlock()
	_, err = b.Fork(ctx, th.ID, manager.ForkOptions{Mode: manager.ForkCopy})
	if !errors.Is(err, manager.ErrUnavailable) || errors.Is(err, manager.ErrInvalidItem) {
		t.Fatalf("copy fork with the object store gone midway: %v; want unavailable", err)
	}
}

// sealedThreadServer opens a backend on the bucket of cfg, writes a
// thread of about size bytes, seals it into an object, and serves the
// backend over HTTP.
func sealedThreadServer(t *testing.T, cfg objstore.S3Config, size int) (manager.Thread, *httptest.Server) {
	t.Helper()
	bucket, err := objstore.OpenS3(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	b, err := Open(t.Context(), Options{DSN: disttest.DSN(t), Bucket: bucket, SealEvery: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	th := bigThread(t, b, size)
	if _, err := b.store.Seal(t.Context(), th.ID, 1); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(server.New(b, server.Config{}).Handler())
	t.Cleanup(srv.Close)
	return th, srv
}

// failingS3 carries requests to the S3 gateway until status is set; then
// it answers every request itself with status and an S3 error of code, as
// a throttled or failing service does, or, with status hangs, answers
// none, as a service that accepts connections and never answers.
type failingS3 struct {
	mu     sync.Mutex
	status int
	code   string
}

// hangs is failingS3's status for a service that never answers.
const hangs = -1

func (f *failingS3) fail(status int, code string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.status, f.code = status, code
}

func (f *failingS3) RoundTrip(req *http.Request) (*http.Response, error) {
	f.mu.Lock()
	status, code := f.status, f.code
	f.mu.Unlock()
	switch status {
	case 0:
		return http.DefaultTransport.RoundTrip(req)
	case hangs:
		<-req.Context().Done()
		return nil, req.Context().Err()
	}
	if req.Body != nil {
		io.Copy(io.Discard, req.Body)
		req.Body.Close()
	}
	body := `<?xml version="1.0" encoding="UTF-8"?><Error><Code>` + code + `</Code><Message>failing on purpose</Message></Error>`
	return &http.Response{StatusCode: status, Status: http.StatusText(status), Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: http.Header{"Content-Type": {"application/xml"}}, Body: io.NopCloser(strings.NewReader(body)),
		ContentLength: int64(len(body)), Request: req}, nil
}

// TestObjectStoreErrorsAnswerUnavailable: an object store that answers
// 503 SlowDown (throttled) or 500 InternalError, as S3 does now and then
// (minio-go retries them, then gives up), makes a read of a sealed thread
// answered 503 unavailable with Retry-After, as a store that cannot be
// reached does, not 500 internal (which says the server is broken). So
// does one that never answers, once S3Config.RequestTimeout has passed
// (wantUnavailable's client gives up after a minute).
func TestObjectStoreErrorsAnswerUnavailable(t *testing.T) {
	for _, tc := range []struct {
		name   string
		status int
		code   string
	}{
		{"slow down", http.StatusServiceUnavailable, "SlowDown"},
		{"internal error", http.StatusInternalServerError, "InternalError"},
		{"no answer", hangs, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := disttest.S3Config(t)
			s3 := &failingS3{}
			cfg.Transport = s3
			if tc.status == hangs {
				cfg.RequestTimeout = time.Second
			}
			th, srv := sealedThreadServer(t, cfg, 1<<10)
			s3.fail(tc.status, tc.code)
			wantUnavailable(t, srv, "GET", "/v1/threads/"+th.ID+"/items", "")
		})
	}
}

// openTimingOut opens a backend on a new database whose statements may
// take a second (spool_query_timeout), closed with the test, and returns
// it with the database's DSN without that bound.
func openTimingOut(t *testing.T) (b *Backend, plain string) {
	t.Helper()
	plain = disttest.DSN(t)
	b, err := Open(t.Context(), Options{DSN: disttest.WithQueryTimeout(t, plain, "1s")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b, plain
}

// TestPostgresFrozenAnswersUnavailable: with PostgreSQL frozen on the
// connections already open (a host stopped, a network dropping packets:
// nothing is closed, nothing is answered), calls fail as unavailable
// once the query timeout (spool_query_timeout) has passed, appends
// queued behind a batch in flight among them, and requests are answered
// 503 with Retry-After, rather than waiting for as long as the server
// stays silent; once it answers again, the node serves again.
func TestPostgresFrozenAnswersUnavailable(t *testing.T) {
	dsn, pg := disttest.ProxyURL(t, disttest.WithQueryTimeout(t, disttest.DSN(t), "2s"))
	b, err := Open(t.Context(), Options{DSN: dsn})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	srv := httptest.NewServer(server.New(b, server.Config{}).Handler())
	t.Cleanup(srv.Close)
	ids := make([]string, 8)
	for i := range ids {
		ids[i] = bigThread(t, b, 1).ID
	}
	pg.Freeze()
	calls := map[string]func() error{
		"get":  func() error { _, err := b.Get(t.Context(), ids[0]); return err },
		"list": func() error { _, err := b.List(t.Context(), manager.ListOptions{Limit: 1}); return err },
	}
	for i, id := range ids { // one batch in flight, the others queued behind it
		calls[fmt.Sprintf("append %d", i)] = func() error {
			_, err := b.AppendTurn(t.Context(), id, manager.TurnOptions{Prompt: "hello", Answer: "hi"})
			return err
		}
	}
	type outcome struct {
		name string
		err  error
	}
	done := make(chan outcome, len(calls))
	for name, call := range calls {
		go func() { done <- outcome{name, call()} }()
	}
	const within = 15 * time.Second
	timeout := time.After(within)
	for range calls {
		select {
		case o := <-done:
			if !errors.Is(o.err, manager.ErrUnavailable) {
				t.Errorf("%s with PostgreSQL frozen: %v; want manager.ErrUnavailable", o.name, o.err)
			}
		case <-timeout:
			pg.Down() // lets the calls end
			t.Fatalf("calls with PostgreSQL frozen: some unanswered after %s; want manager.ErrUnavailable", within)
		}
	}
	wantUnavailable(t, srv, "GET", "/v1/threads/"+ids[0], "")
	wantUnavailable(t, srv, "POST", "/v1/threads/"+ids[0]+"/items", `{"items":[{"type":"event_msg","payload":{"type":"agent_message","message":"x"}}]}`)
	pg.Thaw()
	if _, err := b.AppendTurn(t.Context(), ids[0], manager.TurnOptions{Prompt: "again", Answer: "yes"}); err != nil {
		t.Fatalf("append once PostgreSQL answers again: %v", err)
	}
}

// TestSlowCommitCutOffIsSettled: an append whose COMMIT takes longer than
// the query timeout (here a deferred trigger sleeps in it) is cut off, and
// pgx cancels the statement it gave up on; the commit is then settled
// (pg_xact_status), not taken for a failure: rolled back by the cancel,
// it is answered unavailable, and its retry writes the lines once.
func TestSlowCommitCutOffIsSettled(t *testing.T) {
	ctx := t.Context()
	b, plain := openTimingOut(t)
	id := bigThread(t, b, 1).ID
	before, err := b.Get(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	db, err := pgx.Connect(ctx, plain)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close(context.Background()) })
	if _, err := db.Exec(ctx, `CREATE FUNCTION slow_commit() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN PERFORM pg_sleep(5); RETURN NULL; END $$;
		CREATE CONSTRAINT TRIGGER slow_commit AFTER UPDATE ON threads DEFERRABLE INITIALLY DEFERRED
		FOR EACH ROW EXECUTE FUNCTION slow_commit()`); err != nil {
		t.Fatal(err)
	}
	turn := manager.TurnOptions{Prompt: "slow", Answer: "commit"}
	if _, err := b.AppendTurn(ctx, id, turn); !errors.Is(err, manager.ErrUnavailable) {
		t.Fatalf("append whose commit outlasts the query timeout: %v; want manager.ErrUnavailable (rolled back)", err)
	}
	// DROP TRIGGER waits for any transaction still holding the table.
	if _, err := db.Exec(ctx, `DROP TRIGGER slow_commit ON threads`); err != nil {
		t.Fatal(err)
	}
	if _, err := b.AppendTurn(ctx, id, turn); err != nil {
		t.Fatalf("retry: %v", err)
	}
	after, err := b.Get(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := after.UserMessageCount, before.UserMessageCount+1; got != want {
		t.Fatalf("user messages after the cut-off append and its retry = %d, want %d", got, want)
	}
}

// TestQueryTimeoutNamedInTheLog: a request cut off by the query timeout
// (here PostgreSQL frozen behind a proxy) is answered 503, and the
// server's log line names the setting an operator would change and its
// value, spool_query_timeout; it used to say only "timeout: context
// deadline exceeded".
func TestQueryTimeoutNamedInTheLog(t *testing.T) {
	ctx := t.Context()
	dsn, pg := disttest.ProxyURL(t, disttest.WithQueryTimeout(t, disttest.DSN(t), "1s"))
	b, err := Open(ctx, Options{DSN: dsn})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	var logs lockedBuffer
	srv := httptest.NewServer(server.New(b, server.Config{Logger: slog.New(slog.NewTextHandler(&logs, nil))}).Handler())
	t.Cleanup(srv.Close)
	th, err := b.Start(ctx, manager.StartOptions{Cwd: "/work"})
	if err != nil {
		t.Fatal(err)
	}
	pg.Freeze()
	defer pg.Thaw()
	wantUnavailable(t, srv, "POST", "/v1/threads/"+th.ID+"/items", `{"items":[{"type":"event_msg","payload":{"type":"agent_message","message":"x"}}]}`)
	if got, want := logs.String(), "spool_query_timeout (1s"; !strings.Contains(got, want) {
		t.Fatalf("log of a request cut off by the query timeout: %q; want it to name %q", got, want)
	}
}

// TestRowLockedElsewhereAnswersLocked: an append to a thread whose row
// another session holds locked past the store's lock_timeout (three
// quarters of spool_query_timeout) fails with manager.ErrStorageLocked,
// which is ErrUnavailable too, writes nothing, and is answered 503 with
// Retry-After and a message that says a lock is in the way, where it
// used to say the storage could not be reached; the log names
// lock_timeout. Once the lock is released the append goes through.
func TestRowLockedElsewhereAnswersLocked(t *testing.T) {
	ctx := t.Context()
	b, plain := openTimingOut(t)
	if got, want := b.store.LockTimeout(), 750*time.Millisecond; got != want {
		t.Fatalf("LockTimeout with spool_query_timeout=1s = %s, want %s", got, want)
	}
	var logs lockedBuffer
	srv := httptest.NewServer(server.New(b, server.Config{Logger: slog.New(slog.NewTextHandler(&logs, nil))}).Handler())
	t.Cleanup(srv.Close)
	th := bigThread(t, b, 1)
	db, err := pgx.Connect(ctx, plain)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close(context.Background()) })
	tx, err := db.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, `SELECT 1 FROM threads WHERE id = $1 FOR UPDATE`, th.ID); err != nil {
		t.Fatal(err)
	}
	turn := manager.TurnOptions{Prompt: "locked", Answer: "out"}
	_, err = b.AppendTurn(ctx, th.ID, turn)
	if !errors.Is(err, manager.ErrStorageLocked) || !errors.Is(err, manager.ErrUnavailable) {
		t.Fatalf("append to a row locked elsewhere: %v; want manager.ErrStorageLocked, which is ErrUnavailable", err)
	}
	msg := wantUnavailable(t, srv, "POST", "/v1/threads/"+th.ID+"/items", `{"items":[{"type":"event_msg","payload":{"type":"agent_message","message":"x"}}]}`)
	if want := "locked by another session"; !strings.Contains(msg, want) {
		t.Errorf("503 for a row locked elsewhere says %q; want it to say %q", msg, want)
	}
	if got, want := logs.String(), "lock_timeout (750ms)"; !strings.Contains(got, want) {
		t.Errorf("log of a request refused for a lock: %q; want it to name %q", got, want)
	}
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := b.AppendTurn(ctx, th.ID, turn); err != nil {
		t.Fatalf("append once the lock is released: %v", err)
	}
	after, err := b.Get(ctx, th.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := after.UserMessageCount, th.UserMessageCount+1; got != want {
		t.Fatalf("user messages after two refused appends and one that went through = %d, want %d", got, want)
	}
}

// lockedBuffer is a bytes.Buffer a logger may write while a test reads it.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

package pgstore

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// DefaultQueryTimeout bounds, on a connection already open, how long
// PostgreSQL may take to answer one statement (a query, a batch, a
// BEGIN or COMMIT), and how long a call waits for a connection from the
// pool, when the DSN's spool_query_timeout does not set a bound: a server
// that stops answering (a frozen host, a network that drops packets) then
// fails the request waiting on it as unreachable, and frees the node's
// later appends queued behind it, rather than holding them for as long as
// the silence lasts. A statement that waits on a row lock longer than
// this fails too, and writes nothing.
const DefaultQueryTimeout = 30 * time.Second

// queryTimeoutParam is the DSN parameter that sets the bound (a Go
// duration, "0" for none); it is spool's, never sent to the server.
const queryTimeoutParam = "spool_query_timeout"

// queryTimeout reads and removes spool_query_timeout from cfg's runtime
// parameters (pgx would send it to the server, which refuses it).
func queryTimeout(cfg *pgxpool.Config) (time.Duration, error) {
	s, ok := cfg.ConnConfig.RuntimeParams[queryTimeoutParam]
	if !ok {
		return DefaultQueryTimeout, nil
	}
	delete(cfg.ConnConfig.RuntimeParams, queryTimeoutParam)
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("pgstore: %s=%q: want a duration such as 30s, or 0 for none", queryTimeoutParam, s)
	}
	return d, nil
}

// LockTimeout returns the lock_timeout the store's connections run with
// (0: none), read from the server when the store opened: three quarters
// of the query timeout, so that a statement waiting on a lock another
// session holds (a transaction left open, a table being rewritten) fails
// as such (SQLSTATE 55P03, lock_not_available) before its deadline cuts
// it off as unanswered; or the one the DSN, PGOPTIONS, the role or the
// database sets, which stands.
func (s *Store) LockTimeout() time.Duration { return s.lockTimeout }

// setLockTimeout gives each new connection of the pool a lock_timeout of
// three quarters of timeout, unless its session has one from anywhere
// but PostgreSQL's default (0 given on purpose stands too). The
// migrations' connection does not get it (migrate): they wait for the
// locks they need as long as it takes.
func setLockTimeout(cfg *pgxpool.Config, timeout time.Duration) {
	ms := strconv.FormatInt(lockTimeoutFor(timeout).Milliseconds(), 10) + "ms"
	cfg.AfterConnect = func(ctx context.Context, conn *pgx.Conn) error {
		_, err := conn.Exec(ctx, `SELECT set_config('lock_timeout', $1, false) FROM pg_settings WHERE name = 'lock_timeout' AND source = 'default'`, ms)
		return err
	}
}

// maxLockTimeout is the largest lock_timeout PostgreSQL takes (INT_MAX
// milliseconds, about 24 days).
const maxLockTimeout = (1<<31 - 1) * time.Millisecond

// lockTimeoutFor returns the lock_timeout that goes with a query timeout.
func lockTimeoutFor(timeout time.Duration) time.Duration {
	return min(max(timeout*3/4, time.Millisecond), maxLockTimeout)
}

// readLockTimeout returns the lock_timeout of a connection of pool.
func readLockTimeout(ctx context.Context, pool *pgxpool.Pool) (time.Duration, error) {
	var ms int64
	err := pool.QueryRow(ctx, `SELECT (extract(epoch FROM current_setting('lock_timeout')::interval) * 1000)::bigint`).Scan(&ms)
	return time.Duration(ms) * time.Millisecond, err
}

// queryDeadline gives every statement sent on a connection of the pool,
// and every wait for one, a deadline: the timeout, and a second more per
// MiB of arguments the statement sends (minRate), so that a large append
// on a slow link is not taken for an unanswered one. pgx then closes a
// connection whose answer does not come in time, and fails the call with
// context.DeadlineExceeded. A COMMIT so cut off is one whose answer was
// lost (commit), settled as any other.
type queryDeadline struct{ timeout time.Duration }

// minRate is the slowest rate, in bytes per second, at which a
// statement's arguments are expected to reach the server (as objstore's
// for what it moves).
const minRate = 1 << 20

// argBytes is about how many bytes args take on the wire: their byte
// slices and strings (lines, texts), the rest being small.
func argBytes(args []any) int {
	n := 0
	for _, a := range args {
		switch v := a.(type) {
		case []byte:
			n += len(v)
		case string:
			n += len(v)
		}
	}
	return n
}

var (
	_ pgx.QueryTracer       = queryDeadline{}
	_ pgx.BatchTracer       = queryDeadline{}
	_ pgxpool.AcquireTracer = queryDeadline{}
)

// cancelKey holds, in the context a start returned, the function that
// releases its deadline at the end.
type cancelKey struct{}

func (q queryDeadline) start(ctx context.Context, sent int) context.Context {
	ctx, cancel := context.WithTimeout(ctx, q.timeout+time.Duration(sent/minRate)*time.Second)
	return context.WithValue(ctx, cancelKey{}, cancel)
}

func end(ctx context.Context) {
	if cancel, ok := ctx.Value(cancelKey{}).(context.CancelFunc); ok {
		cancel()
	}
}

func (q queryDeadline) TraceQueryStart(ctx context.Context, _ *pgx.Conn, data pgx.TraceQueryStartData) context.Context {
	return q.start(ctx, argBytes(data.Args))
}

func (queryDeadline) TraceQueryEnd(ctx context.Context, _ *pgx.Conn, _ pgx.TraceQueryEndData) {
	end(ctx)
}

func (q queryDeadline) TraceBatchStart(ctx context.Context, _ *pgx.Conn, data pgx.TraceBatchStartData) context.Context {
	sent := 0
	for _, queued := range data.Batch.QueuedQueries {
		sent += argBytes(queued.Arguments)
	}
	return q.start(ctx, sent)
}

func (queryDeadline) TraceBatchQuery(context.Context, *pgx.Conn, pgx.TraceBatchQueryData) {}

func (queryDeadline) TraceBatchEnd(ctx context.Context, _ *pgx.Conn, _ pgx.TraceBatchEndData) {
	end(ctx)
}

func (q queryDeadline) TraceAcquireStart(ctx context.Context, _ *pgxpool.Pool, _ pgxpool.TraceAcquireStartData) context.Context {
	return q.start(ctx, 0)
}

func (queryDeadline) TraceAcquireEnd(ctx context.Context, _ *pgxpool.Pool, _ pgxpool.TraceAcquireEndData) {
	end(ctx)
}

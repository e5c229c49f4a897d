package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"

	"github.com/jmoiron/sqlx"
)

// stmtCache holds statements prepared on first use, one per connection
// pool and query: the history-chain queries are recursive, and parsing
// them again on every seek cost more than running them.
type stmtCache struct {
	mu    sync.Mutex // guards stmts
	stmts map[stmtKey]*sqlx.Stmt
}

type stmtKey struct {
	db    *sqlx.DB
	query string
}

// get returns query prepared on db. Preparing takes a connection of db:
// a statement for the writer (one connection) must be prepared before a
// transaction holds it (see writerStmts).
func (c *stmtCache) get(ctx context.Context, db *sqlx.DB, query string) (*sqlx.Stmt, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	k := stmtKey{db, query}
	if st, ok := c.stmts[k]; ok {
		return st, nil
	}
	st, err := db.PreparexContext(ctx, query)
	if err != nil {
		return nil, fmt.Errorf("prepare: %w", err)
	}
	if c.stmts == nil {
		c.stmts = map[stmtKey]*sqlx.Stmt{}
	}
	c.stmts[k] = st
	return st, nil
}

// close closes every statement; get must not be called after.
func (c *stmtCache) close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	var errs []error
	for _, st := range c.stmts {
		errs = append(errs, st.Close())
	}
	c.stmts = nil
	return errors.Join(errs...)
}

// lookup returns the context for the statements of a lookup through an
// index (a thread by id or path, a user message by ordinal or turn, a
// history chain, a thread's ancestors): ctx's values without its
// cancellation, or ctx's error when it is already done. Such statements
// take microseconds. Watching ctx would cost each of them two goroutines
// (database/sql's and the driver's), and waking an idle thread for each
// cost a fork after a pause more than its statements did (BENCHMARKS.md).
// Statements that can read many rows (search, lists, every message of a
// thread, a thread's descendants or forks, rebuilds) keep ctx, so a caller
// that goes away stops them; a lookup that waits for a free reader waits
// until one of those ends.
func lookup(ctx context.Context) (context.Context, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return context.WithoutCancel(ctx), nil
}

// readStmt returns query prepared on the reader pool.
func (s *Store) readStmt(ctx context.Context, query string) (*sqlx.Stmt, error) {
	return s.stmts.get(ctx, s.reader, query)
}

// writerStmts are the queries prepared on the writer when the store
// opens: the writer's one connection is then free. They are those of
// every new thread and fork, whose few rows cost less to write than to
// parse the statements again.
var writerStmts = []string{messageSQL, ownMessageSQL, threadExistsSQL, insertThread, upsertThread,
	insertLineage, parentAncestrySQL, insertSpawnSQL, copyForksOfSQL}

// threadExistsSQL reports whether a thread is indexed.
const threadExistsSQL = `SELECT EXISTS (SELECT 1 FROM threads WHERE id = ?)`

// prepareWriter prepares writerStmts on the writer.
func (s *Store) prepareWriter(ctx context.Context) error {
	for _, q := range writerStmts {
		if _, err := s.stmts.get(ctx, s.writer, q); err != nil {
			return err
		}
	}
	return nil
}

// txStmt returns query, one of writerStmts, bound to tx; another query is
// prepared in tx (and closed with it).
func (s *Store) txStmt(ctx context.Context, tx *sqlx.Tx, query string) (*sqlx.Stmt, error) {
	s.stmts.mu.Lock()
	st, ok := s.stmts.stmts[stmtKey{s.writer, query}]
	s.stmts.mu.Unlock()
	if !ok {
		return tx.PreparexContext(ctx, query)
	}
	return tx.StmtxContext(ctx, st), nil
}

// cachedReads runs queries on the reader pool through the statement cache,
// as sqlx.SelectContext and sqlx.GetContext take them: a query is parsed
// once per connection, not on every call. Only constant queries, or ones
// made of a few fixed parts (a search's filters), go through it: the
// cache keeps every query it is given.
type cachedReads struct{ s *Store }

var _ sqlx.QueryerContext = cachedReads{}

func (c cachedReads) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	st, err := c.s.readStmt(ctx, query)
	if err != nil {
		return nil, err
	}
	return st.QueryContext(ctx, args...)
}

func (c cachedReads) QueryxContext(ctx context.Context, query string, args ...any) (*sqlx.Rows, error) {
	st, err := c.s.readStmt(ctx, query)
	if err != nil {
		return nil, err
	}
	return st.QueryxContext(ctx, args...)
}

// QueryRowxContext runs a query that failed to prepare uncached, whose
// row then carries the error (a sqlx.Row cannot be made with one).
func (c cachedReads) QueryRowxContext(ctx context.Context, query string, args ...any) *sqlx.Row {
	st, err := c.s.readStmt(ctx, query)
	if err != nil {
		return c.s.reader.QueryRowxContext(ctx, query, args...)
	}
	return st.QueryRowxContext(ctx, args...)
}

// cached returns the store's reader pool through the statement cache.
func (s *Store) cached() cachedReads { return cachedReads{s} }

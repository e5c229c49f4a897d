package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
)

// threadDest returns pointers to t's fields in the order of threadColumns,
// for Scan: rows of the hottest reads (a page of List, Get) are scanned
// without sqlx's reflection.
func threadDest(t *Thread) []any {
	return []any{&t.ID, &t.RolloutPath, &t.CreatedAt, &t.UpdatedAt, &t.Cwd, &t.Source, &t.Originator,
		&t.CLIVersion, &t.ModelProvider, &t.GitCommit, &t.GitBranch, &t.GitOrigin, &t.Name, &t.Preview,
		&t.Archived, &t.ArchivedAt, &t.ParentID, &t.ForkUserMessage,
		&t.ForkOffset, &t.LineCount, &t.UserMessageCount, &t.IndexedSize, &t.FileSize, &t.FileMtime,
		&t.HistoryMode, &t.BaseID, &t.BaseSize, &t.NextOrdinal, &t.TurnOffset, &t.TurnID}
}

// threadArgs returns t's fields in the order of threadColumns, the values
// bound by upsertThread.
func threadArgs(t *Thread) []any {
	return []any{t.ID, t.RolloutPath, t.CreatedAt, t.UpdatedAt, t.Cwd, t.Source, t.Originator,
		t.CLIVersion, t.ModelProvider, t.GitCommit, t.GitBranch, t.GitOrigin, t.Name, t.Preview,
		t.Archived, t.ArchivedAt, t.ParentID, t.ForkUserMessage,
		t.ForkOffset, t.LineCount, t.UserMessageCount, t.IndexedSize, t.FileSize, t.FileMtime,
		t.HistoryMode, t.BaseID, t.BaseSize, t.NextOrdinal, t.TurnOffset, t.TurnID}
}

// stmtCache holds statements prepared on the reader pool, keyed by their
// SQL text, so a query read again and again is parsed once per connection
// instead of once per call. Callers pass only texts from a finite set of
// shapes (values are always bound), which bounds the cache. It is safe for
// concurrent use; the zero value is ready.
type stmtCache struct {
	mu     sync.Mutex           // guards stmts and closed
	stmts  map[string]*sql.Stmt // SQL text -> statement on the reader pool
	closed bool
}

// errStmtCacheClosed is returned by get after close.
var errStmtCacheClosed = errors.New("store: closed")

// get returns the statement of query on db, preparing it on first use.
func (c *stmtCache) get(ctx context.Context, db *sql.DB, query string) (*sql.Stmt, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, errStmtCacheClosed
	}
	if stmt, ok := c.stmts[query]; ok {
		return stmt, nil
	}
	stmt, err := db.PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	if c.stmts == nil {
		c.stmts = make(map[string]*sql.Stmt)
	}
	c.stmts[query] = stmt
	return stmt, nil
}

// close closes every statement; get fails afterwards.
func (c *stmtCache) close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = true
	var errs []error
	for _, stmt := range c.stmts {
		errs = append(errs, stmt.Close())
	}
	c.stmts = nil
	return errors.Join(errs...)
}

// queryThreads runs a query selecting threadColumns through the statement
// cache and appends its rows to threads.
func (s *Store) queryThreads(ctx context.Context, threads []Thread, query string, args ...any) ([]Thread, error) {
	stmt, err := s.cache.get(ctx, s.reader.DB, query)
	if err != nil {
		return nil, fmt.Errorf("prepare: %w", err)
	}
	rows, err := stmt.QueryContext(ctx, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		threads = append(threads, Thread{})
		if err := rows.Scan(threadDest(&threads[len(threads)-1])...); err != nil {
			return nil, err
		}
	}
	return threads, rows.Err()
}

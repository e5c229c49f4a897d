package store

import (
	"context"
)

// threadDest returns pointers to t's fields in the order of threadColumns,
// for Scan: rows of the hottest reads (a page of List, Get) are scanned
// without sqlx's reflection.
func threadDest(t *Thread) []any {
	return []any{&t.ID, &t.RolloutPath, &t.CreatedAt, &t.UpdatedAt, &t.Cwd, &t.Source, &t.Originator,
		&t.CLIVersion, &t.ModelProvider, &t.GitCommit, &t.GitBranch, &t.GitOrigin, &t.Name, &t.Preview,
		&t.Archived, &t.ArchivedAt, &t.ParentID, &t.ForkUserMessage,
		&t.ForkOffset, &t.LineCount, &t.UserMessageCount, &t.IndexedSize, &t.FileSize, &t.FileMtime,
		&t.HistoryMode, &t.BaseID, &t.BaseSize, &t.NextOrdinal, &t.TurnOffset, &t.TurnID, &t.InheritedMessages,
		&t.PreviewOffset, &t.TailSum, &t.NewestAt}
}

// threadArgs returns t's fields in the order of threadColumns but the last
// (newest_at, which the statement derives), the values bound by
// upsertThread.
func threadArgs(t *Thread) []any {
	return []any{t.ID, t.RolloutPath, t.CreatedAt, t.UpdatedAt, t.Cwd, t.Source, t.Originator,
		t.CLIVersion, t.ModelProvider, t.GitCommit, t.GitBranch, t.GitOrigin, t.Name, t.Preview,
		t.Archived, t.ArchivedAt, t.ParentID, t.ForkUserMessage,
		t.ForkOffset, t.LineCount, t.UserMessageCount, t.IndexedSize, t.FileSize, t.FileMtime,
		t.HistoryMode, t.BaseID, t.BaseSize, t.NextOrdinal, t.TurnOffset, t.TurnID, t.InheritedMessages, t.PreviewOffset, t.TailSum}
}

// queryThreads runs a query selecting threadColumns through the statement
// cache and appends its rows to threads.
func (s *Store) queryThreads(ctx context.Context, threads []Thread, query string, args ...any) ([]Thread, error) {
	stmt, err := s.readStmt(ctx, query)
	if err != nil {
		return nil, err
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

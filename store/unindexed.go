package store

import (
	"context"
	"fmt"

	"github.com/jmoiron/sqlx"
)

// An UnindexedFork is a rollout file the index could not read whose first
// session_meta names a history_base: a reference fork the index does not
// hold (migration 00021). Base is what its history_base names: a thread's
// id, or a revert segment's uuid.
type UnindexedFork struct {
	RolloutPath string `db:"rollout_path"`
	ThreadID    string `db:"thread_id"`
	Base        string `db:"base"`
}

// SetUnindexedFork records f, replacing what was recorded for its path.
func (s *Store) SetUnindexedFork(ctx context.Context, f UnindexedFork) error {
	if s.writer == nil {
		return ErrReadOnly
	}
	const q = `INSERT INTO unindexed_forks (rollout_path, thread_id, base) VALUES (?, ?, ?)
		ON CONFLICT (rollout_path) DO UPDATE SET thread_id = excluded.thread_id, base = excluded.base`
	_, err := s.writer.ExecContext(ctx, q, f.RolloutPath, f.ThreadID, f.Base)
	s.wrote()
	if err != nil {
		return fmt.Errorf("record unindexed fork %s: %w", f.RolloutPath, classify(err))
	}
	return nil
}

// ForgetUnindexedFork removes what is recorded for the file at path, if
// anything.
func (s *Store) ForgetUnindexedFork(ctx context.Context, path string) error {
	if s.writer == nil {
		return ErrReadOnly
	}
	_, err := s.writer.ExecContext(ctx, `DELETE FROM unindexed_forks WHERE rollout_path = ?`, path)
	s.wrote()
	if err != nil {
		return fmt.Errorf("forget unindexed fork %s: %w", path, classify(err))
	}
	return nil
}

// UnindexedForks returns the recorded unindexed forks whose base is one of
// bases, or every one when bases is nil, in path order.
func (s *Store) UnindexedForks(ctx context.Context, bases []string) ([]UnindexedFork, error) {
	forks := []UnindexedFork{}
	q, args := `SELECT rollout_path, thread_id, base FROM unindexed_forks ORDER BY rollout_path`, []any(nil)
	if bases != nil {
		if len(bases) == 0 {
			return forks, nil
		}
		var err error
		q, args, err = sqlx.In(`SELECT rollout_path, thread_id, base FROM unindexed_forks WHERE base IN (?) ORDER BY rollout_path`, bases)
		if err != nil {
			return nil, fmt.Errorf("unindexed forks: %w", err)
		}
	}
	if err := s.reader.SelectContext(ctx, &forks, q, args...); err != nil {
		return nil, fmt.Errorf("unindexed forks: %w", err)
	}
	return forks, nil
}

package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// RescanNeeded reports whether the index asks for a full rescan of the
// files before it is trusted (a migration left rows that only a rescan
// completes), and why.
func (s *Store) RescanNeeded(ctx context.Context) (bool, string, error) {
	var why string
	err := s.reader.GetContext(ctx, &why, `SELECT value FROM index_state WHERE key = 'rescan'`)
	if errors.Is(err, sql.ErrNoRows) {
		return false, "", nil
	}
	if err != nil {
		return false, "", fmt.Errorf("read index state: %w", err)
	}
	return true, why, nil
}

// RescanDone records that a full rescan brought every row up to date.
func (s *Store) RescanDone(ctx context.Context) error {
	_, err := s.writer.ExecContext(ctx, `DELETE FROM index_state WHERE key = 'rescan'`)
	s.wrote()
	if err != nil {
		return fmt.Errorf("write index state: %w", classify(err))
	}
	return nil
}

// PutState records value under key in the index's own state, replacing
// what was there. Keys other than "rescan" belong to their writer.
func (s *Store) PutState(ctx context.Context, key, value string) error {
	const q = `INSERT INTO index_state (key, value) VALUES (?, ?)
		ON CONFLICT (key) DO UPDATE SET value = excluded.value`
	_, err := s.writer.ExecContext(ctx, q, key, value)
	s.wrote()
	if err != nil {
		return fmt.Errorf("write index state %s: %w", key, classify(err))
	}
	return nil
}

// TakeState removes the value under key and returns it, in one statement:
// two processes never both take it. ok is false when there was none; the
// index is then not written.
func (s *Store) TakeState(ctx context.Context, key string) (value string, ok bool, err error) {
	var n int
	if err := s.reader.GetContext(ctx, &n, `SELECT count(*) FROM index_state WHERE key = ?`, key); err != nil {
		return "", false, fmt.Errorf("take index state %s: %w", key, err)
	}
	if n == 0 {
		return "", false, nil
	}
	err = s.writer.GetContext(ctx, &value, `DELETE FROM index_state WHERE key = ? RETURNING value`, key)
	s.wrote()
	if errors.Is(err, sql.ErrNoRows) {
		return "", false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("take index state %s: %w", key, classify(err))
	}
	return value, true, nil
}

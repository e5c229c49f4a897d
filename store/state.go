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
	if _, err := s.writer.ExecContext(ctx, `DELETE FROM index_state WHERE key = 'rescan'`); err != nil {
		return fmt.Errorf("write index state: %w", err)
	}
	return nil
}

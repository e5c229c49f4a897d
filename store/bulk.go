package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/jmoiron/sqlx"
)

// listIndexes are the indexes of threads that only order and filter
// lists: no write of the index reads through them, so a bulk load of new
// rows can go without them and build them once at its end, sorting each
// table once instead of inserting into eight b-trees per row. (An index a
// write looks rows up by, threads_parent or threads_base, must stay: a
// first index without those was no faster.)
var listIndexes = []string{
	"threads_updated", "threads_created",
	"threads_archived_updated", "threads_archived_created",
	"threads_cwd_updated", "threads_cwd_created",
	"threads_source_created", "threads_model_provider_created",
}

// deferredKey is the index_state key under which DeferListIndexes keeps
// the definitions of the indexes it dropped until they are built again.
const deferredKey = "deferred_indexes"

// DeferListIndexes drops the indexes that only order and filter lists
// when the index holds no thread yet, for a first index that is about to
// write every row; it reports whether it did. Their definitions are kept
// in the index, in the same transaction, so that RestoreListIndexes, or
// the next Open after a crash, builds them again as they were. Until then
// lists are answered as before, by sorting.
//
// An index with threads is told by a read, which takes no lock and
// writes nothing: the walk at the start of a populated index pays one
// lookup.
func (s *Store) DeferListIndexes(ctx context.Context) (bool, error) {
	var populated bool
	if err := s.reader.GetContext(ctx, &populated, `SELECT EXISTS (SELECT 1 FROM threads)`); err != nil {
		return false, fmt.Errorf("defer list indexes: %w", err)
	}
	if populated {
		return false, nil
	}
	deferred := false
	err := s.inTx(ctx, func(tx *sqlx.Tx) error {
		var empty bool
		if err := tx.GetContext(ctx, &empty, `SELECT NOT EXISTS (SELECT 1 FROM threads)`); err != nil {
			return err
		}
		if !empty {
			return nil
		}
		var pending int
		if err := tx.GetContext(ctx, &pending, `SELECT count(*) FROM index_state WHERE key = ?`, deferredKey); err != nil || pending > 0 {
			return err
		}
		query, args, err := sqlx.In(`SELECT sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'threads' AND name IN (?) ORDER BY name`, listIndexes)
		if err != nil {
			return err
		}
		var defs []string
		if err := tx.SelectContext(ctx, &defs, query, args...); err != nil || len(defs) == 0 {
			return err
		}
		value, err := json.Marshal(defs)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO index_state (key, value) VALUES (?, ?)`, deferredKey, string(value)); err != nil {
			return err
		}
		for _, name := range listIndexes {
			if _, err := tx.ExecContext(ctx, `DROP INDEX IF EXISTS `+name); err != nil {
				return err
			}
		}
		deferred = true
		return nil
	})
	if deferred {
		s.wrote()
	}
	if err != nil {
		return false, fmt.Errorf("defer list indexes: %w", err)
	}
	return deferred, nil
}

// ListIndexesDeferred reports whether DeferListIndexes dropped the list
// indexes and nothing has built them again yet.
func (s *Store) ListIndexesDeferred(ctx context.Context) (bool, error) {
	var pending bool
	err := s.reader.GetContext(ctx, &pending, `SELECT EXISTS (SELECT 1 FROM index_state WHERE key = ?)`, deferredKey)
	if err != nil {
		return false, fmt.Errorf("read index state: %w", err)
	}
	return pending, nil
}

// RestoreListIndexes builds the indexes DeferListIndexes dropped and
// forgets their definitions, in one transaction, and reports whether it
// did. With none kept it writes nothing: one read tells.
func (s *Store) RestoreListIndexes(ctx context.Context) (bool, error) {
	pending, err := s.ListIndexesDeferred(ctx)
	if err != nil || !pending {
		return false, err
	}
	err = s.inTx(ctx, func(tx *sqlx.Tx) error { return restoreDeferred(ctx, tx) })
	s.wrote()
	if err != nil {
		return false, fmt.Errorf("restore list indexes: %w", err)
	}
	return true, nil
}

// execQueryer is what restoreDeferred needs of a transaction.
type execQueryer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// restoreDeferred builds the indexes kept under deferredKey, if any, and
// deletes the key. An index that exists already (built before a crash
// cut the transaction that would have deleted the key) is left as it is.
func restoreDeferred(ctx context.Context, tx execQueryer) error {
	var value string
	err := tx.QueryRowContext(ctx, `SELECT value FROM index_state WHERE key = ?`, deferredKey).Scan(&value)
	if errors.Is(err, sql.ErrNoRows) {
		return nil
	}
	if err != nil {
		return err
	}
	var defs []string
	if err := json.Unmarshal([]byte(value), &defs); err != nil {
		return fmt.Errorf("read the kept definitions: %w", err)
	}
	for _, def := range defs {
		const prefix = "CREATE INDEX "
		if !strings.HasPrefix(def, prefix) {
			return fmt.Errorf("kept definition %q is not an index's", def)
		}
		if _, err := tx.ExecContext(ctx, "CREATE INDEX IF NOT EXISTS "+def[len(prefix):]); err != nil {
			return err
		}
	}
	_, err = tx.ExecContext(ctx, `DELETE FROM index_state WHERE key = ?`, deferredKey)
	return err
}

// restoreDeferredAtOpen builds the indexes a bulk load dropped before a
// crash kept it from building them, before any migration runs (a
// migration expects the schema it was written against).
func restoreDeferredAtOpen(ctx context.Context, db *sql.DB) error {
	var hasState bool
	const q = `SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'index_state')`
	if err := db.QueryRowContext(ctx, q).Scan(&hasState); err != nil || !hasState {
		return err
	}
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := restoreDeferred(ctx, tx); err != nil {
		return errors.Join(err, tx.Rollback())
	}
	return tx.Commit()
}

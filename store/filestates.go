package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/jmoiron/sqlx"
)

// IndexedFile is the index's view of one rollout file: the thread's file
// state plus the columns an incremental sync needs to leave an unchanged
// thread alone without reading its whole row (its name, and the updated
// time a rename keeps).
type IndexedFile struct {
	FileState
	Name      string `db:"name"`
	UpdatedAt int64  `db:"updated_at"`
}

// IndexedFiles returns at most limit rows whose rollout path p lies in
// [lo, hi) in byte order (hi "" for no upper bound), ordered by rollout
// path. It is a range scan of the unique rollout_path index, so a caller
// can walk a directory's rows (lo = dir+"/", hi = dir+"0", '0' being the
// byte after '/') or page through the whole table with bounded memory:
// call again with lo = the last path returned + "\x00".
func (s *Store) IndexedFiles(ctx context.Context, lo, hi string, limit int) ([]IndexedFile, error) {
	const cols = `SELECT id, rollout_path, indexed_size, line_count, file_size, file_mtime, tail_sum, name, updated_at
		FROM threads WHERE rollout_path >= ?`
	var files []IndexedFile
	var err error
	if hi == "" {
		err = sqlx.SelectContext(ctx, s.cached(), &files, cols+` ORDER BY rollout_path LIMIT ?`, lo, limit)
	} else {
		err = sqlx.SelectContext(ctx, s.cached(), &files, cols+` AND rollout_path < ? ORDER BY rollout_path LIMIT ?`, lo, hi, limit)
	}
	if err != nil {
		return nil, fmt.Errorf("list indexed files in [%q, %q): %w", lo, hi, err)
	}
	return files, nil
}

// RolloutPathOf returns the rollout path indexed for thread id, or "" when
// the thread is not indexed.
func (s *Store) RolloutPathOf(ctx context.Context, id string) (string, error) {
	var p string
	err := sqlx.GetContext(ctx, s.cached(), &p, `SELECT rollout_path FROM threads WHERE id = ?`, id)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("rollout path of thread %s: %w", id, err)
	}
	return p, nil
}

// DeleteAt deletes thread id as Delete does (its copy forks take over the
// search text of their copies first) only if its row still names path as
// its rollout file, and reports whether it did. A row that moved
// elsewhere meanwhile is left alone.
func (s *Store) DeleteAt(ctx context.Context, id, path string) (bool, error) {
	var deleted bool
	err := s.inTx(ctx, func(tx *sqlx.Tx) error {
		var at []string
		if err := tx.SelectContext(ctx, &at, `SELECT id FROM threads WHERE id = ? AND rollout_path = ?`, id, path); err != nil || len(at) == 0 {
			return err
		}
		if err := handOverTexts(ctx, tx, id); err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, `DELETE FROM threads WHERE id = ? AND rollout_path = ?`, id, path)
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		deleted = n > 0
		return err
	})
	if err != nil {
		return false, fmt.Errorf("delete thread %s at %s: %w", id, path, err)
	}
	return deleted, nil
}

// idChunk is how many ids IndexedFilesByID binds per query.
const idChunk = 500

// IndexedFilesByID returns the rows of those of ids that are indexed, in
// no particular order, querying them a chunk at a time.
func (s *Store) IndexedFilesByID(ctx context.Context, ids []string) ([]IndexedFile, error) {
	if len(ids) == 1 {
		// A sync beside a manager asks for one row per file it writes:
		// one statement, prepared once.
		files, err := s.indexedFileByID(ctx, ids[0])
		if err != nil {
			return nil, fmt.Errorf("list indexed files of thread %s: %w", ids[0], err)
		}
		return files, nil
	}
	var files []IndexedFile
	for len(ids) > 0 {
		chunk := ids[:min(len(ids), idChunk)]
		ids = ids[len(chunk):]
		q, args, err := sqlx.In(`SELECT id, rollout_path, indexed_size, line_count, file_size, file_mtime, tail_sum, name, updated_at
			FROM threads WHERE id IN (?)`, chunk)
		if err != nil {
			return nil, fmt.Errorf("list indexed files of %d threads: %w", len(chunk), err)
		}
		var page []IndexedFile
		if err := s.reader.SelectContext(ctx, &page, s.reader.Rebind(q), args...); err != nil {
			return nil, fmt.Errorf("list indexed files of %d threads: %w", len(chunk), err)
		}
		files = append(files, page...)
	}
	return files, nil
}

// indexedFileByID returns the row of thread id, if indexed, through the
// statement cache.
func (s *Store) indexedFileByID(ctx context.Context, id string) ([]IndexedFile, error) {
	const q = `SELECT id, rollout_path, indexed_size, line_count, file_size, file_mtime, tail_sum, name, updated_at
		FROM threads WHERE id = ?`
	stmt, err := s.readStmt(ctx, q)
	if err != nil {
		return nil, err
	}
	var f IndexedFile
	err = stmt.QueryRowContext(ctx, id).Scan(&f.ID, &f.RolloutPath, &f.IndexedSize, &f.LineCount,
		&f.FileSize, &f.FileMtime, &f.TailSum, &f.Name, &f.UpdatedAt)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return []IndexedFile{f}, nil
}

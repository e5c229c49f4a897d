package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/jmoiron/sqlx"
)

// IdempotencyKey is a remembered idempotent append of a thread: the key
// its caller named it with, the hash of the request, the result the first
// call returned (encoded by the caller; the store does not read it) and
// when the key is forgotten. Times are Unix milliseconds.
type IdempotencyKey struct {
	ThreadID    string `db:"thread_id"`
	Key         string `db:"key"`
	RequestHash []byte `db:"request_hash"`
	Result      []byte `db:"result"`
	CreatedAt   int64  `db:"created_at"`
	ExpiresAt   int64  `db:"expires_at"`
}

// IdempotencyKey returns the key of thread id as recorded, or ErrNotFound
// when it is unknown or expired at now (Unix ms).
func (s *Store) IdempotencyKey(ctx context.Context, id, key string, now int64) (IdempotencyKey, error) {
	var k IdempotencyKey
	const q = `SELECT thread_id, key, request_hash, result, created_at, expires_at
		FROM idempotency_keys WHERE thread_id = ? AND key = ? AND expires_at > ?`
	err := sqlx.GetContext(ctx, s.cached(), &k, q, id, key, now)
	if errors.Is(err, sql.ErrNoRows) {
		return IdempotencyKey{}, fmt.Errorf("idempotency key %q of thread %s: %w", key, id, ErrNotFound)
	}
	if err != nil {
		return IdempotencyKey{}, fmt.Errorf("idempotency key %q of thread %s: %w", key, id, err)
	}
	return k, nil
}

// PruneIdempotencyKeys forgets the keys expired at now (Unix ms) and
// returns how many there were. Recording a key (Progress.Idempotency)
// prunes as well, so this is needed only to reclaim space at once.
func (s *Store) PruneIdempotencyKeys(ctx context.Context, now int64) (int64, error) {
	var n int64
	err := s.inTx(ctx, func(tx *sqlx.Tx) error {
		var err error
		n, err = pruneIdempotencyKeys(ctx, tx, now)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("prune idempotency keys: %w", err)
	}
	return n, nil
}

func pruneIdempotencyKeys(ctx context.Context, tx *sqlx.Tx, now int64) (int64, error) {
	res, err := tx.ExecContext(ctx, `DELETE FROM idempotency_keys WHERE expires_at <= ?`, now)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

// putIdempotencyKey records k (replacing an expired record of the same
// key) and prunes the keys expired when k was created: each expired key is
// deleted once, by an index range scan that is empty most of the time.
func putIdempotencyKey(ctx context.Context, tx *sqlx.Tx, k IdempotencyKey) error {
	if k.Key == "" || k.ExpiresAt <= k.CreatedAt {
		return fmt.Errorf("idempotency key %q: empty or expires (%d) before it is created (%d)", k.Key, k.ExpiresAt, k.CreatedAt)
	}
	if _, err := pruneIdempotencyKeys(ctx, tx, k.CreatedAt); err != nil {
		return fmt.Errorf("prune idempotency keys: %w", err)
	}
	const q = `INSERT OR REPLACE INTO idempotency_keys (thread_id, key, request_hash, result, created_at, expires_at)
		VALUES (:thread_id, :key, :request_hash, :result, :created_at, :expires_at)`
	if _, err := tx.NamedExecContext(ctx, q, k); err != nil {
		return fmt.Errorf("record idempotency key %q: %w", k.Key, err)
	}
	return nil
}

package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/jmoiron/sqlx"
)

// ErrKeyTaken reports an insert whose CreationKey another thread's insert
// recorded first: the caller answers with that thread (CreationKey).
var ErrKeyTaken = errors.New("idempotency key names another thread")

// CreationKey is a remembered idempotent start or fork: the key its caller
// named it with, in its scope ("" for a start, the parent's id for a
// fork), the hash of the request, and the thread it created. The key goes
// with that thread's row. Times are Unix milliseconds.
type CreationKey struct {
	Scope       string `db:"scope"`
	Key         string `db:"key"`
	RequestHash []byte `db:"request_hash"`
	ThreadID    string `db:"thread_id"`
	CreatedAt   int64  `db:"created_at"`
	ExpiresAt   int64  `db:"expires_at"`
}

// CreationKey returns key of scope as recorded, or ErrNotFound when it is
// unknown, expired at now (Unix ms) or its thread deleted.
func (s *Store) CreationKey(ctx context.Context, scope, key string, now int64) (CreationKey, error) {
	var k CreationKey
	const q = `SELECT scope, key, request_hash, thread_id, created_at, expires_at
		FROM creation_keys WHERE scope = ? AND key = ? AND expires_at > ?`
	err := s.reader.GetContext(ctx, &k, q, scope, key, now)
	if errors.Is(err, sql.ErrNoRows) {
		err = ErrNotFound
	}
	if err != nil {
		return CreationKey{}, fmt.Errorf("idempotency key %q: %w", key, err)
	}
	return k, nil
}

// putCreationKey records k for the thread just inserted (a nil k records
// nothing), after forgetting the keys expired when k was created. A live
// key of the same scope and name fails with ErrKeyTaken.
func putCreationKey(ctx context.Context, tx *sqlx.Tx, k *CreationKey) error {
	if k == nil {
		return nil
	}
	if k.Key == "" || k.ExpiresAt <= k.CreatedAt {
		return fmt.Errorf("idempotency key %q: empty or expires (%d) before it is created (%d)", k.Key, k.ExpiresAt, k.CreatedAt)
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM creation_keys WHERE expires_at <= ?`, k.CreatedAt); err != nil {
		return fmt.Errorf("prune idempotency keys: %w", err)
	}
	const q = `INSERT INTO creation_keys (scope, key, request_hash, thread_id, created_at, expires_at)
		VALUES (:scope, :key, :request_hash, :thread_id, :created_at, :expires_at)`
	if _, err := tx.NamedExecContext(ctx, q, k); err != nil {
		if isConstraint(err) {
			return fmt.Errorf("idempotency key %q: %w", k.Key, ErrKeyTaken)
		}
		return fmt.Errorf("record idempotency key %q: %w", k.Key, err)
	}
	return nil
}

// threadKey returns r's key naming r's thread, or nil.
func (r Record) threadKey() *CreationKey {
	if r.Key == nil {
		return nil
	}
	k := *r.Key
	k.ThreadID = r.Thread.ID
	return &k
}

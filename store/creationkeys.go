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
	err := sqlx.GetContext(ctx, s.cached(), &k, q, scope, key, now)
	if errors.Is(err, sql.ErrNoRows) {
		err = ErrNotFound
	}
	if err != nil {
		return CreationKey{}, fmt.Errorf("idempotency key %q: %w", key, err)
	}
	return k, nil
}

// CreationKeysOf returns the keys naming thread id that are live at now
// (Unix ms), ordered by scope and key.
func (s *Store) CreationKeysOf(ctx context.Context, id string, now int64) ([]CreationKey, error) {
	var keys []CreationKey
	const q = `SELECT scope, key, request_hash, thread_id, created_at, expires_at
		FROM creation_keys WHERE thread_id = ? AND expires_at > ? ORDER BY scope, key`
	if err := sqlx.SelectContext(ctx, s.cached(), &keys, q, id, now); err != nil {
		return nil, fmt.Errorf("idempotency keys of thread %s: %w", id, err)
	}
	return keys, nil
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

// stateCreationKey records k, the key thread id's file states it was
// created with. Of two threads stating one scope and name, the key names
// the one whose key expires last, whatever order they are read in (only
// one of them can be live: a key is refused while it names a thread). A
// nil k records nothing. An expired k is recorded too (lookups do not see
// it, and the next key put prunes it), so that what is recorded does not
// depend on when the file was read.
func stateCreationKey(ctx context.Context, exec execer, id string, k *CreationKey) error {
	if k == nil {
		return nil
	}
	const q = `INSERT INTO creation_keys (scope, key, request_hash, thread_id, created_at, expires_at)
		VALUES (?, ?, ?, ?, ?, ?)
		ON CONFLICT (scope, key) DO UPDATE SET request_hash = excluded.request_hash,
			thread_id = excluded.thread_id, created_at = excluded.created_at, expires_at = excluded.expires_at
		WHERE excluded.expires_at > creation_keys.expires_at`
	if err := exec(ctx, q, k.Scope, k.Key, k.RequestHash, id, k.CreatedAt, k.ExpiresAt); err != nil {
		return fmt.Errorf("record stated idempotency key %q: %w", k.Key, err)
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

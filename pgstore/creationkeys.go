package pgstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// CreationKey names a start or a fork so that a retry creates nothing
// twice: a later one with the same Scope and Name and the same request
// hash is answered with the thread the first created (CreatedBy); with
// another hash it is refused with ErrKeyReused. Scope is "" for a start
// and the parent's id for a fork. A key is recorded, for KeyTTL, in the
// transaction that creates its thread, and goes with the thread.
type CreationKey struct {
	Scope, Name string
	Hash        []byte // SHA-256 of the request as the caller sent it
}

// ErrKeyTaken reports a create whose CreationKey another transaction
// recorded first: nothing was created, and the other's thread is the
// answer (CreatedBy).
var ErrKeyTaken = errors.New("idempotency key names another thread")

// CreatedBy returns the id of the thread k's first request created;
// ErrNotFound when k is unknown, expired or its thread deleted, and
// ErrKeyReused when it was recorded with another request.
func (s *Store) CreatedBy(ctx context.Context, k CreationKey) (string, error) {
	var id string
	var hash []byte
	err := s.pool.QueryRow(ctx, `SELECT thread_id, request_hash FROM creation_keys
		WHERE scope = $1 AND key = $2 AND expires_at > $3`, k.Scope, k.Name, s.now().UnixMilli()).Scan(&id, &hash)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return "", fmt.Errorf("idempotency key %q: %w", k.Name, ErrNotFound)
	case err != nil:
		return "", fmt.Errorf("idempotency key %q: %w", k.Name, err)
	case !bytes.Equal(hash, k.Hash):
		return "", fmt.Errorf("%w: %q", ErrKeyReused, k.Name)
	}
	return id, nil
}

// putCreationKey records k (nil: none) for thread id, created in tx; a
// live key of the same scope and name fails with ErrKeyTaken (waiting, as
// PostgreSQL does, for a transaction that recorded it and has not ended).
// An expired record of k goes, and a few other expired keys with it, none
// that another transaction is deleting (so concurrent creates do not
// queue on each other's prunes).
func putCreationKey(ctx context.Context, tx pgx.Tx, k *CreationKey, id string, now int64) error {
	if k == nil {
		return nil
	}
	if _, err := tx.Exec(ctx, `DELETE FROM creation_keys WHERE scope = $1 AND key = $2 AND expires_at <= $3
		OR ctid IN (SELECT ctid FROM creation_keys WHERE expires_at <= $3 LIMIT 16 FOR UPDATE SKIP LOCKED)`,
		k.Scope, k.Name, now); err != nil {
		return fmt.Errorf("prune idempotency keys: %w", err)
	}
	_, err := tx.Exec(ctx, `INSERT INTO creation_keys (scope, key, request_hash, thread_id, expires_at)
		VALUES ($1, $2, $3, $4, $5)`, k.Scope, k.Name, k.Hash, id, now+KeyTTL.Milliseconds())
	if isUniqueViolation(err) {
		return fmt.Errorf("idempotency key %q: %w", k.Name, ErrKeyTaken)
	}
	return err
}

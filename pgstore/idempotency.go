package pgstore

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// Key names an append so that a retry writes nothing twice: a later
// append to the same thread with the same name and the same request hash
// writes nothing and answers the first one's positions; with another hash
// it fails with ErrKeyReused. Keys are kept for KeyTTL, recorded in the
// transaction that commits their append.
type Key struct {
	Name string
	Hash []byte // SHA-256 of the request as the caller sent it
}

// KeyTTL is how long a key is remembered.
const KeyTTL = 24 * time.Hour

// ErrKeyReused: an idempotency key came again with another request.
var ErrKeyReused = errors.New("idempotency key reused with another request")

// AppendKeyed is Append named by key (see Key).
func (s *Store) AppendKeyed(ctx context.Context, id string, lines []byte, expectedSize int64, key Key) (AppendResult, error) {
	return s.submit(ctx, &appendReq{id: id, lines: lines, expected: expectedSize, key: &key})
}

type keyID struct{ thread, name string }

type keyRow struct {
	hash   []byte
	starts []int64 // where the first answer's lines start
	size   int64   // the history's size after it
	thread []byte  // the thread as it left it (JSON), nil when not recorded
}

// batchKeys are the keys a batch names that are known: recorded before it,
// or by an earlier request of it.
type batchKeys struct {
	known map[keyID]keyRow
}

// knownKeys reads the unexpired keys the batch's requests name.
func (s *Store) knownKeys(ctx context.Context, tx pgx.Tx, batch []*appendReq, now int64) (*batchKeys, error) {
	k := &batchKeys{known: map[keyID]keyRow{}}
	var threads, names []string
	for _, r := range batch {
		if r.key != nil {
			threads, names = append(threads, r.id), append(names, r.key.Name)
		}
	}
	if len(names) == 0 {
		return k, nil
	}
	rows, err := tx.Query(ctx, `SELECT thread_id, key, request_hash, line_starts, size_after, thread_after FROM idempotency_keys
		WHERE expires_at > $3 AND (thread_id, key) IN (SELECT * FROM unnest($1::text[], $2::text[]))`,
		threads, names, now)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var id keyID
		var row keyRow
		if err := rows.Scan(&id.thread, &id.name, &row.hash, &row.starts, &row.size, &row.thread); err != nil {
			return nil, err
		}
		k.known[id] = row
	}
	return k, rows.Err()
}

// check reports whether r's key is known, and if so the answer: the first
// append's positions, or ErrKeyReused for another request.
func (k *batchKeys) check(r *appendReq) (found bool, res AppendResult, err error) {
	if r.key == nil {
		return false, AppendResult{}, nil
	}
	row, ok := k.known[keyID{r.id, r.key.Name}]
	switch {
	case !ok:
		return false, AppendResult{}, nil
	case !bytes.Equal(row.hash, r.key.Hash):
		return true, AppendResult{}, ErrKeyReused
	}
	res = AppendResult{Offset: row.starts[0], Size: row.size, Starts: row.starts, Replayed: true}
	if row.thread != nil {
		if err := json.Unmarshal(row.thread, &res.Thread); err != nil {
			return true, AppendResult{}, fmt.Errorf("the thread key %q recorded: %w", r.key.Name, err)
		}
	}
	return true, res, nil
}

// record queues the key of r, just appended, and knows it for the rest of
// the batch; expired keys of its thread go.
func (k *batchKeys) record(q *pgx.Batch, r *appendReq, now int64) error {
	starts := r.res.Starts
	thread, err := json.Marshal(r.res.Thread)
	if err != nil {
		return err
	}
	k.known[keyID{r.id, r.key.Name}] = keyRow{hash: r.key.Hash, starts: starts, size: r.res.Size, thread: thread}
	q.Queue(`DELETE FROM idempotency_keys WHERE thread_id = $1 AND expires_at <= $2`, r.id, now)
	q.Queue(`INSERT INTO idempotency_keys (thread_id, key, request_hash, line_starts, size_after, expires_at, thread_after)
		VALUES ($1, $2, $3, $4, $5, $6, $7)
		ON CONFLICT (thread_id, key) DO UPDATE SET request_hash = excluded.request_hash,
			line_starts = excluded.line_starts, size_after = excluded.size_after, expires_at = excluded.expires_at,
			thread_after = excluded.thread_after`,
		r.id, r.key.Name, r.key.Hash, starts, r.res.Size, now+KeyTTL.Milliseconds(), thread)
	return nil
}

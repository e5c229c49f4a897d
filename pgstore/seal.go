package pgstore

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// ErrNoBucket: Seal needs a store opened with a Bucket.
var ErrNoBucket = errors.New("no object-storage bucket configured")

// maxSegment bounds a segment: Seal gathers whole chunks until they reach
// it, so what it holds in memory (a segment, written with one PUT) does
// not grow with a thread's unsealed bytes (an import or a copy fork
// commits a whole history at once). A variable for tests.
var maxSegment int64 = 16 << 20

// Seal moves thread id's unsealed bytes into immutable segments of whole
// chunks, up to maxSegment bytes each (or one larger chunk), while there
// are at least minBytes of them, and reports whether it sealed any. Each
// segment's object is written first, create-only, under a key naming the
// thread, its start and the content's hash, so a retry or a second sealer
// writing the same bytes is harmless; then one transaction, under the
// thread's row lock, records the segment, drops its chunk rows and
// advances the sealed size. When another sealer got there first, or a
// collection took the object as an orphan (a seal slower than the
// collection's grace), the object is left for the collector and Seal stops. Appends go on meanwhile: only
// whole chunks committed before each segment began are sealed.
func (s *Store) Seal(ctx context.Context, id string, minBytes int64) (bool, error) {
	some := false
	for {
		sealed, err := s.sealOne(ctx, id, minBytes)
		some = some || sealed
		if err != nil || !sealed {
			return some, err
		}
	}
}

// sealOne seals one segment of thread id from its sealed size, when it has
// at least minBytes unsealed.
func (s *Store) sealOne(ctx context.Context, id string, minBytes int64) (bool, error) {
	if s.bucket == nil {
		return false, fmt.Errorf("seal %s: %w", id, ErrNoBucket)
	}
	// The row and its chunks in one snapshot: a revert or a rewrite
	// meanwhile moves the chunks (the transaction below then finds other
	// bytes, and records nothing).
	var t Thread
	var data []byte
	err := s.inReadTx(ctx, func(tx pgx.Tx) error {
		var err error
		if t, err = getThread(ctx, tx, id, ""); err != nil || t.Size-t.SealedSize < max(minBytes, 1) {
			return err
		}
		if beforeUnsealedRead != nil {
			beforeUnsealedRead(id)
		}
		data, err = unsealedBytes(ctx, tx, t, maxSegment)
		return err
	})
	if err != nil {
		return false, fmt.Errorf("seal %s: %w", id, err)
	}
	if data == nil {
		return false, nil
	}
	start, end := t.SealedSize, t.SealedSize+int64(len(data))
	sum := sha256.Sum256(data)
	key, err := s.putSegment(ctx, id, start, sum, data)
	if err != nil {
		return false, fmt.Errorf("seal %s: %w", id, err)
	}
	if afterSegmentPut != nil {
		afterSegmentPut(key)
	}
	sealed := false
	err = s.inTx(ctx, func(tx pgx.Tx) error {
		// The object's pending key first: a collection that took it
		// (the seal slower than its grace) may have deleted the object.
		tag, err := tx.Exec(ctx, `DELETE FROM pending_segments WHERE object_key = $1`, key)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return nil
		}
		now, err := getThread(ctx, tx, id, "FOR UPDATE")
		if err != nil {
			return err
		}
		if now.SealedSize != start {
			return nil // another sealer moved these bytes
		}
		// The chunks must still be the bytes sealed: a thread made
		// self-contained (a purge) has new bytes from 0 on.
		var same bool
		if err := tx.QueryRow(ctx, `SELECT COALESCE(sha256(string_agg(data, ''::bytea ORDER BY start_offset)) = $4, false)
			FROM chunks WHERE thread_id = $1 AND start_offset >= $2 AND start_offset < $3`,
			id, start, end, sum[:]).Scan(&same); err != nil {
			return err
		}
		if !same {
			return nil // the object is an orphan for CollectOrphans
		}
		if _, err := tx.Exec(ctx, `INSERT INTO segments (thread_id, start_offset, end_offset, object_key, sha256)
			VALUES ($1, $2, $3, $4, $5)`, id, start, end, key, sum[:]); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM chunks WHERE thread_id = $1 AND start_offset >= $2 AND start_offset < $3`,
			id, start, end); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE threads SET sealed_size = $2 WHERE id = $1`, id, end); err != nil {
			return err
		}
		sealed = true
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("seal %s: %w", id, err)
	}
	return sealed, nil
}

// afterSegmentPut, when set (by tests), is called after a seal wrote the
// object key, before it records its row.
var afterSegmentPut func(key string)

// beforeUnsealedRead, when set (by tests), is called before a seal reads
// the chunks of thread id.
var beforeUnsealedRead func(id string)

// putSegment writes data, the bytes of thread id from position start with
// SHA-256 sum, to a new object and returns its key: one no object has
// held, the bytes' name with a random suffix. A key an object held before
// could be one CollectOrphans read as an old orphan and is about to delete
// (even after another collection deleted it and this seal wrote it again):
// a row naming it would name an object gone. A retried or racing seal's
// object is an orphan once one row is recorded. The key is added to
// pending_segments first (migration 00016), so that a collection leaves
// the object to the seal until it takes the key; a seal that fails after
// leaves the key to CollectOrphans too.
func (s *Store) putSegment(ctx context.Context, id string, start int64, sum [sha256.Size]byte, data []byte) (string, error) {
	var nonce [8]byte
	rand.Read(nonce[:]) // never fails (crypto/rand)
	key := fmt.Sprintf("segments/%s/%016x-%x-%x", id, start, sum[:16], nonce)
	if _, err := s.pool.Exec(ctx, `INSERT INTO pending_segments (object_key, created_at) VALUES ($1, $2)`,
		key, s.now().UnixMilli()); err != nil {
		return "", err
	}
	return key, s.bucket.PutNew(ctx, key, data)
}

// unsealedBytes reads t's chunks from its sealed size, as of t, until
// they hold limit bytes or more (whole chunks: the last may pass it).
func unsealedBytes(ctx context.Context, q querier, t Thread, limit int64) ([]byte, error) {
	rows, err := q.Query(ctx, `SELECT start_offset, data FROM chunks
		WHERE thread_id = $1 AND start_offset >= $2 AND start_offset < $3 ORDER BY start_offset`,
		t.ID, t.SealedSize, t.Size)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var data []byte
	for int64(len(data)) < limit && rows.Next() {
		var start int64
		var chunk []byte
		if err := rows.Scan(&start, &chunk); err != nil {
			return nil, err
		}
		if start != t.SealedSize+int64(len(data)) {
			return nil, fmt.Errorf("chunk at %d, want %d", start, t.SealedSize+int64(len(data)))
		}
		data = append(data, chunk...)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if want := min(limit, t.Size-t.SealedSize); int64(len(data)) < want {
		return nil, fmt.Errorf("chunks hold %d bytes from %d, want %d", len(data), t.SealedSize, want)
	}
	return data, nil
}

// unsealedSQL selects up to $2 threads with at least $1 bytes unsealed,
// most first, through the index threads_unsealed (migration 00008).
const unsealedSQL = `SELECT id FROM threads WHERE size - sealed_size >= $1
	ORDER BY size - sealed_size DESC LIMIT $2`

// Unsealed returns up to limit threads with at least minBytes unsealed.
func (s *Store) Unsealed(ctx context.Context, minBytes int64, limit int) ([]string, error) {
	rows, err := s.pool.Query(ctx, unsealedSQL, max(minBytes, 1), limit)
	if err != nil {
		return nil, fmt.Errorf("unsealed: %w", err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("unsealed: %w", err)
	}
	return ids, nil
}

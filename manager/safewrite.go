package manager

import (
	"container/list"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/spoolhq/spool/rollout"
	"github.com/spoolhq/spool/store"
)

// Errors of conditional and idempotent appends (AppendOptions).
var (
	ErrSizeMismatch = errors.New("thread size does not match the expected size") // *SizeMismatchError
	// ErrIdempotencyKeyReused is returned when an idempotency key comes
	// back with other items than the append it was first used for.
	ErrIdempotencyKeyReused = errors.New("idempotency key reused with other items")
)

// SizeMismatchError reports an append refused because the thread's
// indexed size was not AppendOptions.ExpectedSize; nothing was written.
// It wraps ErrSizeMismatch.
type SizeMismatchError struct {
	ID       string
	Expected int64
	Actual   int64
}

func (e *SizeMismatchError) Error() string {
	return fmt.Sprintf("thread %s has %d bytes, not the %d expected", e.ID, e.Actual, e.Expected)
}

func (e *SizeMismatchError) Unwrap() error { return ErrSizeMismatch }

// AppendOptions make an append conditional or idempotent. The zero value
// is a plain append.
type AppendOptions struct {
	// ExpectedSize, when not zero, is the size (Thread.IndexedSize) the
	// thread must have for the append to happen: the offset the first new
	// line will start at. Otherwise the call fails with a
	// *SizeMismatchError and nothing is written. No thread has size zero
	// (its first line is its session_meta), so zero means no condition.
	// The size is checked after lines other writers added are indexed,
	// under the thread's writer lock, so it is exact.
	ExpectedSize int64
	// IdempotencyKey, when not empty, names the append: a later call on
	// the same thread with the same key and the same items writes nothing
	// and returns the first call's result; with other items it fails with
	// ErrIdempotencyKeyReused. Keys are remembered in memory, for
	// IdempotencyTTL and up to IdempotencyCapacity keys per manager (the
	// least recently used are forgotten first), and not across a restart:
	// a retry that may cross one should also carry ExpectedSize. A call
	// that failed is not remembered: its retry is tried afresh.
	IdempotencyKey string

	// fingerprint is the SHA-256 of the items or lines as the caller gave
	// them (before timestamps are stamped), set by the append methods.
	fingerprint [sha256.Size]byte
}

// check is the precondition of an append (run by appendLocked on the settled row).
func (o AppendOptions) check(row store.Thread) error {
	if o.ExpectedSize != 0 && row.HistorySize() != o.ExpectedSize {
		return &SizeMismatchError{ID: row.ID, Expected: o.ExpectedSize, Actual: row.HistorySize()}
	}
	return nil
}

// Bounds of the idempotency keys a manager remembers.
const (
	IdempotencyTTL      = 24 * time.Hour
	IdempotencyCapacity = 10000
)

// fingerprintItems hashes items as given, each field length-prefixed so
// no two different lists hash alike by concatenation.
func fingerprintItems(items []rollout.Item) [sha256.Size]byte {
	h := sha256.New()
	field := func(b []byte) {
		h.Write(binary.AppendUvarint(nil, uint64(len(b))))
		h.Write(b)
	}
	h.Write([]byte("items"))
	for _, it := range items {
		field([]byte(it.Type))
		field([]byte(it.Timestamp))
		field(it.Payload)
	}
	var sum [sha256.Size]byte
	h.Sum(sum[:0])
	return sum
}

// fingerprintLines hashes lines as given.
func fingerprintLines(lines [][]byte) [sha256.Size]byte {
	h := sha256.New()
	h.Write([]byte("lines"))
	for _, l := range lines {
		h.Write(binary.AppendUvarint(nil, uint64(len(l))))
		h.Write(l)
	}
	var sum [sha256.Size]byte
	h.Sum(sum[:0])
	return sum
}

// idemCache remembers the results of recent idempotent appends, bounded
// by IdempotencyCapacity and IdempotencyTTL. The zero value is ready.
// Lookups and inserts for one thread happen under that thread's lock, so
// two calls with one key never both write.
type idemCache struct {
	mu    sync.Mutex // guards byKey and order
	byKey map[idemKey]*list.Element
	order *list.List // of *idemEntry, front is the most recently used
}

type idemKey struct{ thread, key string }

type idemEntry struct {
	key         idemKey
	fingerprint [sha256.Size]byte
	result      AppendResult
	at          time.Time
}

// lookup returns the remembered result of o's key on thread, with ok set;
// an error wrapping ErrIdempotencyKeyReused when the key was used with
// other items; ok false when the key is not known (or expired).
func (c *idemCache) lookup(thread string, o AppendOptions, now time.Time) (AppendResult, bool, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.byKey[idemKey{thread, o.IdempotencyKey}]
	if !ok {
		return AppendResult{}, false, nil
	}
	e := el.Value.(*idemEntry)
	if now.Sub(e.at) > IdempotencyTTL {
		c.order.Remove(el)
		delete(c.byKey, e.key)
		return AppendResult{}, false, nil
	}
	if e.fingerprint != o.fingerprint {
		return AppendResult{}, false, fmt.Errorf("append to %s: key %q: %w", thread, o.IdempotencyKey, ErrIdempotencyKeyReused)
	}
	c.order.MoveToFront(el)
	return e.result, true, nil
}

// remember records the result of o's append on thread.
func (c *idemCache) remember(thread string, o AppendOptions, res AppendResult, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.byKey == nil {
		c.byKey, c.order = map[idemKey]*list.Element{}, list.New()
	}
	k := idemKey{thread, o.IdempotencyKey}
	if el, ok := c.byKey[k]; ok {
		c.order.Remove(el)
	}
	c.byKey[k] = c.order.PushFront(&idemEntry{key: k, fingerprint: o.fingerprint, result: res, at: now})
	for c.order.Len() > IdempotencyCapacity {
		old := c.order.Remove(c.order.Back()).(*idemEntry)
		delete(c.byKey, old.key)
	}
}

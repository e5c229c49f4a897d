package manager

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/spoolhq/spool/rollout"
	"github.com/spoolhq/spool/store"
)

// Errors of conditional and idempotent appends (AppendOptions).
var (
	ErrSizeMismatch = errors.New("thread size does not match the expected size") // *SizeMismatchError
	// ErrIdempotencyKeyReused is returned when an idempotency key comes
	// back with another request than the one it was first used for: other
	// items for an append, other options for a start or fork.
	ErrIdempotencyKeyReused = errors.New("idempotency key reused with another request")
)

// SizeMismatchError reports an append refused because the thread's
// history size was not AppendOptions.ExpectedSize; nothing was written.
// It wraps ErrSizeMismatch. Its message leaves the thread to the caller's
// context ("append to ID: ..."), as every error of an append does.
type SizeMismatchError struct {
	ID       string
	Expected int64
	Actual   int64
}

func (e *SizeMismatchError) Error() string {
	return fmt.Sprintf("history is %d bytes, not the %d expected", e.Actual, e.Expected)
}

func (e *SizeMismatchError) Unwrap() error { return ErrSizeMismatch }

// AppendOptions make an append conditional or idempotent. The zero value
// is a plain append.
type AppendOptions struct {
	// ExpectedSize, when not zero, is the size of the history
	// (Thread.HistorySize: a reference fork's base part and its own file)
	// the thread must have for the append to happen: the position the
	// first new line will start at. Otherwise the call fails with a
	// *SizeMismatchError and nothing is written. No thread has size zero
	// (its first line is its session_meta), so zero means no condition.
	// The size is checked after lines other writers added are indexed,
	// under the thread's writer lock, so it is exact.
	ExpectedSize int64
	// IdempotencyKey, when not empty, names the append: a later call on
	// the same thread with the same key and the same items writes nothing
	// and returns the first call's result; with other items it fails with
	// ErrIdempotencyKeyReused. Keys are kept in the index for
	// IdempotencyTTL, recorded in the transaction that indexes the
	// append's lines, so they hold across a restart. A call that failed is
	// not remembered: its retry is tried afresh. A crash between the write
	// of the lines and their index update (the window of an fsync and one
	// commit) forgets the key though the lines are kept, as does a
	// rebuilt index: a retry that must never write twice also carries
	// ExpectedSize.
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

// MaxIdempotencyKeyLen bounds an idempotency key.
const MaxIdempotencyKeyLen = 255

// CheckIdempotencyKey refuses, with ErrInvalidArgument, an idempotency key
// that is not empty and not 1 to MaxIdempotencyKeyLen printable ASCII
// characters (' ' to '~'): every backend, and spoold for the header, takes
// keys by this rule.
func CheckIdempotencyKey(key string) error {
	ok := len(key) <= MaxIdempotencyKeyLen
	for i := 0; ok && i < len(key); i++ {
		ok = ' ' <= key[i] && key[i] <= '~'
	}
	if !ok {
		return fmt.Errorf("%w: an idempotency key is 1 to %d printable ASCII characters", ErrInvalidArgument, MaxIdempotencyKeyLen)
	}
	return nil
}

// IdempotencyTTL is how long an idempotency key is remembered.
const IdempotencyTTL = 24 * time.Hour

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

// fingerprintTurn hashes a turn's options as given (its generated turn id
// aside: a retry that left it empty is the same request).
func fingerprintTurn(o TurnOptions) [sha256.Size]byte {
	h := sha256.New()
	h.Write([]byte("turn"))
	for _, f := range []string{o.Prompt, o.Answer, o.TurnID, o.Model} {
		h.Write(binary.AppendUvarint(nil, uint64(len(f))))
		h.Write([]byte(f))
	}
	var sum [sha256.Size]byte
	h.Sum(sum[:0])
	return sum
}

// pendingKey is the idempotency key of an append in progress: appendLocked
// records it, with the append's result, in the transaction that indexes the
// append's lines.
type pendingKey struct {
	key         string
	fingerprint [sha256.Size]byte
	now         time.Time
}

// storedResult is the AppendResult kept with an idempotency key.
type storedResult struct {
	Offsets []int64      `json:"offsets"`
	Thread  store.Thread `json:"thread"`
}

// record returns k as the index keeps it, with the result of its append.
func (k *pendingKey) record(offsets []int64, row store.Thread) (*store.IdempotencyKey, error) {
	result, err := json.Marshal(storedResult{Offsets: offsets, Thread: row})
	if err != nil {
		return nil, err
	}
	return &store.IdempotencyKey{
		Key: k.key, RequestHash: k.fingerprint[:], Result: result,
		CreatedAt: k.now.UnixMilli(), ExpiresAt: k.now.Add(IdempotencyTTL).UnixMilli(),
	}, nil
}

// replay returns the result of the append recorded under o's key on
// thread id, with ok set; an error wrapping ErrIdempotencyKeyReused when
// the key was used with other items; ok false when the key is unknown or
// expired. The caller holds the thread's lock, so no append with the key
// is between its write and its record.
func (m *Manager) replay(ctx context.Context, id string, o AppendOptions, now time.Time) (res AppendResult, ok bool, err error) {
	k, err := m.store.IdempotencyKey(ctx, id, o.IdempotencyKey, now.UnixMilli())
	if errors.Is(err, store.ErrNotFound) {
		return AppendResult{}, false, nil
	}
	if err != nil {
		return AppendResult{}, false, fmt.Errorf("append to %s: %w", id, err)
	}
	if !bytes.Equal(k.RequestHash, o.fingerprint[:]) {
		return AppendResult{}, false, fmt.Errorf("append to %s: %w: %q", id, ErrIdempotencyKeyReused, o.IdempotencyKey)
	}
	var stored storedResult
	if err := json.Unmarshal(k.Result, &stored); err != nil {
		return AppendResult{}, false, fmt.Errorf("append to %s: result of key %q: %w", id, o.IdempotencyKey, err)
	}
	return AppendResult{Offsets: stored.Offsets, Thread: threadOf(stored.Thread), Replayed: true}, true, nil
}

package manager

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"strconv"
	"time"

	"github.com/spoolhq/spool/rollout"
	"github.com/spoolhq/spool/store"
)

// RequestHash returns the SHA-256 of o, IdempotencyKey aside: what a
// retry of a start named by that key must repeat. Defaults count as given
// (no Source is "vscode", no ModelProvider DefaultModelProvider, no
// HistoryMode "paginated"), so a retry that spells one out, or a backend
// that fills them in first, asks the same.
func (o StartOptions) RequestHash() []byte {
	git, _ := json.Marshal(o.Git) // a struct of strings: never fails
	return hashFields("start", o.Cwd, cmp.Or(o.Source, "vscode"), o.Originator, o.CLIVersion,
		cmp.Or(o.ModelProvider, DefaultModelProvider), o.BaseInstructions, o.Name, string(git),
		cmp.Or(o.HistoryMode, string(rollout.HistoryPaginated)))
}

// RequestHashFor returns the SHA-256 of o as a fork of a parent in
// history mode parentMode asks it, IdempotencyKey aside: what a retry of a
// fork named by that key must repeat (of the same parent: keys of forks
// are the parent's). The parent's default Mode (ForkReference for a
// paginated parent, ForkCopy for a legacy one: ForkByReference) counts as
// given, so a retry that spells it out asks the same as one without it.
// Every backend hashes a fork's request with it.
func (o ForkOptions) RequestHashFor(parentMode string) []byte {
	defaulted := ForkCopy
	if reference, _ := ForkByReference(parentMode, ""); reference { // "" never fails
		defaulted = ForkReference
	}
	if o.Mode == defaulted {
		o.Mode = "" // hashed as left out, the form keys were first made in
	}
	return o.RequestHash()
}

// RequestHash returns the SHA-256 of o as given, IdempotencyKey aside:
// RequestHashFor of a parent whose default mode o.Mode is not.
func (o ForkOptions) RequestHash() []byte {
	before := "none"
	if o.BeforeUserMessage != nil {
		before = strconv.Itoa(*o.BeforeUserMessage)
	}
	fields := []string{"fork", before, o.BeforeTurnID, o.LastTurnID, o.Name, o.Cwd, o.Mode}
	if o.Source != "" {
		// Only when given, so a key recorded before forks took a
		// source still matches its retry.
		fields = append(fields, o.Source)
	}
	return hashFields(fields...)
}

// hashFields hashes fields, each length-prefixed so no two different
// lists hash alike by concatenation.
func hashFields(fields ...string) []byte {
	h := sha256.New()
	for _, f := range fields {
		h.Write(binary.AppendUvarint(nil, uint64(len(f))))
		h.Write([]byte(f))
	}
	return h.Sum(nil)
}

// creationKey is the idempotency key of a start or fork in progress: its
// scope ("" for a start, the parent's id for a fork), name and request.
type creationKey struct {
	scope, name string
	hash        []byte
	now         time.Time
}

// newCreationKey returns the key name of scope, or nil for no name.
func newCreationKey(scope, name string, hash []byte, now time.Time) *creationKey {
	if name == "" {
		return nil
	}
	return &creationKey{scope: scope, name: name, hash: hash, now: now}
}

// record returns k as the index keeps it with its thread's row (nil for
// none).
func (k *creationKey) record() *store.CreationKey {
	if k == nil {
		return nil
	}
	return &store.CreationKey{
		Scope: k.scope, Key: k.name, RequestHash: k.hash,
		CreatedAt: k.now.UnixMilli(), ExpiresAt: k.now.Add(IdempotencyTTL).UnixMilli(),
	}
}

// stated returns k as the meta of its thread states it (nil for none), so
// that an index that lost the key learns it again from the file.
func (k *creationKey) stated() *rollout.CreationKey {
	if k == nil {
		return nil
	}
	return rollout.NewCreationKey(k.scope, k.name, k.hash, k.now, IdempotencyTTL)
}

// createOnce runs create, which records k with the thread it creates,
// unless k names a thread already: then it returns that thread as it is
// now, with replayed set, and creates nothing. A key known with another
// request fails with ErrIdempotencyKeyReused. Calls with one key are
// serialised in this process; another process that records the key first
// fails create with store.ErrKeyTaken, after which its thread is the
// answer. Errors of create are returned as they are; createOnce's own say
// op.
func (m *Manager) createOnce(ctx context.Context, op string, k *creationKey, create func() (store.Thread, error)) (row store.Thread, replayed bool, err error) {
	if k == nil {
		row, err = create()
		return row, false, err
	}
	h := fnv.New32a()
	h.Write([]byte(k.scope + "\x00" + k.name))
	mu := &m.keying[h.Sum32()%uint32(len(m.keying))]
	mu.Lock()
	defer mu.Unlock()
	for range 2 {
		row, ok, err := m.createdBy(ctx, k)
		if err != nil {
			return store.Thread{}, false, fmt.Errorf("%s: %w", op, err)
		}
		if ok {
			return row, true, nil
		}
		row, err = create()
		if !errors.Is(err, store.ErrKeyTaken) {
			return row, false, err
		}
	}
	return store.Thread{}, false, fmt.Errorf("%s: %w: %q", op, store.ErrKeyTaken, k.name)
}

// createdBy returns the thread k's first request created, with ok set;
// ok false when k is unknown, expired, or its thread is gone. A key
// recorded with another request fails with ErrIdempotencyKeyReused.
func (m *Manager) createdBy(ctx context.Context, k *creationKey) (row store.Thread, ok bool, err error) {
	rec, err := m.store.CreationKey(ctx, k.scope, k.name, k.now.UnixMilli())
	if errors.Is(err, store.ErrNotFound) {
		return store.Thread{}, false, nil
	}
	if err != nil {
		return store.Thread{}, false, err
	}
	if string(rec.RequestHash) != string(k.hash) {
		return store.Thread{}, false, fmt.Errorf("%w: %q", ErrIdempotencyKeyReused, k.name)
	}
	row, err = m.store.Get(ctx, rec.ThreadID)
	if errors.Is(err, store.ErrNotFound) {
		return store.Thread{}, false, nil // deleted since its key was read
	}
	return row, err == nil, err
}

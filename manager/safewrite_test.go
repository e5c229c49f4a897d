package manager

import (
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/spoolhq/spool/rollout"
)

func TestAppendExpectedSize(t *testing.T) {
	m := openTest(t)
	ctx := t.Context()
	th, err := m.Start(ctx, StartOptions{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = m.AppendWith(ctx, th.ID, []rollout.Item{user("late")}, AppendOptions{ExpectedSize: th.IndexedSize - 1})
	var mismatch *SizeMismatchError
	if !errors.As(err, &mismatch) || !errors.Is(err, ErrSizeMismatch) || mismatch.Actual != th.IndexedSize {
		t.Fatalf("stale size: %v, want a *SizeMismatchError with size %d", err, th.IndexedSize)
	}
	after, err := m.Get(ctx, th.ID)
	if err != nil {
		t.Fatal(err)
	}
	if after.IndexedSize != th.IndexedSize || after.LineCount != th.LineCount {
		t.Fatalf("a refused append changed the thread: %d bytes, %d lines", after.IndexedSize, after.LineCount)
	}
	res, err := m.AppendLinesWith(ctx, th.ID, [][]byte{[]byte(`{"type":"event_msg","payload":{"type":"x"}}`)}, AppendOptions{ExpectedSize: th.IndexedSize})
	if err != nil || res.Offsets[0] != th.IndexedSize {
		t.Fatalf("right size: %v, offsets %v", err, res.Offsets)
	}
}

// TestIdempotencyKeyExpires moves the manager's clock past
// IdempotencyTTL: the key is forgotten and the same append writes again.
func TestIdempotencyKeyExpires(t *testing.T) {
	var now atomic.Int64
	now.Store(time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC).UnixNano())
	m := openTest(t, func(o *Options) { o.Now = func() time.Time { return time.Unix(0, now.Load()) } })
	ctx := t.Context()
	th, err := m.Start(ctx, StartOptions{})
	if err != nil {
		t.Fatal(err)
	}
	key := AppendOptions{IdempotencyKey: "k"}
	first, err := m.AppendWith(ctx, th.ID, []rollout.Item{user("once")}, key)
	if err != nil {
		t.Fatal(err)
	}
	now.Add(int64(IdempotencyTTL - time.Second))
	retry, err := m.AppendWith(ctx, th.ID, []rollout.Item{user("once")}, key)
	if err != nil || retry.Thread.IndexedSize != first.Thread.IndexedSize {
		t.Fatalf("retry within the TTL: %v, size %d, want the first answer (%d)", err, retry.Thread.IndexedSize, first.Thread.IndexedSize)
	}
	if _, err := m.AppendWith(ctx, th.ID, []rollout.Item{user("other")}, key); !errors.Is(err, ErrIdempotencyKeyReused) {
		t.Fatalf("other items with the key: %v, want ErrIdempotencyKeyReused", err)
	}
	now.Add(int64(2 * time.Second))
	late, err := m.AppendWith(ctx, th.ID, []rollout.Item{user("once")}, key)
	if err != nil || late.Offsets[0] != first.Thread.IndexedSize {
		t.Fatalf("retry after the TTL: %v, offsets %v; want a new append at %d", err, late.Offsets, first.Thread.IndexedSize)
	}
}

// TestIdempotencyCapacity checks that the oldest keys are forgotten past
// IdempotencyCapacity, and only they.
func TestIdempotencyCapacity(t *testing.T) {
	var c idemCache
	at := time.Now()
	for i := range IdempotencyCapacity + 1 {
		o := AppendOptions{IdempotencyKey: string(rune('a'+i%26)) + time.Duration(i).String()}
		c.remember("t", o, AppendResult{Offsets: []int64{int64(i)}}, at)
	}
	if got := c.order.Len(); got != IdempotencyCapacity {
		t.Fatalf("%d keys kept, want %d", got, IdempotencyCapacity)
	}
	if _, ok, _ := c.lookup("t", AppendOptions{IdempotencyKey: "a" + time.Duration(0).String()}, at); ok {
		t.Fatal("the oldest key is still known")
	}
	last := IdempotencyCapacity
	if res, ok, _ := c.lookup("t", AppendOptions{IdempotencyKey: string(rune('a'+last%26)) + time.Duration(last).String()}, at); !ok || res.Offsets[0] != int64(last) {
		t.Fatal("the newest key is forgotten")
	}
}

package manager

import (
	"errors"
	"reflect"
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

// TestIdempotencyKeyAcrossRestart closes the manager after an idempotent
// append and opens another on the same root: the retry writes nothing and
// returns the first result, the key with other lines is refused, and both
// still hold after a second restart (the key was not consumed).
func TestIdempotencyKeyAcrossRestart(t *testing.T) {
	ctx := t.Context()
	open := opener(t, t.TempDir())
	m := open()
	th, err := m.Start(ctx, StartOptions{})
	if err != nil {
		t.Fatal(err)
	}
	key := AppendOptions{IdempotencyKey: "k"}
	line := [][]byte{[]byte(`{"type":"event_msg","payload":{"type":"note"}}`)}
	first, err := m.AppendLinesWith(ctx, th.ID, line, key)
	if err != nil {
		t.Fatal(err)
	}
	for restart := range 2 {
		if err := m.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
		m = open()
		retry, err := m.AppendLinesWith(ctx, th.ID, line, key)
		if err != nil {
			t.Fatalf("restart %d: retry: %v", restart, err)
		}
		if !retry.Replayed {
			t.Fatalf("restart %d: the retry is not marked replayed", restart)
		}
		if retry.Replayed = false; !reflect.DeepEqual(retry, first) {
			t.Fatalf("restart %d: retry answered %+v, want the first answer %+v", restart, retry, first)
		}
		other := [][]byte{[]byte(`{"type":"event_msg","payload":{"type":"other"}}`)}
		if _, err := m.AppendLinesWith(ctx, th.ID, other, key); !errors.Is(err, ErrIdempotencyKeyReused) {
			t.Fatalf("restart %d: other lines with the key: %v, want ErrIdempotencyKeyReused", restart, err)
		}
		now, err := m.Get(ctx, th.ID)
		if err != nil {
			t.Fatal(err)
		}
		if now.IndexedSize != first.Thread.IndexedSize || now.LineCount != first.Thread.LineCount {
			t.Fatalf("restart %d: thread has %d bytes, %d lines; want %d, %d (written once)",
				restart, now.IndexedSize, now.LineCount, first.Thread.IndexedSize, first.Thread.LineCount)
		}
	}
	if err := m.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
}

// TestIdempotencyKeyPerThread checks that a key names an append of one
// thread: the same key on another thread is another append.
func TestIdempotencyKeyPerThread(t *testing.T) {
	m := openTest(t)
	ctx := t.Context()
	a, b := start(t, m), start(t, m)
	key := AppendOptions{IdempotencyKey: "k"}
	if _, err := m.AppendWith(ctx, a.ID, []rollout.Item{user("x")}, key); err != nil {
		t.Fatal(err)
	}
	res, err := m.AppendWith(ctx, b.ID, []rollout.Item{user("y")}, key)
	if err != nil || len(res.Offsets) != 1 || res.Offsets[0] != b.IndexedSize {
		t.Fatalf("same key on another thread: %v, offsets %v; want a new append at %d", err, res.Offsets, b.IndexedSize)
	}
}

package store

import (
	"bytes"
	"errors"
	"path/filepath"
	"testing"
)

// TestIdempotencyKeys records keys with appends and reads them back: a key
// is found until it expires, survives a reopen, is pruned by a later
// record once expired and goes with its thread.
func TestIdempotencyKeys(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "spool.db")
	s, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	const id, other = "a0000000-0000-7000-8000-000000000001", "a0000000-0000-7000-8000-000000000002"
	for _, tid := range []string{id, other} {
		if err := s.Insert(ctx, Record{Thread: newThread(tid, 1000)}); err != nil {
			t.Fatal(err)
		}
	}
	advance := func(tid string, k IdempotencyKey) {
		t.Helper()
		p := Progress{ID: tid, LineCount: 2, IndexedSize: 200, Idempotency: &k}
		if err := s.Advance(ctx, p); err != nil {
			t.Fatalf("Advance with key %q: %v", k.Key, err)
		}
	}
	advance(id, IdempotencyKey{Key: "k1", RequestHash: []byte{1}, Result: []byte(`{"r":1}`), CreatedAt: 1000, ExpiresAt: 2000})

	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if s, err = Open(ctx, path); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })

	got, err := s.IdempotencyKey(ctx, id, "k1", 1999)
	if err != nil {
		t.Fatalf("IdempotencyKey after reopen: %v", err)
	}
	if got.ThreadID != id || !bytes.Equal(got.RequestHash, []byte{1}) || string(got.Result) != `{"r":1}` || got.ExpiresAt != 2000 {
		t.Fatalf("IdempotencyKey = %+v", got)
	}
	for _, c := range []struct {
		name, thread, key string
		now               int64
	}{
		{"expired", id, "k1", 2000},
		{"other thread", other, "k1", 1500},
		{"other key", id, "k2", 1500},
	} {
		if _, err := s.IdempotencyKey(ctx, c.thread, c.key, c.now); !errors.Is(err, ErrNotFound) {
			t.Errorf("%s: err = %v, want ErrNotFound", c.name, err)
		}
	}

	// A key recorded at 2500 prunes k1 (expired at 2000) in its transaction.
	advance(other, IdempotencyKey{Key: "k2", RequestHash: []byte{2}, Result: []byte(`{}`), CreatedAt: 2500, ExpiresAt: 3500})
	var n int
	if err := s.reader.GetContext(ctx, &n, `SELECT COUNT(*) FROM idempotency_keys`); err != nil {
		t.Fatal(err)
	}
	if n != 1 {
		t.Fatalf("%d keys after a record pruned, want 1", n)
	}
	if err := s.Delete(ctx, other); err != nil {
		t.Fatal(err)
	}
	if _, err := s.IdempotencyKey(ctx, other, "k2", 2600); !errors.Is(err, ErrNotFound) {
		t.Fatalf("key of a deleted thread: err = %v, want ErrNotFound", err)
	}
	if pruned, err := s.PruneIdempotencyKeys(ctx, 1<<62); err != nil || pruned != 0 {
		t.Fatalf("PruneIdempotencyKeys = %d, %v; want 0 left after the delete", pruned, err)
	}
}

// TestIdempotencyKeyRolledBack checks that a key is recorded only with its
// progress: an Advance that fails records nothing.
func TestIdempotencyKeyRolledBack(t *testing.T) {
	ctx := t.Context()
	s := openTest(t)
	const id = "a0000000-0000-7000-8000-000000000003"
	if err := s.Insert(ctx, Record{Thread: newThread(id, 1000)}); err != nil {
		t.Fatal(err)
	}
	k := IdempotencyKey{Key: "k", RequestHash: []byte{1}, Result: []byte(`{}`), CreatedAt: 1000, ExpiresAt: 2000}
	bad := Progress{ID: id, KeepUserMessages: 5, Idempotency: &k} // keeps more messages than indexed
	if err := s.Advance(ctx, bad); err == nil {
		t.Fatal("Advance of a bad progress succeeded")
	}
	if _, err := s.IdempotencyKey(ctx, id, "k", 1500); !errors.Is(err, ErrNotFound) {
		t.Fatalf("key of a failed advance: err = %v, want ErrNotFound", err)
	}
}

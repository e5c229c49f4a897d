package objstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spoolhq/spool/internal/fixtures"
)

// TestCache: a read fetches the whole object once and later reads of any
// range come from disk; the least recently used object goes when the cache
// is full; an object larger than the cache is read by range, uncached; a
// delete through the cache drops its copy; what an earlier process left is
// removed.
func TestCache(t *testing.T) {
	b := newFake(t)
	ctx := t.Context()
	objects := map[string][]byte{}
	for i := range 4 {
		key := fmt.Sprintf("segments/t/%d", i)
		objects[key] = bytes.Repeat([]byte{byte('a' + i)}, 100)
		if err := b.PutNew(ctx, key, objects[key]); err != nil {
			t.Fatal(err)
		}
	}
	big := bytes.Repeat([]byte("z"), 1000)
	if err := b.PutNew(ctx, "segments/t/big", big); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "cache")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	leftOver := []string{strings.Repeat("ab", 32), "fetch-123"} // an earlier cache's copy and temp file
	for _, name := range leftOver {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	calls := &countingBucket{Bucket: b}
	c, err := NewCache(calls, dir, 250) // room for two objects of 100 bytes
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range leftOver {
		if _, err := os.Stat(filepath.Join(dir, name)); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("a left-over file %s survived NewCache: %v", name, err)
		}
	}
	read := func(key string, off, n int64) {
		t.Helper()
		got, err := c.ReadRange(ctx, key, off, n)
		want := objects[key]
		if key == "segments/t/big" {
			want = big
		}
		if err != nil || !bytes.Equal(got, want[off:off+n]) {
			t.Fatalf("%s [%d, %d): %q, %v", key, off, off+n, got, err)
		}
	}
	counts := func(wantHits, wantMisses int64) {
		t.Helper()
		if hits, misses := c.Stats(); hits != wantHits || misses != wantMisses {
			t.Fatalf("%d hits and %d misses, want %d and %d", hits, misses, wantHits, wantMisses)
		}
	}
	read("segments/t/0", 10, 20)
	read("segments/t/0", 0, 100)
	read("segments/t/1", 99, 1)
	counts(1, 2)
	read("segments/t/0", 5, 5) // 0 is now the most recent
	read("segments/t/2", 0, 50)
	counts(2, 3)
	read("segments/t/0", 0, 1) // still cached
	read("segments/t/1", 0, 1) // evicted for 2
	counts(3, 4)
	read("segments/t/big", 500, 10)
	read("segments/t/big", 500, 10)
	counts(3, 6)
	if calls.gets != 6 || calls.lists != 0 {
		t.Fatalf("the misses made %d GETs and %d listings, want one GET each and no listing", calls.gets, calls.lists)
	}
	if err := c.Delete(ctx, "segments/t/1"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.ReadRange(ctx, "segments/t/1", 0, 1); !errors.Is(err, ErrNotFound) {
		t.Fatalf("read after delete: %v, want ErrNotFound", err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil || len(entries) > 2 {
		t.Fatalf("%d files in the cache (%v), want at most the two objects it has room for", len(entries), err)
	}
}

// countingBucket counts the requests a Cache makes of its bucket.
type countingBucket struct {
	Bucket
	gets, lists int
}

func (b *countingBucket) Get(ctx context.Context, key string) (io.ReadCloser, Object, error) {
	b.gets++
	return b.Bucket.Get(ctx, key)
}

func (b *countingBucket) List(ctx context.Context, prefix string) ([]Object, error) {
	b.lists++
	return b.Bucket.List(ctx, prefix)
}

// TestCacheFetchEvictedAtOnce: a read that fetched its object is answered
// even when another read evicts that object as soon as it is recorded (a
// cache with room for one object, two readers): the fetching read's range
// comes from its own copy, not from a file that may be gone.
func TestCacheFetchEvictedAtOnce(t *testing.T) {
	b := newFake(t)
	ctx := t.Context()
	objects := map[string][]byte{"segments/t/a": bytes.Repeat([]byte("a"), 100), "segments/t/b": bytes.Repeat([]byte("b"), 100)}
	for key, data := range objects {
		if err := b.PutNew(ctx, key, data); err != nil {
			t.Fatal(err)
		}
	}
	c, err := NewCache(b, filepath.Join(t.TempDir(), "cache"), 150) // room for one
	if err != nil {
		t.Fatal(err)
	}
	var other []byte
	var otherErr error
	afterRecord = func(key string) {
		if key != "segments/t/a" {
			return
		}
		afterRecord = nil
		other, otherErr = c.ReadRange(ctx, "segments/t/b", 0, 10) // evicts a
	}
	t.Cleanup(func() { afterRecord = nil })
	got, err := c.ReadRange(ctx, "segments/t/a", 10, 20)
	if err != nil || !bytes.Equal(got, objects["segments/t/a"][10:30]) {
		t.Fatalf("a [10, 30) evicted as it was fetched: %q, %v", got, err)
	}
	if otherErr != nil || !bytes.Equal(other, objects["segments/t/b"][:10]) {
		t.Fatalf("b [0, 10): %q, %v", other, otherErr)
	}
}

// overlongBucket answers a Get with more bytes than the object's size:
// a service (or a proxy) that is broken or hostile.
type overlongBucket struct {
	Bucket
	extra int64 // bytes answered past the size
	read  int64 // bytes the cache read of the answer
}

func (b *overlongBucket) Get(ctx context.Context, key string) (io.ReadCloser, Object, error) {
	rc, obj, err := b.Bucket.Get(ctx, key)
	if err != nil {
		return nil, obj, err
	}
	rc.Close()
	body := io.LimitReader(zeros{}, obj.Size+b.extra)
	return io.NopCloser(countingReader{body, &b.read}), obj, nil
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) { clear(p); return len(p), nil }

type countingReader struct {
	r io.Reader
	n *int64
}

func (c countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	*c.n += int64(n)
	return n, err
}

// TestCacheFetchOverlong: a fetch whose answer runs past the object's
// size stops reading one byte past it and fails, naming the object;
// nothing is cached. It used to copy the whole answer to disk first,
// however long (a disk filled by an endless answer).
func TestCacheFetchOverlong(t *testing.T) {
	b := newFake(t)
	ctx := t.Context()
	if err := b.PutNew(ctx, "segments/t/a", bytes.Repeat([]byte("a"), 100)); err != nil {
		t.Fatal(err)
	}
	over := &overlongBucket{Bucket: b, extra: 64 << 20}
	dir := filepath.Join(t.TempDir(), "cache")
	c, err := NewCache(over, dir, 1<<30)
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.ReadRange(ctx, "segments/t/a", 0, 10)
	if err == nil || !strings.Contains(err.Error(), "segments/t/a") || !strings.Contains(err.Error(), "more than its 100 bytes") {
		t.Fatalf("read of an overlong answer: %v, want an error naming the object and its size", err)
	}
	if over.read > 101 {
		t.Fatalf("the cache read %d bytes of the answer, want at most the size and one", over.read)
	}
	if entries, err := os.ReadDir(dir); err != nil || len(entries) != 0 {
		t.Fatalf("the cache holds %d files (%v), want none", len(entries), err)
	}
}

// TestCacheRefusesADirectoryItDidNotWrite: a directory holding anything a
// cache does not write (-segment-cache ~/Documents, typed by mistake) is
// refused and left as it was; NewCache used to empty it.
func TestCacheRefusesADirectoryItDidNotWrite(t *testing.T) {
	tests := []struct {
		name  string
		files []string // a trailing / makes a directory
	}{
		{"a user's file", []string{"notes.txt"}},
		{"a user's file beside a cache's", []string{strings.Repeat("0f", 32), "notes.txt"}},
		{"a directory", []string{"photos/"}},
		{"a directory with a cache's name", []string{strings.Repeat("0f", 32) + "/"}},
		{"upper-case hex", []string{strings.Repeat("0F", 32)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			fixtures.MakeTree(t, dir, tt.files...)
			_, err := NewCache(newFake(t), dir, 1<<20)
			if !errors.Is(err, ErrNotCacheDir) {
				t.Fatalf("NewCache of a directory holding %v: %v, want ErrNotCacheDir", tt.files, err)
			}
			for _, name := range tt.files {
				if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
					t.Errorf("%s: %v", name, err)
				}
			}
		})
	}
}

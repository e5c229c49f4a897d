package objstore

import (
	"container/list"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
)

// Cache is a Bucket that keeps whole objects it has read in a directory on
// local disk, up to MaxBytes, evicting the least recently used. Objects
// are immutable (written once by PutNew), so a cached copy never goes
// stale; a key deleted from the bucket is dropped from the cache too when
// deleted through it. Writes and listings go to the bucket.
type Cache struct {
	Bucket
	dir      string
	maxBytes int64

	mu      sync.Mutex
	lru     *list.List               // of *cached, most recent first
	entries map[string]*list.Element // by key
	size    int64
	hits    int64
	misses  int64
}

// fetchPrefix begins the name of the file a fetch writes before renaming it.
const fetchPrefix = "fetch-"

type cached struct {
	key  string
	path string
	size int64
}

// ErrNotCacheDir: the directory named for a cache holds something no cache
// wrote, so it was named by mistake; it is left as it was.
var ErrNotCacheDir = errors.New("not a cache directory")

// NewCache returns a cache of b in dir (created 0700 when missing), holding
// at most maxBytes. The cache starts empty: the files an earlier cache left
// in dir are removed. A dir holding anything else fails with
// ErrNotCacheDir, and nothing in it is removed.
func NewCache(b Bucket, dir string, maxBytes int64) (*Cache, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("objstore: cache: %w", err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("objstore: cache: %w", err)
	}
	for _, e := range entries {
		if !e.Type().IsRegular() || !cacheFileName(e.Name()) {
			return nil, fmt.Errorf("objstore: cache %s holds %s, which no cache wrote (name a new or empty directory): %w",
				dir, e.Name(), ErrNotCacheDir)
		}
	}
	for _, e := range entries {
		if err := os.Remove(filepath.Join(dir, e.Name())); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("objstore: cache: %w", err)
		}
	}
	return &Cache{Bucket: b, dir: dir, maxBytes: maxBytes, lru: list.New(), entries: map[string]*list.Element{}}, nil
}

// cacheFileName reports whether name is one a cache gives its files: the
// hex SHA-256 of a key, or a fetch's temporary file.
func cacheFileName(name string) bool {
	if strings.HasPrefix(name, fetchPrefix) {
		return true
	}
	if len(name) != 2*sha256.Size {
		return false
	}
	_, err := hex.DecodeString(name)
	return err == nil && name == strings.ToLower(name)
}

// ReadRange reads from the cached copy of key, fetching the whole object
// first when it is not cached (an object larger than the cache is read by
// range from the bucket, uncached).
func (c *Cache) ReadRange(ctx context.Context, key string, off, n int64) ([]byte, error) {
	if path, ok := c.lookup(key); ok {
		if b, err := readAt(path, off, n); err == nil {
			return b, nil
		}
		c.forget(key) // removed under us: fetch again
	}
	c.mu.Lock()
	c.misses++
	c.mu.Unlock()
	b, ok, err := c.fetch(ctx, key, off, n)
	if err != nil {
		return nil, err
	}
	if !ok { // too large to cache
		return c.Bucket.ReadRange(ctx, key, off, n)
	}
	return b, nil
}

// Delete removes key from the bucket and the cache.
func (c *Cache) Delete(ctx context.Context, key string) error {
	c.forget(key)
	return c.Bucket.Delete(ctx, key)
}

// Stats returns how many reads found their object cached and how many
// fetched it.
func (c *Cache) Stats() (hits, misses int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.hits, c.misses
}

func (c *Cache) lookup(key string) (string, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[key]
	if !ok {
		return "", false
	}
	c.lru.MoveToFront(e)
	c.hits++
	return e.Value.(*cached).path, true
}

// fetch copies the whole object into a file of the cache, streaming it
// from one GET (no more than the size the answer gives), records it, evicting others to make room, and returns its
// bytes [off, off+n), read from that file before it is recorded (another
// read may evict it as soon as it is); ok is false when the object is
// larger than the cache.
func (c *Cache) fetch(ctx context.Context, key string, off, n int64) (b []byte, ok bool, err error) {
	rc, obj, err := c.Bucket.Get(ctx, key)
	if err != nil {
		return nil, false, err
	}
	defer rc.Close()
	if obj.Size > c.maxBytes {
		return nil, false, nil
	}
	sum := sha256.Sum256([]byte(key))
	path := filepath.Join(c.dir, hex.EncodeToString(sum[:]))
	tmp, err := os.CreateTemp(c.dir, fetchPrefix+"*")
	if err != nil {
		return nil, false, err
	}
	// One byte past the size tells an answer that runs on from one that
	// ends there, without copying the rest, however long, to disk.
	copied, err := io.Copy(tmp, io.LimitReader(rc, obj.Size+1))
	switch {
	case err != nil:
	case copied > obj.Size:
		err = fmt.Errorf("the answer holds more than its %d bytes", obj.Size)
	case copied < obj.Size:
		err = fmt.Errorf("got %d bytes of %d", copied, obj.Size)
	}
	if err == nil {
		b, err = readFileAt(tmp, off, n)
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		os.Remove(tmp.Name())
		return nil, false, fmt.Errorf("objstore: cache %s: %w", key, err)
	}
	c.record(&cached{key: key, path: path, size: obj.Size})
	if afterRecord != nil {
		afterRecord(key)
	}
	return b, true, nil
}

// afterRecord, when set (by tests), is called after a read recorded the
// object key it fetched.
var afterRecord func(key string)

// record adds obj to the cache, unless another reader fetched its key
// meanwhile (that copy stays), and evicts to make room.
func (c *Cache) record(obj *cached) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.entries[obj.key]; ok {
		c.lru.MoveToFront(e)
		return
	}
	c.entries[obj.key] = c.lru.PushFront(obj)
	c.size += obj.size
	for c.size > c.maxBytes {
		c.evict(c.lru.Back())
	}
}

// evict drops e; c.mu is held. A reader holding the path may still open
// it: it then fetches again.
func (c *Cache) evict(e *list.Element) {
	obj := e.Value.(*cached)
	c.lru.Remove(e)
	delete(c.entries, obj.key)
	c.size -= obj.size
	os.Remove(obj.path)
}

func (c *Cache) forget(key string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.entries[key]; ok {
		c.evict(e)
	}
}

// readAt reads n bytes at off of the file at path.
func readAt(path string, off, n int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return readFileAt(f, off, n)
}

// readFileAt reads n bytes at off of f.
func readFileAt(f *os.File, off, n int64) ([]byte, error) {
	b := make([]byte, n)
	if _, err := f.ReadAt(b, off); err != nil && !(errors.Is(err, io.EOF) && n == 0) {
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("cached object shorter than [%d, %d): %w", off, off+n, err)
		}
		return nil, err
	}
	return b, nil
}

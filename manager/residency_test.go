package manager

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/spoolhq/spool/rollout"
	"github.com/spoolhq/spool/rolloutfs"
)

// residencyThreads is how many threads TestResidencyIsBounded touches;
// SPOOL_RESIDENCY_THREADS=100000 runs the full figure of the issue.
func residencyThreads(t *testing.T) int {
	if s := os.Getenv("SPOOL_RESIDENCY_THREADS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	if testing.Short() {
		return 300
	}
	return 2000
}

// TestResidencyIsBounded touches many threads with a small capacity and
// checks that the live set never exceeds it, and that an evicted thread
// comes back intact.
func TestResidencyIsBounded(t *testing.T) {
	ctx := context.Background()
	const capacity = 100
	m := openTest(t, func(o *Options) { o.Capacity = capacity })
	n := residencyThreads(t)
	ids := make([]string, n)
	for i := range ids {
		th, err := m.Start(ctx, StartOptions{Cwd: "/w"})
		if err != nil {
			t.Fatal(err)
		}
		ids[i] = th.ID
	}
	peak := 0
	for i, id := range ids {
		if _, err := m.Append(ctx, id, []rollout.Item{user("prompt " + strconv.Itoa(i))}); err != nil {
			t.Fatal(err)
		}
		peak = max(peak, m.Stats().Live)
	}
	if peak > capacity {
		t.Fatalf("live threads peaked at %d, capacity %d", peak, capacity)
	}
	// The first thread was evicted long ago: it rehydrates from the index.
	res, err := m.Append(ctx, ids[0], []rollout.Item{user("again")})
	if err != nil {
		t.Fatal(err)
	}
	if res.Thread.UserMessageCount != 2 {
		t.Fatalf("rehydrated thread has %d user messages, want 2", res.Thread.UserMessageCount)
	}
	var ms runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms)
	t.Logf("touched %d threads with capacity %d: peak live %d, heap in use %.1f MiB", n, capacity, peak, float64(ms.HeapInuse)/(1<<20))
}

// TestConcurrentUseUnderEviction has many goroutines append to, fork and
// read the same threads while a capacity of 2 keeps evicting them. No line
// may be lost or duplicated, and every fork must be its meta plus a prefix
// of its parent.
func TestConcurrentUseUnderEviction(t *testing.T) {
	ctx := context.Background()
	m := openTest(t, func(o *Options) { o.Capacity = 2; o.Sync = rolloutfs.SyncBatch })
	const threads, writers, appends = 4, 4, 15
	ids := make([]string, threads)
	for i := range ids {
		ids[i] = start(t, m, user("seed")).ID
	}
	var wg sync.WaitGroup
	errs := make(chan error, threads*writers*3)
	for _, id := range ids {
		for w := 0; w < writers; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; i < appends; i++ {
					text := fmt.Sprintf("w%d-%d", w, i)
					if _, err := m.Append(ctx, id, []rollout.Item{user(text), assistant("ok " + text)}); err != nil {
						errs <- err
						return
					}
				}
			}()
		}
		wg.Add(2)
		go func() {
			defer wg.Done()
			for i := 0; i < 5; i++ {
				child, err := m.Fork(ctx, id, ForkOptions{})
				if err != nil {
					errs <- err
					return
				}
				parent, childBytes := readFileAt(m, id), readFileAt(m, child.ID)
				meta := lines(childBytes)[0]
				if !bytes.HasPrefix(parent, childBytes[len(meta):]) {
					errs <- fmt.Errorf("fork %s of %s is not a prefix of its parent", child.ID, id)
					return
				}
			}
		}()
		go func() {
			defer wg.Done()
			for i := 0; i < 10; i++ {
				rc, err := m.ReadFrom(ctx, id, -1)
				if err != nil {
					errs <- err
					return
				}
				rc.Close()
				if err := m.Evict(ctx, id); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	for _, id := range ids {
		data := readFileAt(m, id)
		seen := map[string]int{}
		msgs, err := rollout.CountUserMessages(bytes.NewReader(data))
		if err != nil {
			t.Fatal(err)
		}
		for _, msg := range msgs {
			seen[msg.Text]++
		}
		for w := 0; w < writers; w++ {
			for i := 0; i < appends; i++ {
				if text := fmt.Sprintf("w%d-%d", w, i); seen[text] != 1 {
					t.Fatalf("thread %s holds %q %d times", id, text, seen[text])
				}
			}
		}
		th, err := m.Get(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if th.UserMessageCount != len(msgs) || th.IndexedSize != int64(len(data)) {
			t.Fatalf("index says %d messages / %d bytes, file has %d / %d", th.UserMessageCount, th.IndexedSize, len(msgs), len(data))
		}
	}
}

func readFileAt(m *Manager, id string) []byte {
	th, err := m.Get(context.Background(), id)
	if err != nil {
		return nil
	}
	b, _ := os.ReadFile(filepath.Join(m.Root(), filepath.FromSlash(th.RolloutPath)))
	return b
}

// TestReopenReconciles kills nothing but leaves the files ahead of the
// index, as a crash would: a grown file, a torn tail, a missing file and
// an unindexed file. Open must bring the index to agree with the files.
func TestReopenReconciles(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	m, err := Open(ctx, Options{Root: root, Sync: rolloutfs.SyncNone, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	grown := start(t, m, user("one"))
	torn := start(t, m, user("two"))
	gone := start(t, m, user("three"))
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	appendRaw := func(th Thread, data string) {
		f, err := os.OpenFile(filepath.Join(root, th.RolloutPath), os.O_WRONLY|os.O_APPEND, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if _, err := f.WriteString(data); err != nil {
			t.Fatal(err)
		}
	}
	extra, _ := rollout.EncodeItem(user("added while closed"), m.now())
	appendRaw(grown, string(extra))
	appendRaw(torn, `{"timestamp":"2026-01-01T00:00:00.000Z","type":"response_it`)
	if err := os.Remove(filepath.Join(root, gone.RolloutPath)); err != nil {
		t.Fatal(err)
	}

	// An hour on: the torn tail is older than the grace period.
	later := func() time.Time { return time.Now().Add(time.Hour) }
	m2, err := Open(ctx, Options{Root: root, Sync: rolloutfs.SyncNone, Logger: quiet, Now: later})
	if err != nil {
		t.Fatal(err)
	}
	defer m2.Close()
	g, err := m2.Get(ctx, grown.ID)
	if err != nil || g.UserMessageCount != 2 {
		t.Fatalf("grown thread: %+v, %v; want 2 user messages", g, err)
	}
	if _, err := m2.Get(ctx, gone.ID); !errorsIsNotFound(err) {
		t.Fatalf("thread whose file is gone: %v, want not found", err)
	}
	// The torn tail is not part of the thread, and is cut (and kept aside)
	// by the next append, not before: only a writer holding the thread's
	// lock may cut.
	tt, err := m2.Get(ctx, torn.ID)
	if err != nil || tt.IndexedSize != torn.IndexedSize {
		t.Fatalf("torn thread indexed size %d, want %d (%v)", tt.IndexedSize, torn.IndexedSize, err)
	}
	resumed, err := m2.Resume(ctx, torn.ID)
	if err != nil {
		t.Fatal(err)
	}
	if size := int64(len(readFileAt(m2, torn.ID))); resumed.IndexedSize != torn.IndexedSize || size <= resumed.IndexedSize {
		t.Fatalf("after loading: indexed size %d, file %d bytes; want %d and the torn bytes still there", resumed.IndexedSize, size, torn.IndexedSize)
	}
	if _, err := m2.Append(ctx, torn.ID, []rollout.Item{user("after the tear")}); err != nil {
		t.Fatal(err)
	}
	msgs, err := rollout.CountUserMessages(bytes.NewReader(readFileAt(m2, torn.ID)))
	if err != nil || len(msgs) != 2 || msgs[1].Text != "after the tear" {
		t.Fatalf("torn thread after append: %+v, %v", msgs, err)
	}
	side, _ := filepath.Glob(filepath.Join(root, torn.RolloutPath+".torn-*"))
	if len(side) != 1 {
		t.Fatalf("torn bytes kept in %v, want one side file", side)
	}
}

func errorsIsNotFound(err error) bool { return errors.Is(err, ErrNotFound) }

package manager

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/spoolhq/spool/indexer"
	"github.com/spoolhq/spool/internal/fixtures"
	"github.com/spoolhq/spool/lockfile"
	"github.com/spoolhq/spool/rollout"
	"github.com/spoolhq/spool/rolloutfs"
	"github.com/spoolhq/spool/rolloutfs/faultfs"
	"github.com/spoolhq/spool/store"
)

// openFaulty opens a manager whose rollouts go through a faultfs.FS.
func openFaulty(t *testing.T, policy rolloutfs.SyncPolicy) (*Manager, *faultfs.FS) {
	t.Helper()
	root := t.TempDir()
	fsys := faultfs.New(rolloutfs.Local{Root: root})
	m := openTest(t, func(o *Options) { o.Root, o.FS, o.Sync = root, fsys, policy })
	return m, fsys
}

// failOp fails every fault point of kind op with err.
func failOp(fsys *faultfs.FS, op faultfs.Op, err error) {
	fsys.Inject(func(p faultfs.Point) error {
		if p.Op == op {
			return err
		}
		return nil
	})
}

// rolloutCount counts the .jsonl files under root.
func rolloutCount(t *testing.T, root string) int {
	t.Helper()
	return strings.Count(snapshot(t, root), ".jsonl")
}

// TestFailedCreateLeavesNothing makes a Start and a Fork fail after their
// rollout file exists (naming the new thread fails on a full disk), and
// checks that no thread and no file is left behind.
func TestFailedCreateLeavesNothing(t *testing.T) {
	ctx := t.Context()
	m, fsys := openFaulty(t, rolloutfs.SyncAlways)
	parent := start(t, m, user("hi"), user("again"))
	// The new thread's name goes to session_index.jsonl after its file
	// (which holds the name line) exists and before its row; that write
	// fails.
	fsys.Reset()
	failOp(fsys, faultfs.OpRecord, syscall.ENOSPC)
	if _, err := m.Start(ctx, StartOptions{Name: "doomed"}); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("Start with a name on a full disk: %v, want ENOSPC", err)
	}
	one := 1
	if _, err := m.Fork(ctx, parent.ID, ForkOptions{BeforeUserMessage: &one, Name: "doomed"}); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("Fork with a name on a full disk: %v, want ENOSPC", err)
	}
	fsys.Inject(nil)
	creates := 0
	for _, p := range fsys.Points() {
		if p.Op == faultfs.OpCreate {
			creates++
		}
	}
	if creates != 2 {
		t.Fatalf("%d files were created, want 2 (the failure must come after the create)", creates)
	}
	page, err := m.List(ctx, store.ListOptions{})
	if err != nil || len(page.Threads) != 1 {
		t.Fatalf("after failed creates: %d threads (%v), want only the parent", len(page.Threads), err)
	}
	if n := rolloutCount(t, m.Root()); n != 1 {
		t.Fatalf("%d rollout files after failed creates, want 1: %s", n, snapshot(t, m.Root()))
	}
}

// TestForkCallerGoesAway cancels a fork's context while its file is being
// created: the fork either completes with its index row or leaves nothing.
func TestForkCallerGoesAway(t *testing.T) {
	m, fsys := openFaulty(t, rolloutfs.SyncAlways)
	parent := start(t, m, user("one"), user("two"))
	ctx, cancel := context.WithCancel(t.Context())
	fsys.Inject(func(p faultfs.Point) error {
		if p.Op == faultfs.OpCreate {
			cancel()
		}
		return nil
	})
	child, err := m.Fork(ctx, parent.ID, ForkOptions{})
	fsys.Inject(nil)
	page, listErr := m.List(t.Context(), store.ListOptions{})
	if listErr != nil {
		t.Fatal(listErr)
	}
	files := rolloutCount(t, m.Root())
	switch {
	case err == nil && (len(page.Threads) != 2 || files != 2):
		t.Fatalf("fork %s succeeded but %d threads and %d files exist, want 2 and 2", child.ID, len(page.Threads), files)
	case err != nil && (len(page.Threads) != 1 || files != 1):
		t.Fatalf("fork failed (%v) but %d threads and %d files exist, want 1 and 1", err, len(page.Threads), files)
	}
}

// TestNamedCreateCallerGoesAway: once a named start's or fork's file
// exists, the caller going away changes nothing: its name is recorded and
// its row committed (here the context is cancelled as the name is written
// to session_index.jsonl).
func TestNamedCreateCallerGoesAway(t *testing.T) {
	m, fsys := openFaulty(t, rolloutfs.SyncAlways)
	parent := start(t, m, user("one"), user("two"))
	for _, c := range []struct {
		what string
		make func(ctx context.Context) (Thread, error)
	}{
		{"start", func(ctx context.Context) (Thread, error) { return m.Start(ctx, StartOptions{Cwd: "/w", Name: "kept"}) }},
		{"fork", func(ctx context.Context) (Thread, error) { return m.Fork(ctx, parent.ID, ForkOptions{Name: "kept"}) }},
	} {
		t.Run(c.what, func(t *testing.T) {
			ctx, cancel := context.WithCancel(t.Context())
			fsys.Inject(func(p faultfs.Point) error {
				if p.Op == faultfs.OpRecord {
					cancel()
				}
				return nil
			})
			th, err := c.make(ctx)
			fsys.Inject(nil)
			if err != nil || th.Name != "kept" {
				t.Fatalf("%s cancelled after its file: %q, %v; want it made, named", c.what, th.Name, err)
			}
			if got, err := m.Get(t.Context(), th.ID); err != nil || got.Name != "kept" {
				t.Fatalf("the %s's row: %q, %v", c.what, got.Name, err)
			}
		})
	}
}

// TestReadsNeverWrite reads a thread that is not live and whose file ends
// with a torn line, in every way there is, and checks that nothing was
// written: no fault point (every write is one) but the fork's own create,
// no thread made live, and the torn bytes still there.
func TestReadsNeverWrite(t *testing.T) {
	ctx := t.Context()
	m, fsys := openFaulty(t, rolloutfs.SyncAlways)
	th := start(t, m, user("alpha"), assistant("a"), user("beta"))
	if err := m.Evict(ctx, th.ID); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(m.Root(), filepath.FromSlash(th.RolloutPath))
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString(`{"type":"resp`)
	f.Close()
	before, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	fsys.Reset()

	drain := func(rc io.ReadCloser, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		defer rc.Close()
		if _, err := io.Copy(io.Discard, rc); err != nil {
			t.Fatal(err)
		}
	}
	drain(m.ReadFrom(ctx, th.ID, -1))
	drain(m.ReadFrom(ctx, th.ID, 1))
	drain(m.ReadTurn(ctx, th.ID, 0))
	if _, err := m.UserMessages(ctx, th.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := m.List(ctx, store.ListOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Search(ctx, store.SearchOptions{Query: "alpha"}); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Ancestors(ctx, th.ID); err != nil {
		t.Fatal(err)
	}
	one := 1
	if _, err := m.Fork(ctx, th.ID, ForkOptions{BeforeUserMessage: &one}); err != nil {
		t.Fatal(err)
	}

	for _, p := range fsys.Points() {
		if p.Op != faultfs.OpCreate {
			t.Errorf("a read reached the write path: %s of %s", p.Op, p.Name)
		}
	}
	if got := m.Stats().Live; got != 0 {
		t.Errorf("%d threads live after reads, want 0", got)
	}
	after, err := os.Stat(path)
	if err != nil || after.Size() != before.Size() {
		t.Fatalf("parent file after reads: %v, size %d, want %d (torn bytes kept)", err, after.Size(), before.Size())
	}
}

// TestCloseWaitsForCallsInFlight holds an append inside its fsync while
// Close runs: Close must not release the root's lock or close the index
// until the append has finished, and the append must succeed.
func TestCloseWaitsForCallsInFlight(t *testing.T) {
	root := t.TempDir()
	fsys := faultfs.New(rolloutfs.Local{Root: root})
	m, err := Open(t.Context(), Options{Root: root, FS: fsys, Sync: rolloutfs.SyncAlways, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	th := start(t, m, user("one"))

	inSync, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	fsys.Inject(func(p faultfs.Point) error {
		if p.Op == faultfs.OpSync {
			once.Do(func() {
				close(inSync)
				<-release
			})
		}
		return nil
	})
	appendErr := make(chan error, 1)
	go func() {
		_, err := m.Append(context.Background(), th.ID, []rollout.Item{user("two")})
		appendErr <- err
	}()
	<-inSync
	closeErr := make(chan error, 1)
	go func() { closeErr <- m.Close() }()
	// Close has begun once new calls are refused.
	for m.begin() == nil {
		m.ops.Done()
	}
	if _, err := lockfile.Acquire(filepath.Join(root, LockFile)); !errors.Is(err, lockfile.ErrLocked) {
		t.Fatalf("while an append is in flight, Close released the lock (Acquire: %v)", err)
	}
	close(release)
	if err := <-appendErr; err != nil {
		t.Fatalf("append in flight during Close: %v", err)
	}
	if err := <-closeErr; err != nil {
		t.Fatalf("Close: %v", err)
	}
	lock, err := lockfile.Acquire(filepath.Join(root, LockFile))
	if err != nil {
		t.Fatalf("after Close: %v", err)
	}
	lock.Release()
}

// TestFileTruncatedUnderWriter cuts a live thread's file in the middle of
// its last line, as another process might: the next append must land after
// the last complete line (the fragment kept in a side file), not be glued
// onto it, and the index must agree with the file.
func TestFileTruncatedUnderWriter(t *testing.T) {
	ctx := t.Context()
	var clock atomic.Int64 // how far the manager's clock is ahead
	var logged fixtures.Buffer
	m := openTest(t, func(o *Options) {
		o.Now = func() time.Time { return time.Now().Add(time.Duration(clock.Load())) }
		o.Logger = slog.New(slog.NewTextHandler(&logged, &slog.HandlerOptions{Level: slog.LevelError}))
	})
	th := start(t, m, user("one"), user("two"))
	path := filepath.Join(m.Root(), filepath.FromSlash(th.RolloutPath))
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	cut := len(data) - 10 // inside the last line
	if err := os.Truncate(path, int64(cut)); err != nil {
		t.Fatal(err)
	}
	// Whoever cut the file may still be writing: within the grace period
	// the append is refused and nothing is touched. The clock goes back an
	// hour, so that no stall of a loaded machine ends the grace first.
	clock.Store(int64(-time.Hour))
	var torn *TornTailError
	if _, err := m.Append(ctx, th.ID, []rollout.Item{user("three")}); !errors.As(err, &torn) || torn.RetryAfter <= 0 {
		t.Fatalf("append right after the cut: %v, want a *TornTailError with a retry time", err)
	}
	if st, err := os.Stat(path); err != nil || st.Size() != int64(cut) {
		t.Fatalf("refused append changed the file: %v, size %d, want %d", err, st.Size(), cut)
	}
	if text := logged.String(); text != "" {
		t.Fatalf("the refused append logged errors (its caller got the error):\n%s", text)
	}
	clock.Store(int64(DefaultTornGrace + time.Second))
	res, err := m.Append(ctx, th.ID, []rollout.Item{user("three")})
	if err != nil {
		t.Fatalf("append after the grace period: %v", err)
	}
	lastComplete := int64(strings.LastIndexByte(string(data[:cut]), '\n') + 1)
	if res.Offsets[0] != lastComplete {
		t.Fatalf("append landed at %d, want %d (after the last complete line)", res.Offsets[0], lastComplete)
	}
	if got := res.Thread.UserMessageCount; got != 2 {
		t.Fatalf("user messages = %d, want 2 (one, three)", got)
	}
	sides, _ := filepath.Glob(path + ".torn-*")
	if len(sides) != 1 {
		t.Fatalf("side files = %v, want one holding the fragment", sides)
	}
}

// TestForgedFutureTimestamp: a line stamped far in the future (a wrong
// clock, a forged item) bounds the thread's updated time by its file's
// mtime plus MaxClockSkew, and appends after it go on moving the bound
// with the file, live as in an index rebuilt from the files. The
// manager's own row once kept the bounded value as the newest read, and
// the index stopped following the file (Verify: updated_at drift).
func TestForgedFutureTimestamp(t *testing.T) {
	ctx := t.Context()
	m := openTest(t)
	th := start(t, m, user("one"))
	path := filepath.Join(m.Root(), filepath.FromSlash(th.RolloutPath))
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	forged := `{"timestamp":"9999-12-31T23:59:59.000Z","type":"response_item","payload":{"type":"message","role":"assistant","content":[{"type":"output_text","text":"from the future"}]}}` + "\n"
	if _, err := f.WriteString(forged); err != nil {
		t.Fatal(err)
	}
	f.Close()
	// Written by another process an hour ago: its bound lies in the past.
	past := time.Now().Add(-time.Hour)
	if err := os.Chtimes(path, past, past); err != nil {
		t.Fatal(err)
	}
	for _, text := range []string{"two", "three"} {
		if _, err := m.Append(ctx, th.ID, []rollout.Item{user(text)}); err != nil {
			t.Fatal(err)
		}
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	want := st.ModTime().Add(indexer.MaxClockSkew).UnixMilli()
	if got, err := m.Get(ctx, th.ID); err != nil || got.UpdatedAt.UnixMilli() != want {
		t.Fatalf("updated_at = %d, %v; want the file's mtime plus the skew, %d", got.UpdatedAt.UnixMilli(), err, want)
	}
	rep, err := indexer.Verify(ctx, m.store, rolloutfs.Local{Root: m.Root()})
	if err != nil || !rep.Clean() {
		t.Fatalf("verify: %v, %+v", err, rep.Drifts)
	}
}

// TestArchiveRevertedFaultPoints fails each fault point of the archive and
// the unarchive of a reverted thread (two files) in turn. The call may
// fail, but the process lives on, the history reads as before, the thread
// can still be archived and unarchived, and the files verify clean.
func TestArchiveRevertedFaultPoints(t *testing.T) {
	for _, unarchive := range []bool{false, true} {
		covered := 0
		for k := 1; ; k++ {
			m, fsys := openFaulty(t, rolloutfs.SyncAlways)
			ctx := t.Context()
			th := startPaginated(t, m, user("u0"), assistant("a0"), user("u1"), assistant("a1"))
			if _, err := m.Revert(ctx, th.ID, RevertOptions{BeforeUserMessage: intp(1)}); err != nil {
				t.Fatal(err)
			}
			if _, err := m.Append(ctx, th.ID, []rollout.Item{user("after the revert")}); err != nil {
				t.Fatal(err)
			}
			if unarchive {
				if _, err := m.Archive(ctx, th.ID); err != nil {
					t.Fatal(err)
				}
			}
			want := historyOf(t, m, th.ID)
			fsys.Reset()
			var at faultfs.Point
			fsys.Inject(func(p faultfs.Point) error {
				if p.Seq == k {
					at = p
					return faultfs.EIO
				}
				return nil
			})
			toggle := func() error {
				got, err := m.Get(ctx, th.ID)
				if err != nil {
					return err
				}
				if got.Archived {
					_, err = m.Unarchive(ctx, th.ID)
				} else {
					_, err = m.Archive(ctx, th.ID)
				}
				return err
			}
			err := toggle()
			fsys.Inject(nil)
			if at.Seq == 0 {
				break
			}
			covered++
			if got := historyOf(t, m, th.ID); !bytes.Equal(got, want) {
				t.Fatalf("unarchive=%t, %v failed (%v): history changed", unarchive, at, err)
			}
			if err := toggle(); err != nil {
				t.Fatalf("unarchive=%t, %v failed: the next (un)archive fails: %v", unarchive, at, err)
			}
			if rep, err := indexer.Verify(ctx, m.store, rolloutfs.Local{Root: m.Root()}); err != nil || !rep.Clean() {
				t.Fatalf("unarchive=%t, %v failed: verify: %v, %+v", unarchive, at, err, rep.Drifts)
			}
		}
		if covered < 4 {
			t.Fatalf("unarchive=%t: %d fault points, want at least 4", unarchive, covered)
		}
		t.Logf("unarchive=%t: %d fault points", unarchive, covered)
	}
}

// TestCancelledCallsChangeNothing: a write whose context is cancelled
// before it begins fails with the context's error and changes nothing,
// also on a thread held live (whose acquire need not wait).
func TestCancelledCallsChangeNothing(t *testing.T) {
	m := openTest(t)
	th := start(t, m, user("hello"), assistant("hi"), user("again"))
	cancelled, cancel := context.WithCancel(t.Context())
	cancel()
	calls := []struct {
		name string
		call func() error
	}{
		{"start", func() error { _, err := m.Start(cancelled, StartOptions{}); return err }},
		{"append", func() error { _, err := m.Append(cancelled, th.ID, []rollout.Item{user("no")}); return err }},
		{"rename", func() error { _, err := m.Rename(cancelled, th.ID, "no"); return err }},
		{"archive", func() error { _, err := m.Archive(cancelled, th.ID); return err }},
		{"fork", func() error { _, err := m.Fork(cancelled, th.ID, ForkOptions{}); return err }},
		{"delete", func() error { return m.Delete(cancelled, th.ID) }},
	}
	before := snapshot(t, m.Root())
	for _, c := range calls {
		for range 20 { // acquire's choice between ready and done is random
			if err := c.call(); !errors.Is(err, context.Canceled) {
				t.Fatalf("%s with a cancelled context: %v, want context.Canceled", c.name, err)
			}
		}
	}
	if after := snapshot(t, m.Root()); after != before {
		t.Fatalf("cancelled calls changed the root:\nbefore %s\nafter  %s", before, after)
	}
	page, err := m.List(t.Context(), ListOptions{})
	if err != nil || len(page.Threads) != 1 {
		t.Fatalf("List after the cancelled calls: %d threads, %v; want 1", len(page.Threads), err)
	}
}

// TestCallsAfterClose: after Close, reads (and Evict and ResumePath)
// fail with ErrClosed as writes do (not with the closed index's error),
// and a Close racing the first returns once the root is released: Open on
// it succeeds right after.
func TestCallsAfterClose(t *testing.T) {
	ctx := t.Context()
	root := t.TempDir()
	m, err := Open(ctx, Options{Root: root, Sync: rolloutfs.SyncNone, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	th := start(t, m, user("hello"), assistant("hi"))
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() {
			if err := m.Close(); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	again, err := Open(ctx, Options{Root: root, Sync: rolloutfs.SyncNone, Logger: quiet})
	if err != nil {
		t.Fatalf("Open after both Closes returned: %v", err)
	}
	defer again.Close()

	calls := map[string]func() error{
		"Get":          func() error { _, err := m.Get(ctx, th.ID); return err },
		"List":         func() error { _, err := m.List(ctx, ListOptions{}); return err },
		"Search":       func() error { _, err := m.Search(ctx, SearchOptions{Query: "hello"}); return err },
		"SearchPage":   func() error { _, err := m.SearchPage(ctx, SearchOptions{Query: "hello"}); return err },
		"UserMessages": func() error { _, err := m.UserMessages(ctx, th.ID); return err },
		"ReadFrom":     func() error { _, err := m.ReadFrom(ctx, th.ID, 0); return err },
		"ReadTurn":     func() error { _, err := m.ReadTurn(ctx, th.ID, 0); return err },
		"ReadAfter":    func() error { _, _, err := m.ReadAfter(ctx, th.ID, 0); return err },
		"Ancestors":    func() error { _, err := m.Ancestors(ctx, th.ID); return err },
		"Tree":         func() error { _, _, err := m.Tree(ctx, th.ID); return err },
		"IndexStats":   func() error { _, err := m.IndexStats(ctx); return err },
		"Turn":         func() error { _, err := m.Turn(ctx, th.ID, "t"); return err },
		// Evict and ResumePath read the closed index: "sql: database is
		// closed".
		"Evict":      func() error { return m.Evict(ctx, th.ID) },
		"ResumePath": func() error { _, err := m.ResumePath(ctx, th.RolloutPath); return err },
		"Resume":     func() error { _, err := m.Resume(ctx, th.ID); return err },
	}
	for name, call := range calls {
		if err := call(); !errors.Is(err, ErrClosed) {
			t.Errorf("%s after Close: %v, want ErrClosed", name, err)
		}
	}
}

// TestRecordWithoutItsNewline: a file whose last record is whole but lacks
// its newline (its writer stopped between the two, or the newline was cut)
// keeps the record: once the grace period is over, the next append ends it
// with its newline, counts it and lands after it, with no side file, as
// Codex reads such a record and ends it before its next write.
func TestRecordWithoutItsNewline(t *testing.T) {
	ctx := t.Context()
	var clock atomic.Int64 // how far the manager's clock is ahead
	m := openTest(t, func(o *Options) {
		o.Now = func() time.Time { return time.Now().Add(time.Duration(clock.Load())) }
	})
	th := start(t, m, user("one"), user("two"))
	path := filepath.Join(m.Root(), filepath.FromSlash(th.RolloutPath))
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(path, int64(len(data)-1)); err != nil { // "two" loses its newline
		t.Fatal(err)
	}
	clock.Store(int64(DefaultTornGrace + time.Second))
	res, err := m.Append(ctx, th.ID, []rollout.Item{user("three")})
	if err != nil {
		t.Fatalf("append: %v", err)
	}
	if res.Offsets[0] != int64(len(data)) || res.Thread.UserMessageCount != 3 {
		t.Fatalf("append landed at %d with %d user messages, want %d and 3 (one, two, three)", res.Offsets[0], res.Thread.UserMessageCount, len(data))
	}
	if sides, _ := filepath.Glob(path + ".torn-*"); len(sides) != 0 {
		t.Fatalf("side files %v, want none: nothing was torn", sides)
	}
	got, err := os.ReadFile(path)
	if err != nil || !bytes.HasPrefix(got, data) {
		t.Fatalf("file after the append does not start with the thread as it was (%v)", err)
	}
}

// fullIndex is an index with no room left: every update fails as the
// store reports SQLITE_FULL.
type fullIndex struct{}

func (fullIndex) Advance(context.Context, store.Progress) error {
	return fmt.Errorf("advance: commit: database or disk is full (13) (%w)", syscall.ENOSPC)
}

func (f fullIndex) AdvanceAll(ctx context.Context, ps []store.Progress) error {
	return f.Advance(ctx, ps[0])
}

// TestAppendIndexFullWritesNothing: an append whose lines reach the file
// but whose index update fails (the disk filled between the two) fails
// with an error wrapping syscall.ENOSPC and leaves the file as it was, so
// the unacknowledged lines never show up and a retry writes them once.
// Found with a real full tmpfs under spoold: the append answered an
// error, but its line stayed in the rollout and was indexed (and shown)
// once space was freed, after later appends' acknowledged lines had
// landed behind it.
func TestAppendIndexFullWritesNothing(t *testing.T) {
	for _, policy := range []rolloutfs.SyncPolicy{rolloutfs.SyncAlways, rolloutfs.SyncBatch, rolloutfs.SyncNone} {
		t.Run(policy.String(), func(t *testing.T) {
			ctx := t.Context()
			m, _ := openFaulty(t, policy)
			th := start(t, m, user("one"))
			before := readFile(t, m, th)

			m.index.store = fullIndex{}
			if _, err := m.Append(ctx, th.ID, []rollout.Item{user("lost")}); !errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("append with the index full: %v, want an error wrapping syscall.ENOSPC", err)
			}
			if got := readFile(t, m, th); !bytes.Equal(got, before) {
				t.Fatalf("the file after the refused append:\n%s\nwant it as before:\n%s", got, before)
			}

			m.index.store = m.store // room again
			res, err := m.Append(ctx, th.ID, []rollout.Item{user("two")})
			if err != nil {
				t.Fatalf("append once there is room: %v", err)
			}
			if len(res.Offsets) != 1 || res.Offsets[0] != int64(len(before)) {
				t.Fatalf("offsets %v, want the line at the old end %d", res.Offsets, len(before))
			}
			if got := readFile(t, m, th); bytes.Contains(got, []byte("lost")) || !bytes.Contains(got, []byte("two")) {
				t.Fatalf("the file holds the refused line, or lacks the acknowledged one:\n%s", got)
			}
			if got, err := m.Get(ctx, th.ID); err != nil || got.UserMessageCount != 2 {
				t.Fatalf("user messages %d, %v; want 2", got.UserMessageCount, err)
			}
			verifyClean(t, m)
		})
	}
}

// TestRenameIndexFullKeepsItsLines: a rename whose index update fails
// after its name reached session_index.jsonl keeps its line in the
// rollout (the name is out there, and wins on a rebuild), so the index
// catches up with the name on the next use and agrees with the files.
// Cutting the line left the index with the old name while
// session_index.jsonl held the new one: verify reported name drift.
func TestRenameIndexFullKeepsItsLines(t *testing.T) {
	for _, policy := range []rolloutfs.SyncPolicy{rolloutfs.SyncAlways, rolloutfs.SyncBatch, rolloutfs.SyncNone} {
		t.Run(policy.String(), func(t *testing.T) {
			ctx := t.Context()
			m, _ := openFaulty(t, policy)
			th := start(t, m, user("one"))

			m.index.store = fullIndex{}
			if _, err := m.Rename(ctx, th.ID, "new name"); !errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("rename with the index full: %v, want an error wrapping syscall.ENOSPC", err)
			}

			m.index.store = m.store // room again
			if _, err := m.Append(ctx, th.ID, []rollout.Item{user("two")}); err != nil {
				t.Fatalf("append once there is room: %v", err)
			}
			if got, err := m.Get(ctx, th.ID); err != nil || got.Name != "new name" {
				t.Fatalf("name %q, %v; want the name session_index.jsonl holds", got.Name, err)
			}
			verifyClean(t, m)
		})
	}
}

// TestNamedCreateIsOneWrite: a thread started or forked with a name (by
// reference, by copy, and a copy of a paginated thread) holds its name
// line from its file's creation: the file is created once and not written
// to again, so no crash or failure can leave the thread without the name
// it was asked for, and its row is named from the first.
func TestNamedCreateIsOneWrite(t *testing.T) {
	ctx := t.Context()
	m, fsys := openFaulty(t, rolloutfs.SyncAlways)
	paginated := start(t, m, user("one"), user("two"))
	legacy, err := m.Start(ctx, StartOptions{Cwd: "/w", HistoryMode: string(rollout.HistoryLegacy)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Append(ctx, legacy.ID, []rollout.Item{user("one"), user("two")}); err != nil {
		t.Fatal(err)
	}
	one := 1
	creates := []struct {
		what string
		make func(name string) (Thread, error)
	}{
		{"start", func(name string) (Thread, error) { return m.Start(ctx, StartOptions{Cwd: "/w", Name: name}) }},
		{"reference fork", func(name string) (Thread, error) {
			return m.Fork(ctx, paginated.ID, ForkOptions{BeforeUserMessage: &one, Name: name})
		}},
		{"copy of a paginated thread", func(name string) (Thread, error) {
			return m.Fork(ctx, paginated.ID, ForkOptions{BeforeUserMessage: &one, Name: name, Mode: ForkCopy})
		}},
		{"copy of a legacy thread", func(name string) (Thread, error) {
			return m.Fork(ctx, legacy.ID, ForkOptions{BeforeUserMessage: &one, Name: name})
		}},
	}
	for _, c := range creates {
		t.Run(c.what, func(t *testing.T) {
			fsys.Reset()
			name := "the " + c.what
			th, err := c.make(name)
			if err != nil {
				t.Fatal(err)
			}
			if th.Name != name {
				t.Fatalf("named %q, want %q", th.Name, name)
			}
			var ops []faultfs.Op
			for _, p := range fsys.Points() {
				if p.Name == th.RolloutPath {
					ops = append(ops, p.Op)
				}
			}
			if !slices.Equal(ops, []faultfs.Op{faultfs.OpCreate}) {
				t.Fatalf("operations on the new file: %v, want one create", ops)
			}
			data, err := os.ReadFile(filepath.Join(m.Root(), filepath.FromSlash(th.RolloutPath)))
			if err != nil {
				t.Fatal(err)
			}
			lines := bytes.Split(bytes.TrimSuffix(data, []byte{'\n'}), []byte{'\n'})
			last := lines[len(lines)-1]
			if !bytes.Contains(last, []byte(`"thread_name_updated"`)) || !bytes.Contains(last, []byte(th.Name)) {
				t.Fatalf("the file's last line %s, want its name %q", last, th.Name)
			}
		})
	}
}

// TestArchiveOntoAnExistingFile: archived_sessions/ already holds a file
// by the thread's name (a copy put there by hand, another tool's archive).
// Archive refuses with store.ErrExists (409 conflict over HTTP; it was a
// bare "file exists", 500), and the thread and the other file stay as
// they were.
func TestArchiveOntoAnExistingFile(t *testing.T) {
	ctx := t.Context()
	m := openTest(t)
	th := start(t, m, user("keep me live"))
	dst := rollout.ArchivedPath(path.Base(th.RolloutPath))
	abs := filepath.Join(m.Root(), filepath.FromSlash(dst))
	if err := os.MkdirAll(filepath.Dir(abs), 0o700); err != nil {
		t.Fatal(err)
	}
	const other = "another program's file\n"
	if err := os.WriteFile(abs, []byte(other), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := m.Archive(ctx, th.ID)
	if !errors.Is(err, store.ErrExists) || !strings.Contains(err.Error(), dst) {
		t.Fatalf("Archive onto %s: %v, want store.ErrExists naming it", dst, err)
	}
	got, err := m.Get(ctx, th.ID)
	if err != nil || got.Archived || got.RolloutPath != th.RolloutPath {
		t.Fatalf("after the refused archive: %+v, %v; want the thread live at %s", got, err, th.RolloutPath)
	}
	if b, err := os.ReadFile(abs); err != nil || string(b) != other {
		t.Fatalf("the file at %s: %q, %v; want it untouched", dst, b, err)
	}
	if _, err := m.Append(ctx, th.ID, []rollout.Item{user("still appendable")}); err != nil {
		t.Fatalf("append after the refused archive: %v", err)
	}
}

// TestArchiveIndexRefusedChangesNothing fails each update of the
// thread's index row during an archive and an unarchive in turn, as a
// disk that fills between two of them does. A call that fails has changed
// nothing: the file is where it was and the index says so, so that the
// error's "retry" completes the request. Found on a real full ext4 under
// spoold: the unarchive answered 507 insufficient_storage after it had
// moved the file and indexed the move (only recording the file's size and
// mtime failed), and the retry answered 409 not_archived.
func TestArchiveIndexRefusedChangesNothing(t *testing.T) {
	for _, unarchive := range []bool{false, true} {
		covered := 0
		for k := 1; ; k++ {
			ctx := t.Context()
			m, _ := openFaulty(t, rolloutfs.SyncAlways)
			th := start(t, m, user("u0"))
			if unarchive {
				if _, err := m.Archive(ctx, th.ID); err != nil {
					t.Fatal(err)
				}
			}
			before, err := m.Get(ctx, th.ID)
			if err != nil {
				t.Fatal(err)
			}
			file := filepath.Join(m.Root(), filepath.FromSlash(before.RolloutPath))
			// An mtime the archive time cannot equal: a refused archive
			// must put back the one it replaced.
			mtime := time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC)
			if err := os.Chtimes(file, mtime, mtime); err != nil {
				t.Fatal(err)
			}
			toggle := func() error {
				if unarchive {
					_, err := m.Unarchive(ctx, th.ID)
					return err
				}
				_, err := m.Archive(ctx, th.ID)
				return err
			}
			refuseUpdate(t, m, k)
			err = toggle()
			refuseUpdate(t, m, 0)
			if err == nil || !strings.Contains(err.Error(), refusal) {
				if err != nil {
					t.Fatalf("unarchive=%t, update %d refused: %v", unarchive, k, err)
				}
				break // the call made fewer than k updates
			}
			covered++
			got, gerr := m.Get(ctx, th.ID)
			if gerr != nil || got.Archived != before.Archived || got.RolloutPath != before.RolloutPath {
				t.Fatalf("unarchive=%t, update %d refused (%v): index has archived=%t at %s (%v), want it unchanged: archived=%t at %s",
					unarchive, k, err, got.Archived, got.RolloutPath, gerr, before.Archived, before.RolloutPath)
			}
			st, serr := os.Stat(file)
			if serr != nil {
				t.Fatalf("unarchive=%t, update %d refused (%v): the file is not where it was: %v", unarchive, k, err, serr)
			}
			if !st.ModTime().Equal(mtime) {
				t.Fatalf("unarchive=%t, update %d refused (%v): the file's mtime is %s, want it unchanged: %s", unarchive, k, err, st.ModTime(), mtime)
			}
			if err := toggle(); err != nil {
				t.Fatalf("unarchive=%t, update %d refused: the retry fails: %v", unarchive, k, err)
			}
			verifyClean(t, m)
		}
		if covered == 0 {
			t.Fatalf("unarchive=%t: no index update refused", unarchive)
		}
	}
}

// refusal is the error refuseUpdate's trigger raises.
const refusal = "update refused by the test"

// refuseUpdate makes the index refuse the k-th update of a thread row
// from now on, and every one after it, through a trigger it creates on
// another connection; k = 0 removes the trigger.
func refuseUpdate(t *testing.T, m *Manager, k int) {
	t.Helper()
	db, err := sql.Open("sqlite", filepath.Join(m.Root(), IndexFile))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	queries := []string{`DROP TRIGGER refuse_update`, `DROP TABLE refuse_update`}
	if k > 0 {
		queries = []string{
			`CREATE TABLE refuse_update (n INTEGER NOT NULL)`,
			fmt.Sprintf(`INSERT INTO refuse_update VALUES (%d)`, k),
			`CREATE TRIGGER refuse_update BEFORE UPDATE ON threads BEGIN
				UPDATE refuse_update SET n = n - 1;
				SELECT RAISE(ABORT, '` + refusal + `') WHERE (SELECT n FROM refuse_update) <= 0;
			END`,
		}
	}
	for _, q := range queries {
		if _, err := db.ExecContext(t.Context(), q); err != nil {
			t.Fatal(err)
		}
	}
}

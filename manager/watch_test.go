package manager

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fsnotify/fsnotify"
	"github.com/google/uuid"

	"github.com/spoolhq/spool/indexer"
	"github.com/spoolhq/spool/rollout"
	"github.com/spoolhq/spool/rolloutfs"
	"github.com/spoolhq/spool/store"
)

// openWatching opens a watching manager on a fresh root whose OnSync
// reports go to the returned channel (never blocking the manager).
func openWatching(t *testing.T, opts ...func(*Options)) (*Manager, <-chan SyncReport) {
	t.Helper()
	reports := make(chan SyncReport, 1024)
	m := openTest(t, append([]func(*Options){func(o *Options) {
		o.Watch = true
		o.OnSync = func(r SyncReport) {
			select {
			case reports <- r:
			default: // a test that stopped reading does not block the manager
			}
		}
	}}, opts...)...)
	return m, reports
}

// waitFor checks cond after every background sync until it holds, failing
// the test if no sync makes it hold within a generous deadline (a failure,
// not a synchronisation: a passing test never waits on the clock).
func waitFor(t *testing.T, reports <-chan SyncReport, what string, cond func() bool) {
	t.Helper()
	awaitSyncs(t, reports, what, cond, func(r SyncReport) {
		if r.Err != nil {
			t.Logf("sync %s: %v", r.Cause, r.Err)
		}
	})
}

// awaitSyncs is waitFor calling seen with each report it reads.
func awaitSyncs(t *testing.T, reports <-chan SyncReport, what string, cond func() bool, seen func(SyncReport)) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	for !cond() {
		select {
		case r := <-reports:
			seen(r)
		case <-ctx.Done():
			t.Fatalf("%s: no background sync made it happen", what)
		}
	}
}

// codexThread writes a rollout as another process (Codex) would: created
// in place, lines appended, under sessions/YYYY/MM/DD of its creation.
func codexThread(t *testing.T, root string, created time.Time, prompts ...string) (id, rel string) {
	t.Helper()
	uid, err := uuid.NewV7()
	if err != nil {
		t.Fatal(err)
	}
	id = uid.String()
	ts := rollout.FormatTimestamp(created)
	meta, err := rollout.NewSessionMetaLine(ts, rollout.MetaPayload{SessionMeta: rollout.SessionMeta{
		ID: id, Timestamp: ts, Cwd: "/codex", Originator: "codex_cli_rs", Source: "cli", ModelProvider: "openai"}})
	if err != nil {
		t.Fatal(err)
	}
	rel, err = rollout.SessionPath(rollout.FileName(created, id))
	if err != nil {
		t.Fatal(err)
	}
	abs := filepath.Join(root, filepath.FromSlash(rel))
	if err := os.MkdirAll(filepath.Dir(abs), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(abs, meta, 0o600); err != nil {
		t.Fatal(err)
	}
	codexAppend(t, root, rel, prompts...)
	return id, rel
}

// codexAppend appends user prompts to rel as Codex would, without the
// manager.
func codexAppend(t *testing.T, root, rel string, prompts ...string) {
	t.Helper()
	f, err := os.OpenFile(filepath.Join(root, filepath.FromSlash(rel)), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range prompts {
		line, err := rollout.EncodeItem(user(p), time.Now())
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.Write(line); err != nil {
			t.Fatal(err)
		}
	}
}

func listed(t *testing.T, m *Manager, id string) (Thread, bool) {
	t.Helper()
	page, err := m.List(context.Background(), store.ListOptions{Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	for _, th := range page.Threads {
		if th.ID == id {
			return th, true
		}
	}
	return Thread{}, false
}

// TestWatchFollowsAnotherProcess is issue #13: a thread another process
// creates, grows, archives and deletes in the root of a running manager is
// listed, caught up, moved and dropped without a restart. The thread is
// created in a date folder that does not exist yet, as on a new day.
func TestWatchFollowsAnotherProcess(t *testing.T) {
	m, reports := openWatching(t)
	root := m.Root()
	created := time.Date(2031, 2, 3, 4, 5, 6, 0, time.UTC) // a folder the manager has never seen
	id, rel := codexThread(t, root, created, "first prompt")

	waitFor(t, reports, "new thread listed", func() bool {
		th, ok := listed(t, m, id)
		return ok && th.UserMessageCount == 1
	})

	codexAppend(t, root, rel, "second prompt", "third prompt")
	waitFor(t, reports, "grown thread caught up", func() bool {
		th, _ := listed(t, m, id)
		return th.UserMessageCount == 3
	})

	// Codex renames a thread with a line in session_index.jsonl.
	entry, err := rollout.EncodeNameEntry(rollout.NameEntry{ID: id, ThreadName: "named by codex", UpdatedAt: time.Now().UTC().Format(time.RFC3339)})
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(filepath.Join(root, rollout.SessionIndexFile), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(entry); err != nil {
		t.Fatal(err)
	}
	f.Close()
	waitFor(t, reports, "renamed thread named", func() bool {
		th, _ := listed(t, m, id)
		return th.Name == "named by codex"
	})

	archived := rollout.ArchivedPath(filepath.Base(rel))
	if err := os.MkdirAll(filepath.Join(root, rollout.ArchivedSessionsDir), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(root, rel), filepath.Join(root, archived)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, reports, "moved thread recorded as archived", func() bool {
		th, _ := listed(t, m, id)
		return th.Archived && th.RolloutPath == archived
	})

	if err := os.Remove(filepath.Join(root, archived)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, reports, "deleted thread dropped", func() bool {
		_, err := m.Get(context.Background(), id)
		return errors.Is(err, ErrNotFound)
	})
	verifyClean(t, m)
}

// TestWatchFoldersThatExistedAtOpen: the folders under sessions/ at open
// are watched without listing the day folders that hold only files (see
// addTree), and a folder below a day folder is still found: a rollout
// written later into either is listed without waiting for the periodic
// sync (five minutes).
func TestWatchFoldersThatExistedAtOpen(t *testing.T) {
	root := t.TempDir()
	day := filepath.Join(root, rollout.SessionsDir, "2026", "01", "05")
	for _, dir := range []string{filepath.Join(day, "nested"), filepath.Join(root, rollout.SessionsDir, "2026", "01", "06")} {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	m, reports := openWatching(t, func(o *Options) { o.Root = root })
	created := time.Date(2026, 1, 6, 9, 0, 0, 0, time.UTC)
	leafID, _ := codexThread(t, root, created, "into a day folder")
	scratch := t.TempDir() // written whole elsewhere, then moved in
	nestedID, rel := codexThread(t, scratch, created, "into a folder below a day folder")
	if err := os.Rename(filepath.Join(scratch, filepath.FromSlash(rel)), filepath.Join(day, "nested", filepath.Base(rel))); err != nil {
		t.Fatal(err)
	}
	waitFor(t, reports, "threads in folders that existed at open listed", func() bool {
		_, leaf := listed(t, m, leafID)
		_, nested := listed(t, m, nestedID)
		return leaf && nested
	})
}

// TestWatchWithoutInotify: where the watcher cannot start, the periodic
// sync alone lists a thread another process created.
func TestWatchWithoutInotify(t *testing.T) {
	saved := newFSWatcher
	newFSWatcher = func() (*fsnotify.Watcher, error) { return nil, errors.New("no inotify here") }
	t.Cleanup(func() { newFSWatcher = saved })
	m, reports := openWatching(t, func(o *Options) { o.RescanInterval = 10 * time.Millisecond })
	if m.watch.fsw != nil {
		t.Fatal("watcher started although fsnotify failed")
	}
	id, _ := codexThread(t, m.Root(), time.Now(), "polled")
	waitFor(t, reports, "thread listed by the periodic sync", func() bool { _, ok := listed(t, m, id); return ok })
}

// TestWatchFolderMovedAway: a date folder moved out of the root whole
// (its files send no events) drops its threads.
func TestWatchFolderMovedAway(t *testing.T) {
	m, reports := openWatching(t)
	root := m.Root()
	id, rel := codexThread(t, root, time.Date(2030, 6, 7, 8, 9, 10, 0, time.UTC), "soon gone")
	waitFor(t, reports, "thread listed", func() bool { _, ok := listed(t, m, id); return ok })
	day := filepath.Join(root, filepath.Dir(filepath.FromSlash(rel)))
	if err := os.Rename(day, filepath.Join(t.TempDir(), "elsewhere")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, reports, "thread of the moved folder dropped", func() bool {
		_, err := m.Get(context.Background(), id)
		return errors.Is(err, ErrNotFound)
	})
}

// TestWatchLiveThreadWrittenByAnother: a thread live in the manager (its
// appender open) that another writer appends to is caught up by the
// watcher, and the manager's next append lands after those lines with an
// index that agrees with the file.
func TestWatchLiveThreadWrittenByAnother(t *testing.T) {
	ctx := context.Background()
	m, reports := openWatching(t)
	th := start(t, m, user("ours"))
	codexAppend(t, m.Root(), th.RolloutPath, "theirs")
	waitFor(t, reports, "live thread caught up", func() bool {
		got, err := m.Get(ctx, th.ID)
		return err == nil && got.UserMessageCount == 2
	})
	res, err := m.Append(ctx, th.ID, []rollout.Item{user("ours again")})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := res.Thread.UserMessageCount, 3; got != want {
		t.Fatalf("user messages after our append = %d, want %d", got, want)
	}
	verifyClean(t, m)
}

// TestWatchLiveThreadRenamedByAnother: a name another process (Codex)
// gives a live thread in session_index.jsonl, its file untouched, reaches
// the thread's row and reads, and the manager's next append keeps it.
func TestWatchLiveThreadRenamedByAnother(t *testing.T) {
	ctx := context.Background()
	m, reports := openWatching(t)
	th := start(t, m, user("ours"))
	if _, err := m.Append(ctx, th.ID, []rollout.Item{assistant("held live")}); err != nil {
		t.Fatal(err)
	}
	renameAsCodex(t, m.Root(), th.ID, "named by codex")
	waitFor(t, reports, "live thread renamed", func() bool {
		got, err := m.Get(ctx, th.ID)
		listedAs, _ := listed(t, m, th.ID)
		return err == nil && got.Name == "named by codex" && listedAs.Name == "named by codex"
	})
	res, err := m.Append(ctx, th.ID, []rollout.Item{user("after")})
	if err != nil {
		t.Fatal(err)
	}
	if res.Thread.Name != "named by codex" {
		t.Fatalf("name after our append = %q, want Codex's", res.Thread.Name)
	}
	verifyClean(t, m)
}

// renameAsCodex appends a name entry to session_index.jsonl as Codex does.
func renameAsCodex(t *testing.T, root, id, name string) {
	t.Helper()
	entry, err := rollout.EncodeNameEntry(rollout.NameEntry{ID: id, ThreadName: name, UpdatedAt: time.Now().UTC().Format(time.RFC3339Nano)})
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(filepath.Join(root, rollout.SessionIndexFile), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write(entry); err != nil {
		t.Fatal(err)
	}
}

// TestWatchStartsRaceNothing: the manager's own starts, forks and appends
// while the watcher syncs the same files never fail and leave an index
// that agrees with the files (a sync must not index a new file before its
// creator does, nor catch up a live thread under its writer).
func TestWatchStartsRaceNothing(t *testing.T) {
	ctx := context.Background()
	m, reports := openWatching(t)
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for range 4 {
		wg.Go(func() {
			for range 8 {
				th, err := m.Start(ctx, StartOptions{Cwd: "/w", Name: "n"})
				if err != nil {
					errs <- err
					return
				}
				if _, err := m.Append(ctx, th.ID, []rollout.Item{user("hi"), assistant("yo")}); err != nil {
					errs <- err
					return
				}
				if _, err := m.Fork(ctx, th.ID, ForkOptions{BeforeUserMessage: intp(0)}); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	// Let the watcher drain what it saw: a marker thread written last is
	// synced after every earlier event.
	id, _ := codexThread(t, m.Root(), time.Now(), "marker")
	waitFor(t, reports, "marker listed", func() bool { _, ok := listed(t, m, id); return ok })
	verifyClean(t, m)
}

// TestCloseStopsWatcher: Close waits for a background sync in flight,
// stops the watcher and the background goroutine, releases the inotify
// watch, and no OnSync call follows it.
func TestCloseStopsWatcher(t *testing.T) {
	entered, unblock := make(chan struct{}), make(chan struct{})
	var calls, returned atomic.Int32
	m, err := Open(t.Context(), Options{Root: t.TempDir(), Sync: rolloutfs.SyncNone, Logger: quiet, Watch: true, Background: true,
		OnSync: func(SyncReport) {
			if calls.Add(1) == 1 {
				close(entered)
				<-unblock
			}
			returned.Add(1)
		}})
	if err != nil {
		t.Fatal(err)
	}
	if m.watch == nil || m.watch.fsw == nil {
		t.Fatal("watcher did not start (no inotify here?)")
	}
	<-entered // the reconcile's report: the background goroutine is busy
	if got := backgroundGoroutines(); got != 2 {
		t.Fatalf("%d background goroutines before Close, want 2: the checks below prove nothing", got)
	}
	closeErr := make(chan error, 1)
	go func() { closeErr <- m.Close() }()
	close(unblock)
	if err := <-closeErr; err != nil {
		t.Fatal(err)
	}
	if returned.Load() == 0 {
		t.Fatal("Close returned while a background sync was still running")
	}
	if got := backgroundGoroutines(); got != 0 {
		t.Fatalf("%d background goroutines still running after Close", got)
	}
	if err := m.watch.fsw.Add(m.Root()); !errors.Is(err, fsnotify.ErrClosed) {
		t.Fatalf("fsnotify watcher after Close: Add = %v, want ErrClosed", err)
	}
	n := calls.Load()
	codexThread(t, m.Root(), time.Now(), "too late") // reaches no one
	if got := calls.Load(); got != n {
		t.Fatal("OnSync called after Close returned")
	}
}

// backgroundGoroutines counts the goroutines running the manager's
// background loop or its event collector.
func backgroundGoroutines() int {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	n := 0
	for g := range strings.SplitSeq(string(buf), "\n\n") {
		if strings.Contains(g, "manager.(*Manager).runBackground") || strings.Contains(g, "manager.(*watcher).collect") {
			n++
		}
	}
	return n
}

// verifyClean fails the test if the index disagrees with the files.
func verifyClean(t *testing.T, m *Manager) {
	t.Helper()
	rep, err := indexer.Verify(context.Background(), m.store, m.fsys)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range rep.Drifts {
		t.Errorf("drift: %s", d)
	}
}

// TestWatchAnnouncesAnotherProcessAppends: lines another process (a
// running Codex) appends to a known thread are announced as appended once
// the watcher has indexed them, with the thread's new size, so that a
// follower reads them as it reads spool's own.
func TestWatchAnnouncesAnotherProcessAppends(t *testing.T) {
	m, reports := openWatching(t)
	root := m.Root()
	id, rel := codexThread(t, root, time.Date(2031, 2, 3, 4, 5, 6, 0, time.UTC), "first prompt")
	waitFor(t, reports, "new thread listed", func() bool {
		_, ok := listed(t, m, id)
		return ok
	})
	sub := m.Subscribe(0)
	defer sub.Close()
	codexAppend(t, root, rel, "second prompt")
	info, err := os.Stat(filepath.Join(root, filepath.FromSlash(rel)))
	if err != nil {
		t.Fatal(err)
	}
	timeout := time.After(20 * time.Second)
	for {
		select {
		case e := <-sub.Events():
			if e.Type == EventAppended && e.ThreadID == id && e.Size == info.Size() {
				return
			}
		case <-timeout:
			t.Fatalf("no appended event of %s at size %d after another process appended", id, info.Size())
		}
	}
}

// unreadableNames is a local FS whose session_index.jsonl cannot be
// opened while failing is set, so every sync fails (as one does when the
// index's disk is full) until it is cleared.
type unreadableNames struct {
	rolloutfs.Local
	failing atomic.Bool
	failed  atomic.Int64 // opens refused
}

var errUnreadable = errors.New("unreadable for the test")

func (u *unreadableNames) Open(ctx context.Context, name string) (rolloutfs.ReadFile, error) {
	if name == rollout.SessionIndexFile && u.failing.Load() {
		u.failed.Add(1)
		return nil, errUnreadable
	}
	return u.Local.Open(ctx, name)
}

// TestFailedSyncIsRetried: a watched change whose sync fails is synced
// again once the failure is gone, without another event and long before
// the periodic rescan. Found with a real full disk under spoold: a delete
// removed the rollout but could not write the index, and the watcher's
// sync of the removal failed too; once space was freed the thread stayed
// listed without its file (and a rename's name stayed unindexed) until
// the rescan five minutes later.
func TestFailedSyncIsRetried(t *testing.T) {
	real := syncRetryDelay
	syncRetryDelay = time.Millisecond
	t.Cleanup(func() { syncRetryDelay = real })
	fsys := &unreadableNames{}
	m, reports := openWatching(t, func(o *Options) {
		fsys.Local = rolloutfs.Local{Root: o.Root}
		o.FS = fsys
		o.RescanInterval = time.Hour
	})
	fsys.failing.Store(true)
	id, _ := codexThread(t, m.Root(), time.Now(), "written while the index cannot take it")
	waitFor(t, reports, "a failed sync of the new file", func() bool { return fsys.failed.Load() > 0 })
	fsys.failing.Store(false)
	waitFor(t, reports, "the new file indexed by a retry", func() bool {
		_, err := m.Get(t.Context(), id)
		return err == nil
	})
}

// TestWatchRescansAfterLostEvents: when inotify's queue overflows the
// events it dropped are gone; the watcher must sync the whole root, not
// wait for the periodic rescan (an hour here). The lost event is made by
// writing where no watch is left, then reporting the overflow as fsnotify
// does.
func TestWatchRescansAfterLostEvents(t *testing.T) {
	m, reports := openWatching(t, func(o *Options) { o.RescanInterval = time.Hour })
	if m.watch.fsw == nil {
		t.Skip("no inotify here")
	}
	id, rel := codexThread(t, m.Root(), time.Now(), "first")
	waitFor(t, reports, "thread listed", func() bool { _, ok := listed(t, m, id); return ok })
	day := filepath.Join(m.Root(), filepath.Dir(filepath.FromSlash(rel)))
	if err := m.watch.fsw.Remove(day); err != nil {
		t.Fatal(err)
	}
	codexAppend(t, m.Root(), rel, "second, its event lost")
	m.watch.fsw.Errors <- fsnotify.ErrEventOverflow
	waitFor(t, reports, "thread caught up after the overflow", func() bool {
		th, _ := listed(t, m, id)
		return th.UserMessageCount == 2
	})
	verifyClean(t, m)
}

// TestWatchAnnouncesAFileRemovedElsewhere: a rollout another program
// removes (Codex's thread/delete, an rm) is announced deleted once the
// watcher drops its row, as spool's own delete is. It was no event, so a
// follow stream of the thread stayed open, hearing nothing, for as long as
// its client waited.
func TestWatchAnnouncesAFileRemovedElsewhere(t *testing.T) {
	m, reports := openWatching(t, func(o *Options) { o.RescanInterval = time.Hour })
	id, rel := codexThread(t, m.Root(), time.Now(), "removed by another program")
	kept, _ := codexThread(t, m.Root(), time.Now(), "kept")
	waitFor(t, reports, "both threads listed", func() bool {
		_, a := listed(t, m, id)
		_, b := listed(t, m, kept)
		return a && b
	})
	sub := m.Subscribe(16)
	defer sub.Close()
	if err := os.Remove(filepath.Join(m.Root(), filepath.FromSlash(rel))); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	for {
		select {
		case e := <-sub.Events():
			if e.ThreadID == kept {
				t.Fatalf("event %s of the thread left alone", e.Type)
			}
			if e.ThreadID == id && e.Type == EventDeleted {
				if _, ok := listed(t, m, id); ok {
					t.Fatal("announced deleted while still listed")
				}
				return
			}
		case <-ctx.Done():
			t.Fatal("no deleted event for the thread whose file was removed")
		}
	}
}

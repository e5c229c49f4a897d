package faultfs_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/spoolhq/spool/rolloutfs"
	"github.com/spoolhq/spool/rolloutfs/faultfs"
)

// TestBatchSyncFailureCutsEveryWaiter fails a batch sync while a second
// append waits behind it: neither append is acknowledged and neither's
// bytes stay in the file, though the second one's own sync succeeds.
func TestBatchSyncFailureCutsEveryWaiter(t *testing.T) {
	fsys, app, path, head := batchAppender(t)

	entered, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	fsys.Inject(func(p faultfs.Point) error {
		if p.Op != faultfs.OpSync {
			return nil
		}
		failed := false
		once.Do(func() {
			close(entered)
			<-release
			failed = true
		})
		if failed {
			return syscall.EIO
		}
		return nil
	})
	first, second := []byte("{\"n\":1}\n"), []byte("{\"n\":2}\n")
	errs := make(chan error, 2)
	go func() {
		_, err := app.Append(context.Background(), [][]byte{first})
		errs <- err
	}()
	<-entered
	go func() {
		_, err := app.Append(context.Background(), [][]byte{second})
		errs <- err
	}()
	want := int64(len(head) + len(first) + len(second))
	for { // until the second append has written its bytes
		if st, err := os.Stat(path); err == nil && st.Size() == want {
			break
		}
	}
	close(release)
	for range 2 {
		if err := <-errs; err == nil {
			t.Error("an append was acknowledged though a sync covering it failed")
		} else if !errors.Is(err, syscall.EIO) {
			t.Errorf("append error %v, want one wrapping EIO", err)
		}
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(data) != string(head) {
		t.Fatalf("file after the failed batch = %q, want only %q", data, head)
	}
}

// TestBatchSyncFailureSeenByAnEarlierWaiter: as
// TestBatchSyncFailureCutsEveryWaiter, but the second append's caller
// waits first, and its own batch's sync succeeds (Linux reports a
// writeback error to one fsync only): it must still see the failure of
// the sync before it, which covered its bytes, though that append's
// caller has not waited yet.
func TestBatchSyncFailureSeenByAnEarlierWaiter(t *testing.T) {
	fsys, app, path, head := batchAppender(t)
	first, second := beginBehindAFailingSync(t, fsys, app, false)
	if err := second.Wait(); !errors.Is(err, syscall.EIO) {
		t.Errorf("second append: %v, want the first sync's EIO", err)
	}
	if err := first.Wait(); !errors.Is(err, syscall.EIO) {
		t.Errorf("first append: %v, want EIO", err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(data) != string(head) {
		t.Fatalf("file after the failed batch = %q, want only %q", data, head)
	}
}

// TestBatchSyncFailureWhoseCutFails: as
// TestBatchSyncFailureSeenByAnEarlierWaiter, but cutting the bytes the
// failed sync covered fails too (EIO from ftruncate on a failing disk).
// The second append, whose own sync succeeds, was acknowledged: its line
// followed the first's, whose bytes the failed sync may have lost.
func TestBatchSyncFailureWhoseCutFails(t *testing.T) {
	fsys, app, _, _ := batchAppender(t)
	first, second := beginBehindAFailingSync(t, fsys, app, true)
	if err := first.Wait(); !errors.Is(err, syscall.EIO) {
		t.Errorf("first append: %v, want EIO", err)
	}
	if err := second.Wait(); !errors.Is(err, syscall.EIO) {
		t.Errorf("second append: %v, want the first sync's EIO", err)
	}
	if _, err := app.Append(t.Context(), [][]byte{[]byte("{\"n\":3}\n")}); err == nil {
		t.Error("an append after the failed sync was acknowledged")
	}
}

// beginBehindAFailingSync begins an append to app whose batch's sync fails
// with EIO, and a second one while that sync is under way; with cutFails,
// cutting the failed sync's bytes fails with EIO too.
func beginBehindAFailingSync(t *testing.T, fsys *faultfs.FS, app *rolloutfs.Appender, cutFails bool) (first, second *rolloutfs.PendingAppend) {
	t.Helper()
	entered, release := make(chan struct{}), make(chan struct{})
	var syncs atomic.Int32
	fsys.Inject(func(p faultfs.Point) error {
		switch {
		case p.Op == faultfs.OpTruncate && cutFails:
			return syscall.EIO
		case p.Op != faultfs.OpSync || syncs.Add(1) != 1:
			return nil
		}
		close(entered)
		<-release
		return syscall.EIO
	})
	first, err := app.Begin(t.Context(), [][]byte{[]byte("{\"n\":1}\n")})
	if err != nil {
		t.Fatal(err)
	}
	<-entered // the first batch's sync is under way
	if second, err = app.Begin(t.Context(), [][]byte{[]byte("{\"n\":2}\n")}); err != nil {
		t.Fatal(err)
	}
	close(release)
	return first, second
}

// batchAppender returns a faultfs over a fresh root holding a one-line
// file (its path and bytes) and a SyncBatch Appender of it sharing a
// GroupSyncer, both closed with the test.
func batchAppender(t *testing.T) (fsys *faultfs.FS, app *rolloutfs.Appender, path string, head []byte) {
	t.Helper()
	root := t.TempDir()
	fsys = faultfs.New(rolloutfs.Local{Root: root})
	const name = "a.jsonl"
	head = []byte("{\"head\":1}\n")
	if _, err := fsys.Create(t.Context(), name, []rolloutfs.Part{rolloutfs.Bytes(head)}, true); err != nil {
		t.Fatal(err)
	}
	group := rolloutfs.NewGroupSyncer()
	t.Cleanup(func() { group.Close() })
	app, err := rolloutfs.OpenAppender(t.Context(), fsys, name, rolloutfs.AppenderOptions{Policy: rolloutfs.SyncBatch, Group: group})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { app.Close() })
	return fsys, app, filepath.Join(root, name), head
}

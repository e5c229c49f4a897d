package manager

import (
	"context"
	"testing"
	"time"

	"github.com/spoolhq/spool/indexer"
)

// TestResumePathBesideWatcher: a watcher that indexes a new Codex rollout
// while ResumePath reads it does not make the resume fail (its insert met
// the watcher's row: ErrExists). Once ResumePath holds the thread, the
// watcher's sync waits for it, in a goroutine.
func TestResumePathBesideWatcher(t *testing.T) {
	ctx := context.Background()
	m, fsys := openOnOpen(t)
	id, rel := codexThread(t, m.Root(), time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC), "hello")
	fsys.name = rel
	synced := false
	watcher := make(chan error, 1)
	fsys.run = func() {
		synced = true
		sync := func() error {
			_, err := indexer.SyncPaths(ctx, m.store, m.fsys, []string{rel}, indexer.SyncOptions{Hold: m.holdSync})
			return err
		}
		// ResumePath reads the file to index it. A watcher's sync of it
		// runs now if nothing holds the thread; if ResumePath holds it,
		// the sync waits for it, as a real watcher would.
		if lock := m.indexLock(id); lock.TryLock() {
			lock.Unlock()
			watcher <- sync()
			return
		}
		go func() { watcher <- sync() }()
	}
	th, err := m.ResumePath(ctx, rel)
	if !synced {
		t.Fatal("the file was never opened")
	}
	if werr := <-watcher; werr != nil {
		t.Errorf("the watcher's sync: %v", werr)
	}
	if err != nil || th.ID != id {
		t.Fatalf("ResumePath while the watcher indexed the file: %+v, %v; want thread %s", th, err, id)
	}
	verifyClean(t, m)
}

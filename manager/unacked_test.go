package manager

import (
	"bytes"
	"errors"
	"fmt"
	"sync"
	"syscall"
	"testing"

	"github.com/spoolhq/spool/indexer"
	"github.com/spoolhq/spool/rollout"
	"github.com/spoolhq/spool/rolloutfs"
	"github.com/spoolhq/spool/rolloutfs/faultfs"
)

// TestUnackedLinesHidden holds a batch append at its sync, after its index
// update committed (the two overlap under SyncBatch, issue #11), and reads
// the thread: the line must not be readable before the append is
// acknowledged, and after a failed sync never, with the index back to the
// file.
func TestUnackedLinesHidden(t *testing.T) {
	for _, tc := range []struct {
		name    string
		syncErr error // what the held sync returns
	}{
		{"sync succeeds", nil},
		{"sync fails", syscall.EIO},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := t.Context()
			m, fsys := openFaulty(t, rolloutfs.SyncBatch)
			th := start(t, m, user("acknowledged"))
			before := th.IndexedSize

			held, release := make(chan struct{}), make(chan struct{})
			fsys.Reset()
			var once sync.Once
			fsys.Inject(func(p faultfs.Point) error {
				first := false
				if p.Op == faultfs.OpSync {
					once.Do(func() { first = true })
				}
				if !first {
					return nil
				}
				close(held)
				<-release
				return tc.syncErr
			})
			indexed := make(chan struct{})
			m.indexedBeforeSync = func() { close(indexed) }
			appended := make(chan error, 1)
			go func() {
				_, err := m.Append(ctx, th.ID, []rollout.Item{user("pending")})
				appended <- err
			}()
			<-held
			<-indexed // the index update runs beside the held sync
			if row, err := m.store.Get(ctx, th.ID); err != nil || row.IndexedSize <= before {
				t.Fatalf("the index was not updated beside the held sync: %+v, %v", row, err)
			}
			if got := readThread(t, m, th.ID); bytes.Contains(got, []byte("pending")) {
				t.Errorf("read before the append was acknowledged:\n%s", got)
			}
			if rc, end, err := m.ReadAfter(ctx, th.ID, 0); err != nil {
				t.Fatal(err)
			} else {
				rc.Close()
				if end != before {
					t.Errorf("ReadAfter end = %d before the append was acknowledged, want %d", end, before)
				}
			}
			if got, err := m.Get(ctx, th.ID); err != nil || got.IndexedSize != before || got.UserMessageCount != th.UserMessageCount {
				t.Errorf("Get before the append was acknowledged = %d bytes, %d user messages (%v), want %d, %d",
					got.IndexedSize, got.UserMessageCount, err, before, th.UserMessageCount)
			}
			// Nor do the thread's user messages list it, nor does a read of
			// its turn find it, nor does a listing count it.
			if msgs, err := m.UserMessages(ctx, th.ID); err != nil || len(msgs) != th.UserMessageCount {
				t.Errorf("UserMessages before the append was acknowledged = %d messages (%v), want %d", len(msgs), err, th.UserMessageCount)
			}
			var oor *OutOfRangeError
			if rc, err := m.ReadTurn(ctx, th.ID, th.UserMessageCount); !errors.As(err, &oor) {
				if err == nil {
					rc.Close()
				}
				t.Errorf("ReadTurn(%d) before the append was acknowledged: %v, want an OutOfRangeError", th.UserMessageCount, err)
			}
			if hits, err := m.Search(ctx, SearchOptions{Query: "pending"}); err != nil || len(hits) != 0 {
				t.Errorf("Search before the append was acknowledged = %+v (%v), want no hits", hits, err)
			}
			if page, err := m.SearchPage(ctx, SearchOptions{Query: "pending"}); err != nil || len(page.Hits) != 0 {
				t.Errorf("SearchPage before the append was acknowledged = %+v (%v), want no hits", page.Hits, err)
			}
			if root, _, err := m.Tree(ctx, th.ID); err != nil || root.IndexedSize != before || root.UserMessageCount != th.UserMessageCount {
				t.Errorf("Tree root before the append was acknowledged = %d bytes, %d user messages (%v), want %d, %d",
					root.IndexedSize, root.UserMessageCount, err, before, th.UserMessageCount)
			}
			if page, err := m.List(ctx, ListOptions{}); err != nil {
				t.Fatal(err)
			} else {
				for _, got := range page.Threads {
					if got.ID == th.ID && (got.IndexedSize != before || got.UserMessageCount != th.UserMessageCount) {
						t.Errorf("List before the append was acknowledged = %d bytes, %d user messages, want %d, %d",
							got.IndexedSize, got.UserMessageCount, before, th.UserMessageCount)
					}
				}
			}
			// A fork of the whole thread copies what is acknowledged, with
			// its count of user messages (the index already holds the next).
			if child, err := m.Fork(ctx, th.ID, ForkOptions{}); err != nil {
				t.Errorf("fork before the append was acknowledged: %v", err)
			} else if child.UserMessageCount != th.UserMessageCount {
				t.Errorf("fork before the append was acknowledged has %d user messages, want %d", child.UserMessageCount, th.UserMessageCount)
			}
			close(release)
			err := <-appended
			fsys.Inject(nil)
			got := readThread(t, m, th.ID)
			if tc.syncErr == nil {
				if err != nil {
					t.Fatalf("append: %v", err)
				}
				if !bytes.Contains(got, []byte("pending")) {
					t.Errorf("acknowledged line missing from the read:\n%s", got)
				}
				return
			}
			if err == nil {
				t.Fatal("append with a failed sync succeeded")
			}
			if bytes.Contains(got, []byte("pending")) {
				t.Errorf("line of a failed append read:\n%s", got)
			}
			rep, err := indexer.Verify(ctx, m.store, rolloutfs.Local{Root: m.Root()})
			if err != nil {
				t.Fatal(err)
			}
			if !rep.Clean() {
				t.Errorf("index drift after the failed sync: %+v", rep.Drifts)
			}
		})
	}
}

// readThread returns the whole history of thread id as a read returns it.
func readThread(t *testing.T, m *Manager, id string) []byte {
	t.Helper()
	rc, err := m.ReadFrom(t.Context(), id, -1)
	return readAll(t, rc, err)
}

// TestFailedBatchRenameRecordsNoName appends a rename event under batch
// and fails its sync: session_index.jsonl, which a rebuild believes over
// the rollout, must not get the name of lines that were cut, and the
// thread keeps its name.
func TestFailedBatchRenameRecordsNoName(t *testing.T) {
	ctx := t.Context()
	m, fsys := openFaulty(t, rolloutfs.SyncBatch)
	th := start(t, m, user("hi"))
	fsys.Reset()
	failOp(fsys, faultfs.OpSync, syscall.EIO)
	rename := item(rollout.TypeEventMsg, map[string]any{"type": "thread_name_updated", "thread_id": th.ID, "thread_name": "never"})
	if _, err := m.Append(ctx, th.ID, []rollout.Item{rename}); !errors.Is(err, syscall.EIO) {
		t.Fatalf("append with a failed sync: %v, want EIO", err)
	}
	fsys.Inject(nil)
	for _, p := range fsys.Points() {
		if p.Op == faultfs.OpRecord {
			t.Errorf("the name was recorded (%s) although its line was not acknowledged", p.Name)
		}
	}
	got, err := m.Get(ctx, th.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Name != th.Name {
		t.Errorf("name = %q after a failed rename append, want %q", got.Name, th.Name)
	}
}

// TestEventedLinesReadable: a follower that reads when it hears of an
// append finds the lines announced. The append's hold on its lines
// (unackedSizes) ends before the event is published; ended after, a read
// right on the event found nothing new and the follower waited for an
// event that never came (server.TestFollowAcrossReconnect hung).
func TestEventedLinesReadable(t *testing.T) {
	for _, policy := range []rolloutfs.SyncPolicy{rolloutfs.SyncBatch, rolloutfs.SyncNone} {
		t.Run(policy.String(), func(t *testing.T) {
			m := openTest(t, func(o *Options) { o.Sync = policy })
			th := start(t, m, user("first"))
			sub := m.Subscribe(4096)
			defer sub.Close()
			const appends = 500
			done := make(chan error, 1)
			go func() {
				for range appends {
					e, ok := <-sub.Events()
					if !ok {
						done <- sub.Err()
						return
					}
					rc, end, err := m.ReadAfter(t.Context(), th.ID, 0)
					if err == nil {
						rc.Close()
						if end < e.Size {
							err = fmt.Errorf("event of size %d, a read right after it ends at %d", e.Size, end)
						}
					}
					if err != nil {
						done <- err
						return
					}
				}
				done <- nil
			}()
			for i := range appends {
				if _, err := m.Append(t.Context(), th.ID, []rollout.Item{user(fmt.Sprintf("prompt %d", i))}); err != nil {
					t.Fatal(err)
				}
			}
			if err := <-done; err != nil {
				t.Fatal(err)
			}
		})
	}
}

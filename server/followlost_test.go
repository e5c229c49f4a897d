package server_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/spoolhq/spool/manager"
	"github.com/spoolhq/spool/server"
)

// lossyEvents is a manager whose subscribers hear nothing of it: they
// subscribe to bus, which the test ends with Lost, as a follower that
// fell behind and had its events dropped.
type lossyEvents struct {
	*manager.Manager
	bus manager.Bus
}

func (l *lossyEvents) Subscribe(buffer int) *manager.Subscription { return l.bus.Subscribe(buffer) }

// TestFollowAfterDroppedEventsSeesARewrite: another program rewrites the
// file of a thread a client follows while the follower's events are
// dropped (a slow consumer; the distributed backend's lost listen
// connection), so the revert the watcher announced never reaches it. On
// its events' loss the follower read on from its offset when the history
// kept its layout (the same file, no base): into the rewritten bytes when
// a line still ended there, or with an error when none did. It must end
// as after a revert; a file only appended to meanwhile reads on.
func TestFollowAfterDroppedEventsSeesARewrite(t *testing.T) {
	const added = `{"timestamp":"2026-11-28T12:00:00.000Z","type":"event_msg","payload":{"type":"agent_message","message":"after"}}` + "\n"
	for _, tc := range []struct {
		name string
		// change returns the file's new content; turnC is where its last
		// turn starts.
		change   func(t *testing.T, data []byte, turnC int64) []byte
		reverted bool
	}{
		{"appended to", func(t *testing.T, data []byte, turnC int64) []byte {
			return append(append([]byte(nil), data...), added...)
		}, false},
		{"last line rewritten to its length, then appended to", func(t *testing.T, data []byte, turnC int64) []byte {
			out := append([]byte(nil), data...)
			last := bytes.LastIndexByte(out[:len(out)-1], '\n') + 1
			at := bytes.LastIndex(out[last:], []byte("turn-c"))
			if at < 0 {
				t.Fatalf("the last line names no turn-c: %q", out[last:])
			}
			copy(out[last+at:], "turn-x")
			return append(out, added...)
		}, true},
		{"rewritten longer", func(t *testing.T, data []byte, turnC int64) []byte { return migrated(data) }, true},
		{"cut before its last turn", func(t *testing.T, data []byte, turnC int64) []byte {
			return append([]byte(nil), data[:turnC]...)
		}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			var lossy *lossyEvents
			e := newEnvOver(t, server.Config{}, manager.Options{Root: root, Watch: true}, func(m *manager.Manager) manager.Backend {
				lossy = &lossyEvents{Manager: m}
				return lossy
			})
			th, data, h, r, resp := e.followThreeTurns()
			changed := tc.change(t, data, h.Turns[2].Offset)
			sub := e.m.Subscribe(0)
			defer sub.Close()
			abs := filepath.Join(root, filepath.FromSlash(th.RolloutPath))
			if err := os.WriteFile(abs+".new", changed, 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Rename(abs+".new", abs); err != nil {
				t.Fatal(err)
			}
			awaitIndexed(t, e.m, sub, th.ID, int64(len(changed)))
			lossy.bus.Lost()

			if tc.reverted {
				awaitReverted(t, r, resp, "the rewrite and the loss of the follower's events")
				return
			}
			if got := readLines(t, r, 1); string(got[0]) != added {
				t.Fatalf("after the loss of its events the follower got %q, want the appended line", got[0])
			}
		})
	}
}

// awaitIndexed waits, on sub's events, until the manager's thread id has
// size bytes indexed.
func awaitIndexed(t *testing.T, m *manager.Manager, sub *manager.Subscription, id string, size int64) {
	t.Helper()
	timeout := time.After(20 * time.Second)
	for {
		got, err := m.Get(t.Context(), id)
		if err != nil {
			t.Fatal(err)
		}
		if got.IndexedSize == size {
			return
		}
		select {
		case _, ok := <-sub.Events():
			if !ok {
				t.Fatalf("subscription ended: %v", sub.Err())
			}
		case <-timeout:
			t.Fatalf("thread %s has %d bytes indexed, want %d", id, got.IndexedSize, size)
		}
	}
}

// staleGet is a lossyEvents whose Get answers with thread, when set: the
// answer of a Get that ran just before the thread was deleted.
type staleGet struct {
	lossyEvents
	thread *manager.Thread
}

func (s *staleGet) Get(ctx context.Context, id string) (manager.Thread, error) {
	if s.thread != nil && s.thread.ID == id {
		return *s.thread, nil
	}
	return s.Manager.Get(ctx, id)
}

// TestFollowAfterDroppedEventsSeesADeletion: a thread deleted after the
// follower, whose events were dropped, read its layout but before it read
// its last line again ends the stream "deleted", as a deletion seen at any
// other step does; it ended "error".
func TestFollowAfterDroppedEventsSeesADeletion(t *testing.T) {
	var stale *staleGet
	e := newEnvOver(t, server.Config{}, manager.Options{Root: t.TempDir()}, func(m *manager.Manager) manager.Backend {
		stale = &staleGet{lossyEvents: lossyEvents{Manager: m}}
		return stale
	})
	th, _, _, r, resp := e.followThreeTurns()
	before, err := e.m.Get(t.Context(), th.ID)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.m.Delete(t.Context(), th.ID); err != nil {
		t.Fatal(err)
	}
	stale.thread = &before
	stale.bus.Lost()
	awaitEnd(t, r, resp, "the deletion and the loss of the follower's events", server.EndDeleted)
}

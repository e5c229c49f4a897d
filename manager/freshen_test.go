package manager

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/spoolhq/spool/rollout"
)

// TestReadsCatchUpFirst is issue #13: lines another process appended are
// indexed by the read that seeks by indexed offsets, right after the
// append, without a watcher and before any append of spool's. Each case
// appends a user message and a reply with a plain file append, then reads
// from (or forks before) the new message at once.
func TestReadsCatchUpFirst(t *testing.T) {
	tests := []struct {
		name string
		live bool // the thread is held in memory when the other process writes
		read func(t *testing.T, m *Manager, id string) []byte
	}{
		{"read from", false, func(t *testing.T, m *Manager, id string) []byte {
			return drainAll(t)(m.ReadFrom(t.Context(), id, 1))
		}},
		{"read turn", false, func(t *testing.T, m *Manager, id string) []byte {
			return drainAll(t)(m.ReadTurn(t.Context(), id, 1))
		}},
		{"read from live", true, func(t *testing.T, m *Manager, id string) []byte {
			return drainAll(t)(m.ReadFrom(t.Context(), id, 1))
		}},
		{"user messages", false, func(t *testing.T, m *Manager, id string) []byte {
			msgs, err := m.UserMessages(t.Context(), id)
			if err != nil {
				t.Fatal(err)
			}
			if len(msgs) != 2 {
				t.Fatalf("user messages = %d, want 2", len(msgs))
			}
			all := drainAll(t)(m.ReadFrom(t.Context(), id, -1))
			return all[msgs[1].Offset:]
		}},
		{"fork before", false, func(t *testing.T, m *Manager, id string) []byte {
			child, err := m.Fork(t.Context(), id, ForkOptions{BeforeUserMessage: intp(1)})
			if err != nil {
				t.Fatalf("fork before the appended message: %v", err)
			}
			all := drainAll(t)(m.ReadFrom(t.Context(), child.ID, -1))
			parent := drainAll(t)(m.ReadFrom(t.Context(), id, 1))
			if len(parent) == 0 || bytes.Contains(all, parent) {
				t.Fatalf("fork holds the appended message's lines: %q", all)
			}
			return parent
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := openTest(t)
			th := start(t, m, user("zero"), assistant("a"))
			if !tt.live {
				if err := m.Evict(t.Context(), th.ID); err != nil {
					t.Fatal(err)
				}
			}
			var added []byte
			for _, it := range []rollout.Item{user("one from elsewhere"), assistant("b")} {
				line, err := rollout.EncodeItem(it, m.now())
				if err != nil {
					t.Fatal(err)
				}
				added = append(added, line...)
			}
			f, err := os.OpenFile(filepath.Join(m.Root(), filepath.FromSlash(th.RolloutPath)), os.O_WRONLY|os.O_APPEND, 0)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := f.Write(added); err != nil {
				t.Fatal(err)
			}
			if err := f.Close(); err != nil {
				t.Fatal(err)
			}

			if got := tt.read(t, m, th.ID); !bytes.Equal(got, added) {
				t.Fatalf("read after another process's append = %q, want its lines %q", got, added)
			}
			row, err := m.Get(t.Context(), th.ID)
			if err != nil {
				t.Fatal(err)
			}
			if got, want := row.UserMessageCount, 2; got != want {
				t.Errorf("user messages indexed = %d, want %d", got, want)
			}
		})
	}
}

// drainAll returns readAll for t in a form that takes a call's two results.
func drainAll(t *testing.T) func(io.ReadCloser, error) []byte {
	return func(rc io.ReadCloser, err error) []byte {
		t.Helper()
		return readAll(t, rc, err)
	}
}

// TestForkBeforeTurnIDCatchesUp is issue #13: a fork before a turn that
// another process just wrote (named by its id) finds the turn without
// waiting for a watcher.
func TestForkBeforeTurnIDCatchesUp(t *testing.T) {
	ctx := t.Context()
	m := openTest(t)
	th := start(t, m, user("zero"), assistant("a"))
	now := time.Now().UTC()
	turn, _, err := rollout.RenderTurn(rollout.HistoryLegacy, 0, rollout.TurnSpec{
		ThreadID: th.ID, TurnID: "turn-elsewhere", UserText: "one from elsewhere", AgentText: "b",
		Cwd: "/work", Model: "gpt-5", Started: now, Completed: now,
	})
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(filepath.Join(m.Root(), filepath.FromSlash(th.RolloutPath)), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(turn); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	child, err := m.Fork(ctx, th.ID, ForkOptions{BeforeTurnID: "turn-elsewhere"})
	if err != nil {
		t.Fatalf("fork before a turn another process just wrote: %v", err)
	}
	if got, want := child.UserMessageCount, 1; got != want {
		t.Fatalf("fork holds %d user messages, want %d", got, want)
	}
}

package manager

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/spoolhq/spool/rollout"
)

// TestLiveThreadMovedByHand: a thread in memory whose file another
// process archives, unarchives or deletes (mv by hand, Codex's
// thread/archive) is used through spool at once, before any watcher or
// read has looked at it. Each call must answer as for a thread not in
// memory, found where its file is now. They used the place the thread was
// loaded from: an append or a rename failed with the bare lstat error (an
// internal error over HTTP), Archive answered ErrNotFound for a thread
// that exists, Unarchive answered ErrNotArchived for an archived thread,
// and a refused Unarchive or a failed Revert left the index saying the
// file was where it no longer is (Verify drift) as long as the thread
// stayed in memory.
func TestLiveThreadMovedByHand(t *testing.T) {
	append1 := func(m *Manager, id string) error {
		_, err := m.Append(t.Context(), id, []rollout.Item{user("after the move")})
		return err
	}
	tests := []struct {
		name     string
		archived bool // spool archived it first
		move     func(t *testing.T, m *Manager, th Thread)
		op       func(m *Manager, id string) error
		want     error // nil for success
		gone     bool  // the thread's rows are dropped
	}{
		{name: "append after an archive by hand", move: archiveByHand, op: append1, want: ErrArchived},
		{name: "rename after an archive by hand", move: archiveByHand, op: func(m *Manager, id string) error {
			_, err := m.Rename(t.Context(), id, "named after the move")
			return err
		}},
		{name: "archive after an archive by hand", move: archiveByHand, op: func(m *Manager, id string) error {
			_, err := m.Archive(t.Context(), id)
			return err
		}, want: ErrArchived},
		{name: "unarchive after an archive by hand", move: archiveByHand, op: func(m *Manager, id string) error {
			_, err := m.Unarchive(t.Context(), id)
			return err
		}},
		{name: "revert after an archive by hand", move: archiveByHand, op: func(m *Manager, id string) error {
			_, err := m.Revert(t.Context(), id, RevertOptions{BeforeTurnID: "turn-c"})
			return err
		}, want: ErrArchived},
		{name: "delete after an archive by hand", move: archiveByHand, op: func(m *Manager, id string) error {
			return m.Delete(t.Context(), id)
		}, gone: true},
		{name: "append after an unarchive by hand", archived: true, move: unarchiveByHand, op: append1},
		{name: "append after a delete by hand", move: deleteByHand, op: append1, want: ErrNotFound, gone: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx := t.Context()
			m := openTest(t)
			th := threeTurns(t, m, "paginated")
			if tc.archived {
				if _, err := m.Archive(ctx, th.ID); err != nil {
					t.Fatal(err)
				}
			} else if _, err := m.Append(ctx, th.ID, []rollout.Item{assistant("held live")}); err != nil {
				t.Fatal(err)
			}
			mustBeLive(t, m, th.ID)
			tc.move(t, m, th)
			err := tc.op(m, th.ID)
			switch {
			case tc.want == nil && err != nil:
				t.Fatalf("after the move: %v, want success", err)
			case tc.want != nil && !errors.Is(err, tc.want):
				t.Fatalf("after the move: %v, want %v", err, tc.want)
			}
			if _, err := m.Get(ctx, th.ID); tc.gone != errors.Is(err, ErrNotFound) {
				t.Fatalf("Get after the move: %v, want gone %v", err, tc.gone)
			}
			verifyClean(t, m)
		})
	}
}

func archiveByHand(t *testing.T, m *Manager, th Thread) { codexMove(t, m.Root(), th.ID, true) }

func unarchiveByHand(t *testing.T, m *Manager, th Thread) { codexMove(t, m.Root(), th.ID, false) }

func deleteByHand(t *testing.T, m *Manager, th Thread) {
	t.Helper()
	got, err := m.Get(t.Context(), th.ID)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(m.Root(), filepath.FromSlash(got.RolloutPath))); err != nil {
		t.Fatal(err)
	}
}

//go:build compat

package compat

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/spoolhq/spool/manager"
	"github.com/spoolhq/spool/rollout"
)

// TestCodexFollowsSpoolArchive: a thread spool archives or unarchives, and
// a name spool gives it, are what Codex then shows and acts on, with the
// cache Codex keeps of its threads (state_5.sqlite) as Codex left it: Codex
// unarchives and resumes a thread spool archived, resumes one spool
// unarchived after Codex archived it, and lists spool's name.
func TestCodexFollowsSpoolArchive(t *testing.T) {
	home := newHome(t)
	st := newSpoolThread(t, rollout.HistoryPaginated, 2, 86)
	st.write(t, home)
	other := newSpoolThread(t, rollout.HistoryPaginated, 2, 87)
	other.write(t, home)
	s := startCodex(t, home)
	for _, id := range []string{st.ID, other.ID} {
		call(t, s, "thread/resume", map[string]any{"threadId": id, "excludeTurns": true}, nil)
	}
	call(t, s, "thread/archive", map[string]any{"threadId": other.ID}, nil)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	withManager(t, home, func(m *manager.Manager) {
		if _, err := m.Archive(t.Context(), st.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := m.Unarchive(t.Context(), other.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := m.Rename(t.Context(), other.ID, "named by spool"); err != nil {
			t.Fatal(err)
		}
	})

	s = startCodex(t, home)
	call(t, s, "thread/unarchive", map[string]any{"threadId": st.ID}, nil)
	call(t, s, "thread/resume", map[string]any{"threadId": st.ID, "excludeTurns": true}, nil)
	if got := turnsOf(t, s, st.ID); len(got) != 2 {
		t.Fatalf("Codex shows the thread spool archived and Codex unarchived with %s, want 2 turns", describe(got))
	}
	call(t, s, "thread/resume", map[string]any{"threadId": other.ID, "excludeTurns": true}, nil)
	if got := turnsOf(t, s, other.ID); len(got) != 2 {
		t.Fatalf("Codex shows the thread spool unarchived with %s, want 2 turns", describe(got))
	}
	var read struct {
		Thread struct {
			Name *string `json:"name"`
		} `json:"thread"`
	}
	call(t, s, "thread/read", map[string]any{"threadId": other.ID}, &read)
	if read.Thread.Name == nil || *read.Thread.Name != "named by spool" {
		t.Fatalf("Codex reads the thread spool named as %v, want named by spool", read.Thread.Name)
	}
}

// TestCodexForgetsWhatSpoolDeletes: a thread spool deletes is forgotten by
// Codex as after its own delete, not read as a ghost from its cache; and a
// fork of a thread spool purged (made self-contained) is shown by Codex
// with the turns it inherited, which Codex's projection, made from the
// fork's old layout, would miss.
func TestCodexForgetsWhatSpoolDeletes(t *testing.T) {
	home := newHome(t)
	st := newSpoolThread(t, rollout.HistoryPaginated, 2, 89)
	st.write(t, home)
	gone := newSpoolThread(t, rollout.HistoryPaginated, 1, 90)
	gone.write(t, home)
	s := startCodex(t, home)
	call(t, s, "thread/resume", map[string]any{"threadId": st.ID, "excludeTurns": true}, nil)
	var fork, doomed threadAnswer
	call(t, s, "thread/fork", map[string]any{"threadId": st.ID, "lastTurnId": st.Turns[0].TurnID, "excludeTurns": true}, &fork)
	call(t, s, "thread/resume", map[string]any{"threadId": gone.ID, "excludeTurns": true}, nil)
	call(t, s, "thread/fork", map[string]any{"threadId": gone.ID, "excludeTurns": true}, &doomed)
	want := turnIDs(turnsOf(t, s, fork.Thread.ID)) // as Codex projected it
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	withManager(t, home, func(m *manager.Manager) {
		if err := m.Delete(t.Context(), doomed.Thread.ID); err != nil {
			t.Fatal(err)
		}
		if err := m.Purge(t.Context(), st.ID); err != nil { // the fork becomes self-contained
			t.Fatal(err)
		}
	})

	s = startCodex(t, home)
	if err := s.Call(t.Context(), "thread/read", map[string]any{"threadId": doomed.Thread.ID}, nil); err == nil {
		t.Fatal("Codex reads a thread spool deleted")
	}
	call(t, s, "thread/resume", map[string]any{"threadId": fork.Thread.ID, "excludeTurns": true}, nil)
	if got := turnIDs(turnsOf(t, s, fork.Thread.ID)); got != want {
		t.Fatalf("Codex shows the fork of a purged thread as %s, want %s", got, want)
	}
}

// TestSpoolFollowsCodexWhileOpen: what Codex does to a thread while a
// watching manager (spoold's default) has the home open is what spool's
// row says after its next background sync, without a reopen: the thread
// Codex starts and writes (its injected prompt counted, trimmed in the
// preview), the name Codex sets, its archive (the row moves to
// archived_sessions/) and unarchive, and its delete (the row goes).
func TestSpoolFollowsCodexWhileOpen(t *testing.T) {
	home := newHome(t)
	synced := make(chan manager.SyncReport, 256)
	m, err := manager.Open(t.Context(), manager.Options{Root: home, Watch: true, OnSync: func(r manager.SyncReport) {
		select {
		case synced <- r:
		default: // a test that stopped reading does not block the manager
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Close() })
	// follows checks spool's row of id after every background sync until
	// ok holds; failing when no sync makes it hold is a failure, not a
	// synchronisation: a passing test never waits on the clock.
	follows := func(what, id string, ok func(manager.Thread, error) bool) {
		t.Helper()
		ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
		defer cancel()
		for {
			th, err := m.Get(ctx, id)
			if ok(th, err) {
				return
			}
			select {
			case <-synced:
			case <-ctx.Done():
				t.Fatalf("after Codex's %s spool's row is %+v, %v", what, th, err)
			}
		}
	}

	s := startCodex(t, home)
	var started threadAnswer
	call(t, s, "thread/start", map[string]any{"cwd": "/tmp"}, &started)
	id := started.Thread.ID
	user := map[string]any{"type": "message", "role": "user", "content": []map[string]string{{"type": "input_text", "text": "  hello there\n"}}}
	call(t, s, "thread/inject_items", map[string]any{"threadId": id, "items": []any{user}}, nil)
	// An injected prompt has no echo: Codex shows no preview for it (and
	// does not list the thread), nor does spool.
	var read threadAnswer
	call(t, s, "thread/read", map[string]any{"threadId": id}, &read)
	follows("start and inject", id, func(th manager.Thread, err error) bool {
		return err == nil && th.UserMessageCount == 1 && th.Preview == read.Thread.Preview && read.Thread.Preview == "" && !th.Archived
	})
	call(t, s, "thread/name/set", map[string]any{"threadId": id, "name": "named by codex"}, nil)
	follows("thread/name/set", id, func(th manager.Thread, err error) bool { return err == nil && th.Name == "named by codex" })
	call(t, s, "thread/archive", map[string]any{"threadId": id}, nil)
	follows("thread/archive", id, func(th manager.Thread, err error) bool {
		return err == nil && th.Archived && strings.HasPrefix(th.RolloutPath, rollout.ArchivedSessionsDir+"/")
	})
	call(t, s, "thread/unarchive", map[string]any{"threadId": id}, nil)
	follows("thread/unarchive", id, func(th manager.Thread, err error) bool {
		return err == nil && !th.Archived && strings.HasPrefix(th.RolloutPath, rollout.SessionsDir+"/") && th.Name == "named by codex"
	})
	call(t, s, "thread/delete", map[string]any{"threadId": id}, nil)
	follows("thread/delete", id, func(_ manager.Thread, err error) bool { return errors.Is(err, manager.ErrNotFound) })
}

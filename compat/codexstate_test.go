//go:build compat

package compat

import (
	"testing"

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

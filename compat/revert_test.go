//go:build compat

package compat

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spoolhq/spool/manager"
	"github.com/spoolhq/spool/rollout"
)

// removeStateDB removes Codex's thread cache, state_5.sqlite, from home
// (Codex rebuilds it from the files on its next start).
func removeStateDB(t *testing.T, home string) {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(home, "state_5.sqlite*"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no state_5.sqlite in %s (%v)", home, err)
	}
	for _, f := range files {
		if err := os.Remove(f); err != nil {
			t.Fatal(err)
		}
	}
}

// turnIDs returns the ids and statuses of turns as "id:status ...".
func turnIDs(turns []turn) string {
	var s string
	for i, tn := range turns {
		if i > 0 {
			s += " "
		}
		s += tn.ID + ":" + tn.Status
	}
	return s
}

// TestSpoolRevertReadByCodex: a revert spool writes (manager.Revert, the
// API's POST /revert) is read by Codex as its own, given the same state of
// Codex's caches: Codex resumes the thread from the new segment with the
// turns before the cut; a turn spool appends after the revert (in the
// segment, numbered on from the cut) is shown after them. spool's index
// reports the same.
func TestSpoolRevertReadByCodex(t *testing.T) {
	home := newHome(t)
	st := newSpoolThread(t, rollout.HistoryPaginated, 3, 81)
	st.write(t, home)
	newTurn := "019dab90-1111-7000-8000-000081000099"
	// Codex shows a thread whose history continues a base (a reference
	// fork, a revert segment) from its projection of that base, made when
	// it loads it (docs/CODEX.md): Codex has had the thread open before.
	s := startCodex(t, home)
	call(t, s, "thread/resume", map[string]any{"threadId": st.ID, "excludeTurns": true}, nil)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	withManager(t, home, func(m *manager.Manager) {
		if _, err := m.Revert(t.Context(), st.ID, manager.RevertOptions{BeforeTurnID: st.Turns[1].TurnID}); err != nil {
			t.Fatal(err)
		}
	})
	// Codex resumes a thread from the path its state_5.sqlite holds, which
	// only Codex's own revert updates; without that cache (a new or
	// rebuilt one) it finds the newest file of the thread, as it does
	// after its own revert (docs/CODEX.md).
	removeStateDB(t, home)

	s = startCodex(t, home)
	var resumed threadAnswer
	call(t, s, "thread/resume", map[string]any{"threadId": st.ID, "excludeTurns": true}, &resumed)
	if got, want := turnIDs(turnsOf(t, s, st.ID)), st.Turns[0].TurnID+":completed"; got != want {
		t.Fatalf("Codex shows %s after spool's revert (resumed from %s), want %s", got, resumed.Thread.Path, want)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	var appended manager.AppendResult
	withManager(t, home, func(m *manager.Manager) {
		var err error
		appended, err = m.AppendTurn(t.Context(), st.ID, manager.TurnOptions{TurnID: newTurn, Prompt: "prompt after", Answer: "answer after"})
		if err != nil {
			t.Fatal(err)
		}
	})
	if appended.Thread.UserMessageCount != 2 {
		t.Fatalf("spool reports %d user messages after the revert and an append, want 2", appended.Thread.UserMessageCount)
	}
	s = startCodex(t, home)
	call(t, s, "thread/resume", map[string]any{"threadId": st.ID, "excludeTurns": true}, nil)
	got := turnsOf(t, s, st.ID)
	if want := fmt.Sprintf("%s:completed %s:completed", st.Turns[0].TurnID, newTurn); turnIDs(got) != want {
		t.Fatalf("Codex shows %s, want %s", describe(got), want)
	}
	if rec := scanHome(t, home, st.ID); rec.Thread.UserMessageCount != 2 || rec.Thread.RolloutPath != appended.Thread.RolloutPath {
		t.Fatalf("a fresh index: %d messages at %s, want 2 at %s", rec.Thread.UserMessageCount, rec.Thread.RolloutPath, appended.Thread.RolloutPath)
	}
}

// TestSpoolAppendsAfterCodexRevert: after Codex reverts a thread (and
// exits, releasing its writer lock), spool indexes the thread from Codex's
// segment and appends a turn to it with the next ordinals; Codex then
// shows the turn before the revert and spool's.
func TestSpoolAppendsAfterCodexRevert(t *testing.T) {
	home := newHome(t)
	st := newSpoolThread(t, rollout.HistoryPaginated, 3, 82)
	st.write(t, home)
	s := startCodex(t, home)
	call(t, s, "thread/resume", map[string]any{"threadId": st.ID, "excludeTurns": true}, nil)
	call(t, s, "thread/revert", map[string]any{"threadId": st.ID, "beforeTurnId": st.Turns[1].TurnID}, nil)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	newTurn := "019dab90-1111-7000-8000-000082000099"
	m, err := manager.Open(t.Context(), manager.Options{Root: home})
	if err != nil {
		t.Fatal(err)
	}
	th, err := m.Get(t.Context(), st.ID)
	if err != nil {
		t.Fatal(err)
	}
	if th.UserMessageCount != 1 || th.BaseID != st.ID {
		t.Fatalf("spool indexes Codex's reverted thread with %d user messages, base %q; want 1, itself", th.UserMessageCount, th.BaseID)
	}
	if _, err := m.AppendTurn(t.Context(), st.ID, manager.TurnOptions{TurnID: newTurn, Prompt: "prompt after", Answer: "answer after"}); err != nil {
		t.Fatal(err)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}

	s = startCodex(t, home)
	call(t, s, "thread/resume", map[string]any{"threadId": st.ID, "excludeTurns": true}, nil)
	got := turnsOf(t, s, st.ID)
	if want := fmt.Sprintf("%s:completed %s:completed", st.Turns[0].TurnID, newTurn); turnIDs(got) != want {
		t.Fatalf("Codex shows %s, want %s", describe(got), want)
	}
}

// TestCodexShowsTurnsOfSpoolForks: turns spool appends to its reference
// forks (manager.Fork, then AppendTurn), and to a fork of such a fork, are
// shown by Codex after the inherited ones. A fork's lines are numbered on
// from the cut's ordinal, as Codex numbers its own forks; Codex skips a
// line whose ordinal is not above the one before it ("regressed rollout
// ordinal"), so a fork numbered from 0 showed none of its own turns.
func TestCodexShowsTurnsOfSpoolForks(t *testing.T) {
	home := newHome(t)
	st := newSpoolThread(t, rollout.HistoryPaginated, 3, 84)
	st.write(t, home)
	// Codex shows a reference fork from its projection of the base, made
	// when it loads the base (docs/CODEX.md).
	s := startCodex(t, home)
	call(t, s, "thread/resume", map[string]any{"threadId": st.ID, "excludeTurns": true}, nil)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	childTurn, grandTurn := "019dab90-1111-7000-8000-000084000098", "019dab90-1111-7000-8000-000084000099"
	m, err := manager.Open(t.Context(), manager.Options{Root: home})
	if err != nil {
		t.Fatal(err)
	}
	child, err := m.Fork(t.Context(), st.ID, manager.ForkOptions{BeforeTurnID: st.Turns[1].TurnID})
	if err == nil {
		_, err = m.AppendTurn(t.Context(), child.ID, manager.TurnOptions{TurnID: childTurn, Prompt: "child prompt", Answer: "child answer"})
	}
	var grand manager.Thread
	if err == nil {
		grand, err = m.Fork(t.Context(), child.ID, manager.ForkOptions{})
	}
	if err == nil {
		_, err = m.AppendTurn(t.Context(), grand.ID, manager.TurnOptions{TurnID: grandTurn, Prompt: "grandchild prompt", Answer: "grandchild answer"})
	}
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if child.BaseID == "" || grand.BaseID == "" {
		t.Fatalf("forks of a paginated thread: bases %q and %q, want reference forks", child.BaseID, grand.BaseID)
	}

	s = startCodex(t, home)
	for _, c := range []struct {
		id   string
		want string
	}{
		{child.ID, fmt.Sprintf("%s:completed %s:completed", st.Turns[0].TurnID, childTurn)},
		{grand.ID, fmt.Sprintf("%s:completed %s:completed %s:completed", st.Turns[0].TurnID, childTurn, grandTurn)},
	} {
		// Loading the child makes the projection its fork is shown from.
		call(t, s, "thread/resume", map[string]any{"threadId": c.id, "excludeTurns": true}, nil)
		if got := turnsOf(t, s, c.id); turnIDs(got) != c.want {
			t.Fatalf("Codex shows fork %s as %s, want %s", c.id, describe(got), c.want)
		}
	}
}

// TestSpoolReadsCodexSegmentBases: Codex names a file of a reverted thread
// other than its first by the segment's uuid in a history_base, where it
// names the first by the thread's id. A fork Codex makes of a reverted
// thread (its cut in the segment) and a revert Codex makes inside a
// segment are read by spool with Codex's turns.
func TestSpoolReadsCodexSegmentBases(t *testing.T) {
	home := newHome(t)
	st := newSpoolThread(t, rollout.HistoryPaginated, 3, 83)
	st.write(t, home)
	s := startCodex(t, home)
	call(t, s, "thread/resume", map[string]any{"threadId": st.ID, "excludeTurns": true}, nil)
	call(t, s, "thread/revert", map[string]any{"threadId": st.ID, "beforeTurnId": st.Turns[2].TurnID}, nil)
	var fork threadAnswer
	call(t, s, "thread/fork", map[string]any{"threadId": st.ID, "excludeTurns": true}, &fork)
	var segment string
	for _, f := range findFiles(t, home, st.ID) {
		if f != st.Path {
			segment = f
		}
	}
	_, segmentID, _, err := rollout.ParseSegmentFileName(filepath.Base(segment))
	if err != nil {
		t.Fatal(err)
	}
	if meta := firstMeta(t, fork.Thread.Path); meta.HistoryBase == nil || meta.HistoryBase.ThreadID != segmentID {
		t.Fatalf("Codex's fork of a reverted thread: history_base %+v, want the segment's id %s", meta.HistoryBase, segmentID)
	}
	// A second revert, before turn 1: its cut lies in the first file.
	// Codex's turns of the fork and of the thread are what spool must show.
	codexFork := turnIDs(turnsOf(t, s, fork.Thread.ID))
	if want := fmt.Sprintf("%s:completed %s:completed", st.Turns[0].TurnID, st.Turns[1].TurnID); codexFork != want {
		t.Fatalf("Codex shows its fork as %s, want %s", codexFork, want)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	m, err := manager.Open(t.Context(), manager.Options{Root: home})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	msgs, err := m.UserMessages(t.Context(), fork.Thread.ID)
	if err != nil {
		t.Fatalf("spool's user messages of Codex's fork of a reverted thread: %v", err)
	}
	var got []string
	for _, msg := range msgs {
		got = append(got, msg.TurnID+":completed")
	}
	if strings.Join(got, " ") != codexFork {
		t.Fatalf("spool shows Codex's fork as %v, Codex as %s", got, codexFork)
	}
}

// TestSegmentsNamedByUUIDBothWays: a revert cut inside a revert segment
// names that segment by its uuid, and so does a fork cut inside one. Codex
// writes them so and spool reads them with Codex's turns; spool writes
// them so and Codex reads them with spool's turns.
func TestSegmentsNamedByUUIDBothWays(t *testing.T) {
	home := newHome(t)
	st := newSpoolThread(t, rollout.HistoryPaginated, 3, 85)
	st.write(t, home)
	q0, q1, q2 := "019dab90-1111-7000-8000-000085000090", "019dab90-1111-7000-8000-000085000091", "019dab90-1111-7000-8000-000085000092"
	spoolTurns := func(m *manager.Manager, id string) string {
		t.Helper()
		msgs, err := m.UserMessages(t.Context(), id)
		if err != nil {
			t.Fatalf("spool's user messages of %s: %v", id, err)
		}
		var ids []string
		for _, msg := range msgs {
			ids = append(ids, msg.TurnID+":completed")
		}
		return strings.Join(ids, " ")
	}
	appendTurns := func(m *manager.Manager, ids ...string) {
		t.Helper()
		for _, id := range ids {
			if _, err := m.AppendTurn(t.Context(), st.ID, manager.TurnOptions{TurnID: id, Prompt: "prompt " + id, Answer: "answer " + id}); err != nil {
				t.Fatal(err)
			}
		}
	}
	segmentIDs := func() map[string]bool {
		ids := map[string]bool{}
		for _, f := range findFiles(t, home, st.ID) {
			if _, sid, _, err := rollout.ParseSegmentFileName(filepath.Base(f)); err == nil {
				ids[sid] = true
			}
		}
		return ids
	}
	newestMeta := func(before map[string]bool) rollout.SessionMeta {
		t.Helper()
		for _, f := range findFiles(t, home, st.ID) {
			if _, sid, _, err := rollout.ParseSegmentFileName(filepath.Base(f)); err == nil && !before[sid] {
				return firstMeta(t, f)
			}
		}
		t.Fatal("no new segment")
		return rollout.SessionMeta{}
	}

	// Codex reverts before turn 2: segment S1, which spool appends q0, q1 to.
	s := startCodex(t, home)
	call(t, s, "thread/resume", map[string]any{"threadId": st.ID, "excludeTurns": true}, nil)
	call(t, s, "thread/revert", map[string]any{"threadId": st.ID, "beforeTurnId": st.Turns[2].TurnID}, nil)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s1 := segmentIDs()
	withManager(t, home, func(m *manager.Manager) { appendTurns(m, q0, q1) })

	// Codex reverts before q1, inside S1: its segment S2 names S1.
	s = startCodex(t, home)
	call(t, s, "thread/resume", map[string]any{"threadId": st.ID, "excludeTurns": true}, nil)
	call(t, s, "thread/revert", map[string]any{"threadId": st.ID, "beforeTurnId": q1}, nil)
	if hb := newestMeta(s1).HistoryBase; hb == nil || !s1[hb.ThreadID] {
		t.Fatalf("Codex's revert inside a segment: history_base %+v, want the segment's uuid (one of %v)", hb, s1)
	}
	codexView := turnIDs(turnsOf(t, s, st.ID))
	if want := fmt.Sprintf("%s:completed %s:completed %s:completed", st.Turns[0].TurnID, st.Turns[1].TurnID, q0); codexView != want {
		t.Fatalf("Codex shows %s after its revert inside a segment, want %s", codexView, want)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s2 := segmentIDs()

	// spool reads Codex's revert; then reverts inside S2 after appending
	// to it, and forks with the cut inside S2.
	var fork manager.Thread
	withManager(t, home, func(m *manager.Manager) {
		if got := spoolTurns(m, st.ID); got != codexView {
			t.Fatalf("spool shows %s after Codex's revert inside a segment, Codex %s", got, codexView)
		}
		appendTurns(m, q2)
		var err error
		if _, err = m.Revert(t.Context(), st.ID, manager.RevertOptions{BeforeTurnID: q2}); err != nil {
			t.Fatal(err)
		}
		if fork, err = m.Fork(t.Context(), st.ID, manager.ForkOptions{}); err != nil {
			t.Fatal(err)
		}
	})
	if hb := newestMeta(s2).HistoryBase; hb == nil || !s2[hb.ThreadID] || s1[hb.ThreadID] {
		t.Fatalf("spool's revert inside a segment: history_base %+v, want the newest segment's uuid (one of %v, not %v)", hb, s2, s1)
	}
	if hb := firstMeta(t, filepath.Join(home, filepath.FromSlash(fork.RolloutPath))).HistoryBase; hb == nil || !segmentIDs()[hb.ThreadID] {
		t.Fatalf("spool's fork of a thread whose cut is in a segment: history_base %+v, want a segment's uuid", hb)
	}

	// Codex reads both with spool's turns (its caches removed, so that it
	// resumes the newest file, as after its own revert).
	removeStateDB(t, home)
	s = startCodex(t, home)
	call(t, s, "thread/resume", map[string]any{"threadId": st.ID, "excludeTurns": true}, nil)
	if got := turnIDs(turnsOf(t, s, st.ID)); got != codexView {
		t.Fatalf("Codex shows %s after spool's revert inside a segment, want %s", got, codexView)
	}
	call(t, s, "thread/resume", map[string]any{"threadId": fork.ID, "excludeTurns": true}, nil)
	if got := turnIDs(turnsOf(t, s, fork.ID)); got != codexView {
		t.Fatalf("Codex shows spool's fork of the reverted thread as %s, want %s", got, codexView)
	}
}

// TestCodexSeesSpoolRevertWithItsCache: a revert spool writes is what
// Codex resumes and shows with its caches as they were (its thread cache
// names the thread's first file): spool points the cache at the new
// segment, as Codex's own revert does.
func TestCodexSeesSpoolRevertWithItsCache(t *testing.T) {
	home := newHome(t)
	st := newSpoolThread(t, rollout.HistoryPaginated, 3, 91)
	st.write(t, home)
	s := startCodex(t, home)
	call(t, s, "thread/resume", map[string]any{"threadId": st.ID, "excludeTurns": true}, nil)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	withManager(t, home, func(m *manager.Manager) {
		if _, err := m.Revert(t.Context(), st.ID, manager.RevertOptions{BeforeTurnID: st.Turns[1].TurnID}); err != nil {
			t.Fatal(err)
		}
	})
	s = startCodex(t, home)
	call(t, s, "thread/resume", map[string]any{"threadId": st.ID, "excludeTurns": true}, nil)
	if got, want := turnIDs(turnsOf(t, s, st.ID)), st.Turns[0].TurnID+":completed"; got != want {
		t.Fatalf("Codex shows %s after spool's revert, its caches kept, want %s", got, want)
	}
}

// TestSpoolForkOfArchivedThreadReadByCodex: Codex refuses to fork or
// load an archived thread ("session … is archived"), so it would show a
// reference into one with no turns. spool forks an archived paginated
// thread by copy, and Codex shows the fork's turns.
func TestSpoolForkOfArchivedThreadReadByCodex(t *testing.T) {
	home := newHome(t)
	st := newSpoolThread(t, rollout.HistoryPaginated, 3, 85)
	st.write(t, home)
	m, err := manager.Open(t.Context(), manager.Options{Root: home})
	if err != nil {
		t.Fatal(err)
	}
	archived, err := m.Archive(t.Context(), st.ID)
	var child manager.Thread
	if err == nil {
		child, err = m.Fork(t.Context(), st.ID, manager.ForkOptions{BeforeTurnID: st.Turns[2].TurnID})
	}
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if !archived.Archived || child.Archived || child.BaseID != "" {
		t.Fatalf("parent archived %v; fork archived %v with base %q, want a live fork that copies", archived.Archived, child.Archived, child.BaseID)
	}

	s := startCodex(t, home)
	for _, method := range []string{"thread/fork", "thread/resume"} {
		err := s.Call(t.Context(), method, map[string]any{"threadId": st.ID, "excludeTurns": true}, nil)
		if err == nil || !strings.Contains(err.Error(), "is archived") {
			t.Fatalf("Codex's %s of an archived thread: %v, want its refusal", method, err)
		}
	}
	call(t, s, "thread/resume", map[string]any{"threadId": child.ID, "excludeTurns": true}, nil)
	want := fmt.Sprintf("%s:completed %s:completed", st.Turns[0].TurnID, st.Turns[1].TurnID)
	if got := turnsOf(t, s, child.ID); turnIDs(got) != want {
		t.Fatalf("Codex shows the fork of an archived thread as %s, want %s", describe(got), want)
	}
}

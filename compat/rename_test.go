//go:build compat

package compat

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/spoolhq/spool/internal/fixtures"
	"github.com/spoolhq/spool/manager"
	"github.com/spoolhq/spool/rollout"
)

// mockedStarter returns a function that starts Codex (under
// mockresponses) on home, closed when t ends; each call starts it again.
func mockedStarter(t *testing.T, home string) func() *Server {
	mock := buildMock(t)
	return func() *Server {
		t.Helper()
		stderr := &fixtures.Buffer{}
		s, err := Start(t.Context(), Options{Binary: codexBinary(t), Home: home, Stderr: stderr, MockResponses: mock})
		if err != nil {
			t.Fatalf("%v\n%s", err, stderr.String())
		}
		t.Cleanup(func() { _ = s.Close() })
		return s
	}
}

// runTurn has Codex (under mockresponses) run one turn of thread id and
// returns the turn's id.
func runTurn(t *testing.T, s *Server, id, text string) string {
	t.Helper()
	var started struct {
		Turn struct {
			ID string `json:"id"`
		} `json:"turn"`
	}
	// The server keeps every notification: wait for one more
	// turn/completed than it had before this turn.
	done := 0
	for _, n := range s.Notifications() {
		if n.Method == "turn/completed" {
			done++
		}
	}
	call(t, s, "turn/start", map[string]any{"threadId": id, "input": []any{map[string]any{"type": "text", "text": text}}}, &started)
	if _, err := s.WaitNotifications(t.Context(), "turn/completed", done+1); err != nil {
		t.Fatal(err)
	}
	return started.Turn.ID
}

// TestSpoolWholeForkAfterRename: Codex 0.169 does not read spool's
// thread_name_updated lines; when a thread's file ends in one, Codex
// numbers its next line with that line's ordinal (found by hand in a
// review: its next turn's task_started repeats the rename's ordinal), and
// its own whole fork there names that ordinal as end_ordinal_exclusive.
// spool's whole fork of such a thread names the same ordinal, so Codex
// shows it with the parent's turns at the fork and not with the turn Codex
// runs on the parent afterwards. Before, spool named the ordinal after the
// rename, and Codex showed the fork with that later turn too (completed,
// without items).
func TestSpoolWholeForkAfterRename(t *testing.T) {
	home := newHome(t)
	start := mockedStarter(t, home)
	s := start()
	var th threadAnswer
	call(t, s, "thread/start", map[string]any{"cwd": "/tmp"}, &th)
	id := th.Thread.ID
	first := runTurn(t, s, id, "before the fork")
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	m, err := manager.Open(t.Context(), manager.Options{Root: home})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Rename(t.Context(), id, "renamed by spool"); err != nil {
		t.Fatal(err)
	}
	fork, err := m.Fork(t.Context(), id, manager.ForkOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	spoolBase := firstMeta(t, findFiles(t, home, fork.ID)[0]).HistoryBase

	s = start()
	var codexFork threadAnswer
	call(t, s, "thread/fork", map[string]any{"threadId": id, "excludeTurns": true}, &codexFork)
	codexBase := firstMeta(t, codexFork.Thread.Path).HistoryBase
	call(t, s, "thread/resume", map[string]any{"threadId": id, "excludeTurns": true}, nil)
	later := runTurn(t, s, id, "after the fork")
	data, err := os.ReadFile(th.Thread.Path)
	if err != nil {
		t.Fatal(err)
	}
	// What this test stands on: Codex numbered its turn from the rename's
	// ordinal.
	var renameOrdinal, startedOrdinal int64 = -1, -2
	rd := rollout.NewReader(bytes.NewReader(data), 0, 0)
	for rd.Next() {
		l := rd.Line()
		n, _, _ := rollout.LineOrdinal(l.Raw)
		switch {
		case rollout.Classify(l).Kind == rollout.KindNameUpdate:
			renameOrdinal = n
		case l.Type == rollout.TypeEventMsg && l.PayloadType == "task_started" && renameOrdinal >= 0 && startedOrdinal < 0:
			startedOrdinal = n
		}
	}
	if startedOrdinal != renameOrdinal {
		t.Logf("Codex numbered its turn after spool's rename from %d, the rename has %d: Codex now reads the rename", startedOrdinal, renameOrdinal)
	}
	if got := turnIDs(turnsOf(t, s, id)); got != first+":completed "+later+":completed" {
		t.Fatalf("Codex shows the parent as %s", got)
	}
	call(t, s, "thread/resume", map[string]any{"threadId": fork.ID, "excludeTurns": true}, nil)
	if got, want := turnIDs(turnsOf(t, s, fork.ID)), first+":completed"; got != want {
		t.Fatalf("Codex shows spool's whole fork, made before the turn %s, as %s, want %s", later, got, want)
	}
	if spoolBase == nil || codexBase == nil || *spoolBase != *codexBase {
		t.Fatalf("whole fork after a rename: spool's history_base %+v, Codex's %+v", spoolBase, codexBase)
	}
}

// TestForkReadAfterCodexRevertsItsBase: Codex reverts a thread whatever
// reference forks continue it past the cut (spool refuses to), and those
// forks go on naming the thread's first file, which spool cannot read them
// through yet (docs/SCHEMA.md, "Not covered"; TestPending). Here a whole
// fork of a two-turn thread after Codex reverted its second turn: Codex's
// segment meta (its base instructions, tens of KiB) makes the reverted
// history longer than the fork's cut, so spool's old read streamed the
// reverted history up to the cut, ending inside the segment's meta: a line
// cut in the middle, served as part of the fork. A read now fails with
// ErrBrokenChain (409 broken_chain) instead; every line it gives is whole.
func TestForkReadAfterCodexRevertsItsBase(t *testing.T) {
	home := newHome(t)
	start := mockedStarter(t, home)
	s := start()
	var th threadAnswer
	call(t, s, "thread/start", map[string]any{"cwd": "/tmp"}, &th)
	id := th.Thread.ID
	runTurn(t, s, id, "first")
	second := runTurn(t, s, id, "second")
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	index := filepath.Join(t.TempDir(), "index.db")
	m, err := manager.Open(t.Context(), manager.Options{Root: home, IndexPath: index})
	if err != nil {
		t.Fatal(err)
	}
	fork, err := m.Fork(t.Context(), id, manager.ForkOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}

	s = start()
	call(t, s, "thread/resume", map[string]any{"threadId": id, "excludeTurns": true}, nil)
	call(t, s, "thread/revert", map[string]any{"threadId": id, "beforeTurnId": second}, nil)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	m, err = manager.Open(t.Context(), manager.Options{Root: home, IndexPath: index})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	rc, err := m.ReadFrom(t.Context(), fork.ID, -1)
	if err == nil {
		data, rerr := io.ReadAll(rc)
		rc.Close()
		err = rerr
		for i, line := range bytes.Split(bytes.TrimSuffix(data, []byte("\n")), []byte("\n")) {
			if !json.Valid(line) {
				t.Fatalf("spool reads the fork with line %d cut in the middle: %.120s…", i, line)
			}
		}
	}
	if err != nil && !errors.Is(err, manager.ErrBrokenChain) {
		t.Fatalf("reading the fork after Codex reverted its base: %v, want whole lines or ErrBrokenChain", err)
	}
}

// TestSpoolRenameTrimsAsCodex: Codex's thread/name/set keeps a name without
// its surrounding white space (Unicode white space: a no-break space too),
// and shows it so; spool's rename of the same text names its thread as
// Codex names its own, in spool's row and in what Codex shows (from its
// cache, which spool's rename updates). Before, spool kept the white space,
// and Codex showed "  spaced\u00a0name\n" where its own rename showed
// "spaced\u00a0name".
func TestSpoolRenameTrimsAsCodex(t *testing.T) {
	const typed = "  spaced\u00a0name\n\u00a0"
	home := newHome(t)
	bySpool := newSpoolThread(t, rollout.HistoryPaginated, 1, 230)
	bySpool.write(t, home)
	byCodex := newSpoolThread(t, rollout.HistoryPaginated, 1, 231)
	byCodex.write(t, home)
	s := startCodex(t, home)
	call(t, s, "thread/resume", map[string]any{"threadId": byCodex.ID, "excludeTurns": true}, nil)
	call(t, s, "thread/name/set", map[string]any{"threadId": byCodex.ID, "name": typed}, nil)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	withManager(t, home, func(m *manager.Manager) {
		th, err := m.Rename(t.Context(), bySpool.ID, typed)
		if err != nil {
			t.Fatal(err)
		}
		codexOwn, err := m.Get(t.Context(), byCodex.ID)
		if err != nil {
			t.Fatal(err)
		}
		if th.Name != codexOwn.Name {
			t.Fatalf("spool names its thread %q, Codex named the same text %q", th.Name, codexOwn.Name)
		}
	})

	s = startCodex(t, home)
	name := func(id string) string {
		t.Helper()
		var read threadAnswer
		call(t, s, "thread/read", map[string]any{"threadId": id}, &read)
		if read.Thread.Name == nil {
			t.Fatalf("Codex reads %s without a name", id)
		}
		return *read.Thread.Name
	}
	if got, want := name(bySpool.ID), name(byCodex.ID); got != want {
		t.Fatalf("Codex shows spool's rename as %q, its own as %q", got, want)
	}
}

// TestSpoolForkKeepsParentName: Codex's thread/fork names the fork as its
// parent is named at the fork (a line in session_index.jsonl and its
// cache, no line in the rollout; a whole fork or one through a turn
// alike), and a fork of an unnamed thread has no name. spool's fork
// without a name of its own is named as Codex names its own fork of the
// same parent. Before, spool's fork had no name. (Codex does not show it:
// spool names only threads Codex's cache holds, docs/CODEX.md.)
func TestSpoolForkKeepsParentName(t *testing.T) {
	home := newHome(t)
	named := newSpoolThread(t, rollout.HistoryPaginated, 2, 232)
	named.write(t, home)
	unnamed := newSpoolThread(t, rollout.HistoryPaginated, 2, 233)
	unnamed.write(t, home)
	s := startCodex(t, home)
	for _, st := range []*spoolThread{named, unnamed} {
		call(t, s, "thread/resume", map[string]any{"threadId": st.ID, "excludeTurns": true}, nil)
	}
	call(t, s, "thread/name/set", map[string]any{"threadId": named.ID, "name": "parent name"}, nil)
	type fork struct {
		parent  *spoolThread
		options map[string]any // of thread/fork, besides the parent
		codex   string         // the name Codex gives its own fork, "" for none
	}
	forks := []fork{
		{parent: named, options: map[string]any{"lastTurnId": named.Turns[0].TurnID}},
		{parent: named, options: map[string]any{}},
		{parent: unnamed, options: map[string]any{"lastTurnId": unnamed.Turns[0].TurnID}},
	}
	for i, f := range forks {
		params := map[string]any{"threadId": f.parent.ID, "excludeTurns": true}
		for k, v := range f.options {
			params[k] = v
		}
		var own threadAnswer
		call(t, s, "thread/fork", params, &own)
		if own.Thread.Name != nil {
			forks[i].codex = *own.Thread.Name
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if forks[0].codex != "parent name" {
		t.Fatalf("Codex names its fork of a thread named %q %q", "parent name", forks[0].codex)
	}

	withManager(t, home, func(m *manager.Manager) {
		for _, f := range forks {
			var o manager.ForkOptions
			if through, ok := f.options["lastTurnId"].(string); ok {
				o.LastTurnID = through
			}
			th, err := m.Fork(t.Context(), f.parent.ID, o)
			if err != nil {
				t.Fatal(err)
			}
			if th.Name != f.codex {
				t.Errorf("spool names its fork of %s (%v) %q, Codex named its own %q", f.parent.ID, f.options, th.Name, f.codex)
			}
		}
	})
}

// TestNamesFromSessionIndexAsCodex: Codex 0.169 lists a legacy thread with
// the name of its last line in session_index.jsonl whose name is not
// blank, trimmed of white space (read at each thread/list, so a line
// appended while Codex runs shows at the next one), and ignores the file
// for a paginated thread (its name comes from Codex's cache alone). Lines
// an earlier Codex or spool wrote keep the white space they were given:
// spool read them as written and showed a name Codex does not, or no name
// where Codex shows the one before a blank line.
func TestNamesFromSessionIndexAsCodex(t *testing.T) {
	home := newHome(t)
	padded := newSpoolThread(t, rollout.HistoryLegacy, 1, 240)
	padded.write(t, home)
	blank := newSpoolThread(t, rollout.HistoryLegacy, 1, 241)
	blank.write(t, home)
	paginated := newSpoolThread(t, rollout.HistoryPaginated, 1, 242)
	paginated.write(t, home)
	late := newSpoolThread(t, rollout.HistoryLegacy, 1, 243)
	late.write(t, home)
	index := func(id, name string) {
		t.Helper()
		line, err := rollout.EncodeNameEntry(rollout.NameEntry{ID: id, ThreadName: name, UpdatedAt: "2026-11-20T10:00:00Z"})
		if err != nil {
			t.Fatal(err)
		}
		f, err := os.OpenFile(filepath.Join(home, rollout.SessionIndexFile), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if _, err := f.Write(line); err != nil {
			t.Fatal(err)
		}
	}
	index(padded.ID, "\u00a0 padded  name\t")
	index(blank.ID, "kept name")
	index(blank.ID, "  ")
	index(paginated.ID, "paginated name")

	s := startCodex(t, home)
	codexNames := func() map[string]string {
		t.Helper()
		var l listAnswer
		call(t, s, "thread/list", map[string]any{"limit": 100}, &l)
		names := map[string]string{}
		for _, th := range l.Data {
			if th.Name != nil {
				names[th.ID] = *th.Name
			}
		}
		return names
	}
	if got := codexNames()[late.ID]; got != "" {
		t.Fatalf("Codex names %s %q before any line names it", late.ID, got)
	}
	index(late.ID, " late name ")
	codex := codexNames()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{padded.ID: "padded  name", blank.ID: "kept name", paginated.ID: "", late.ID: "late name"}
	for id, name := range want {
		if codex[id] != name {
			t.Fatalf("Codex lists %s named %q, want %q", id, codex[id], name)
		}
	}

	withManager(t, home, func(m *manager.Manager) {
		for _, id := range []string{padded.ID, blank.ID, late.ID} {
			th, err := m.Get(t.Context(), id)
			if err != nil {
				t.Fatal(err)
			}
			if th.Name != codex[id] {
				t.Fatalf("spool names %s %q, Codex %q", id, th.Name, codex[id])
			}
		}
	})
}

// TestSpoolClearAndDeleteAsCodex: spool's clear of a name (a rename to
// "") and its delete take the thread's lines out of session_index.jsonl,
// as Codex's thread/delete does. Codex then lists a legacy thread spool
// cleared without a name, a paginated one too (from its cache, which the
// clear cleared), and the other threads as before; it goes on appending
// names to the rewritten file; and spool's index, and a rebuild of it,
// name every thread as Codex lists it. A legacy thread Codex renamed
// itself is listed without a name too (its rename also set the cache's
// title, which Codex shows when the file names the thread not; the clear
// sets it back). Before, the clear appended an empty name, which Codex
// skips: it listed the legacy thread with the name spool cleared. And the
// delete left the thread's lines in the file.
func TestSpoolClearAndDeleteAsCodex(t *testing.T) {
	home := newHome(t)
	legacy := newSpoolThread(t, rollout.HistoryLegacy, 1, 270)
	paginated := newSpoolThread(t, rollout.HistoryPaginated, 1, 271)
	deleted := newSpoolThread(t, rollout.HistoryLegacy, 1, 272)
	kept := newSpoolThread(t, rollout.HistoryLegacy, 1, 273)
	codexNamed := newSpoolThread(t, rollout.HistoryLegacy, 1, 274)
	for _, st := range []*spoolThread{legacy, paginated, deleted, kept, codexNamed} {
		st.write(t, home)
	}
	s := startCodex(t, home)
	call(t, s, "thread/resume", map[string]any{"threadId": codexNamed.ID, "excludeTurns": true}, nil)
	call(t, s, "thread/name/set", map[string]any{"threadId": codexNamed.ID, "name": "named by codex"}, nil)
	call(t, s, "thread/name/set", map[string]any{"threadId": deleted.ID, "name": "deleted by spool"}, nil)
	call(t, s, "thread/name/set", map[string]any{"threadId": kept.ID, "name": "kept"}, nil)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	withManager(t, home, func(m *manager.Manager) {
		for _, st := range []*spoolThread{legacy, paginated} {
			if _, err := m.Rename(t.Context(), st.ID, "cleared by spool"); err != nil {
				t.Fatal(err)
			}
			if _, err := m.Rename(t.Context(), st.ID, ""); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := m.Rename(t.Context(), codexNamed.ID, ""); err != nil {
			t.Fatal(err)
		}
		if err := m.Delete(t.Context(), deleted.ID); err != nil {
			t.Fatal(err)
		}
	})

	codexNames := func(s *Server) map[string]string {
		t.Helper()
		var l listAnswer
		call(t, s, "thread/list", map[string]any{"limit": 100}, &l)
		names := map[string]string{}
		for _, th := range l.Data {
			names[th.ID] = "<none>"
			if th.Name != nil {
				names[th.ID] = *th.Name
			}
		}
		return names
	}
	want := map[string]string{legacy.ID: "<none>", paginated.ID: "<none>", kept.ID: "kept", codexNamed.ID: "<none>"}
	s = startCodex(t, home)
	codex := codexNames(s)
	if len(codex) != len(want) {
		t.Fatalf("Codex lists %v, want %v", codex, want)
	}
	for id, name := range want {
		if codex[id] != name {
			t.Fatalf("Codex lists %s named %q after spool's clear, want %q (all: %v)", id, codex[id], name, codex)
		}
	}
	index := filepath.Join(home, rollout.SessionIndexFile)
	data, err := os.ReadFile(index)
	if err != nil {
		t.Fatal(err)
	}
	for _, st := range []*spoolThread{legacy, paginated, deleted, codexNamed} {
		if bytes.Contains(data, []byte(st.ID)) {
			t.Fatalf("session_index.jsonl after spool's clears and delete:\n%s\nwant no line of %s", data, st.ID)
		}
	}
	call(t, s, "thread/name/set", map[string]any{"threadId": legacy.ID, "name": "named again"}, nil)
	want[legacy.ID] = "named again"
	if got := codexNames(s)[legacy.ID]; got != "named again" {
		t.Fatalf("Codex names the thread %q after its rename in the rewritten file, want %q", got, "named again")
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	spoolNames := func(m *manager.Manager) {
		t.Helper()
		for id, name := range want {
			th, err := m.Get(t.Context(), id)
			if err != nil {
				t.Fatal(err)
			}
			if got := cmp.Or(th.Name, "<none>"); got != name {
				t.Fatalf("spool names %s %q, Codex %q", id, got, name)
			}
		}
	}
	withManager(t, home, spoolNames)
	rebuilt, err := manager.Open(t.Context(), manager.Options{Root: home, IndexPath: filepath.Join(t.TempDir(), "index.db")})
	if err != nil {
		t.Fatal(err)
	}
	defer rebuilt.Close()
	spoolNames(rebuilt)
}

//go:build compat

package compat

import (
	"fmt"
	"strings"
	"testing"

	"github.com/spoolhq/spool/manager"
)

// TestCodexShowsManagerThreads: threads made through spool's manager, the
// way the README and the API make them (a paginated start, turns appended
// with AppendTurn, a reference fork before the second prompt), are listed
// by Codex with their first prompt as preview and shown turn by turn with
// the turns spool wrote; the fork shows exactly the turns before the cut.
func TestCodexShowsManagerThreads(t *testing.T) {
	home := newHome(t)
	m, err := manager.Open(t.Context(), manager.Options{Root: home})
	if err != nil {
		t.Fatal(err)
	}
	th, err := m.Start(t.Context(), manager.StartOptions{Cwd: "/tmp", Source: "cli"})
	if err != nil {
		t.Fatal(err)
	}
	var turnIDs []string
	for i := range 3 {
		id := fmt.Sprintf("turn-%d", i)
		turnIDs = append(turnIDs, id)
		if _, err := m.AppendTurn(t.Context(), th.ID, manager.TurnOptions{TurnID: id, Prompt: fmt.Sprintf("prompt %d", i), Answer: fmt.Sprintf("answer %d", i)}); err != nil {
			t.Fatal(err)
		}
	}
	two := 2
	fork, err := m.Fork(t.Context(), th.ID, manager.ForkOptions{BeforeUserMessage: &two})
	if err != nil {
		t.Fatal(err)
	}
	if fork.BaseID != th.ID {
		t.Fatalf("fork base = %q, want a reference fork of %s", fork.BaseID, th.ID)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}

	s := startCodex(t, home)
	var list listAnswer
	call(t, s, "thread/list", map[string]any{"limit": 10}, &list)
	previews := map[string]string{}
	for _, d := range list.Data {
		previews[d.ID] = d.Preview
	}
	if previews[th.ID] != "prompt 0" {
		t.Fatalf("thread/list = %s, want %s with preview %q", mustJSON(list.Data), th.ID, "prompt 0")
	}
	want := func(n int) string {
		var parts []string
		for i := range n {
			parts = append(parts, fmt.Sprintf("%s:completed[user=prompt %d,agent=answer %d]", turnIDs[i], i, i))
		}
		return strings.Join(parts, " ")
	}
	// Codex serves turns of a paginated thread once it has loaded it.
	call(t, s, "thread/resume", map[string]any{"threadId": th.ID, "excludeTurns": true}, nil)
	if got := describe(turnsOf(t, s, th.ID)); got != want(3) {
		t.Fatalf("Codex turns of the thread:\n%s\nwant\n%s", got, want(3))
	}
	call(t, s, "thread/resume", map[string]any{"threadId": fork.ID, "excludeTurns": true}, nil)
	if got := describe(turnsOf(t, s, fork.ID)); got != want(2) {
		t.Fatalf("Codex turns of the fork before the third prompt:\n%s\nwant\n%s", got, want(2))
	}
}

// TestCodexResumesManagerThreadsInAUsedHome: a thread spool starts with no
// model provider in a home Codex has used before (its cache,
// state_5.sqlite, exists) is resumed by Codex. Codex fills in a missing
// provider only while it builds that cache the first time; a thread it
// finds later with none it refuses to resume ("model provider “”, which is
// no longer configured"), so spool writes Codex's default provider.
func TestCodexResumesManagerThreadsInAUsedHome(t *testing.T) {
	home := newHome(t)
	if err := startCodex(t, home).Close(); err != nil {
		t.Fatal(err)
	}
	var id string
	withManager(t, home, func(m *manager.Manager) {
		th, err := m.Start(t.Context(), manager.StartOptions{Cwd: "/tmp", Source: "cli"})
		if err == nil {
			_, err = m.AppendTurn(t.Context(), th.ID, manager.TurnOptions{Prompt: "prompt 0", Answer: "answer 0"})
		}
		if err != nil {
			t.Fatal(err)
		}
		id = th.ID
	})
	s := startCodex(t, home)
	call(t, s, "thread/resume", map[string]any{"threadId": id, "excludeTurns": true}, nil)
	if got := turnsOf(t, s, id); len(got) != 1 {
		t.Fatalf("Codex turns of the resumed thread: %s, want one", describe(got))
	}
}

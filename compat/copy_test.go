//go:build compat

package compat

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spoolhq/spool/manager"
)

// TestCodexReadsMaterialisedHistories: a copy fork of a reference fork of
// a reference fork (spool materialises the chain into one paginated file,
// ordinals renumbered) and a reference fork made self-contained by a purge
// of its base are listed by Codex, resumed, shown with the turns of the
// chain, and forked by Codex with the same turns.
func TestCodexReadsMaterialisedHistories(t *testing.T) {
	home := newHome(t)
	ctx := t.Context()
	m, err := manager.Open(ctx, manager.Options{Root: home})
	if err != nil {
		t.Fatal(err)
	}
	// Keyed: their metas state spool_creation_key, which Codex must read
	// past as it reads past spool_fork_point.
	th, err := m.Start(ctx, manager.StartOptions{Cwd: "/tmp", Source: "cli", IdempotencyKey: "start-k"})
	if err != nil {
		t.Fatal(err)
	}
	turn := func(id, tid string, i int) {
		t.Helper()
		if _, err := m.AppendTurn(ctx, id, manager.TurnOptions{TurnID: tid, Prompt: fmt.Sprintf("prompt %d", i), Answer: fmt.Sprintf("answer %d", i)}); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 3 {
		turn(th.ID, fmt.Sprintf("turn-%d", i), i)
	}
	two := 2
	f1, err := m.Fork(ctx, th.ID, manager.ForkOptions{BeforeUserMessage: &two, IdempotencyKey: "f1-k"})
	if err != nil {
		t.Fatal(err)
	}
	turn(f1.ID, "turn-f1", 9)
	f2, err := m.Fork(ctx, f1.ID, manager.ForkOptions{IdempotencyKey: "f2-k"})
	if err != nil {
		t.Fatal(err)
	}
	turn(f2.ID, "turn-f2", 10)
	c, err := m.Fork(ctx, f2.ID, manager.ForkOptions{Mode: manager.ForkCopy, IdempotencyKey: "c-k"})
	if err != nil {
		t.Fatal(err)
	}
	if f1.BaseID != th.ID || f2.BaseID != f1.ID || c.BaseID != "" {
		t.Fatalf("bases: f1 %q, f2 %q, copy %q; want %s, %s, none", f1.BaseID, f2.BaseID, c.BaseID, th.ID, f1.ID)
	}
	if err := m.Purge(ctx, f1.ID); err != nil {
		t.Fatal(err)
	}
	// The purge rewrote f2 self-contained: its meta still states its key.
	for id, key := range map[string]string{f2.ID: "f2-k", c.ID: "c-k"} {
		row, err := m.Get(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if k := firstMeta(t, filepath.Join(home, filepath.FromSlash(row.RolloutPath))).CreationKey; k == nil || k.Key != key {
			t.Fatalf("%s states key %+v, want %q", id, k, key)
		}
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}

	want := "turn-0:completed[user=prompt 0,agent=answer 0] turn-1:completed[user=prompt 1,agent=answer 1] " +
		"turn-f1:completed[user=prompt 9,agent=answer 9] turn-f2:completed[user=prompt 10,agent=answer 10]"
	s := startCodex(t, home)
	var list listAnswer
	call(t, s, "thread/list", map[string]any{"limit": 20}, &list)
	previews := map[string]string{}
	for _, d := range list.Data {
		previews[d.ID] = d.Preview
	}
	for name, id := range map[string]string{"copy": c.ID, "purged base's fork": f2.ID} {
		if previews[id] != "prompt 0" {
			t.Fatalf("thread/list = %s, want the %s %s with preview %q", mustJSON(list.Data), name, id, "prompt 0")
		}
		var read threadAnswer
		call(t, s, "thread/read", map[string]any{"threadId": id}, &read)
		if read.Thread.HistoryMode != "paginated" {
			t.Fatalf("%s: thread/read historyMode %q, want paginated", name, read.Thread.HistoryMode)
		}
		call(t, s, "thread/resume", map[string]any{"threadId": id, "excludeTurns": true}, nil)
		if got := describe(turnsOf(t, s, id)); got != want {
			t.Fatalf("Codex turns of the %s:\n%s\nwant\n%s", name, got, want)
		}
		var fork threadAnswer
		call(t, s, "thread/fork", map[string]any{"threadId": id, "excludeTurns": true}, &fork)
		if got := describe(turnsOf(t, s, fork.Thread.ID)); got != want {
			t.Fatalf("Codex turns of its fork of the %s:\n%s\nwant\n%s", name, got, want)
		}
		// Codex writes its fork's meta afresh: spool's member of the
		// parent's meta (its fork point and ancestry) is not carried over.
		if fp := firstMeta(t, fork.Thread.Path).ForkPoint; fp != nil {
			t.Fatalf("Codex's fork of the %s carries spool_fork_point %+v", name, fp)
		}
		if data, err := os.ReadFile(fork.Thread.Path); err != nil || bytes.Contains(data, []byte("spool_creation_key")) {
			t.Fatalf("Codex's fork of the %s carries spool_creation_key (or is unreadable: %v)", name, err)
		}
		if strings.Contains(mustJSON(read.Thread), "history_base") {
			t.Fatalf("%s: read answer mentions a history_base", name)
		}
	}
}

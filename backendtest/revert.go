package backendtest

import (
	"bytes"
	"errors"
	"fmt"
	"testing"

	"github.com/spoolhq/spool/manager"
	"github.com/spoolhq/spool/rollout"
)

// reverter returns b's manager.Reverter; every backend offers one.
func reverter(t *testing.T, b manager.Backend) manager.Reverter {
	t.Helper()
	r := implements[manager.Reverter](t, b)
	return r
}

// ordinalAt returns the ordinal the line at offset of h carries.
func ordinalAt(t *testing.T, h []byte, offset int64) int64 {
	t.Helper()
	line, _, _ := bytes.Cut(h[offset:], []byte{'\n'})
	n, ok, err := rollout.LineOrdinal(line)
	if err != nil || !ok {
		t.Fatalf("no ordinal at %d: %v", offset, err)
	}
	return n
}

// testRevert cuts a paginated thread back before a turn as Codex's
// thread/revert does: the thread then reads as its history before the
// turn and a new session_meta naming the thread itself and the cut (the
// position and the ordinal there); appends go on from the cut, numbered on
// from it; forks follow the new history; a second revert goes further
// back; a turn reverted away is not found; the thread lays out as a
// self-contained history and can be deleted.
func testRevert(t *testing.T, b manager.Backend) {
	ctx := t.Context()
	rv := reverter(t, b)
	th := threeTurns(t, b)
	if th.HistoryMode != string(rollout.HistoryPaginated) {
		t.Fatalf("a thread starts %q, want paginated as Codex 0.169 starts threads", th.HistoryMode)
	}
	// A name given after the cut stays: a revert cuts turns, not the name.
	th, err := b.Rename(ctx, th.ID, "kept")
	if err != nil {
		t.Fatal(err)
	}
	before, data := historyTurns(t, b, th.ID)
	cut := before.Turns[1].Offset
	wantOrdinal := ordinalAt(t, data, cut)

	reverted, err := rv.Revert(ctx, th.ID, manager.RevertOptions{BeforeTurnID: "turn-b"})
	if err != nil {
		t.Fatal(err)
	}
	if reverted.UserMessageCount != 1 || reverted.BaseID != th.ID || reverted.BaseSize != cut || reverted.Name != "kept" {
		t.Fatalf("after revert: %d messages, base %s at %d, name %q; want 1, itself at %d, kept", reverted.UserMessageCount, reverted.BaseID, reverted.BaseSize, reverted.Name, cut)
	}
	h, got := historyTurns(t, b, th.ID)
	if !bytes.Equal(got[:cut], data[:cut]) || int64(len(got)) != cut+reverted.IndexedSize {
		t.Fatalf("history after revert (%d bytes) is not the history to the cut at %d and %d own bytes", len(got), cut, reverted.IndexedSize)
	}
	seg := got[cut:]
	meta, err := rollout.ParseSessionMeta(seg)
	if err != nil {
		t.Fatal(err)
	}
	if hb := meta.HistoryBase; meta.ID != th.ID || hb == nil || hb.ThreadID != th.ID || hb.EndByteOffset != cut || hb.EndOrdinalExclusive != wantOrdinal {
		t.Fatalf("new meta %+v base %+v, want the thread's own id, ending at %d (ordinal %d)", meta, meta.HistoryBase, cut, wantOrdinal)
	}
	if n := ordinalAt(t, got, cut); n != wantOrdinal {
		t.Fatalf("the new meta has ordinal %d, want %d", n, wantOrdinal)
	}
	if len(h.Turns) != 1 || h.Turns[0].ID != "turn-a" {
		t.Fatalf("turns after revert = %+v, want turn-a", h.Turns)
	}

	res, err := b.(manager.TurnWriter).AppendTurn(ctx, th.ID, manager.TurnOptions{TurnID: "turn-x", Prompt: "prompt turn-x", Answer: "answer"})
	if err != nil {
		t.Fatal(err)
	}
	if res.Offsets[0] != cut+int64(len(seg)) {
		t.Fatalf("append after revert at %d, want %d", res.Offsets[0], cut+int64(len(seg)))
	}
	h, got = historyTurns(t, b, th.ID)
	if len(h.Turns) != 2 || h.Turns[1].ID != "turn-x" || res.Thread.UserMessageCount != 2 {
		t.Fatalf("turns after the append = %+v (%d messages), want turn-a, turn-x", h.Turns, res.Thread.UserMessageCount)
	}
	if n := ordinalAt(t, got, res.Offsets[0]); n != wantOrdinal+1 {
		t.Fatalf("first appended line has ordinal %d, want %d", n, wantOrdinal+1)
	}

	// Forks follow the new history, cut in what was appended after the
	// revert or in what it kept.
	for _, o := range []manager.ForkOptions{{LastTurnID: "turn-x"}, {BeforeTurnID: "turn-x"}, {LastTurnID: "turn-a"}, {BeforeTurnID: "turn-a"}} {
		child, err := b.Fork(ctx, th.ID, o)
		if err != nil {
			t.Fatalf("fork %+v: %v", o, err)
		}
		childData := history(t, b, child.ID)
		if int64(len(childData)) != child.ForkOffset+child.IndexedSize || !bytes.Equal(childData[:child.ForkOffset], got[:child.ForkOffset]) {
			t.Fatalf("fork %+v of the reverted thread (%d bytes of history) does not read as its history to %d, then its own %d bytes", o, len(childData), child.ForkOffset, child.IndexedSize)
		}
		if err := b.Delete(ctx, child.ID); err != nil {
			t.Fatal(err)
		}
	}

	// It lays out as a self-contained history (export, purge).
	if _, _, _, err := manager.SelfContainedMetas(ctx, b, res.Thread); err != nil {
		t.Fatal(err)
	}

	// A second revert, further back, goes back into what the first kept.
	again, err := rv.Revert(ctx, th.ID, manager.RevertOptions{BeforeUserMessage: new(int)})
	if err != nil {
		t.Fatal(err)
	}
	if again.UserMessageCount != 0 || again.BaseSize != before.Turns[0].Offset || again.BaseID != th.ID {
		t.Fatalf("second revert: %d messages, base %s at %d; want 0, itself at %d", again.UserMessageCount, again.BaseID, again.BaseSize, before.Turns[0].Offset)
	}
	if got := history(t, b, th.ID); !bytes.Equal(got[:again.BaseSize], data[:again.BaseSize]) {
		t.Fatal("the history after the second revert does not start with the first turn's prefix")
	}
	if _, err := rv.Revert(ctx, th.ID, manager.RevertOptions{BeforeTurnID: "turn-c"}); !errors.Is(err, manager.ErrNotFound) {
		t.Fatalf("revert before a turn reverted away: %v, want ErrNotFound", err)
	}
	if err := b.Delete(ctx, th.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Get(ctx, th.ID); !errors.Is(err, manager.ErrNotFound) {
		t.Fatalf("Get after delete: %v, want ErrNotFound", err)
	}
}

// testRevertRefusesForksPastTheCut: a revert that would cut history a
// reference fork continues is refused with a *ReferencedError naming it;
// a fork cut before the revert point does not stand in the way and reads
// the same after it.
func testRevertRefusesForksPastTheCut(t *testing.T, b manager.Backend) {
	ctx := t.Context()
	rv := reverter(t, b)
	th := threeTurns(t, b)
	early, err := b.Fork(ctx, th.ID, manager.ForkOptions{LastTurnID: "turn-a"})
	if err != nil {
		t.Fatal(err)
	}
	earlyData := history(t, b, early.ID)
	late, err := b.Fork(ctx, th.ID, manager.ForkOptions{LastTurnID: "turn-c"})
	if err != nil {
		t.Fatal(err)
	}
	var refs *manager.ReferencedError
	if _, err := rv.Revert(ctx, th.ID, manager.RevertOptions{BeforeTurnID: "turn-b"}); !errors.As(err, &refs) || len(refs.Forks) != 1 || refs.Forks[0] != late.ID {
		t.Fatalf("revert under a fork through turn-c: %v, want a *ReferencedError naming %s", err, late.ID)
	}
	if err := b.Delete(ctx, late.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := rv.Revert(ctx, th.ID, manager.RevertOptions{BeforeTurnID: "turn-b"}); err != nil {
		t.Fatalf("revert with only a fork before the cut: %v", err)
	}
	if got := history(t, b, early.ID); !bytes.Equal(got, earlyData) {
		t.Fatalf("the fork before the cut reads differently after the revert")
	}
	var refd *manager.ReferencedError
	if err := b.Delete(ctx, th.ID); !errors.As(err, &refd) || len(refd.Forks) != 1 || refd.Forks[0] != early.ID {
		t.Fatalf("delete of the reverted thread under a fork: %v, want a *ReferencedError naming %s", err, early.ID)
	}
}

// testRevertRefuses: a legacy thread, no cut or two, a user message out of
// range, an unknown turn, a cut in the history a reference fork inherits
// and an archived thread are refused, and the thread is unchanged.
func testRevertRefuses(t *testing.T, b manager.Backend) {
	ctx := t.Context()
	rv := reverter(t, b)
	legacy, err := b.Start(ctx, manager.StartOptions{Cwd: "/work", Source: "cli", HistoryMode: string(rollout.HistoryLegacy)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.(manager.TurnWriter).AppendTurn(ctx, legacy.ID, manager.TurnOptions{TurnID: "turn-a", Prompt: "p", Answer: "a"}); err != nil {
		t.Fatal(err)
	}
	paginated := threeTurns(t, b)
	fork, err := b.Fork(ctx, paginated.ID, manager.ForkOptions{LastTurnID: "turn-b"})
	if err != nil {
		t.Fatal(err)
	}
	archived := threeTurns(t, b)
	if _, err := b.Archive(ctx, archived.ID); err != nil {
		t.Fatal(err)
	}
	one, three := 1, 3
	tests := []struct {
		name string
		id   string
		o    manager.RevertOptions
		want error
	}{
		{"legacy", legacy.ID, manager.RevertOptions{BeforeTurnID: "turn-a"}, manager.ErrInvalidArgument},
		{"no cut", paginated.ID, manager.RevertOptions{}, manager.ErrInvalidArgument},
		{"two cuts", paginated.ID, manager.RevertOptions{BeforeTurnID: "turn-b", BeforeUserMessage: &one}, manager.ErrInvalidArgument},
		{"out of range", paginated.ID, manager.RevertOptions{BeforeUserMessage: &three}, manager.ErrOutOfRange},
		{"unknown turn", paginated.ID, manager.RevertOptions{BeforeTurnID: "turn-z"}, manager.ErrNotFound},
		{"inherited cut", fork.ID, manager.RevertOptions{BeforeTurnID: "turn-a"}, manager.ErrInvalidArgument},
		{"archived", archived.ID, manager.RevertOptions{BeforeTurnID: "turn-b"}, manager.ErrArchived},
		{"unknown thread", "0195e7a0-0000-7000-8000-000000000000", manager.RevertOptions{BeforeTurnID: "turn-a"}, manager.ErrNotFound},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := rv.Revert(t.Context(), tc.id, tc.o); !errors.Is(err, tc.want) {
				t.Fatalf("Revert = %v, want %v", err, tc.want)
			}
		})
	}
	var oor *manager.OutOfRangeError
	if _, err := rv.Revert(ctx, paginated.ID, manager.RevertOptions{BeforeUserMessage: &three}); !errors.As(err, &oor) || oor.Count != 3 || oor.Requested != 3 {
		t.Fatalf("revert past the end: %v, want an *OutOfRangeError with count 3", err)
	}
	for _, th := range []manager.Thread{paginated, fork} {
		got, err := b.Get(ctx, th.ID)
		if err != nil || got.BaseID != th.BaseID || got.BaseSize != th.BaseSize || got.IndexedSize != th.IndexedSize || got.UserMessageCount != th.UserMessageCount {
			t.Fatalf("%s after refused reverts: %+v, %v; want it unchanged", th.ID, got, err)
		}
	}
}

// testRevertReferenceFork reverts a reference fork at a cut in its own
// part: it then reads its base's turns it inherits and its own before the
// cut (turn-a, turn-b, turn-x), its user messages where they were, each
// turn readable; a fork of it reads through it; its base cannot be
// deleted (ErrReferenced), and a purge of the base leaves it
// self-contained, saying what it said.
func testRevertReferenceFork(t *testing.T, b manager.Backend) {
	ctx := t.Context()
	rv := reverter(t, b)
	p := implements[manager.Purger](t, b)
	tw := b.(manager.TurnWriter) // threeTurns checked it
	base := threeTurns(t, b)
	fork, err := b.Fork(ctx, base.ID, manager.ForkOptions{LastTurnID: "turn-b"})
	if err != nil {
		t.Fatal(err)
	}
	if fork.BaseID != base.ID {
		t.Fatalf("fork of a paginated thread: base %q, want a reference fork of %s", fork.BaseID, base.ID)
	}
	for _, turn := range []string{"turn-x", "turn-y"} {
		if _, err := tw.AppendTurn(ctx, fork.ID, manager.TurnOptions{TurnID: turn, Prompt: "prompt " + turn, Answer: "answer " + turn}); err != nil {
			t.Fatal(err)
		}
	}
	before, err := b.UserMessages(ctx, fork.ID)
	if err != nil || len(before) != 4 {
		t.Fatalf("user messages before the revert: %d (%v), want 4", len(before), err)
	}
	reverted, err := rv.Revert(ctx, fork.ID, manager.RevertOptions{BeforeTurnID: "turn-y"})
	if err != nil {
		t.Fatal(err)
	}
	if reverted.UserMessageCount != 3 {
		t.Fatalf("after the revert: %d user messages, want 3", reverted.UserMessageCount)
	}
	h, data := historyTurns(t, b, fork.ID)
	var ids []string
	for _, turn := range h.Turns {
		ids = append(ids, turn.ID)
	}
	if fmt.Sprint(ids) != "[turn-a turn-b turn-x]" {
		t.Fatalf("turns after the revert = %v, want [turn-a turn-b turn-x]", ids)
	}
	msgs, err := b.UserMessages(ctx, fork.ID)
	if err != nil || len(msgs) != 3 {
		t.Fatalf("user messages after the revert: %d (%v), want 3", len(msgs), err)
	}
	for k, msg := range msgs {
		if was := before[k]; msg.Ordinal != k || msg.Offset != was.Offset || msg.Preview != was.Preview {
			t.Fatalf("user message %d after the revert: %+v, want it as it was, %+v", k, msg, was)
		}
		end := int64(len(data))
		if k+1 < len(msgs) {
			end = msgs[k+1].Offset
		}
		rc, err := b.ReadTurn(ctx, fork.ID, k)
		if turn := ReadAll(t, rc, err); !bytes.Equal(turn, data[msg.Offset:end]) {
			t.Fatalf("ReadTurn(%d) after the revert = %q, want %q", k, turn, data[msg.Offset:end])
		}
	}

	child, err := b.Fork(ctx, fork.ID, manager.ForkOptions{LastTurnID: "turn-x"})
	if err != nil {
		t.Fatal(err)
	}
	if childData := history(t, b, child.ID); child.UserMessageCount != 3 || !bytes.Equal(childData[:child.ForkOffset], data[:child.ForkOffset]) {
		t.Fatalf("fork of the reverted fork: %d user messages, does not read as its history to %d; want 3, and it", child.UserMessageCount, child.ForkOffset)
	}
	if err := b.Delete(ctx, child.ID); err != nil {
		t.Fatal(err)
	}

	said := Said(t, b, fork.ID)
	if err := b.Delete(ctx, base.ID); !errors.Is(err, manager.ErrReferenced) {
		t.Fatalf("delete of the base of a reverted fork: %v, want ErrReferenced", err)
	}
	if err := p.Purge(ctx, base.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Get(ctx, base.ID); !errors.Is(err, manager.ErrNotFound) {
		t.Fatalf("the purged base: %v, want ErrNotFound", err)
	}
	got, err := b.Get(ctx, fork.ID)
	if err != nil || got.UserMessageCount != 3 || got.BaseID != "" {
		t.Fatalf("the reverted fork after the purge of its base: %+v (%v), want 3 user messages, no base", got, err)
	}
	if after := Said(t, b, fork.ID); fmt.Sprint(after) != fmt.Sprint(said) {
		t.Fatalf("the reverted fork says %d items after the purge of its base, %d before", len(after), len(said))
	}
	// Led by its first file's meta, which named the base, now without
	// history_base; no line refers to the purged base's bytes.
	for i, line := range bytes.SplitAfter(history(t, b, fork.ID), []byte{'\n'}) {
		m, err := rollout.ParseSessionMeta(bytes.TrimSuffix(line, []byte{'\n'}))
		switch {
		case i == 0 && (err != nil || m.ID != fork.ID || m.HistoryBase != nil):
			t.Fatalf("the reverted fork after the purge of its base starts with %s, want its own meta without history_base", line)
		case err == nil && m.HistoryBase != nil && m.HistoryBase.ThreadID != fork.ID:
			t.Fatalf("the reverted fork after the purge of its base refers to %s: %s", m.HistoryBase.ThreadID, line)
		}
	}
}

// testForkSeesNoTurnOfItsRevertedBase: a reference fork cut before turn-b
// of its base; the base is reverted at that cut, gains turn-n and turn-m,
// and is reverted before turn-m. turn-n lies past the fork's cut, in the
// base's history since the fork: the fork does not have it.
func testForkSeesNoTurnOfItsRevertedBase(t *testing.T, b manager.Backend) {
	ctx := t.Context()
	rv := reverter(t, b)
	tr := implements[manager.TurnReader](t, b)
	base := threeTurns(t, b)
	fork, err := b.Fork(ctx, base.ID, manager.ForkOptions{BeforeTurnID: "turn-b"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rv.Revert(ctx, base.ID, manager.RevertOptions{BeforeTurnID: "turn-b"}); err != nil {
		t.Fatal(err)
	}
	for _, turn := range []string{"turn-n", "turn-m"} {
		if _, err := b.(manager.TurnWriter).AppendTurn(ctx, base.ID, manager.TurnOptions{TurnID: turn, Prompt: "prompt " + turn, Answer: "answer"}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := rv.Revert(ctx, base.ID, manager.RevertOptions{BeforeTurnID: "turn-m"}); err != nil {
		t.Fatal(err)
	}
	rc, _, err := tr.ReadTurnByID(ctx, base.ID, "turn-n")
	if err != nil {
		t.Fatalf("the base's turn-n: %v", err)
	}
	rc.Close()
	if rc, span, err := tr.ReadTurnByID(ctx, fork.ID, "turn-n"); !errors.Is(err, manager.ErrNotFound) {
		if err == nil {
			rc.Close()
		}
		t.Fatalf("the fork's turn-n: %+v, %v; want ErrNotFound", span, err)
	}
	rc, _, err = tr.ReadTurnByID(ctx, fork.ID, "turn-a")
	if err != nil {
		t.Fatalf("the fork's turn-a: %v", err)
	}
	rc.Close()
}

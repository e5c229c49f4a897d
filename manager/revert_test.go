package manager

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/spoolhq/spool/indexer"
	"github.com/spoolhq/spool/internal/indextest"
	"github.com/spoolhq/spool/rollout"
	"github.com/spoolhq/spool/rolloutfs"
	"github.com/spoolhq/spool/rolloutfs/faultfs"
	"github.com/spoolhq/spool/store"
)

// TestRevert cuts a thread back before a turn as Codex's thread/revert
// does: a new segment file of the same thread whose history_base points
// into the old one, which is left as it was. The thread reads as its
// history before the turn; appends land in the segment, numbered on from
// the cut; forks follow the new chain; archive and unarchive move every
// file and delete removes them.
func TestRevert(t *testing.T) {
	ctx := t.Context()
	m := openTest(t)
	th := threeTurns(t, m, "paginated")
	before, data := historyTurns(t, m, th.ID)
	first := readFile(t, m, th)

	reverted, err := m.Revert(ctx, th.ID, RevertOptions{BeforeTurnID: "turn-b"})
	if err != nil {
		t.Fatal(err)
	}
	cut := before.Turns[1].Offset
	if _, seg, _, err := rollout.ParseRolloutName(path.Base(reverted.RolloutPath)); err != nil || seg == "" {
		t.Fatalf("reverted thread's file %s is not a segment name (%v)", reverted.RolloutPath, err)
	}
	if reverted.UserMessageCount != 1 || reverted.BaseID != th.ID || reverted.BaseSize != cut {
		t.Fatalf("after revert: %d messages, base %s at %d; want 1, itself at %d", reverted.UserMessageCount, reverted.BaseID, reverted.BaseSize, cut)
	}
	if got := readFile(t, m, th); !bytes.Equal(got, first) {
		t.Fatalf("the first file changed")
	}
	seg := readFile(t, m, reverted)
	meta, err := rollout.ParseSessionMeta(seg)
	if err != nil {
		t.Fatal(err)
	}
	wantOrdinal := ordinalAtOffset(t, data, cut)
	if hb := meta.HistoryBase; meta.ID != th.ID || hb == nil || hb.ThreadID != th.ID || hb.EndByteOffset != cut || hb.EndOrdinalExclusive != wantOrdinal {
		t.Fatalf("segment meta %+v base %+v, want the thread's own id, ending at %d (ordinal %d)", meta, meta.HistoryBase, cut, wantOrdinal)
	}
	h, got := historyTurns(t, m, th.ID)
	if want := append(append([]byte(nil), data[:cut]...), seg...); !bytes.Equal(got, want) {
		t.Fatalf("history after revert is not the first file to the cut and the segment")
	}
	if len(h.Turns) != 1 || h.Turns[0].ID != "turn-a" {
		t.Fatalf("turns after revert = %+v, want turn-a", h.Turns)
	}

	res, err := m.AppendTurn(ctx, th.ID, TurnOptions{TurnID: "turn-x", Prompt: "prompt turn-x", Answer: "answer"})
	if err != nil {
		t.Fatal(err)
	}
	if res.Offsets[0] != cut+int64(len(seg)) || res.Thread.RolloutPath != reverted.RolloutPath {
		t.Fatalf("append after revert at %d in %s, want %d in the segment", res.Offsets[0], res.Thread.RolloutPath, cut+int64(len(seg)))
	}
	h, got = historyTurns(t, m, th.ID)
	if len(h.Turns) != 2 || h.Turns[1].ID != "turn-x" || res.Thread.UserMessageCount != 2 {
		t.Fatalf("turns after the append = %+v (%d messages), want turn-a, turn-x", h.Turns, res.Thread.UserMessageCount)
	}
	if n := ordinalAtOffset(t, got, res.Offsets[0]); n != wantOrdinal+1 {
		t.Fatalf("first appended line has ordinal %d, want %d", n, wantOrdinal+1)
	}

	// Forks follow the new chain, cut in the segment or in the first
	// file, and a rebuilt index reads them the same (Verify is clean).
	for _, o := range []ForkOptions{{LastTurnID: "turn-x"}, {BeforeTurnID: "turn-x"}, {LastTurnID: "turn-a"}, {BeforeTurnID: "turn-a"}} {
		child, err := m.Fork(ctx, th.ID, o)
		if err != nil {
			t.Fatalf("fork %+v: %v", o, err)
		}
		// Codex names the file holding the cut: the segment by its uuid,
		// the first file by the thread's id.
		wantRef := th.ID
		if child.ForkOffset > reverted.BaseSize {
			_, wantRef, _, _ = rollout.ParseRolloutName(path.Base(reverted.RolloutPath))
		}
		if cm, err := rollout.ParseSessionMeta(readFile(t, m, child)); err != nil || cm.HistoryBase == nil || cm.HistoryBase.ThreadID != wantRef {
			t.Fatalf("fork %+v: history_base %+v (%v), want it to name %s", o, cm.HistoryBase, err, wantRef)
		}
		_, childData := historyTurns(t, m, child.ID)
		if int64(len(childData)) != child.ForkOffset+child.IndexedSize || !bytes.Equal(childData[:child.ForkOffset], got[:child.ForkOffset]) {
			t.Fatalf("fork %+v of the reverted thread (%d bytes of history) does not read as its history to %d, then its own %d bytes", o, len(childData), child.ForkOffset, child.IndexedSize)
		}
		rep, err := indexer.Verify(ctx, m.store, m.fsys)
		if err != nil || len(rep.Drifts) != 0 || len(rep.Problems) != 0 {
			t.Fatalf("Verify with fork %+v: %v, drifts %v, problems %v", o, err, rep.Drifts, rep.Problems)
		}
		if err := m.Delete(ctx, child.ID); err != nil {
			t.Fatal(err)
		}
	}

	// A second revert, further back, goes back into the first file.
	again, err := m.Revert(ctx, th.ID, RevertOptions{BeforeUserMessage: intp(0)})
	if err != nil {
		t.Fatal(err)
	}
	if again.UserMessageCount != 0 || again.BaseSize != before.Turns[0].Offset {
		t.Fatalf("second revert: %d messages, base at %d; want 0 at %d", again.UserMessageCount, again.BaseSize, before.Turns[0].Offset)
	}
	if _, err := m.Revert(ctx, th.ID, RevertOptions{BeforeTurnID: "turn-c"}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("revert before a turn reverted away: %v, want ErrNotFound", err)
	}

	// Archive and unarchive move every file of the thread; it reads the
	// same in the archive, and the index agrees with the files.
	_, want := historyTurns(t, m, th.ID)
	files := []string{th.RolloutPath, reverted.RolloutPath, again.RolloutPath}
	archived, err := m.Archive(ctx, th.ID)
	if err != nil {
		t.Fatal(err)
	}
	for _, rel := range files {
		if _, err := os.Stat(filepath.Join(m.Root(), rollout.ArchivedSessionsDir, path.Base(rel))); err != nil {
			t.Fatalf("%s after archive: %v", rel, err)
		}
	}
	if _, got := historyTurns(t, m, th.ID); !bytes.Equal(got, want) || !archived.Archived {
		t.Fatalf("the archived thread reads differently (archived %v)", archived.Archived)
	}
	rep, err := indexer.Verify(ctx, m.store, m.fsys)
	if err != nil || len(rep.Drifts) != 0 || len(rep.Problems) != 0 {
		t.Fatalf("Verify after archive: %v, drifts %v, problems %v", err, rep.Drifts, rep.Problems)
	}
	if _, err := m.Unarchive(ctx, th.ID); err != nil {
		t.Fatal(err)
	}
	if _, got := historyTurns(t, m, th.ID); !bytes.Equal(got, want) {
		t.Fatalf("the unarchived thread reads differently")
	}
	for _, rel := range files {
		if _, err := os.Stat(filepath.Join(m.Root(), filepath.FromSlash(rel))); err != nil {
			t.Fatalf("%s after unarchive: %v", rel, err)
		}
	}

	if err := m.Delete(ctx, th.ID); err != nil {
		t.Fatal(err)
	}
	for _, rel := range files {
		if _, err := os.Stat(filepath.Join(m.Root(), filepath.FromSlash(rel))); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("%s after delete: %v, want it gone", rel, err)
		}
	}
}

// TestRevertRefusesForksPastTheCut: a revert that would cut history a
// reference fork continues is refused (the fork would have no history to
// read); a fork cut before the revert point does not stand in the way and
// reads the same after it.
func TestRevertRefusesForksPastTheCut(t *testing.T) {
	ctx := t.Context()
	m := openTest(t)
	th := threeTurns(t, m, "paginated")
	early, err := m.Fork(ctx, th.ID, ForkOptions{LastTurnID: "turn-a"})
	if err != nil {
		t.Fatal(err)
	}
	_, earlyData := historyTurns(t, m, early.ID)
	late, err := m.Fork(ctx, th.ID, ForkOptions{LastTurnID: "turn-c"})
	if err != nil {
		t.Fatal(err)
	}
	var refs *ReferencedError
	if _, err := m.Revert(ctx, th.ID, RevertOptions{BeforeTurnID: "turn-b"}); !errors.As(err, &refs) || len(refs.Forks) != 1 || refs.Forks[0] != late.ID {
		t.Fatalf("revert under a fork through turn-c: %v, want a *ReferencedError naming %s", err, late.ID)
	}
	if err := m.Delete(ctx, late.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Revert(ctx, th.ID, RevertOptions{BeforeTurnID: "turn-b"}); err != nil {
		t.Fatalf("revert with only a fork before the cut: %v", err)
	}
	if _, got := historyTurns(t, m, early.ID); !bytes.Equal(got, earlyData) {
		t.Fatalf("the fork before the cut reads differently after the revert")
	}
	rep, err := indexer.Verify(ctx, m.store, m.fsys)
	if err != nil || len(rep.Drifts) != 0 || len(rep.Problems) != 0 {
		t.Fatalf("Verify: %v, drifts %v, problems %v", err, rep.Drifts, rep.Problems)
	}
}

// TestRevertRefuses: a legacy thread, no cut or two, and a user message
// out of range are refused, and no file is written.
func TestRevertRefuses(t *testing.T) {
	m := openTest(t)
	legacy := threeTurns(t, m, "legacy")
	paginated := threeTurns(t, m, "paginated")
	tests := []struct {
		name string
		id   string
		o    RevertOptions
		want error
	}{
		{"legacy", legacy.ID, RevertOptions{BeforeTurnID: "turn-b"}, ErrInvalidArgument},
		{"no cut", paginated.ID, RevertOptions{}, ErrInvalidArgument},
		{"two cuts", paginated.ID, RevertOptions{BeforeTurnID: "turn-b", BeforeUserMessage: intp(1)}, ErrInvalidArgument},
		{"out of range", paginated.ID, RevertOptions{BeforeUserMessage: intp(3)}, ErrOutOfRange},
		{"unknown turn", paginated.ID, RevertOptions{BeforeTurnID: "turn-z"}, ErrNotFound},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := m.Revert(t.Context(), tc.id, tc.o); !errors.Is(err, tc.want) {
				t.Fatalf("Revert = %v, want %v", err, tc.want)
			}
		})
	}
	for _, th := range []Thread{legacy, paginated} {
		got, err := m.Get(t.Context(), th.ID)
		if err != nil || got.RolloutPath != th.RolloutPath || got.UserMessageCount != 3 {
			t.Fatalf("%s after refused reverts: %+v, %v", th.ID, got, err)
		}
	}
}

// ordinalAtOffset returns the ordinal of the line at offset of data.
func ordinalAtOffset(t *testing.T, data []byte, offset int64) int64 {
	t.Helper()
	end := bytes.IndexByte(data[offset:], '\n')
	n, ok, err := rollout.LineOrdinal(data[offset : offset+int64(end)])
	if err != nil || !ok {
		t.Fatalf("no ordinal at %d: %v", offset, err)
	}
	return n
}

// TestWatchPicksUpRevertSegment: a revert segment another process (Codex)
// writes for a known thread is picked up by the watcher: the thread then
// reads as its history before the cut.
func TestWatchPicksUpRevertSegment(t *testing.T) {
	m, reports := openWatching(t)
	th := threeTurns(t, m, "paginated")
	if err := m.Evict(t.Context(), th.ID); err != nil {
		t.Fatal(err)
	}
	rel, cut := writeCodexSegment(t, m, th.ID, time.Date(2026, 11, 26, 1, 0, 0, 0, time.UTC))
	waitFor(t, reports, "the segment indexed", func() bool {
		got, err := m.Get(t.Context(), th.ID)
		return err == nil && got.RolloutPath == rel
	})
	got, err := m.Get(t.Context(), th.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.UserMessageCount != 1 || got.BaseSize != cut {
		t.Fatalf("after the watcher: %d messages, base at %d; want 1, %d", got.UserMessageCount, got.BaseSize, cut)
	}
	if after, _ := historyTurns(t, m, th.ID); len(after.Turns) != 1 {
		t.Fatalf("turns after the segment = %+v, want turn-a", after.Turns)
	}
}

// forkWithOwnTurns makes a paginated thread of turns turn-a, turn-b and
// turn-c, a reference fork of it through turn-b (inheriting 2 user
// messages), runs setup on the fork (nil for nothing), then appends the
// fork's own turns turn-x and turn-y.
func forkWithOwnTurns(t *testing.T, m *Manager, setup func(t *testing.T, m *Manager, fork string)) (base, fork Thread) {
	t.Helper()
	ctx := t.Context()
	base = threeTurns(t, m, "paginated")
	fork, err := m.Fork(ctx, base.ID, ForkOptions{LastTurnID: "turn-b"})
	if err != nil {
		t.Fatal(err)
	}
	if row, err := m.store.Get(ctx, fork.ID); err != nil || row.BaseID != base.ID || row.InheritedMessages != 2 {
		t.Fatalf("fork: %+v (%v); want a reference fork of %s inheriting 2 user messages", row, err, base.ID)
	}
	if setup != nil {
		setup(t, m, fork.ID)
	}
	for _, turn := range []string{"turn-x", "turn-y"} {
		if _, err := m.AppendTurn(ctx, fork.ID, TurnOptions{TurnID: turn, Prompt: "prompt " + turn, Answer: "answer " + turn}); err != nil {
			t.Fatal(err)
		}
	}
	return base, fork
}

// TestRevertReferenceFork reverts a reference fork at a cut in its own
// part: the fork then reads its base's turns it inherits and its own
// before the cut (turn-a, turn-b, turn-x), with its user messages at the
// positions they had, each turn readable, its own prompt found once by
// search; a fork of it reads through it; its base cannot be deleted
// (ErrReferenced), and a purge of the base leaves it reading the same,
// self-contained. A rebuild from the files gives the same index at each
// step, and Verify is clean.
func TestRevertReferenceFork(t *testing.T) {
	ctx := t.Context()
	m := openTest(t)
	base, fork := forkWithOwnTurns(t, m, nil)
	before, data := historyTurns(t, m, fork.ID)
	msgsBefore, err := m.UserMessages(ctx, fork.ID)
	if err != nil || len(msgsBefore) != 4 {
		t.Fatalf("user messages before the revert: %d (%v), want 4", len(msgsBefore), err)
	}
	cut := before.Turns[3].Offset

	reverted, err := m.Revert(ctx, fork.ID, RevertOptions{BeforeTurnID: "turn-y"})
	if err != nil {
		t.Fatal(err)
	}
	if reverted.UserMessageCount != 3 || reverted.BaseID != fork.ID || reverted.BaseSize != cut {
		t.Fatalf("after revert: %d messages, base %s at %d; want 3, itself at %d", reverted.UserMessageCount, reverted.BaseID, reverted.BaseSize, cut)
	}
	checkRevertedFork := func(t *testing.T, wantPrefix []byte) []byte {
		t.Helper()
		h, got := historyTurns(t, m, fork.ID)
		var ids []string
		for _, turn := range h.Turns {
			ids = append(ids, turn.ID)
		}
		if fmt.Sprint(ids) != "[turn-a turn-b turn-x]" {
			t.Fatalf("turns = %v, want [turn-a turn-b turn-x]", ids)
		}
		if !bytes.HasPrefix(got, wantPrefix) {
			t.Fatalf("the history (%d bytes) does not start with the %d bytes it had before the cut", len(got), len(wantPrefix))
		}
		msgs, err := m.UserMessages(ctx, fork.ID)
		if err != nil {
			t.Fatal(err)
		}
		if len(msgs) != 3 {
			t.Fatalf("%d user messages, want 3", len(msgs))
		}
		for k, msg := range msgs {
			prompt := "prompt " + ids[k]
			line, _, _ := bytes.Cut(got[msg.Offset:], []byte{'\n'})
			if msg.Ordinal != k || !bytes.Contains(line, []byte(prompt)) || msg.Preview != prompt {
				t.Fatalf("user message %d: %+v, line at its offset %s; want %q", k, msg, line, prompt)
			}
			end := int64(len(got))
			if k+1 < len(msgs) {
				end = msgs[k+1].Offset
			}
			rc, err := m.ReadTurn(ctx, fork.ID, k)
			if turn := readAll(t, rc, err); !bytes.Equal(turn, got[msg.Offset:end]) {
				t.Fatalf("ReadTurn(%d) = %q, want %q", k, turn, got[msg.Offset:end])
			}
		}
		if hits, err := m.Search(ctx, store.SearchOptions{Query: `"prompt turn-x"`}); err != nil || len(hits) != 1 || hits[0].ThreadID != fork.ID || hits[0].Ordinal != 2 {
			t.Fatalf("search for turn-x's prompt = %+v (%v), want one hit, message 2 of %s", hits, err, fork.ID)
		}
		if hits, err := m.Search(ctx, store.SearchOptions{Query: `"prompt turn-y"`}); err != nil || len(hits) != 0 {
			t.Fatalf("search for the reverted prompt = %+v (%v), want none", hits, err)
		}
		// An inherited prompt is found once, and through the fork when
		// the search is only in it.
		if hits, err := m.Search(ctx, store.SearchOptions{Query: `"prompt turn-a"`}); err != nil || len(hits) != 1 {
			t.Fatalf("search for turn-a's prompt = %+v (%v), want one hit", hits, err)
		}
		if hits, err := m.Search(ctx, store.SearchOptions{Query: `"prompt turn-a"`, ThreadID: fork.ID}); err != nil || len(hits) != 1 || hits[0].Ordinal != 0 {
			t.Fatalf("search for turn-a's prompt in the fork = %+v (%v), want message 0", hits, err)
		}
		return got
	}
	checkIndex := func(t *testing.T) {
		t.Helper()
		compareRebuilds(t, m, "alpha", "beta", "archived")
		rep, err := indexer.Verify(ctx, m.store, m.fsys)
		if err != nil || len(rep.Drifts) != 0 || len(rep.Problems) != 0 {
			t.Fatalf("Verify: %v, drifts %v, problems %v", err, rep.Drifts, rep.Problems)
		}
	}
	got := checkRevertedFork(t, data[:cut])
	// The chain of bases read in one query stops at the reverted thread,
	// whose earlier files are its segments.
	if links, err := m.store.BaseChain(ctx, fork.ID); err != nil || len(links) != 1 {
		t.Fatalf("BaseChain of the reverted fork: %d links (%v), want 1", len(links), err)
	}
	for k, msg := range msgsBefore[:3] {
		if after, err := m.store.UserMessage(ctx, fork.ID, k); err != nil || after.Offset != msg.Offset || after.CutOffset != msg.CutOffset {
			t.Fatalf("user message %d after the revert: %+v (%v), want it where it was, %+v", k, after, err, msg)
		}
	}
	checkIndex(t)

	// A fork of the reverted fork, in what it inherits and in its own
	// part, reads through it.
	for _, o := range []ForkOptions{{LastTurnID: "turn-a"}, {LastTurnID: "turn-x"}} {
		child, err := m.Fork(ctx, fork.ID, o)
		if err != nil {
			t.Fatalf("fork %+v: %v", o, err)
		}
		_, childData := historyTurns(t, m, child.ID)
		if !bytes.Equal(childData[:child.ForkOffset], got[:child.ForkOffset]) {
			t.Fatalf("fork %+v of the reverted fork does not read as its history to %d", o, child.ForkOffset)
		}
		msgs, err := m.UserMessages(ctx, child.ID)
		if want := map[string]int{"turn-a": 1, "turn-x": 3}[o.LastTurnID]; err != nil || len(msgs) != want || child.UserMessageCount != want {
			t.Fatalf("fork %+v: %d user messages (row %d, %v), want %d", o, len(msgs), child.UserMessageCount, err, want)
		}
		checkIndex(t)
		if err := m.Delete(ctx, child.ID); err != nil {
			t.Fatal(err)
		}
	}

	// A revert of the base is refused before the point where the fork
	// leaves it, and is none of the fork's business at that point.
	if _, err := m.Revert(ctx, base.ID, RevertOptions{BeforeTurnID: "turn-b"}); !errors.Is(err, ErrReferenced) {
		t.Fatalf("revert of the base into what the reverted fork inherits: %v, want ErrReferenced", err)
	}
	if _, err := m.Revert(ctx, base.ID, RevertOptions{BeforeTurnID: "turn-c"}); err != nil {
		t.Fatalf("revert of the base where the reverted fork leaves it: %v", err)
	}
	if again := checkRevertedFork(t, nil); !bytes.Equal(again, got) {
		t.Fatal("the reverted fork reads differently after its base was reverted where it leaves it")
	}
	checkIndex(t)

	// Laid out self-contained (export), it needs no metas of its
	// ancestors: its history starts with its parent's own.
	if _, _, metas, err := SelfContainedMetas(ctx, m, reverted); err != nil || len(metas) != 0 {
		t.Fatalf("SelfContainedMetas of the reverted fork: ancestor metas %s (%v), want none", metas, err)
	}

	// The base still holds the fork's first turns.
	if err := m.Delete(ctx, base.ID); !errors.Is(err, ErrReferenced) {
		t.Fatalf("delete of the base of a reverted fork: %v, want ErrReferenced", err)
	}
	if err := m.Purge(ctx, base.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Get(ctx, base.ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("the purged base: %v, want ErrNotFound", err)
	}
	now, err := m.Get(ctx, fork.ID)
	if err != nil || now.BaseID != "" || now.BaseSize != 0 || now.UserMessageCount != 3 {
		t.Fatalf("the reverted fork after the purge of its base: %+v (%v), want self-contained with 3 user messages", now, err)
	}
	if after := withoutMetas(withoutOrdinals(checkRevertedFork(t, nil))); !bytes.Equal(after, withoutMetas(withoutOrdinals(got))) {
		t.Fatalf("the reverted fork after the purge of its base reads\n%s\nwant (metas and ordinals aside)\n%s", after, got)
	}
	checkIndex(t)
}

// TestRevertReferenceForkAgain: a reverted reference fork reverted once
// more, and one whose own rollback reached into what it inherits before
// the revert, keep inheriting what their first file inherits; a rebuild
// from the files gives the same index and Verify is clean.
func TestRevertReferenceForkAgain(t *testing.T) {
	tests := []struct {
		name  string
		setup func(t *testing.T, m *Manager, fork string) // before the turns turn-x and turn-y
		after func(t *testing.T, m *Manager, fork string) // after the revert before turn-y
		want  []string                                    // the user messages' previews
	}{
		{
			name: "twice",
			after: func(t *testing.T, m *Manager, fork string) {
				if _, err := m.Revert(t.Context(), fork, RevertOptions{BeforeTurnID: "turn-x"}); err != nil {
					t.Fatal(err)
				}
			},
			want: []string{"prompt turn-a", "prompt turn-b"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx := t.Context()
			m := openTest(t)
			base, fork := forkWithOwnTurns(t, m, tc.setup)
			if _, err := m.Revert(ctx, fork.ID, RevertOptions{BeforeTurnID: "turn-y"}); err != nil {
				t.Fatal(err)
			}
			if tc.after != nil {
				tc.after(t, m, fork.ID)
			}
			msgs, err := m.UserMessages(ctx, fork.ID)
			if err != nil {
				t.Fatal(err)
			}
			_, data := historyTurns(t, m, fork.ID)
			var previews []string
			for _, msg := range msgs {
				line, _, _ := bytes.Cut(data[msg.Offset:], []byte{'\n'})
				if !bytes.Contains(line, []byte(msg.Preview)) {
					t.Fatalf("user message %d (%q) is not at its offset: %s", msg.Ordinal, msg.Preview, line)
				}
				previews = append(previews, msg.Preview)
			}
			if fmt.Sprint(previews) != fmt.Sprint(tc.want) {
				t.Fatalf("user messages %q, want %q", previews, tc.want)
			}
			if err := m.Delete(ctx, base.ID); !errors.Is(err, ErrReferenced) {
				t.Fatalf("delete of the base: %v, want ErrReferenced", err)
			}
			compareRebuilds(t, m, "alpha", "beta", "archived")
			rep, err := indexer.Verify(ctx, m.store, m.fsys)
			if err != nil || len(rep.Drifts) != 0 || len(rep.Problems) != 0 {
				t.Fatalf("Verify: %v, drifts %v, problems %v", err, rep.Drifts, rep.Problems)
			}
		})
	}
}

// TestForkThroughARevertedForkIntoItsBaseSegment: a base reverted (a
// segment sB), a fork F of it cut in sB and then reverted in its own part,
// and a fork C of F cut in what F inherits, in sB: C's meta names sB by
// its uuid, and the index finds sB through F's first file's base even when
// C's file is indexed after F's revert segment (a rebuild in another
// order, a file arriving later).
func TestForkThroughARevertedForkIntoItsBaseSegment(t *testing.T) {
	ctx := t.Context()
	m := openTest(t)
	base := threeTurns(t, m, "paginated")
	if _, err := m.Revert(ctx, base.ID, RevertOptions{BeforeTurnID: "turn-c"}); err != nil {
		t.Fatal(err)
	}
	appendTurns := func(id string, turns ...string) {
		t.Helper()
		for _, turn := range turns {
			if _, err := m.AppendTurn(ctx, id, TurnOptions{TurnID: turn, Prompt: "prompt " + turn, Answer: "a"}); err != nil {
				t.Fatal(err)
			}
		}
	}
	appendTurns(base.ID, "turn-d", "turn-e")
	fork, err := m.Fork(ctx, base.ID, ForkOptions{LastTurnID: "turn-e"})
	if err != nil {
		t.Fatal(err)
	}
	appendTurns(fork.ID, "turn-x", "turn-y")
	if _, err := m.Revert(ctx, fork.ID, RevertOptions{BeforeTurnID: "turn-y"}); err != nil {
		t.Fatal(err)
	}
	child, err := m.Fork(ctx, fork.ID, ForkOptions{LastTurnID: "turn-d"})
	if err != nil {
		t.Fatal(err)
	}
	abs := filepath.Join(m.Root(), filepath.FromSlash(child.RolloutPath))
	data, err := os.ReadFile(abs)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(abs); err != nil {
		t.Fatal(err)
	}
	rebuilt := rebuildIndex(t, m) // without the child's file
	if err := os.WriteFile(abs, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := indexer.SyncPaths(ctx, rebuilt, rolloutfs.Local{Root: m.Root()}, []string{child.RolloutPath}, indexer.SyncOptions{}); err != nil {
		t.Fatal(err)
	}
	got, err := rebuilt.Get(ctx, child.ID)
	if err != nil {
		t.Fatalf("the child, indexed after its parent's revert segment: %v", err)
	}
	if got.UserMessageCount != child.UserMessageCount || got.BaseSize != child.BaseSize {
		t.Fatalf("the child indexed later: %d messages, base size %d; want %d, %d", got.UserMessageCount, got.BaseSize, child.UserMessageCount, child.BaseSize)
	}
}

// TestForkAtTheStartOfARevertedForksFirstFile: a fork cut where a
// reverted fork's first file begins (the end of what it inherits) names
// that file at offset 0, whose first ordinal is the cut's; the index reads
// it (Verify, a rebuild).
func TestForkAtTheStartOfARevertedForksFirstFile(t *testing.T) {
	ctx := t.Context()
	m := openTest(t)
	base := threeTurns(t, m, "paginated")
	if _, err := m.Revert(ctx, base.ID, RevertOptions{BeforeTurnID: "turn-c"}); err != nil {
		t.Fatal(err)
	}
	if _, err := m.AppendTurn(ctx, base.ID, TurnOptions{TurnID: "turn-d", Prompt: "prompt d", Answer: "a"}); err != nil {
		t.Fatal(err)
	}
	fork, err := m.Fork(ctx, base.ID, ForkOptions{LastTurnID: "turn-d"})
	if err != nil {
		t.Fatal(err)
	}
	for _, turn := range []string{"turn-x", "turn-y"} {
		if _, err := m.AppendTurn(ctx, fork.ID, TurnOptions{TurnID: turn, Prompt: "prompt " + turn, Answer: "a"}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := m.Revert(ctx, fork.ID, RevertOptions{BeforeTurnID: "turn-y"}); err != nil {
		t.Fatal(err)
	}
	child, err := m.Fork(ctx, fork.ID, ForkOptions{LastTurnID: "turn-d"})
	if err != nil {
		t.Fatal(err)
	}
	rep, err := indexer.Verify(ctx, m.store, m.fsys)
	if err != nil || len(rep.Drifts) != 0 || len(rep.Problems) != 0 {
		t.Fatalf("Verify: %v, drifts %v, problems %v", err, rep.Drifts, rep.Problems)
	}
	if got, err := rebuildIndex(t, m).Get(ctx, child.ID); err != nil || got.BaseSize != child.BaseSize {
		t.Fatalf("the child in a rebuilt index: %+v, %v", got, err)
	}
}

// TestAppendsDuringReverts: appends racing reverts of the same thread all
// go through. A revert drops the live thread; a caller that finds it
// dropped loads it again, however often, rather than report it missing,
// and never finds the writer lock the revert held (ErrBusy).
func TestAppendsDuringReverts(t *testing.T) {
	ctx := t.Context()
	m := openTest(t)
	th := startPaginated(t, m, user("u0"), assistant("a0"), user("u1"), assistant("a1"))
	const writers, appends, reverts = 6, 150, 150
	var wg sync.WaitGroup
	errs := make(chan error, writers*appends+reverts)
	for w := range writers {
		wg.Go(func() {
			for i := range appends {
				if _, err := m.Append(ctx, th.ID, []rollout.Item{user(fmt.Sprintf("w%d-%d", w, i))}); err != nil {
					errs <- fmt.Errorf("append: %w", err)
				}
			}
		})
	}
	wg.Go(func() {
		for range reverts {
			// Out of range when no append came since the last revert.
			if _, err := m.Revert(ctx, th.ID, RevertOptions{BeforeUserMessage: intp(1)}); err != nil && !errors.Is(err, ErrOutOfRange) {
				errs <- fmt.Errorf("revert: %w", err)
			}
		}
	})
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// TestRevertSurvivesPowerLossUnderNone: under sync=none a power loss may
// lose appends, never a thread: after a revert and a power loss, the
// reopened root holds the thread (reverted or not), and the index agrees
// with the files at the first reopen.
func TestRevertSurvivesPowerLossUnderNone(t *testing.T) {
	m, fsys := openFaulty(t, rolloutfs.SyncNone)
	ctx := t.Context()
	th := startPaginated(t, m, user("u0"), assistant("a0"), user("u1"), assistant("a1"))
	fsys.Flush()
	if _, err := m.Revert(ctx, th.ID, RevertOptions{BeforeUserMessage: intp(1)}); err != nil {
		t.Fatal(err)
	}
	again := afterPowerLoss(t, m, fsys)
	if _, err := again.Get(ctx, th.ID); err != nil {
		t.Fatalf("the thread after a revert and a power loss: %v", err)
	}
	if rep, err := indexer.Verify(ctx, again.store, rolloutfs.Local{Root: again.Root()}); err != nil || !rep.Clean() {
		t.Fatalf("verify at the first reopen: %v, %+v", err, rep.Drifts)
	}
}

// TestPurgeSurvivesPowerLossUnderNone: under sync=none a purge that made
// a reference fork self-contained and removed its base loses none of the
// fork's history to a power loss: the rewrite is durable whatever the
// policy, as the removal is.
func TestPurgeSurvivesPowerLossUnderNone(t *testing.T) {
	m, fsys := openFaulty(t, rolloutfs.SyncNone)
	ctx := t.Context()
	base := startPaginated(t, m, user("u0"), assistant("a0"), user("u1"), assistant("a1"))
	fork, err := m.Fork(ctx, base.ID, ForkOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Append(ctx, fork.ID, []rollout.Item{user("own")}); err != nil {
		t.Fatal(err)
	}
	msgs, err := m.UserMessages(ctx, fork.ID)
	if err != nil {
		t.Fatal(err)
	}
	fsys.Flush()
	if err := m.Purge(ctx, base.ID); err != nil {
		t.Fatal(err)
	}
	again := afterPowerLoss(t, m, fsys)
	got, err := again.UserMessages(ctx, fork.ID)
	if err != nil || len(got) != len(msgs) {
		t.Fatalf("the fork after a purge and a power loss: %d messages, %v; want %d", len(got), err, len(msgs))
	}
}

// afterPowerLoss cuts the power under m's faulty FS, closes m and returns
// a manager opened on its root as the disk was left.
func afterPowerLoss(t *testing.T, m *Manager, fsys *faultfs.FS) *Manager {
	t.Helper()
	if err := fsys.PowerLoss(); err != nil {
		t.Fatal(err)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	again, err := Open(t.Context(), Options{Root: m.Root(), Sync: rolloutfs.SyncNone, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { again.Close() })
	return again
}

// TestInterruptedDeleteOfARevertedThread: a delete of a reverted thread
// that fails half way (after its earlier files went) leaves a thread that
// says what is wrong with it and that a second delete removes, in this
// process and after a reopen.
func TestInterruptedDeleteOfARevertedThread(t *testing.T) {
	for _, reopen := range []bool{false, true} {
		t.Run(fmt.Sprintf("reopen=%v", reopen), func(t *testing.T) {
			ctx := t.Context()
			m, fsys := openFaulty(t, rolloutfs.SyncAlways)
			th := startPaginated(t, m, user("u0"), assistant("a0"), user("u1"), assistant("a1"))
			reverted, err := m.Revert(ctx, th.ID, RevertOptions{BeforeUserMessage: intp(1)})
			if err != nil {
				t.Fatal(err)
			}
			fsys.Inject(func(p faultfs.Point) error {
				if p.Op == faultfs.OpRemove && p.Name == reverted.RolloutPath {
					return syscall.EIO
				}
				return nil
			})
			if err := m.Delete(ctx, th.ID); !errors.Is(err, syscall.EIO) {
				t.Fatalf("delete with the newest file's removal failing: %v, want EIO", err)
			}
			fsys.Reset()
			if reopen {
				if err := m.Close(); err != nil {
					t.Fatal(err)
				}
				m = openTest(t, func(o *Options) { o.Root = m.Root() })
			}
			if _, err := m.ReadFrom(ctx, th.ID, -1); !errors.Is(err, ErrBrokenChain) {
				t.Fatalf("reading the half-deleted thread: %v, want ErrBrokenChain", err)
			}
			if err := m.Delete(ctx, th.ID); err != nil {
				t.Fatalf("second delete: %v", err)
			}
			if _, err := m.Get(ctx, th.ID); !errors.Is(err, ErrNotFound) {
				t.Fatalf("after the second delete: %v, want ErrNotFound", err)
			}
			if n := rolloutCount(t, m.Root()); n != 0 {
				t.Fatalf("%d rollout files left, want none", n)
			}
		})
	}
}

// writeCodexSegment writes, as Codex's thread/revert does, a revert
// segment of thread id (three turns) dated at, that cuts its history
// before its second turn: a temporary file renamed into place. It returns
// the segment's path and the cut.
func writeCodexSegment(t *testing.T, m *Manager, id string, at time.Time) (rel string, cut int64) {
	t.Helper()
	h, data := historyTurns(t, m, id)
	cut = h.Turns[1].Offset
	ordinal := ordinalAtOffset(t, data, cut)
	meta, err := rollout.SegmentMetaLine(rollout.FormatTimestamp(at), rollout.MetaPayload{SessionMeta: rollout.SessionMeta{ID: id, Cwd: "/work", Source: "cli"}},
		rollout.HistoryBase{EndByteOffset: cut, EndOrdinalExclusive: ordinal})
	if err != nil {
		t.Fatal(err)
	}
	name, err := rollout.SegmentFileName(at, id, uuid.Must(uuid.NewV7()).String())
	if err != nil {
		t.Fatal(err)
	}
	day, _ := rollout.SessionPath(rollout.FileName(at, id))
	rel = path.Join(path.Dir(day), name)
	abs := filepath.Join(m.Root(), filepath.FromSlash(rel))
	if err := os.MkdirAll(filepath.Dir(abs), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(abs+".tmp", meta, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(abs+".tmp", abs); err != nil {
		t.Fatal(err)
	}
	return rel, cut
}

// TestRevertedCopyForkIsStillACopy: a copy fork reverted to a cut past its
// copies holds them as any copy fork does: without search text while its
// parent holds them, with it once the parent is deleted. An index that
// meets the fork's files before its parent's (the parent's file restored
// later) agrees with the live one, and so does a rebuild after the
// delete.
func TestRevertedCopyForkIsStillACopy(t *testing.T) {
	ctx := t.Context()
	m := openTest(t)
	p := startPaginated(t, m, user("zebra stripes"), assistant("a1"))
	c, err := m.Fork(ctx, p.ID, ForkOptions{Mode: ForkCopy})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Append(ctx, c.ID, []rollout.Item{user("own words"), assistant("a2"), user("dropped words"), assistant("a3")}); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Revert(ctx, c.ID, RevertOptions{BeforeUserMessage: intp(2)}); err != nil {
		t.Fatal(err)
	}
	if hits, err := m.Search(ctx, store.SearchOptions{Query: "zebra"}); err != nil || len(hits) != 1 || hits[0].ThreadID != p.ID {
		t.Fatalf("search zebra = %+v (%v), want one hit, in the parent", hits, err)
	}

	// Another index meets the fork first, the parent's file later.
	root := t.TempDir()
	if err := os.CopyFS(root, os.DirFS(m.Root())); err != nil {
		t.Fatal(err)
	}
	parentFile := filepath.Join(root, filepath.FromSlash(p.RolloutPath))
	kept, err := os.ReadFile(parentFile)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(parentFile); err != nil {
		t.Fatal(err)
	}
	other, err := store.Open(ctx, filepath.Join(t.TempDir(), "other.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	fsys := rolloutfs.Local{Root: root}
	if _, err := indexer.Sync(ctx, other, fsys, indexer.SyncOptions{Full: true}); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(parentFile, kept, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := indexer.Sync(ctx, other, fsys, indexer.SyncOptions{}); err != nil {
		t.Fatal(err)
	}
	indextest.Compare(t, m.store, other, "zebra", "own")

	if err := m.Delete(ctx, p.ID); err != nil {
		t.Fatal(err)
	}
	if hits, err := m.Search(ctx, store.SearchOptions{Query: "zebra"}); err != nil || len(hits) != 1 || hits[0].ThreadID != c.ID {
		t.Fatalf("search zebra after the parent's delete = %+v (%v), want one hit, in the fork", hits, err)
	}
	compareRebuilds(t, m, "zebra", "own")
}

// TestRevertedCopyForkKeepsItsCopiesWhenItsParentReverts: a copy fork
// reverted since, whose parent is then reverted before the fork's cut, is
// handed the texts of the copies the parent no longer holds, as a copy
// fork that was not reverted is: they were counted in the parent's history
// after the revert cut it back, so none was handed over and the prompts
// could no longer be found at all.
func TestRevertedCopyForkKeepsItsCopiesWhenItsParentReverts(t *testing.T) {
	ctx := t.Context()
	m := openTest(t)
	p, c := revertedCopyForkOfRevertedParent(t, m)
	for _, tc := range []struct {
		query string
		in    string
	}{
		{"alpha", p.ID},
		{"bravo", c.ID},
		{"charlie", c.ID},
	} {
		if hits, err := m.Search(ctx, store.SearchOptions{Query: tc.query}); err != nil || len(hits) != 1 || hits[0].ThreadID != tc.in {
			t.Errorf("search %s = %+v (%v), want one hit, in %s", tc.query, hits, err, tc.in)
		}
	}
	compareRebuilds(t, m, "alpha", "bravo", "charlie", "own")
}

// TestRevertsOfACopyForkAndItsParentScannedTogether: the revert segments
// of a copy fork and of its parent, both read once both first files are
// indexed, hand the fork the texts of the copies its parent no longer
// holds, written in one batch or in two, in either order, as the live
// index does.
//
// A rebuild writes them in one batch when both segments are read before
// their first files are indexed: they wait, and the last round writes
// them together. The parent's replacement counted a reverted fork's
// copies in its history as the revert had cut it back: the fork's row,
// replaced after it in the batch, or before it and midway (its rows not
// yet written), recorded none, so "bravo" and "charlie" were found in no
// thread of the rebuild (TestRevertedCopyForkKeepsItsCopiesWhenItsParentReverts
// failed so, 1 run in 12 to 30 under load, when the workers happened to
// finish in such an order).
//
// In two batches, the parent's first, the fork's segment read its copies
// from the index while the parent still held them, blank, and wrote them
// so over the texts the parent's revert had handed them since (an
// incremental Sync that finds both segments, with a batch boundary
// between them).
func TestRevertsOfACopyForkAndItsParentScannedTogether(t *testing.T) {
	ctx := t.Context()
	m := openTest(t)
	p, c := revertedCopyForkOfRevertedParent(t, m)
	// The first file and the revert segment of each.
	var firsts, reverts []string
	for _, id := range []string{p.ID, c.ID} {
		segs, err := m.store.Segments(ctx, id)
		if err != nil || len(segs) != 1 {
			t.Fatalf("segments of %s = %+v (%v), want one", id, segs, err)
		}
		th, err := m.Get(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		firsts = append(firsts, segs[0].RolloutPath)
		reverts = append(reverts, th.RolloutPath)
	}
	copyIn := func(root string, rels []string) {
		t.Helper()
		for _, rel := range rels {
			b, err := os.ReadFile(filepath.Join(m.Root(), filepath.FromSlash(rel)))
			if err != nil {
				t.Fatal(err)
			}
			to := filepath.Join(root, filepath.FromSlash(rel))
			if err := os.MkdirAll(filepath.Dir(to), 0o700); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(to, b, 0o600); err != nil {
				t.Fatal(err)
			}
		}
	}
	parent, fork := reverts[0], reverts[1]
	for _, tc := range []struct {
		name    string
		batches [][]string // the segments, in the order they are written
	}{
		{"one batch, parent's revert first", [][]string{{parent, fork}}},
		{"one batch, fork's revert first", [][]string{{fork, parent}}},
		{"parent's revert, then fork's", [][]string{{parent}, {fork}}},
		{"fork's revert, then parent's", [][]string{{fork}, {parent}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			fsys := rolloutfs.Local{Root: root}
			st, err := store.Open(ctx, filepath.Join(t.TempDir(), "index.db"))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { st.Close() })
			copyIn(root, firsts)
			if _, err := indexer.Sync(ctx, st, fsys, indexer.SyncOptions{Full: true}); err != nil {
				t.Fatal(err)
			}
			copyIn(root, reverts)
			records := map[string]store.Record{}
			for _, rel := range reverts {
				rec, problems, err := indexer.ScanFileWith(ctx, fsys, rel, indexer.StoreBases{Store: st})
				if err != nil || len(problems) > 0 {
					t.Fatalf("scan %s: %v (problems %+v)", rel, err, problems)
				}
				records[rel] = rec
			}
			for _, rels := range tc.batches {
				var batch []store.Record
				for _, rel := range rels {
					batch = append(batch, records[rel])
				}
				if err := st.Replace(ctx, batch); err != nil {
					t.Fatal(err)
				}
			}
			indextest.Compare(t, m.store, st, "alpha", "bravo", "charlie", "own")
		})
	}
}

// TestRevertsOfACopyOfACopyAndItsParentsInOneBatch: a copy fork (copy) of
// a paginated thread (first) is handed its copy of "bravo alpha" when
// first is reverted before it; a copy fork of copy (last), blank while
// copy holds the prompt, is handed it when copy is reverted before it
// too. A rebuild that writes both revert segments in one batch, first's
// before copy's, read copy's copy blank (first's hand-over comes after the
// batch is written, and first holds the prompt no more), so it had no text
// to hand to last: search found "bravo" in last live and in no thread of
// the rebuild (random sequence 79667).
func TestRevertsOfACopyOfACopyAndItsParentsInOneBatch(t *testing.T) {
	ctx := t.Context()
	m := openTest(t)
	first := startPaginated(t, m)
	if _, err := m.AppendTurn(ctx, first.ID, TurnOptions{TurnID: "turn-1", Prompt: "bravo alpha", Answer: "a1"}); err != nil {
		t.Fatal(err)
	}
	copied, err := m.Fork(ctx, first.ID, ForkOptions{Mode: ForkCopy})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.AppendTurn(ctx, first.ID, TurnOptions{TurnID: "turn-2", Prompt: "charlie", Answer: "a2"}); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Revert(ctx, first.ID, RevertOptions{BeforeUserMessage: intp(0)}); err != nil {
		t.Fatal(err)
	}
	last, err := m.Fork(ctx, copied.ID, ForkOptions{Mode: ForkCopy})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Revert(ctx, copied.ID, RevertOptions{BeforeTurnID: "turn-1"}); err != nil {
		t.Fatal(err)
	}
	hits, err := m.store.Search(ctx, store.SearchOptions{Query: "bravo"})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := hitIDs(hits), []string{last.ID + "/0"}; !slices.Equal(got, want) {
		t.Fatalf("bravo found live in %v, want %v", got, want)
	}
	// The first file of first and of copy, last's file, and the revert
	// segments of first and copy.
	firsts := []string{last.RolloutPath}
	var reverts []string
	for _, id := range []string{first.ID, copied.ID} {
		segs, err := m.store.Segments(ctx, id)
		if err != nil || len(segs) != 1 {
			t.Fatalf("segments of %s = %+v (%v), want one", id, segs, err)
		}
		th, err := m.Get(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		firsts = append(firsts, segs[0].RolloutPath)
		reverts = append(reverts, th.RolloutPath)
	}
	copyIn := func(root string, rels []string) {
		t.Helper()
		for _, rel := range rels {
			b, err := os.ReadFile(filepath.Join(m.Root(), filepath.FromSlash(rel)))
			if err != nil {
				t.Fatal(err)
			}
			to := filepath.Join(root, filepath.FromSlash(rel))
			if err := os.MkdirAll(filepath.Dir(to), 0o700); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(to, b, 0o600); err != nil {
				t.Fatal(err)
			}
		}
	}
	parent, fork := reverts[0], reverts[1]
	for _, tc := range []struct {
		name    string
		batches [][]string // the segments, in the order they are written
	}{
		{"one batch, first's revert first", [][]string{{parent, fork}}},
		{"one batch, copy's revert first", [][]string{{fork, parent}}},
		{"first's revert, then copy's", [][]string{{parent}, {fork}}},
		{"copy's revert, then first's", [][]string{{fork}, {parent}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			fsys := rolloutfs.Local{Root: root}
			st, err := store.Open(ctx, filepath.Join(t.TempDir(), "index.db"))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { st.Close() })
			copyIn(root, firsts)
			if _, err := indexer.Sync(ctx, st, fsys, indexer.SyncOptions{Full: true}); err != nil {
				t.Fatal(err)
			}
			copyIn(root, reverts)
			records := map[string]store.Record{}
			for _, rel := range reverts {
				rec, problems, err := indexer.ScanFileWith(ctx, fsys, rel, indexer.StoreBases{Store: st})
				if err != nil || len(problems) > 0 {
					t.Fatalf("scan %s: %v (problems %+v)", rel, err, problems)
				}
				records[rel] = rec
			}
			for _, rels := range tc.batches {
				var batch []store.Record
				for _, rel := range rels {
					batch = append(batch, records[rel])
				}
				if err := st.Replace(ctx, batch); err != nil {
					t.Fatal(err)
				}
			}
			indextest.Compare(t, m.store, st, "alpha", "bravo", "charlie")
		})
	}
	compareRebuilds(t, m, "alpha", "bravo", "charlie")
}

// revertedCopyForkOfRevertedParent makes, in m, a paginated thread p
// asking alpha, bravo and charlie, and a copy fork c of it that asks two
// prompts of its own and is reverted before the second; then p is
// reverted before bravo, the fork's cut lying past that.
func revertedCopyForkOfRevertedParent(t *testing.T, m *Manager) (p, c Thread) {
	t.Helper()
	ctx := t.Context()
	p = startPaginated(t, m, user("alpha one"), assistant("a1"), user("bravo two"), assistant("a2"), user("charlie three"), assistant("a3"))
	c, err := m.Fork(ctx, p.ID, ForkOptions{Mode: ForkCopy})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Append(ctx, c.ID, []rollout.Item{user("own words"), assistant("a4"), user("dropped words"), assistant("a5")}); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Revert(ctx, c.ID, RevertOptions{BeforeUserMessage: intp(4)}); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Revert(ctx, p.ID, RevertOptions{BeforeUserMessage: intp(1)}); err != nil {
		t.Fatal(err)
	}
	return p, c
}

// TestForkOfAForkIntoARevertedSegmentOutlivesItsParent: a reference fork
// of a reference fork, cut inside what its parent inherits from a reverted
// thread's later file, names that file by its segment's uuid. Once the
// parent is deleted (it holds none of the child's bytes), a rebuild still
// finds the file through its owner, and agrees with the live index.
func TestForkOfAForkIntoARevertedSegmentOutlivesItsParent(t *testing.T) {
	ctx := t.Context()
	m := openTest(t)
	base := threeTurns(t, m, "paginated")
	if _, err := m.Revert(ctx, base.ID, RevertOptions{BeforeTurnID: "turn-c"}); err != nil {
		t.Fatal(err)
	}
	for _, turn := range []string{"turn-d", "turn-e", "turn-f"} {
		if _, err := m.AppendTurn(ctx, base.ID, TurnOptions{TurnID: turn, Prompt: "prompt " + turn, Answer: "a"}); err != nil {
			t.Fatal(err)
		}
	}
	parent, err := m.Fork(ctx, base.ID, ForkOptions{LastTurnID: "turn-e"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Fork(ctx, parent.ID, ForkOptions{LastTurnID: "turn-d"}); err != nil {
		t.Fatal(err)
	}
	if err := m.Delete(ctx, parent.ID); err != nil {
		t.Fatal(err)
	}
	compareRebuilds(t, m, "alpha", "beta", "archived")
}

// TestForkOfAForkWhoseParentIsGoneRebuilds: a reference fork whose parent
// was deleted (its cut lay in what the parent inherited) is indexed with
// the parent kept in its ancestry, and its own fork waits for it: a
// rebuild gives the fork of the fork the same ancestors as the live index
// (before, both were indexed in one last round, the second before the
// first was written, and lost the deleted ancestor).
func TestForkOfAForkWhoseParentIsGoneRebuilds(t *testing.T) {
	ctx := t.Context()
	m := openTest(t)
	th, err := m.Start(ctx, StartOptions{Cwd: "/w", Source: "cli", HistoryMode: string(rollout.HistoryPaginated)})
	if err != nil {
		t.Fatal(err)
	}
	var prompts []rollout.Item
	for i := range 12 {
		prompts = append(prompts, user(fmt.Sprintf("prompt %d", i)))
	}
	if _, err := m.Append(ctx, th.ID, prompts); err != nil {
		t.Fatal(err)
	}
	parent, err := m.Fork(ctx, th.ID, ForkOptions{BeforeUserMessage: intp(10)})
	if err != nil {
		t.Fatal(err)
	}
	child, err := m.Fork(ctx, parent.ID, ForkOptions{BeforeUserMessage: intp(8)})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Delete(ctx, parent.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Fork(ctx, child.ID, ForkOptions{BeforeUserMessage: intp(5)}); err != nil {
		t.Fatal(err)
	}
	compareRebuilds(t, m, "alpha", "beta", "archived")
}

package manager

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spoolhq/spool/indexer"
	"github.com/spoolhq/spool/rollout"
	"github.com/spoolhq/spool/rolloutfs"
)

// startPaginated starts a paginated thread (the default) and appends items.
func startPaginated(t *testing.T, m *Manager, items ...rollout.Item) Thread {
	t.Helper()
	th, err := m.Start(t.Context(), StartOptions{Cwd: "/work", Source: "cli"})
	if err != nil {
		t.Fatal(err)
	}
	if th.HistoryMode != string(rollout.HistoryPaginated) {
		t.Fatalf("a new thread's mode = %q, want paginated", th.HistoryMode)
	}
	if len(items) > 0 {
		res, err := m.Append(t.Context(), th.ID, items)
		if err != nil {
			t.Fatal(err)
		}
		th = res.Thread
	}
	return th
}

// historyOf reads a thread's whole history.
func historyOf(t *testing.T, m *Manager, id string) []byte {
	t.Helper()
	rc, err := m.ReadFrom(t.Context(), id, -1)
	return readAll(t, rc, err)
}

// ownFile reads a thread's own rollout file.
func ownFile(t *testing.T, m *Manager, id string) []byte {
	t.Helper()
	th, err := m.Get(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	return readFile(t, m, th)
}

// checkOrdinals checks that every line of a paginated file carries the
// ordinals 0, 1, 2, ... in order, as Codex requires.
func checkOrdinals(t *testing.T, file []byte) {
	t.Helper()
	for i, l := range lines(file) {
		n, ok, err := rollout.LineOrdinal(bytes.TrimSuffix(l, []byte("\n")))
		if err != nil || !ok || n != int64(i) {
			t.Fatalf("line %d has ordinal %d (%t, %v), want %d: %s", i, n, ok, err, i, l)
		}
	}
}

// TestReferenceForks forks paginated threads as Codex 0.169 does: the
// child's file is its meta alone, whose history_base points into the file
// that holds the cut; its history reads as the parent's before the cut,
// then its own lines. The seed's cases hold on such forks, a fork of a
// fork of a fork reads through the whole chain, appends carry ordinals,
// a rebuilt index agrees with the live one, and a base cannot be deleted
// from under its forks (as in Codex), which stay readable.
func TestReferenceForks(t *testing.T) {
	ctx := t.Context()
	m := openTest(t, func(o *Options) { o.Sync = rolloutfs.SyncAlways })
	parent := startPaginated(t, m, user("u1"), assistant("a1"), assistant("a2"), user("u2"), assistant("a3"), reasoning("r"), functionCall("call"), assistant("a4"))
	checkOrdinals(t, ownFile(t, m, parent.ID))
	parentHistory := historyOf(t, m, parent.ID)

	// drops_from_last_user_only: cut before user message 1 keeps u1, a1, a2.
	f1, err := m.Fork(ctx, parent.ID, ForkOptions{BeforeUserMessage: intp(1)})
	if err != nil {
		t.Fatal(err)
	}
	if f1.BaseID != parent.ID || f1.UserMessageCount != 1 || f1.ForkOffset <= 0 {
		t.Fatalf("fork row = %+v, want base %s with 1 user message", f1, parent.ID)
	}
	own := ownFile(t, m, f1.ID)
	if n := len(lines(own)); n != 1 {
		t.Fatalf("the fork's file holds %d lines, want its meta alone (nothing copied)", n)
	}
	meta, err := rollout.ParseSessionMeta(bytes.TrimSuffix(own, []byte("\n")))
	if err != nil || meta.HistoryBase == nil || meta.HistoryBase.ThreadID != parent.ID || meta.HistoryBase.EndByteOffset != f1.ForkOffset {
		t.Fatalf("fork meta history_base = %+v (%v), want %s at %d", meta.HistoryBase, err, parent.ID, f1.ForkOffset)
	}
	u2, err := m.store.UserMessage(ctx, parent.ID, 1)
	if err != nil {
		t.Fatal(err)
	}
	if want := append(append([]byte{}, parentHistory[:u2.Offset]...), own...); !bytes.Equal(historyOf(t, m, f1.ID), want) {
		t.Fatalf("fork history is not the parent's history before u2 then the fork's meta")
	}

	// Appends to the fork continue its own ordinals; offsets are positions
	// in the history.
	res, err := m.Append(ctx, f1.ID, []rollout.Item{user("own one"), assistant("own answer")})
	if err != nil {
		t.Fatal(err)
	}
	if want := f1.ForkOffset + int64(len(own)); res.Offsets[0] != want {
		t.Fatalf("append offset %d, want %d (a position in the history)", res.Offsets[0], want)
	}
	// The fork's own lines go on from the cut's ordinal, so its whole
	// history counts 0, 1, 2, ... as Codex requires (a line numbered below
	// the one before it is skipped by Codex).
	checkOrdinals(t, historyOf(t, m, f1.ID))
	rc, err := m.ReadTurn(ctx, f1.ID, 1)
	turn := readAll(t, rc, err)
	if !bytes.Contains(turn, []byte("own one")) || bytes.Contains(turn, []byte("u1")) {
		t.Fatalf("turn 1 of the fork = %q, want its own prompt", turn)
	}

	// A fork of a fork of a fork reads through the whole chain.
	f2, err := m.Fork(ctx, f1.ID, ForkOptions{})
	if err != nil {
		t.Fatal(err)
	}
	f3, err := m.Fork(ctx, f2.ID, ForkOptions{BeforeUserMessage: intp(1)})
	if err != nil {
		t.Fatal(err)
	}
	f2History := historyOf(t, m, f2.ID)
	if !bytes.Equal(f2History[:len(historyOf(t, m, f1.ID))], historyOf(t, m, f1.ID)) {
		t.Fatal("a whole fork's history does not start with its parent's")
	}
	ownMsg, err := m.store.UserMessage(ctx, f2.ID, 1)
	if err != nil {
		t.Fatal(err)
	}
	if want := append(append([]byte{}, f2History[:ownMsg.Offset]...), ownFile(t, m, f3.ID)...); !bytes.Equal(historyOf(t, m, f3.ID), want) {
		t.Fatal("fork of a fork of a fork does not read as its parent's history before the cut, then its meta")
	}
	if f3.BaseID != f1.ID {
		t.Fatalf("third fork's base = %s, want %s, the thread whose file holds the cut", f3.BaseID, f1.ID)
	}

	// A legacy parent forks by copy; a reference to it is refused.
	legacy := start(t, m, user("old"))
	if _, err := m.Fork(ctx, legacy.ID, ForkOptions{Mode: ForkReference}); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("reference fork of a legacy thread: %v, want ErrInvalidArgument", err)
	}

	// The index rebuilt from the files alone agrees with the live one.
	compareRebuilds(t, m, "alpha", "beta", "archived")

	// A base is not deleted from under its forks; they read as before.
	before := historyOf(t, m, f3.ID)
	var ref *ReferencedError
	if err := m.Delete(ctx, f1.ID); !errors.As(err, &ref) || len(ref.Forks) == 0 {
		t.Fatalf("delete of a base: %v, want a *ReferencedError", err)
	}
	if !bytes.Equal(historyOf(t, m, f3.ID), before) {
		t.Fatal("a refused delete changed a descendant's history")
	}
	// Deleting the forks first, then the base, works (as in Codex).
	for _, id := range []string{f3.ID, f2.ID, f1.ID} {
		if err := m.Delete(ctx, id); err != nil {
			t.Fatalf("delete %s: %v", id, err)
		}
	}
}

// TestForkBeforeTurnID forks before a Codex turn named by its id: the same
// cut as before the turn's first user message, before its start lines.
func TestForkBeforeTurnID(t *testing.T) {
	ctx := t.Context()
	m := openTest(t)
	th := startPaginated(t, m)
	for _, id := range []string{"turn-a", "turn-b", "turn-c"} {
		if _, err := m.AppendTurn(ctx, th.ID, TurnOptions{TurnID: id, Prompt: "prompt " + id, Answer: "answer"}); err != nil {
			t.Fatal(err)
		}
	}
	byTurn, err := m.Fork(ctx, th.ID, ForkOptions{BeforeTurnID: "turn-b"})
	if err != nil {
		t.Fatal(err)
	}
	byMessage, err := m.Fork(ctx, th.ID, ForkOptions{BeforeUserMessage: intp(1)})
	if err != nil {
		t.Fatal(err)
	}
	if byTurn.ForkOffset != byMessage.ForkOffset || byTurn.UserMessageCount != 1 {
		t.Fatalf("fork before turn-b cut at %d with %d messages, want %d with 1", byTurn.ForkOffset, byTurn.UserMessageCount, byMessage.ForkOffset)
	}
	msg, err := m.store.UserMessage(ctx, th.ID, 1)
	if err != nil || msg.TurnID != "turn-b" || byTurn.ForkOffset != msg.CutOffset || msg.CutOffset >= msg.Offset {
		t.Fatalf("user message 1 = %+v (%v): want turn-b, cut before its turn at the fork offset %d", msg, err, byTurn.ForkOffset)
	}
	if _, err := m.Fork(ctx, th.ID, ForkOptions{BeforeTurnID: "no-such-turn"}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("fork before an unknown turn: %v, want ErrNotFound", err)
	}
}

// TestLineagePastADeletedMiddleFork: a reference fork of a reference fork,
// cut in what the middle one inherits, is based on the first thread, so
// the middle one can be deleted; the last keeps both as its ancestors,
// and a rebuild from the files says the same (the base, its ancestor,
// comes after the parent it names).
func TestLineagePastADeletedMiddleFork(t *testing.T) {
	ctx := t.Context()
	m := openTest(t)
	first := startPaginated(t, m, user("one"), assistant("a"), user("two"), assistant("b"))
	middle, err := m.Fork(ctx, first.ID, ForkOptions{BeforeUserMessage: intp(1)})
	if err != nil {
		t.Fatal(err)
	}
	last, err := m.Fork(ctx, middle.ID, ForkOptions{BeforeUserMessage: intp(0)})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Delete(ctx, middle.ID); err != nil {
		t.Fatal(err)
	}
	anc, err := m.store.Ancestors(ctx, last.ID)
	if err != nil || len(anc) != 2 || anc[0].ID != middle.ID || anc[1].ID != first.ID {
		t.Fatalf("ancestors of the last fork: %+v, %v; want the middle one, then the first", anc, err)
	}
	rep, err := indexer.Verify(ctx, m.store, m.fsys)
	if err != nil || !rep.Clean() {
		t.Fatalf("verify: %+v, %v", rep.Drifts, err)
	}
	compareRebuilds(t, m, "alpha", "beta", "archived")
}

// TestBrokenChainEverywhere: a reference fork whose base's file was removed
// by hand answers ErrBrokenChain to every read that needs the base, its
// user messages included: listing them without the inherited ones would
// contradict its count.
func TestBrokenChainEverywhere(t *testing.T) {
	ctx := t.Context()
	root := t.TempDir()
	m := openTest(t, func(o *Options) { o.Root = root })
	parent := startPaginated(t, m, user("one"), user("two"))
	one := 1
	fork, err := m.Fork(ctx, parent.ID, ForkOptions{BeforeUserMessage: &one})
	if err != nil || fork.BaseID != parent.ID {
		t.Fatalf("fork: base %q, %v; want a reference fork of %s", fork.BaseID, err, parent.ID)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(root, filepath.FromSlash(parent.RolloutPath))); err != nil {
		t.Fatal(err)
	}
	again := openTest(t, func(o *Options) { o.Root = root }) // its sync drops the parent's row
	if _, err := again.Get(ctx, parent.ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("the parent after its file went: %v, want ErrNotFound", err)
	}
	reads := []struct {
		name string
		call func() error
	}{
		{"ReadFrom", func() error {
			rc, err := again.ReadFrom(ctx, fork.ID, -1)
			if err == nil {
				rc.Close()
			}
			return err
		}},
		{"UserMessages", func() error { _, err := again.UserMessages(ctx, fork.ID); return err }},
	}
	for _, r := range reads {
		if err := r.call(); !errors.Is(err, ErrBrokenChain) {
			t.Errorf("%s of the fork: %v, want ErrBrokenChain", r.name, err)
		}
	}
}

// TestDeleteBesideAReferenceFork: a delete and a reference fork of the
// same thread at once never leave the fork without its base. A fork made
// after the delete's first look for forks makes the delete fail with
// ErrReferenced; a fork that begins once the delete has looked again
// waits for it, then fails, leaving nothing.
func TestDeleteBesideAReferenceFork(t *testing.T) {
	one := 1
	t.Cleanup(func() { deleteStep = nil })
	t.Run("fork after the first look", func(t *testing.T) {
		ctx := t.Context()
		m := openTest(t)
		parent := startPaginated(t, m, user("one"), user("two"))
		var fork Thread
		var forkErr error
		deleteStep = func(step string) {
			if step == "checked" {
				fork, forkErr = m.Fork(ctx, parent.ID, ForkOptions{BeforeUserMessage: &one})
			}
		}
		err := m.Delete(ctx, parent.ID)
		deleteStep = nil
		if forkErr != nil {
			t.Fatal(forkErr)
		}
		if !errors.Is(err, ErrReferenced) {
			t.Fatalf("delete with a fork made meanwhile: %v, want ErrReferenced", err)
		}
		if h := historyOf(t, m, fork.ID); !bytes.Contains(h, []byte(`"one"`)) {
			t.Fatalf("the fork's history lacks its parent's message:\n%s", h)
		}
		verifyClean(t, m)
	})
	t.Run("fork once the delete looked again", func(t *testing.T) {
		ctx := t.Context()
		m := openTest(t)
		parent := startPaginated(t, m, user("one"), user("two"))
		forked := make(chan error, 1)
		deleteStep = func(step string) {
			if step == "locked" {
				go func() {
					_, err := m.Fork(ctx, parent.ID, ForkOptions{BeforeUserMessage: &one})
					forked <- err
				}()
			}
		}
		err := m.Delete(ctx, parent.ID)
		deleteStep = nil
		if err != nil {
			t.Fatalf("delete: %v", err)
		}
		if err := <-forked; !errors.Is(err, ErrNotFound) {
			t.Fatalf("fork of the thread being deleted: %v, want ErrNotFound", err)
		}
		if page, err := m.List(ctx, ListOptions{}); err != nil || len(page.Threads) != 0 {
			t.Fatalf("threads after the delete: %d, %v; want none", len(page.Threads), err)
		}
		verifyClean(t, m)
	})
}

// TestWholeForkAfterARenameEndsWhereCodexNumbers: a whole reference fork
// of a thread whose file ends in thread_name_updated events (a line type
// Codex 0.169 does not read) names as end_ordinal_exclusive the ordinal of
// the first of them, the one Codex numbers its next line of the parent
// with, as Codex's own whole fork there does; its end_byte_offset is still
// the file's end, and the fork's own lines go on from that ordinal. Before,
// it named the next ordinal, and Codex showed the fork with the first turn
// it later ran on the parent (compat TestSpoolWholeForkAfterRename).
func TestWholeForkAfterARenameEndsWhereCodexNumbers(t *testing.T) {
	ctx := t.Context()
	m := openTest(t)
	parent := startPaginated(t, m, user("u1"), assistant("a1"))
	// next is the parent's next ordinal: one past its last line's.
	next := func() int64 {
		t.Helper()
		ls := lines(ownFile(t, m, parent.ID))
		n, ok, err := rollout.LineOrdinal(bytes.TrimSuffix(ls[len(ls)-1], []byte("\n")))
		if err != nil || !ok {
			t.Fatalf("last line's ordinal: %v, %v", ok, err)
		}
		return n + 1
	}
	wholeFork := func() int64 {
		t.Helper()
		p, err := m.Get(ctx, parent.ID)
		if err != nil {
			t.Fatal(err)
		}
		f, err := m.Fork(ctx, parent.ID, ForkOptions{})
		if err != nil {
			t.Fatal(err)
		}
		own := bytes.TrimSuffix(lines(ownFile(t, m, f.ID))[0], []byte("\n"))
		meta, err := rollout.ParseSessionMeta(own)
		if err != nil || meta.HistoryBase == nil {
			t.Fatalf("whole fork meta %+v: %v", meta, err)
		}
		if meta.HistoryBase.EndByteOffset != p.HistorySize() {
			t.Fatalf("whole fork ends at byte %d, want the parent's end %d", meta.HistoryBase.EndByteOffset, p.HistorySize())
		}
		if n, _, _ := rollout.LineOrdinal(own); n != meta.HistoryBase.EndOrdinalExclusive {
			t.Fatalf("the fork's meta has ordinal %d, want its base's end %d", n, meta.HistoryBase.EndOrdinalExclusive)
		}
		return meta.HistoryBase.EndOrdinalExclusive
	}

	// No rename at the end: the parent's next ordinal, as before.
	if got, want := wholeFork(), next(); got != want {
		t.Fatalf("whole fork of a thread ending in a message: end ordinal %d, want %d", got, want)
	}
	// Two renames at the end: the first one's ordinal.
	first := next()
	for _, name := range []string{"one", "two"} {
		if _, err := m.Rename(ctx, parent.ID, name); err != nil {
			t.Fatal(err)
		}
	}
	if got := wholeFork(); got != first {
		t.Fatalf("whole fork after two renames: end ordinal %d (parent's next %d), want %d, the first rename's", got, next(), first)
	}
	// A line after the renames: the next ordinal again.
	if _, err := m.Append(ctx, parent.ID, []rollout.Item{user("u2")}); err != nil {
		t.Fatal(err)
	}
	if got, want := wholeFork(), next(); got != want {
		t.Fatalf("whole fork of a thread ending in a message after renames: end ordinal %d, want %d", got, want)
	}
	// Renames longer together than the first window read, after a line
	// longer than a rename can be: the first rename's ordinal still.
	if _, err := m.Append(ctx, parent.ID, []rollout.Item{user(strings.Repeat("long ", 4000))}); err != nil {
		t.Fatal(err)
	}
	first = next()
	for i := range 8 {
		if _, err := m.Rename(ctx, parent.ID, fmt.Sprintf("%d %s", i, strings.Repeat("\x01", 200))); err != nil {
			t.Fatal(err)
		}
	}
	if got := wholeFork(); got != first {
		t.Fatalf("whole fork after eight long renames: end ordinal %d (parent's next %d), want %d, the first rename's", got, next(), first)
	}
	verifyClean(t, m)
}

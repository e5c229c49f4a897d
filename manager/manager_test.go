package manager

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/spoolhq/spool/codexlock"
	"github.com/spoolhq/spool/indexer"
	"github.com/spoolhq/spool/internal/fixtures"
	"github.com/spoolhq/spool/rollout"
	"github.com/spoolhq/spool/rolloutfs"
	"github.com/spoolhq/spool/store"
)

// payloadTexts returns the text of every message line after the metas, so
// tests can say which items a file holds.
func payloadTexts(t *testing.T, b []byte) []string {
	t.Helper()
	var out []string
	r := rollout.NewReader(bytes.NewReader(b), 0, 0)
	for r.Next() {
		l := r.Line()
		switch {
		case l.Type == rollout.TypeSessionMeta:
			out = append(out, "meta")
		case l.PayloadType == "message":
			c := rollout.Classify(l)
			if c.Kind == rollout.KindUserMessage {
				out = append(out, "user:"+c.Text)
			} else {
				out = append(out, "message")
			}
		default:
			out = append(out, l.PayloadType)
		}
	}
	if err := r.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// checkFork asserts that a fork's file is its own meta line followed by
// exactly the parent's bytes [0, cut).
func checkFork(t *testing.T, m *Manager, parent, child Thread, cut int64) {
	t.Helper()
	parentBytes, childBytes := readFile(t, m, parent), readFile(t, m, child)
	meta := lines(childBytes)[0]
	if !bytes.Equal(childBytes[len(meta):], parentBytes[:cut]) {
		t.Fatalf("fork %s is not its meta + parent bytes [0,%d)", child.ID, cut)
	}
	got, err := rollout.ParseSessionMeta(bytes.TrimSuffix(meta, []byte("\n")))
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != child.ID || got.ForkedFromID != parent.ID {
		t.Fatalf("fork meta id=%s forked_from=%s, want %s from %s", got.ID, got.ForkedFromID, child.ID, parent.ID)
	}
	if got.ForkPoint == nil || got.ForkPoint.ParentOffset != cut {
		t.Fatalf("fork point = %+v, want parent offset %d", got.ForkPoint, cut)
	}
	if child.ForkOffset != cut || child.ParentID != parent.ID {
		t.Fatalf("fork row: parent %q offset %d, want %q %d", child.ParentID, child.ForkOffset, parent.ID, cut)
	}
}

// forkHolding forks thread parent before its user message before and fails
// t unless the fork's file holds the lines want names (payloadTexts).
func forkHolding(t *testing.T, m *Manager, parent string, before int, want []string) Thread {
	t.Helper()
	child, err := m.Fork(t.Context(), parent, ForkOptions{BeforeUserMessage: &before})
	if err != nil {
		t.Fatal(err)
	}
	if got := payloadTexts(t, readFile(t, m, child)); strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("fork before user message %d holds %v, want %v", before, got, want)
	}
	return child
}

// TestDropsFromLastUserOnly ports Codex's drops_from_last_user_only: items
// u1,a1,a2,u2,a3,reasoning,function_call,a4 forked before user message 1
// keep exactly u1,a1,a2.
func TestDropsFromLastUserOnly(t *testing.T) {
	ctx := context.Background()
	m := openTest(t)
	parent := start(t, m, user("u1"), assistant("a1"), assistant("a2"), user("u2"),
		assistant("a3"), reasoning("r"), functionCall("call"), assistant("a4"))
	if parent.UserMessageCount != 2 {
		t.Fatalf("user messages = %d, want 2", parent.UserMessageCount)
	}
	child := forkHolding(t, m, parent.ID, 1, []string{"meta", "meta", "user:u1", "message", "message"})
	msgs, err := m.UserMessages(ctx, parent.ID)
	if err != nil {
		t.Fatal(err)
	}
	checkFork(t, m, parent, child, msgs[1].Offset)
	if child.UserMessageCount != 1 || child.Preview != "" { // no prompt has its echo: Codex shows no preview
		t.Fatalf("fork row: %d user messages, preview %q", child.UserMessageCount, child.Preview)
	}
}

// TestIgnoresSessionPrefixMessagesWhenTruncating ports Codex's
// ignores_session_prefix_messages_when_truncating: AGENTS.md instructions
// and environment_context before the first prompt are not user messages.
func TestIgnoresSessionPrefixMessagesWhenTruncating(t *testing.T) {
	m := openTest(t)
	parent := start(t, m,
		user("# AGENTS.md instructions for /work\n\n<INSTRUCTIONS>\nbe nice\n</INSTRUCTIONS>"),
		user("<environment_context>\n  <cwd>/work</cwd>\n</environment_context>"),
		user("first prompt"), assistant("a1"), user("second prompt"), assistant("a2"))
	if parent.UserMessageCount != 2 {
		t.Fatalf("user messages = %d, want 2", parent.UserMessageCount)
	}
	forkHolding(t, m, parent.ID, 1, []string{"meta", "meta", "message", "message", "user:first prompt", "message"})
	forkHolding(t, m, parent.ID, 0, []string{"meta", "meta", "message", "message"}) // setup only
}

func TestForkOfForkOfFork(t *testing.T) {
	ctx := context.Background()
	m := openTest(t)
	gen := []Thread{start(t, m, user("p0"), assistant("a0"), user("p1"), assistant("a1"), user("p2"))}
	for i := 0; i < 3; i++ {
		parent := gen[len(gen)-1]
		if _, err := m.Append(ctx, parent.ID, []rollout.Item{assistant("more"), user("extra")}); err != nil {
			t.Fatal(err)
		}
		parent, _ = m.Get(ctx, parent.ID)
		msgs, err := m.UserMessages(ctx, parent.ID)
		if err != nil {
			t.Fatal(err)
		}
		n := len(msgs) - 1
		child, err := m.Fork(ctx, parent.ID, ForkOptions{BeforeUserMessage: &n})
		if err != nil {
			t.Fatal(err)
		}
		checkFork(t, m, parent, child, msgs[n].Offset)
		// The copied index rows point at the same lines in the child's file.
		childMsgs, err := m.UserMessages(ctx, child.ID)
		if err != nil {
			t.Fatal(err)
		}
		fromFile, err := rollout.CountUserMessages(bytes.NewReader(readFile(t, m, child)))
		if err != nil {
			t.Fatal(err)
		}
		if len(childMsgs) != n || len(fromFile) != n {
			t.Fatalf("fork has %d indexed / %d counted user messages, want %d", len(childMsgs), len(fromFile), n)
		}
		for i := range childMsgs {
			if childMsgs[i].Offset != fromFile[i].Offset || childMsgs[i].Line != fromFile[i].Line {
				t.Fatalf("message %d indexed at (%d, line %d), file says (%d, line %d)", i,
					childMsgs[i].Offset, childMsgs[i].Line, fromFile[i].Offset, fromFile[i].Line)
			}
		}
		gen = append(gen, child)
	}
	last := gen[3]
	anc, err := m.Ancestors(ctx, last.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(anc) != 3 {
		t.Fatalf("ancestors = %+v, want 3", anc)
	}
	for i, a := range anc {
		if want := gen[2-i].ID; a.ID != want || a.Depth != i+1 {
			t.Fatalf("ancestor %d = %s at depth %d, want %s at %d", i, a.ID, a.Depth, want, i+1)
		}
	}
	root, members, err := m.Tree(ctx, last.ID)
	if err != nil {
		t.Fatal(err)
	}
	if root.ID != gen[0].ID || len(members) != 3 {
		t.Fatalf("tree root %s with %d members, want %s with 3", root.ID, len(members), gen[0].ID)
	}
	// Deleting the middle keeps the lineage of its descendants.
	if err := m.Delete(ctx, gen[1].ID); err != nil {
		t.Fatal(err)
	}
	anc, err = m.Ancestors(ctx, last.ID)
	if err != nil || len(anc) != 3 || anc[1].ID != gen[1].ID {
		t.Fatalf("after deleting the middle, ancestors = %+v, %v", anc, err)
	}
}

func TestForkOutOfRange(t *testing.T) {
	ctx := context.Background()
	m := openTest(t)
	th := start(t, m, user("one"), assistant("a"), user("two"))
	for _, n := range []int{2, 5, -1} {
		_, err := m.Fork(ctx, th.ID, ForkOptions{BeforeUserMessage: intp(n)})
		var oor *OutOfRangeError
		if !errors.Is(err, ErrOutOfRange) || !errors.As(err, &oor) || oor.Count != 2 {
			t.Fatalf("fork before %d: err = %v, want out of range with count 2", n, err)
		}
		if !strings.Contains(err.Error(), "has 2 user messages") {
			t.Fatalf("error %q does not say how many user messages exist", err)
		}
	}
	whole, err := m.Fork(ctx, th.ID, ForkOptions{})
	if err != nil {
		t.Fatal(err)
	}
	checkFork(t, m, th, whole, th.IndexedSize)
	if whole.UserMessageCount != 2 || whole.ForkUserMessage != -1 {
		t.Fatalf("whole copy: %d user messages, fork point %d", whole.UserMessageCount, whole.ForkUserMessage)
	}
}

func TestReadFromAndTurn(t *testing.T) {
	ctx := context.Background()
	m := openTest(t)
	th := start(t, m, user("q0"), assistant("a0"), user("q1"), assistant("a1"), user("q2"))
	file := readFile(t, m, th)
	msgs, _ := m.UserMessages(ctx, th.ID)
	read := func(rc io.ReadCloser, err error) []byte { return readAll(t, rc, err) }
	got := read(m.ReadFrom(ctx, th.ID, 1))
	if !bytes.Equal(got, file[msgs[1].Offset:]) {
		t.Fatalf("ReadFrom(1) = %q", got)
	}
	got = read(m.ReadFrom(ctx, th.ID, -1))
	if !bytes.Equal(got, file) {
		t.Fatalf("ReadFrom(-1) is not the whole file")
	}
	got = read(m.ReadTurn(ctx, th.ID, 0))
	if !bytes.Equal(got, file[msgs[0].Offset:msgs[1].Offset]) {
		t.Fatalf("ReadTurn(0) = %q", got)
	}
	got = read(m.ReadTurn(ctx, th.ID, 2))
	if !bytes.Equal(got, file[msgs[2].Offset:]) {
		t.Fatalf("ReadTurn(2) = %q", got)
	}
	if _, err := m.ReadFrom(ctx, th.ID, 3); !errors.Is(err, ErrOutOfRange) {
		t.Fatalf("ReadFrom(3): %v, want ErrOutOfRange", err)
	}
}

func TestRollbackShrinksUserMessages(t *testing.T) {
	ctx := context.Background()
	m := openTest(t)
	th := start(t, m, user("u1"), assistant("a1"), user("u2"), assistant("a2"), rollback(1), user("u3"), assistant("a3"), user("u4"), assistant("a4"))
	msgs, err := m.UserMessages(ctx, th.ID)
	if err != nil {
		t.Fatal(err)
	}
	var texts []string
	for _, msg := range msgs {
		texts = append(texts, msg.Preview)
	}
	if strings.Join(texts, ",") != "u1,u3,u4" {
		t.Fatalf("user messages after rollback = %v, want u1,u3,u4", texts)
	}
	// Codex: cut before 2 cuts right before u4.
	child, err := m.Fork(ctx, th.ID, ForkOptions{BeforeUserMessage: intp(2)})
	if err != nil {
		t.Fatal(err)
	}
	checkFork(t, m, th, child, msgs[2].Offset)
	// A rollback appended in a later call removes indexed messages.
	res, err := m.Append(ctx, th.ID, []rollout.Item{rollback(2)})
	if err != nil {
		t.Fatal(err)
	}
	if res.Thread.UserMessageCount != 1 {
		t.Fatalf("after rollback(2): %d user messages, want 1", res.Thread.UserMessageCount)
	}
}

func TestArchiveRenameDelete(t *testing.T) {
	ctx := context.Background()
	m := openTest(t)
	th := start(t, m, user("hello"))
	renamed, err := m.Rename(ctx, th.ID, "greeting")
	if err != nil || renamed.Name != "greeting" {
		t.Fatalf("Rename: %+v, %v", renamed, err)
	}
	index, err := os.ReadFile(filepath.Join(m.Root(), rollout.SessionIndexFile))
	if err != nil {
		t.Fatal(err)
	}
	names, err := rollout.ReadNames(ctx, bytes.NewReader(index))
	if err != nil || names[th.ID].ThreadName != "greeting" {
		t.Fatalf("session_index.jsonl: %+v, %v", names, err)
	}
	arch, err := m.Archive(ctx, th.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !arch.Archived || !strings.HasPrefix(arch.RolloutPath, "archived_sessions/") {
		t.Fatalf("archived row: %+v", arch)
	}
	if _, err := os.Stat(filepath.Join(m.Root(), arch.RolloutPath)); err != nil {
		t.Fatalf("archived file: %v", err)
	}
	if _, err := m.Archive(ctx, th.ID); !errors.Is(err, ErrArchived) {
		t.Fatalf("second archive: %v, want ErrArchived", err)
	}
	if _, err := m.Append(ctx, th.ID, []rollout.Item{user("more")}); !errors.Is(err, ErrArchived) {
		t.Fatalf("append to archived: %v, want ErrArchived", err)
	}
	live, err := m.Unarchive(ctx, th.ID)
	if err != nil || live.Archived || live.RolloutPath != th.RolloutPath {
		t.Fatalf("Unarchive: %+v, %v", live, err)
	}
	if _, err := m.Unarchive(ctx, th.ID); !errors.Is(err, ErrNotArchived) {
		t.Fatalf("second unarchive: %v, want ErrNotArchived", err)
	}
	if err := m.Delete(ctx, th.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(m.Root(), th.RolloutPath)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("file after delete: %v", err)
	}
	if _, err := m.Get(ctx, th.ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get after delete: %v", err)
	}
	if _, err := os.Lstat(filepath.Join(m.Root(), codexlock.Dir, th.ID+".lock")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("writer lock file after delete: %v, want it removed", err)
	}
}

// TestRenameRefusesBlankNames: a name of white space alone is refused (as
// Codex refuses it) and changes nothing; an empty one clears the name.
func TestRenameRefusesBlankNames(t *testing.T) {
	ctx := t.Context()
	m := openTest(t)
	th := start(t, m, user("hello"))
	if _, err := m.Rename(ctx, th.ID, "kept"); err != nil {
		t.Fatal(err)
	}
	size := len(readFile(t, m, th))
	for _, name := range []string{" ", "\t\n", "\u00a0 "} {
		if _, err := m.Rename(ctx, th.ID, name); !errors.Is(err, ErrInvalidArgument) {
			t.Errorf("Rename(%q): %v, want ErrInvalidArgument", name, err)
		}
	}
	if got, err := m.Get(ctx, th.ID); err != nil || got.Name != "kept" || len(readFile(t, m, th)) != size {
		t.Fatalf("after the refused renames: %+v, %v; file %d bytes, want %d", got, err, len(readFile(t, m, th)), size)
	}
	if got, err := m.Rename(ctx, th.ID, ""); err != nil || got.Name != "" {
		t.Fatalf("Rename to \"\": %+v, %v, want the name cleared", got, err)
	}
}

// TestRenameWhileCodexHoldsNamesLock: a Codex that holds
// session_index.jsonl.lock (its rename or delete is rewriting the file)
// makes a rename wait; one that holds it longer than the FS waits makes
// the rename fail with ErrBusy, which a client retries, and a rename after
// it is released goes through.
func TestRenameWhileCodexHoldsNamesLock(t *testing.T) {
	ctx := t.Context()
	root := t.TempDir()
	m := openTest(t, func(o *Options) {
		o.Root = root
		o.FS = rolloutfs.Local{Root: root, LockWait: 50 * time.Millisecond}
	})
	th := start(t, m, user("hello"))
	held := fixtures.LockFile(t, filepath.Join(root, rollout.SessionIndexFile+".lock"))
	if _, err := m.Rename(ctx, th.ID, "while held"); !errors.Is(err, ErrBusy) {
		t.Fatalf("Rename while Codex holds the names lock: %v, want ErrBusy", err)
	}
	if err := syscall.Flock(int(held.Fd()), syscall.LOCK_UN); err != nil {
		t.Fatal(err)
	}
	if got, err := m.Rename(ctx, th.ID, "after"); err != nil || got.Name != "after" {
		t.Fatalf("Rename after the lock was released: %+v, %v", got, err)
	}
}

// TestNamesKeptTrimmed: a name given to Start, Fork or Rename is kept
// without its surrounding (Unicode) white space, as Codex's
// thread/name/set keeps one (compat.TestSpoolRenameTrimsAsCodex), in the
// row and in the files a rebuilt index reads; white space inside stays.
func TestNamesKeptTrimmed(t *testing.T) {
	const typed, want = "  padded\u00a0name\n\u00a0", "padded\u00a0name"
	ctx := t.Context()
	m := openTest(t)
	parent := start(t, m, user("hello"))
	cases := []struct {
		name string
		make func() (Thread, error)
	}{
		{"start", func() (Thread, error) {
			return m.Start(ctx, StartOptions{Cwd: "/work", Source: "cli", Name: typed, HistoryMode: legacyMode})
		}},
		{"fork", func() (Thread, error) { return m.Fork(ctx, parent.ID, ForkOptions{Name: typed}) }},
		{"rename", func() (Thread, error) { return m.Rename(ctx, parent.ID, typed) }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			th, err := tc.make()
			if err != nil {
				t.Fatal(err)
			}
			if th.Name != want {
				t.Fatalf("name = %q, want %q", th.Name, want)
			}
			rebuilt, err := rebuildIndex(t, m).Get(ctx, th.ID)
			if err != nil {
				t.Fatal(err)
			}
			if rebuilt.Name != want {
				t.Fatalf("rebuilt index names it %q, want %q", rebuilt.Name, want)
			}
		})
	}
}

// TestRefusedUnderCodex: while a running Codex has a thread loaded (its
// writer lock held; Codex keeps appending to the file it opened, wherever
// it is moved, removed or not), archive, unarchive and delete fail with
// ErrBusy and change nothing; once the lock is free they go through.
func TestRefusedUnderCodex(t *testing.T) {
	ctx := t.Context()
	m := openTest(t)
	th := start(t, m, user("hello"))
	codex := func() *codexlock.Lock {
		t.Helper()
		lock, err := codexlock.TryLock(m.Root(), th.ID)
		if err != nil {
			t.Fatal(err)
		}
		return lock
	}
	stays := func(op string, rel string, archived bool) {
		t.Helper()
		if _, err := os.Stat(filepath.Join(m.Root(), rel)); err != nil {
			t.Fatalf("after the refused %s: %v", op, err)
		}
		if got, err := m.Get(ctx, th.ID); err != nil || got.Archived != archived || got.RolloutPath != rel {
			t.Fatalf("after the refused %s: %+v, %v", op, got, err)
		}
	}

	lock := codex()
	if _, err := m.Archive(ctx, th.ID); !errors.Is(err, ErrBusy) {
		t.Fatalf("archive under Codex: %v, want ErrBusy", err)
	}
	stays("archive", th.RolloutPath, false)
	lock.Unlock()
	arch, err := m.Archive(ctx, th.ID)
	if err != nil {
		t.Fatalf("archive once Codex let go: %v", err)
	}

	lock = codex()
	if _, err := m.Unarchive(ctx, th.ID); !errors.Is(err, ErrBusy) {
		t.Fatalf("unarchive under Codex: %v, want ErrBusy", err)
	}
	stays("unarchive", arch.RolloutPath, true)
	lock.Unlock()
	if _, err := m.Unarchive(ctx, th.ID); err != nil {
		t.Fatalf("unarchive once Codex let go: %v", err)
	}

	lock = codex()
	if err := m.Delete(ctx, th.ID); !errors.Is(err, ErrBusy) {
		t.Fatalf("delete under Codex: %v, want ErrBusy", err)
	}
	stays("delete", th.RolloutPath, false)
	lock.Unlock()
	if err := m.Delete(ctx, th.ID); err != nil {
		t.Fatalf("delete once Codex let go: %v", err)
	}
}

// TestBadInputChangesNothing checks that every operation on an unknown id,
// a malformed id or a path outside the root fails with a typed error and
// leaves the root as it was.
func TestBadInputChangesNothing(t *testing.T) {
	ctx := context.Background()
	m := openTest(t)
	th := start(t, m, user("keep me"))
	before := snapshot(t, m.Root())
	unknown := "019dab4f-6b3e-7c21-9a40-5d3e2f1a0b9c"
	ops := map[string]func(id string) error{
		"get":         func(id string) error { _, err := m.Get(ctx, id); return err },
		"resume":      func(id string) error { _, err := m.Resume(ctx, id); return err },
		"append":      func(id string) error { _, err := m.Append(ctx, id, []rollout.Item{user("x")}); return err },
		"fork":        func(id string) error { _, err := m.Fork(ctx, id, ForkOptions{}); return err },
		"rename":      func(id string) error { _, err := m.Rename(ctx, id, "n"); return err },
		"archive":     func(id string) error { _, err := m.Archive(ctx, id); return err },
		"unarchive":   func(id string) error { _, err := m.Unarchive(ctx, id); return err },
		"delete":      func(id string) error { return m.Delete(ctx, id) },
		"evict":       func(id string) error { return m.Evict(ctx, id) },
		"read":        func(id string) error { _, err := m.ReadFrom(ctx, id, 0); return err },
		"turn":        func(id string) error { _, err := m.ReadTurn(ctx, id, 0); return err },
		"messages":    func(id string) error { _, err := m.UserMessages(ctx, id); return err },
		"ancestors":   func(id string) error { _, err := m.Ancestors(ctx, id); return err },
		"descendants": func(id string) error { _, err := m.Descendants(ctx, id); return err },
		"tree":        func(id string) error { _, _, err := m.Tree(ctx, id); return err },
	}
	ids := []struct {
		id   string
		want error
	}{
		{unknown, ErrNotFound},
		{"../../etc/passwd", ErrInvalidID},
		{"/etc/passwd", ErrInvalidID},
		{"019dab4f-6b3e-7c21-9a40-5d3e2f1a0b9", ErrInvalidID},
		{"019dab4f-6b3e-7c21-9a40-5d3e2f1a0b9c/../x", ErrInvalidID},
		{"", ErrInvalidID},
	}
	for name, op := range ops {
		for _, tc := range ids {
			if err := op(tc.id); !errors.Is(err, tc.want) {
				t.Errorf("%s(%q) = %v, want %v", name, tc.id, err, tc.want)
			}
		}
	}
	for _, p := range []string{"/etc/passwd", "../outside/rollout-2026-04-20T10-15-30-" + unknown + ".jsonl", "sessions/../../x.jsonl", "spool.db", ""} {
		if _, err := m.ResumePath(ctx, p); !errors.Is(err, ErrInvalidPath) {
			t.Errorf("ResumePath(%q) = %v, want ErrInvalidPath", p, err)
		}
	}
	if _, err := m.Append(ctx, th.ID, []rollout.Item{{Type: "response_item", Payload: []byte(`{"a":`)}}); !errors.Is(err, ErrInvalidItem) {
		t.Errorf("append of malformed payload: %v, want ErrInvalidItem", err)
	}
	if _, err := m.AppendLines(ctx, th.ID, [][]byte{[]byte(`{"type":"x"}` + "\n" + `{"type":"y"}`)}); !errors.Is(err, ErrInvalidItem) {
		t.Errorf("append of embedded newline: %v, want ErrInvalidItem", err)
	}
	if after := snapshot(t, m.Root()); after != before {
		t.Fatalf("root changed:\nbefore %s\nafter  %s", before, after)
	}
}

// snapshot describes the rollout files under root (paths and sizes).
func snapshot(t *testing.T, root string) string {
	t.Helper()
	var b strings.Builder
	err := filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(p, ".jsonl") {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		fmt.Fprintf(&b, "%s:%d ", p[len(root):], info.Size())
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return b.String()
}

func TestSecondOpenIsLocked(t *testing.T) {
	m := openTest(t)
	_, err := Open(context.Background(), Options{Root: m.Root(), Logger: quiet})
	var held *LockedError
	if !errors.Is(err, ErrLocked) || !errors.As(err, &held) {
		t.Fatalf("second Open: %v, want ErrLocked", err)
	}
	if !strings.Contains(held.Holder, "pid") {
		t.Fatalf("holder %q does not name the process", held.Holder)
	}
}

func TestListAndSearch(t *testing.T) {
	ctx := context.Background()
	m := openTest(t)
	for _, text := range []string{"fix the flaky test", "write docs", "fix the parser"} {
		start(t, m, user(text))
	}
	page, err := m.List(ctx, store.ListOptions{Limit: 2})
	if err != nil || len(page.Threads) != 2 || page.NextCursor == "" {
		t.Fatalf("first page: %+v, %v", page, err)
	}
	next, err := m.List(ctx, store.ListOptions{Limit: 2, Cursor: page.NextCursor})
	if err != nil || len(next.Threads) != 1 || next.NextCursor != "" {
		t.Fatalf("second page: %+v, %v", next, err)
	}
	hits, err := m.Search(ctx, store.SearchOptions{Query: "fix"})
	if err != nil || len(hits) != 2 {
		t.Fatalf("search: %+v, %v", hits, err)
	}
	// A fork's inherited prompts are found in the thread that was asked
	// them, once, not again in every fork.
	fork, err := m.Fork(ctx, hits[0].ThreadID, ForkOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Append(ctx, fork.ID, []rollout.Item{user("fix it differently")}); err != nil {
		t.Fatal(err)
	}
	hits, err = m.Search(ctx, store.SearchOptions{Query: "fix"})
	if err != nil || len(hits) != 3 {
		t.Fatalf("search after fork: %+v, %v; want the two originals and the fork's own prompt", hits, err)
	}
}

// TestResumePathIndexesNewFile drops a Codex rollout into a running root
// and resumes it by path: it is indexed on the spot.
func TestResumePathIndexesNewFile(t *testing.T) {
	ctx := context.Background()
	m := openTest(t)
	const id = "019dab70-1c2d-7e3f-8a4b-9c0d1e2f3a4b"
	rel := "sessions/2026/04/20/rollout-2026-04-20T11-00-00-" + id + ".jsonl"
	// A rollback undoes the second prompt: two user messages remain.
	data := strings.Join([]string{
		`{"timestamp":"2026-04-20T11:00:01.010Z","type":"session_meta","payload":{"id":"` + id + `","timestamp":"2026-04-20T11:00:00.950Z","cwd":"/p","originator":"codex_cli_rs","cli_version":"0.125.0","source":"cli","model_provider":"openai"}}`,
		`{"timestamp":"2026-04-20T11:00:01.020Z","type":"response_item","payload":{"type":"message","role":"user","content":[{"type":"input_text","text":"What does main.go do?"}]}}`,
		`{"timestamp":"2026-04-20T11:00:01.021Z","type":"event_msg","payload":{"type":"user_message","message":"What does main.go do?","images":[],"local_images":[]}}`,
		`{"timestamp":"2026-04-20T11:01:00.000Z","type":"response_item","payload":{"type":"message","role":"user","content":[{"type":"input_text","text":"Delete the vendor dir"}]}}`,
		`{"timestamp":"2026-04-20T11:02:00.000Z","type":"event_msg","payload":{"type":"thread_rolled_back","num_turns":1}}`,
		`{"timestamp":"2026-04-20T11:02:10.000Z","type":"response_item","payload":{"type":"message","role":"user","content":[{"type":"input_text","text":"Instead, list the vendor dir"}]}}`,
	}, "\n") + "\n"
	abs := filepath.Join(m.Root(), filepath.FromSlash(rel))
	if err := os.MkdirAll(filepath.Dir(abs), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(abs, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Get(ctx, id); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get before resume: %v, want not found", err)
	}
	th, err := m.ResumePath(ctx, abs)
	if err != nil {
		t.Fatal(err)
	}
	if th.ID != id || th.UserMessageCount != 2 || th.Preview != "What does main.go do?" || th.IndexedSize != int64(len(data)) {
		t.Fatalf("resumed %+v", th)
	}
	again, err := m.ResumePath(ctx, rel)
	if err != nil || again.ID != id {
		t.Fatalf("resume by relative path: %+v, %v", again, err)
	}
}

// TestStatsCountAppends checks that Stats counts each append's index
// update once, and under SyncBatch its share of a group sync, whatever
// way concurrent appends were batched.
func TestStatsCountAppends(t *testing.T) {
	const threads, perThread = 8, 5
	for _, policy := range []rolloutfs.SyncPolicy{rolloutfs.SyncAlways, rolloutfs.SyncBatch, rolloutfs.SyncNone} {
		t.Run(policy.String(), func(t *testing.T) {
			m := openTest(t, func(o *Options) { o.Sync = policy })
			ids := make([]string, threads)
			for i := range ids {
				ids[i] = start(t, m).ID
			}
			before := m.Stats()
			var wg sync.WaitGroup
			for _, id := range ids {
				wg.Go(func() {
					for k := range perThread {
						if _, err := m.Append(t.Context(), id, []rollout.Item{user(fmt.Sprint("message ", k))}); err != nil {
							t.Error(err)
						}
					}
				})
			}
			wg.Wait()
			after := m.Stats()

			const appends = threads * perThread
			commits := after.Commits.Commits - before.Commits.Commits
			if updates := after.Commits.Updates - before.Commits.Updates; updates != appends || commits < 1 || commits > appends {
				t.Errorf("index commits: %d updates in %d commits, want %d in 1 to %d", updates, commits, appends, appends)
			}
			if after.Commits.Busy <= before.Commits.Busy {
				t.Errorf("index commits took no time: %v then %v", before.Commits.Busy, after.Commits.Busy)
			}
			syncs, requests := after.Syncs.Syncs-before.Syncs.Syncs, after.Syncs.Requests-before.Syncs.Requests
			switch {
			case policy == rolloutfs.SyncBatch && (requests != appends || syncs < 1 || syncs > appends):
				t.Errorf("group syncs: %d requests in %d syncs, want %d in 1 to %d", requests, syncs, appends, appends)
			case policy != rolloutfs.SyncBatch && after.Syncs != (rolloutfs.SyncStats{}):
				t.Errorf("group syncs under %s: %+v, want none", policy, after.Syncs)
			}
		})
	}
}

// TestSessionIndexLinkedElsewhere: a root whose session_index.jsonl is a
// link to a file elsewhere (kept with one's dotfiles) opens; a rename is
// appended to the link's target, which stays linked, and a reopen reads
// the name back through the link.
func TestSessionIndexLinkedElsewhere(t *testing.T) {
	ctx := t.Context()
	root, elsewhere := t.TempDir(), t.TempDir()
	target := filepath.Join(elsewhere, "names.jsonl")
	if err := os.WriteFile(target, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(root, rollout.SessionIndexFile)
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	m := openTest(t, func(o *Options) { o.Root = root })
	th := start(t, m, user("one"))
	if _, err := m.Rename(ctx, th.ID, "linked"); err != nil {
		t.Fatalf("rename through the link: %v", err)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if names, err := os.ReadFile(target); err != nil || !bytes.Contains(names, []byte(`"linked"`)) {
		t.Fatalf("link's target after the rename: %q, %v; want the name", names, err)
	}
	if st, err := os.Lstat(link); err != nil || st.Mode()&fs.ModeSymlink == 0 {
		t.Fatalf("%s after the rename: %v, %v; want still a link", rollout.SessionIndexFile, st, err)
	}
	again := openTest(t, func(o *Options) {
		o.Root = root
		o.IndexPath = filepath.Join(t.TempDir(), "fresh.db") // names read from the files alone
	})
	got, err := again.Get(ctx, th.ID)
	if err != nil || got.Name != "linked" {
		t.Fatalf("after a reopen on a fresh index: name %q, %v; want %q", got.Name, err, "linked")
	}
}

// TestSessionsLinkedElsewhere: a root whose sessions/ is a link to a
// directory elsewhere (moved to another disk, as Codex allows) works as if
// it were there: threads started, forked, archived and unarchived through
// it are listed, read and verify clean, in this process and after a
// reopen.
func TestSessionsLinkedElsewhere(t *testing.T) {
	ctx := t.Context()
	root, elsewhere := t.TempDir(), t.TempDir()
	if err := os.Symlink(elsewhere, filepath.Join(root, rollout.SessionsDir)); err != nil {
		t.Fatal(err)
	}
	m := openTest(t, func(o *Options) { o.Root = root })
	th := start(t, m, user("one"), user("two"))
	one := 1
	fork, err := m.Fork(ctx, th.ID, ForkOptions{BeforeUserMessage: &one})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Archive(ctx, th.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Unarchive(ctx, th.ID); err != nil {
		t.Fatalf("unarchive through the link: %v", err)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	again := openTest(t, func(o *Options) { o.Root = root })
	page, err := again.List(ctx, ListOptions{})
	if err != nil || len(page.Threads) != 2 {
		t.Fatalf("list after a reopen: %d threads, %v; want the thread and its fork", len(page.Threads), err)
	}
	for _, id := range []string{th.ID, fork.ID} {
		if _, err := again.UserMessages(ctx, id); err != nil {
			t.Fatalf("thread %s after a reopen: %v", id, err)
		}
	}
	if rep, err := indexer.Verify(ctx, again.store, rolloutfs.Local{Root: root}); err != nil || !rep.Clean() || rep.Files != 2 {
		t.Fatalf("verify: %d files, %v, %+v; want 2, clean", rep.Files, err, rep.Drifts)
	}
	if files, _ := filepath.Glob(filepath.Join(elsewhere, "*", "*", "*", "*.jsonl")); len(files) != 2 {
		t.Fatalf("files under the link's target: %v, want the two threads'", files)
	}

	// The link's target gone (a disk not mounted): the root does not
	// open, rather than take every thread for deleted.
	if err := again.Close(); err != nil {
		t.Fatal(err)
	}
	unmounted := elsewhere + ".unmounted"
	if err := os.Rename(elsewhere, unmounted); err != nil {
		t.Fatal(err)
	}
	if m, err := Open(ctx, Options{Root: root, Logger: quiet}); !errors.Is(err, syscall.ENOTDIR) {
		if err == nil {
			m.Close()
		}
		t.Fatalf("open with the link's target gone: %v, want ENOTDIR", err)
	}
	if err := os.Rename(unmounted, elsewhere); err != nil {
		t.Fatal(err)
	}
	back := openTest(t, func(o *Options) { o.Root = root })
	if page, err := back.List(ctx, ListOptions{}); err != nil || len(page.Threads) != 2 {
		t.Fatalf("list once the target is back: %d threads, %v; want 2", len(page.Threads), err)
	}
}

// TestDeleteRemovesACopyAtTheOtherPlace: a delete removes a copy of the
// thread's file that an interrupted archive left in archived_sessions/,
// which would otherwise hold the thread again at the next open.
func TestDeleteRemovesACopyAtTheOtherPlace(t *testing.T) {
	ctx := t.Context()
	root := t.TempDir()
	m := openTest(t, func(o *Options) { o.Root = root })
	th := start(t, m, user("one"))
	data, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(th.RolloutPath)))
	if err != nil {
		t.Fatal(err)
	}
	copyPath := filepath.Join(root, filepath.FromSlash(rollout.ArchivedPath(path.Base(th.RolloutPath))))
	if err := os.MkdirAll(filepath.Dir(copyPath), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(copyPath, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := m.Delete(ctx, th.ID); err != nil {
		t.Fatal(err)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	again := openTest(t, func(o *Options) { o.Root = root })
	if _, err := again.Get(ctx, th.ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("the deleted thread after a reopen: %v, want ErrNotFound", err)
	}
	if n := rolloutCount(t, root); n != 0 {
		t.Fatalf("%d rollout files left, want none", n)
	}
}

// TestArchiveAfterAMoveCutShort: an archive or unarchive killed between
// the link and the remove of its move leaves the rollout under both names
// (rolloutfs.Local moves by link and remove); the next open indexes the
// thread from its live name. Archiving it then succeeds and leaves the
// file in archived_sessions/ only: it failed with "file exists" (a 500
// from spoold), found by make crash.
func TestArchiveAfterAMoveCutShort(t *testing.T) {
	for _, tc := range []struct {
		name      string
		unarchive bool // the move cut short was an unarchive
	}{
		{"archive cut short", false},
		{"unarchive cut short", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := t.Context()
			root := t.TempDir()
			m := openTest(t, func(o *Options) { o.Root = root })
			th := start(t, m, user("one"))
			live := filepath.Join(root, filepath.FromSlash(th.RolloutPath))
			archived := filepath.Join(root, filepath.FromSlash(rollout.ArchivedPath(path.Base(th.RolloutPath))))
			from, to := live, archived
			if tc.unarchive {
				if _, err := m.Archive(ctx, th.ID); err != nil {
					t.Fatal(err)
				}
				from, to = archived, live
			}
			if err := m.Close(); err != nil {
				t.Fatal(err)
			}
			// The move's link, without its remove.
			if err := os.MkdirAll(filepath.Dir(to), 0o700); err != nil {
				t.Fatal(err)
			}
			if err := os.Link(from, to); err != nil {
				t.Fatal(err)
			}

			again := openTest(t, func(o *Options) { o.Root = root })
			if got, err := again.Get(ctx, th.ID); err != nil || got.Archived {
				t.Fatalf("after the reopen: %+v, %v; want the thread live (its live name wins)", got, err)
			}
			if _, err := again.Append(ctx, th.ID, []rollout.Item{user("two")}); err != nil {
				t.Fatal(err)
			}
			got, err := again.Archive(ctx, th.ID)
			if err != nil {
				t.Fatalf("archive of a thread under both names: %v", err)
			}
			if !got.Archived || got.RolloutPath != rollout.ArchivedPath(path.Base(th.RolloutPath)) {
				t.Fatalf("archived row: %+v", got)
			}
			if _, err := os.Lstat(live); !errors.Is(err, fs.ErrNotExist) {
				t.Fatalf("the live name after the archive: %v, want it gone", err)
			}
			rc, err := again.ReadFrom(ctx, th.ID, -1)
			hist := readAll(t, rc, err)
			if texts := strings.Join(payloadTexts(t, hist), ","); !strings.HasSuffix(texts, "user:one,user:two") {
				t.Fatalf("history after the archive: %s, want it to end with user:one,user:two", texts)
			}
			if _, err := again.Unarchive(ctx, th.ID); err != nil {
				t.Fatalf("unarchive: %v", err)
			}
		})
	}
}

// TestArchiveOfAThreadWhoseFileIsGone: archiving a thread in memory whose
// file was removed behind the manager's back fails with ErrNotFound, as it
// does for one not in memory, naming the file by its place in the root.
func TestArchiveOfAThreadWhoseFileIsGone(t *testing.T) {
	ctx := t.Context()
	root := t.TempDir()
	m := openTest(t, func(o *Options) { o.Root = root })
	th := start(t, m, user("one"))
	if err := os.Remove(filepath.Join(root, filepath.FromSlash(th.RolloutPath))); err != nil {
		t.Fatal(err)
	}
	_, err := m.Archive(ctx, th.ID)
	if !errors.Is(err, ErrNotFound) || strings.Contains(err.Error(), root) {
		t.Fatalf("archive of a thread whose file is gone: %v, want ErrNotFound without the root's path", err)
	}
}

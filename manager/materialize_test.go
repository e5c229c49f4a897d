package manager

import (
	"bytes"
	"fmt"
	"regexp"
	"testing"

	"github.com/spoolhq/spool/rollout"
	"github.com/spoolhq/spool/rolloutfs"
)

// ordinalMember matches the ordinal Codex writes after a line's timestamp.
var ordinalMember = regexp.MustCompile(`(?m)^(\{"timestamp":"[^"]*"),"ordinal":[0-9]+`)

// withoutOrdinals removes every line's ordinal: two histories that differ
// only in their numbering compare equal.
func withoutOrdinals(b []byte) []byte { return ordinalMember.ReplaceAll(b, []byte("$1")) }

// afterMeta returns a file's bytes after its first line.
func afterMeta(t *testing.T, file []byte) []byte {
	t.Helper()
	return afterLines(t, file, 1)
}

// afterLines returns a file's bytes after its first n lines.
func afterLines(t *testing.T, file []byte, n int) []byte {
	t.Helper()
	for range n {
		i := bytes.IndexByte(file, '\n')
		if i < 0 {
			t.Fatal("file has too few lines")
		}
		file = file[i+1:]
	}
	return file
}

// metaIDs returns the ids of the session_meta lines a file starts with.
func metaIDs(t *testing.T, file []byte) []string {
	t.Helper()
	var ids []string
	for _, l := range lines(file) {
		meta, err := rollout.ParseSessionMeta(bytes.TrimSuffix(l, []byte("\n")))
		if err != nil {
			break
		}
		ids = append(ids, meta.ID)
	}
	return ids
}

// referenceChain makes the chain of TestReferenceForks: a paginated parent
// (the seed's drops_from_last_user_only items), f1 a reference fork before
// its user message 1 with lines of its own, f2 a whole fork of f1 and f3 a
// fork of f2 before its user message 1 (whose base is f1).
func referenceChain(t *testing.T, m *Manager) (parent, f1, f2, f3 Thread) {
	t.Helper()
	ctx := t.Context()
	parent = startPaginated(t, m, user("u1"), assistant("a1"), assistant("a2"), user("u2"), assistant("a3"), reasoning("r"), functionCall("call"), assistant("a4"))
	var err error
	if f1, err = m.Fork(ctx, parent.ID, ForkOptions{BeforeUserMessage: intp(1)}); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Append(ctx, f1.ID, []rollout.Item{user("own one"), assistant("own answer"), user("own two"), assistant("second answer")}); err != nil {
		t.Fatal(err)
	}
	if f2, err = m.Fork(ctx, f1.ID, ForkOptions{}); err != nil {
		t.Fatal(err)
	}
	if f3, err = m.Fork(ctx, f2.ID, ForkOptions{BeforeUserMessage: intp(2)}); err != nil {
		t.Fatal(err)
	}
	if f2.BaseID != f1.ID || f3.BaseID != f1.ID {
		t.Fatalf("bases: f2 %s, f3 %s; want %s (the thread whose file holds the cut)", f2.BaseID, f3.BaseID, f1.ID)
	}
	return parent, f1, f2, f3
}

// TestCopyOfReferenceForks forks paginated threads in copy mode: the child
// is a self-contained paginated file (no history_base, ordinals 0, 1, 2,
// ...) whose lines after its meta are its parent's history before the cut,
// the whole chain of bases included, byte for byte but for the ordinals;
// the seed's cases hold on it, and a rebuilt index agrees with the live one.
func TestCopyOfReferenceForks(t *testing.T) {
	ctx := t.Context()
	m := openTest(t, func(o *Options) { o.Sync = rolloutfs.SyncAlways })
	parent, f1, f2, f3 := referenceChain(t, m)

	tests := []struct {
		name     string
		parent   Thread
		before   *int
		wantMsgs int
		lineage  []string // the metas between the copy's own and the history's first line
	}{
		{"plain paginated thread, whole", parent, nil, 2, nil},
		{"drops_from_last_user_only", parent, intp(1), 1, nil},
		{"reference fork, whole", f1, nil, 3, []string{f1.ID}},
		{"fork of a fork of a fork, whole", f3, nil, 2, []string{f3.ID, f2.ID, f1.ID}},
		{"fork of a fork, cut in its base's file", f2, intp(2), 2, []string{f2.ID, f1.ID}},
		{"fork of a fork, before 0", f2, intp(0), 0, []string{f2.ID, f1.ID}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := m.Fork(ctx, tt.parent.ID, ForkOptions{Mode: ForkCopy, BeforeUserMessage: tt.before})
			if err != nil {
				t.Fatal(err)
			}
			if c.BaseID != "" || c.BaseSize != 0 || c.HistoryMode != string(rollout.HistoryPaginated) {
				t.Fatalf("copy row: base %q size %d mode %q, want a self-contained paginated thread", c.BaseID, c.BaseSize, c.HistoryMode)
			}
			if c.ParentID != tt.parent.ID || c.UserMessageCount != tt.wantMsgs {
				t.Fatalf("copy row: parent %s, %d user messages; want %s, %d", c.ParentID, c.UserMessageCount, tt.parent.ID, tt.wantMsgs)
			}
			file := ownFile(t, m, c.ID)
			checkOrdinals(t, file)
			meta, err := rollout.ParseSessionMeta(bytes.TrimSuffix(file[:bytes.IndexByte(file, '\n')+1], []byte("\n")))
			if err != nil || meta.HistoryBase != nil || meta.ForkedFromID != tt.parent.ID {
				t.Fatalf("copy meta: base %+v, forked from %q (%v); want no base, %s", meta.HistoryBase, meta.ForkedFromID, err, tt.parent.ID)
			}
			want := historyOf(t, m, tt.parent.ID)
			if tt.before != nil {
				msg, err := m.store.UserMessage(ctx, tt.parent.ID, *tt.before)
				if err != nil {
					t.Fatal(err)
				}
				want = want[:msg.Cut()]
			}
			// The metas of its lineage down to the root of the chain, then
			// the history (which starts with the root's meta): a rebuild
			// reads the ancestry from the metas a file starts with.
			wantIDs := append(append([]string{c.ID}, tt.lineage...), parent.ID)
			if got := metaIDs(t, file); fmt.Sprint(got[:min(len(got), len(wantIDs))]) != fmt.Sprint(wantIDs) {
				t.Fatalf("copy's leading metas %v, want %v", got, wantIDs)
			}
			if got := afterLines(t, file, 1+len(tt.lineage)); !bytes.Equal(withoutOrdinals(got), withoutOrdinals(want)) {
				t.Fatalf("copy after its lineage's metas differs from the parent's history before the cut (ordinals aside):\n got %s\nwant %s", got, want)
			}
			for k := range c.UserMessageCount {
				rc, err := m.ReadTurn(ctx, c.ID, k)
				gotTurn := readAll(t, rc, err)
				rc, err = m.ReadTurn(ctx, tt.parent.ID, k)
				wantTurn := readAll(t, rc, err)
				if !bytes.Equal(withoutOrdinals(gotTurn), withoutOrdinals(wantTurn)) {
					t.Fatalf("turn %d of the copy = %q, want the parent's %q", k, gotTurn, wantTurn)
				}
			}
			// The copy is a thread like any other: it appends with the next ordinal.
			if _, err := m.Append(ctx, c.ID, []rollout.Item{user("after the copy")}); err != nil {
				t.Fatal(err)
			}
			checkOrdinals(t, ownFile(t, m, c.ID))
		})
	}

	compareRebuilds(t, m, "alpha", "beta", "archived")
}

// TestCopyOfLegacyIsByteIdentical: a copy of a legacy thread (and of a copy
// of it, and of a copy of that) holds its parent's bytes after its meta
// exactly, ordinals and all: nothing is renumbered.
func TestCopyOfLegacyIsByteIdentical(t *testing.T) {
	ctx := t.Context()
	m := openTest(t)
	th := start(t, m, user("p0"), assistant("a0"), user("p1"))
	for range 3 {
		c, err := m.Fork(ctx, th.ID, ForkOptions{Mode: ForkCopy})
		if err != nil {
			t.Fatal(err)
		}
		if got, want := afterMeta(t, ownFile(t, m, c.ID)), historyOf(t, m, th.ID); !bytes.Equal(got, want) {
			t.Fatalf("copy of legacy %s after its meta is not its history byte for byte", th.ID)
		}
		th = c
	}
}

// TestAncestorMetasAgree checks that the two places that lay out a
// self-contained history's lineage agree: the copy fork's ancestorMetas of
// a parent and SelfContainedMetas of a reference fork of that parent (used
// by export and the purge) give the same meta lines, for a thread with no
// base, chains of reference forks and a reverted reference fork.
func TestAncestorMetasAgree(t *testing.T) {
	ctx := t.Context()
	m := openTest(t)
	parent, f1, f2, f3 := referenceChain(t, m)
	_, forked := forkWithOwnTurns(t, m, nil)
	reverted, err := m.Revert(ctx, forked.ID, RevertOptions{BeforeTurnID: "turn-y"})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name      string
		parent    Thread
		wantMetas int
	}{
		{"no base", parent, 0},
		{"reference fork", f1, 1},
		{"whole fork of a reference fork", f2, 2},
		{"fork of a fork of a fork", f3, 3},
		{"reverted reference fork", reverted, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			row, err := m.store.Get(ctx, tt.parent.ID)
			if err != nil {
				t.Fatal(err)
			}
			got, err := m.ancestorMetas(ctx, row, row)
			if err != nil {
				t.Fatal(err)
			}
			child, err := m.Fork(ctx, tt.parent.ID, ForkOptions{})
			if err != nil {
				t.Fatal(err)
			}
			_, _, want, err := SelfContainedMetas(ctx, m, child)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("ancestorMetas:\n%s\nSelfContainedMetas of a fork:\n%s", got, want)
			}
			if n := bytes.Count(got, []byte{'\n'}); n != tt.wantMetas {
				t.Errorf("%d meta lines, want %d:\n%s", n, tt.wantMetas, got)
			}
		})
	}
}

package transfer

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"slices"
	"testing"

	"github.com/spoolhq/spool/backendtest"
	"github.com/spoolhq/spool/indexer"
	"github.com/spoolhq/spool/internal/storetest"
	"github.com/spoolhq/spool/manager"
	"github.com/spoolhq/spool/rollout"
	"github.com/spoolhq/spool/rolloutfs"
	"github.com/spoolhq/spool/store"
)

func openLocal(t *testing.T) *manager.Manager {
	t.Helper()
	return openRoot(t, t.TempDir())
}

func openRoot(t *testing.T, root string) *manager.Manager {
	t.Helper()
	storetest.Write(t, filepath.Join(root, manager.IndexFile))
	m, err := manager.Open(t.Context(), manager.Options{Root: root, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

func item(role, text string) rollout.Item {
	kind := "output_text"
	if role == "user" {
		kind = "input_text"
	}
	payload, _ := json.Marshal(map[string]any{"type": "message", "role": role,
		"content": []map[string]string{{"type": kind, "text": text}}})
	return rollout.Item{Type: rollout.TypeResponseItem, Payload: payload}
}

// lineage builds on b a thread with three turns, a reference fork of it
// before turn 2 with a turn of its own, and a whole fork of that fork; it
// returns the three ids, root first.
func lineage(t *testing.T, b manager.Backend) []string {
	t.Helper()
	root, err := b.Start(t.Context(), manager.StartOptions{Cwd: "/work", Source: "cli"})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if _, err := b.AppendWith(t.Context(), root.ID, []rollout.Item{item("user", fmt.Sprintf("prompt %d", i)), item("assistant", "answer")}, manager.AppendOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	two := 2
	fork, err := b.Fork(t.Context(), root.ID, manager.ForkOptions{BeforeUserMessage: &two})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.AppendWith(t.Context(), fork.ID, []rollout.Item{item("user", "fork's own")}, manager.AppendOptions{}); err != nil {
		t.Fatal(err)
	}
	grand, err := b.Fork(t.Context(), fork.ID, manager.ForkOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return []string{root.ID, fork.ID, grand.ID}
}

// said returns what thread id says on b (backendtest.Said).
func said(t *testing.T, b manager.Backend, id string) []string {
	t.Helper()
	return backendtest.Said(t, b, id)
}

// sameThreads fails unless every thread of ids says the same on both
// backends, with the same user messages, parent and ancestry.
func sameThreads(t *testing.T, from, to manager.Backend, ids []string) {
	t.Helper()
	for _, id := range ids {
		a, err := from.Get(t.Context(), id)
		if err != nil {
			t.Fatal(err)
		}
		b, err := to.Get(t.Context(), id)
		if err != nil {
			t.Fatalf("%s was not copied: %v", id, err)
		}
		if b.ParentID != a.ParentID || b.UserMessageCount != a.UserMessageCount || b.Preview != a.Preview || b.ForkUserMessage != a.ForkUserMessage {
			t.Fatalf("%s: parent %q, %d messages, preview %q, fork point %d; want %q, %d, %q, %d", id, b.ParentID, b.UserMessageCount, b.Preview, b.ForkUserMessage,
				a.ParentID, a.UserMessageCount, a.Preview, a.ForkUserMessage)
		}
		if got, want := said(t, to, id), said(t, from, id); !slices.Equal(got, want) {
			t.Fatalf("%s says %d items there, %d here", id, len(got), len(want))
		}
		if got, want := ancestors(t, to, id), ancestors(t, from, id); !slices.Equal(got, want) {
			t.Fatalf("%s: ancestors %v, want %v", id, got, want)
		}
	}
}

func ancestors(t *testing.T, b manager.Backend, id string) []string {
	t.Helper()
	anc, err := b.(manager.Lineage).Ancestors(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, a := range anc {
		ids = append(ids, a.ID)
	}
	return ids
}

// TestCopyWithAncestry: a fork of a reference fork, copied with its
// ancestry into an empty root, arrives with its ancestors first, says what
// it said, keeps its lineage; a second copy changes nothing.
func TestCopyWithAncestry(t *testing.T) {
	root := t.TempDir()
	from, to := openLocal(t), openRoot(t, root)
	ids := lineage(t, from)
	res, err := Copy(t.Context(), from, to, ids[2], true)
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 3 || res[0].ID != ids[0] || res[2].ID != ids[2] || !res[0].Copied || !res[2].Copied {
		t.Fatalf("results %+v, want the three threads copied, root first", res)
	}
	sameThreads(t, from, to, ids)
	again, err := Copy(t.Context(), from, to, ids[2], true)
	if err != nil || slices.ContainsFunc(again, func(r Result) bool { return r.Copied }) {
		t.Fatalf("second copy: %+v, %v; want nothing copied", again, err)
	}
	verifyClosed(t, root, to)
}

// verifyClosed closes m, the manager of root, and fails unless an index
// rebuilt from root's files agrees with the one m left: the files are the
// truth on a target root too.
func verifyClosed(t *testing.T, root string, m *manager.Manager) {
	t.Helper()
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(t.Context(), filepath.Join(root, manager.IndexFile))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	rep, err := indexer.Verify(t.Context(), st, rolloutfs.Local{Root: root})
	if err != nil || !rep.Clean() {
		t.Fatalf("verify of the target root: %+v, %v", rep, err)
	}
}

// TestCopyPastAPurgedAncestor: a fork whose parent was purged is copied
// with its ancestry: the purged parent stays behind, and the fork keeps
// it as its parent and ancestor (deleted there as here), as its file says.
func TestCopyPastAPurgedAncestor(t *testing.T) {
	root := t.TempDir()
	from, to := openLocal(t), openRoot(t, root)
	ids := lineage(t, from)
	if err := from.Purge(t.Context(), ids[1]); err != nil {
		t.Fatal(err)
	}
	res, err := Copy(t.Context(), from, to, ids[2], true)
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 2 || res[0].ID != ids[0] || res[1].ID != ids[2] || !res[0].Copied || !res[1].Copied {
		t.Fatalf("results %+v, want the root and the fork copied", res)
	}
	sameThreads(t, from, to, []string{ids[0], ids[2]})
	if got, want := ancestors(t, to, ids[2]), []string{ids[1], ids[0]}; !slices.Equal(got, want) {
		t.Fatalf("ancestors %v, want %v (the purged parent, then the root)", got, want)
	}
	verifyClosed(t, root, to)
}

// TestImportRefusesAReferenceFork: a file whose history continues another
// thread's is not self-contained and is refused; nothing is created.
func TestImportRefusesAReferenceFork(t *testing.T) {
	from, to := openLocal(t), openLocal(t)
	ids := lineage(t, from)
	th, err := from.Get(t.Context(), ids[1])
	if err != nil {
		t.Fatal(err)
	}
	rc, _, err := from.ReadAfter(t.Context(), ids[1], th.BaseSize)
	if err != nil {
		t.Fatal(err)
	}
	own, _ := io.ReadAll(rc)
	rc.Close()
	if _, err := to.Import(t.Context(), bytes.NewReader(own)); !errors.Is(err, manager.ErrInvalidArgument) {
		t.Fatalf("import of a reference fork's own file: %v, want ErrInvalidArgument", err)
	}
	if page, err := to.List(t.Context(), manager.ListOptions{}); err != nil || len(page.Threads) != 0 {
		t.Fatalf("after a refused import: %d threads, %v", len(page.Threads), err)
	}
}

// TestExportReverted: a reverted thread that is no reference fork leaves
// as its history is, led by its first file's meta (its revert segment's
// meta stays where it is), and arrives with the time it was made, not the
// time of its revert.
func TestExportReverted(t *testing.T) {
	ctx := t.Context()
	local, back := openLocal(t), openLocal(t)
	th, err := local.Start(ctx, manager.StartOptions{Cwd: "/work", Source: "cli"})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"prompt 0", "prompt 1", "prompt 2"} {
		if _, err := local.AppendWith(ctx, th.ID, []rollout.Item{item("user", p), item("assistant", "answer")}, manager.AppendOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	one := 1
	if _, err := local.Revert(ctx, th.ID, manager.RevertOptions{BeforeUserMessage: &one}); err != nil {
		t.Fatal(err)
	}
	rc, _, err := local.ReadAfter(ctx, th.ID, 0)
	want := backendtest.ReadAll(t, rc, err)
	rc, err = Export(ctx, local, th.ID)
	if got := backendtest.ReadAll(t, rc, err); !bytes.Equal(got, want) {
		t.Errorf("export of a reverted thread:\n%s\nwant its history as it is:\n%s", got, want)
	}
	if _, err := Copy(ctx, local, back, th.ID, true); err != nil {
		t.Fatal(err)
	}
	a, err := local.Get(ctx, th.ID)
	if err != nil {
		t.Fatal(err)
	}
	b, err := back.Get(ctx, th.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !b.CreatedAt.Equal(a.CreatedAt) || b.UserMessageCount != a.UserMessageCount {
		t.Errorf("copied reverted thread: created %v, %d messages; want %v, %d", b.CreatedAt, b.UserMessageCount, a.CreatedAt, a.UserMessageCount)
	}
}

// TestExportRevertedReferenceFork: a reference fork reverted at a cut in
// its own part leaves led by its first file's meta, the one that names its
// base, without history_base (not its revert segment's meta), and arrives
// saying what it says, with the time it was made and its ancestry.
func TestExportRevertedReferenceFork(t *testing.T) {
	exportRevertedReferenceFork(t, openLocal(t), openLocal(t))
}

// exportRevertedReferenceFork is TestExportRevertedReferenceFork from
// local, which must revert, to back.
func exportRevertedReferenceFork(t *testing.T, local, back manager.Backend) {
	ctx := t.Context()
	rv, ok := local.(manager.Reverter)
	if !ok {
		t.Fatal("the backend reverts nothing")
	}
	ids := lineage(t, local)
	base, fork := ids[0], ids[1]
	if _, err := local.AppendWith(ctx, fork, []rollout.Item{item("assistant", "answer"), item("user", "fork's second")}, manager.AppendOptions{}); err != nil {
		t.Fatal(err)
	}
	three := 3 // the fork inherits prompts 0 and 1 and keeps its own first
	reverted, err := rv.Revert(ctx, fork, manager.RevertOptions{BeforeUserMessage: &three})
	if err != nil {
		t.Fatal(err)
	}
	if reverted.BaseID != fork {
		t.Fatalf("after the revert the fork's base is %q, want itself", reverted.BaseID)
	}
	rc, _, err := local.ReadAfter(ctx, fork, 0)
	history := backendtest.ReadAll(t, rc, err)
	var firstMeta []byte // the fork's first file's meta, which names base
	for line := range bytes.Lines(history) {
		m, err := rollout.ParseSessionMeta(bytes.TrimSuffix(line, []byte{'\n'}))
		if err == nil && m.ID == fork && m.HistoryBase != nil && m.HistoryBase.ThreadID == base {
			firstMeta = line
			break
		}
	}
	if firstMeta == nil {
		t.Fatalf("no meta of %s naming %s in its history:\n%s", fork, base, history)
	}
	unbased, err := rollout.WithoutHistoryBase(bytes.TrimSuffix(firstMeta, []byte{'\n'}))
	if err != nil {
		t.Fatal(err)
	}
	// The export is self-contained, so it counts from 0.
	want, err := io.ReadAll(rollout.Renumbered(0, bytes.NewReader(unbased)))
	if err != nil {
		t.Fatal(err)
	}

	rc, err = Export(ctx, local, fork)
	got := backendtest.ReadAll(t, rc, err)
	if first, _, _ := bytes.Cut(got, []byte{'\n'}); !bytes.Equal(first, bytes.TrimSuffix(want, []byte{'\n'})) {
		t.Errorf("export of a reverted reference fork starts with\n%s\nwant its first file's meta without history_base\n%s", first, want)
	}
	for line := range bytes.Lines(got) {
		if m, err := rollout.ParseSessionMeta(bytes.TrimSuffix(line, []byte{'\n'})); err == nil && m.HistoryBase != nil && m.HistoryBase.ThreadID != fork {
			t.Errorf("export of a reverted reference fork refers to another thread's bytes: %s", line)
		}
	}

	if _, err := Copy(ctx, local, back, fork, true); err != nil {
		t.Fatal(err)
	}
	sameThreads(t, local, back, []string{base, fork})
	a, err := local.Get(ctx, fork)
	if err != nil {
		t.Fatal(err)
	}
	b, err := back.Get(ctx, fork)
	if err != nil {
		t.Fatal(err)
	}
	if !b.CreatedAt.Equal(a.CreatedAt) {
		t.Errorf("copied reverted reference fork: created %v, want %v", b.CreatedAt, a.CreatedAt)
	}
}

// purgeOnRead is a backend whose first ReadAfter purges thread victim
// first: the purge lands between Export's look at the thread and its read.
type purgeOnRead struct {
	manager.Backend
	victim string
	done   bool
	t      *testing.T
}

func (b *purgeOnRead) ReadAfter(ctx context.Context, id string, from int64) (io.ReadCloser, int64, error) {
	if !b.done {
		b.done = true
		if err := b.Backend.(manager.Purger).Purge(ctx, b.victim); err != nil {
			b.t.Errorf("purge in the export's window: %v", err)
		}
	}
	return b.Backend.ReadAfter(ctx, id, from)
}

// TestExportAcrossAPurge: Export looks at a reference fork (its history
// starts in its base's bytes, so its own meta is moved first), then reads
// the history; a purge of the base in between makes the fork
// self-contained, a history that starts with its own meta. The export is
// the one made after the purge, not the fork's meta moved to where it
// stood before.
func TestExportAcrossAPurge(t *testing.T) {
	exportAcrossAPurge(t, openLocal(t))
}

// exportAcrossAPurge is TestExportAcrossAPurge on local, which must purge.
func exportAcrossAPurge(t *testing.T, local manager.Backend) {
	ids := lineage(t, local)
	base, fork := ids[0], ids[1]
	export := func(b manager.Backend) []byte {
		t.Helper()
		rc, err := Export(t.Context(), b, fork)
		return backendtest.ReadAll(t, rc, err)
	}
	racing := &purgeOnRead{Backend: local, victim: base, t: t}
	got := export(racing)
	if !racing.done {
		t.Fatal("the export read nothing")
	}
	if want := export(local); !bytes.Equal(got, want) {
		t.Fatalf("export across a purge of the base:\n%s\nwant, as after it:\n%s", got, want)
	}
}

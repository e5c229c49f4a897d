//go:build distributed

package transfer

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/spoolhq/spool/backendtest"
	"github.com/spoolhq/spool/indexer"
	"github.com/spoolhq/spool/internal/disttest"
	"github.com/spoolhq/spool/manager"
	"github.com/spoolhq/spool/pgbackend"
	"github.com/spoolhq/spool/rollout"
)

func openPG(t *testing.T) *pgbackend.Backend {
	t.Helper()
	b, err := pgbackend.Open(t.Context(), pgbackend.Options{DSN: disttest.DSN(t), Bucket: disttest.Bucket(t), SealBytes: 1, SealEvery: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

// TestMoveUpAndBack: a lineage moves from a local root to the distributed
// backend and from there to a new root, saying the same and keeping its
// lineage at every step; the database verifies clean.
func TestMoveUpAndBack(t *testing.T) {
	local, pg, back := openLocal(t), openPG(t), openLocal(t)
	ids := lineage(t, local)
	if _, err := Copy(t.Context(), local, pg, ids[2], true); err != nil {
		t.Fatal(err)
	}
	sameThreads(t, local, pg, ids)
	// A fork made there moves back with the rest.
	one := 1
	fork, err := pg.Fork(t.Context(), ids[2], manager.ForkOptions{BeforeUserMessage: &one})
	if err != nil {
		t.Fatal(err)
	}
	ids = append(ids, fork.ID)
	if _, err := Copy(t.Context(), pg, back, fork.ID, true); err != nil {
		t.Fatal(err)
	}
	sameThreads(t, pg, back, ids)
	if problems, err := pg.Store().Verify(t.Context()); err != nil || len(problems) > 0 {
		t.Fatalf("verify: %v, %v", problems, err)
	}
}

// TestMovePastAPurgedAncestor: a fork whose parent was purged moves up to
// the distributed backend and back to a new root with its lineage, the
// purged parent included (deleted on every side), as its file states it.
func TestMovePastAPurgedAncestor(t *testing.T) {
	root := t.TempDir()
	local, pg, back := openLocal(t), openPG(t), openRoot(t, root)
	ids := lineage(t, local)
	if err := local.Purge(t.Context(), ids[1]); err != nil {
		t.Fatal(err)
	}
	kept := []string{ids[0], ids[2]}
	want := []string{ids[1], ids[0]}
	for _, move := range []struct {
		from, to manager.Backend
	}{{local, pg}, {pg, back}} {
		if _, err := Copy(t.Context(), move.from, move.to, ids[2], true); err != nil {
			t.Fatal(err)
		}
		sameThreads(t, move.from, move.to, kept)
		if got := ancestors(t, move.to, ids[2]); !slices.Equal(got, want) {
			t.Fatalf("ancestors %v, want %v (the purged parent, then the root)", got, want)
		}
	}
	if problems, err := pg.Store().Verify(t.Context()); err != nil || len(problems) > 0 {
		t.Fatalf("verify: %v, %v", problems, err)
	}
	verifyClosed(t, root, back)
}

// TestMoveCopyFork: a copy fork moved up to the distributed backend keeps
// its fork point, and its copies of its parent's prompts are found there
// as here: in the parent only.
func TestMoveCopyFork(t *testing.T) {
	local, pg := openLocal(t), openPG(t)
	root, err := local.Start(t.Context(), manager.StartOptions{Cwd: "/work", HistoryMode: string(rollout.HistoryLegacy)})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		if _, err := local.Append(t.Context(), root.ID, []rollout.Item{item("user", fmt.Sprint("walrus ", i)), item("assistant", "noted")}); err != nil {
			t.Fatal(err)
		}
	}
	one := 1
	fork, err := local.Fork(t.Context(), root.ID, manager.ForkOptions{BeforeUserMessage: &one})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := local.Append(t.Context(), fork.ID, []rollout.Item{item("user", "walrus of its own")}); err != nil {
		t.Fatal(err)
	}
	if _, err := Copy(t.Context(), local, pg, fork.ID, true); err != nil {
		t.Fatal(err)
	}
	sameThreads(t, local, pg, []string{root.ID, fork.ID})
	if got, want := walrusHits(t, pg), walrusHits(t, local); !slices.Equal(got, want) || len(want) != 3 {
		t.Fatalf("hits there %v, here %v; want the same three", got, want)
	}
}

// TestMoveCopyOfAReferenceFork: a copy fork of a reference fork lays its
// copies out renumbered after its ancestors' metas; moved either way, with
// its lineage, each prompt is found once on the target as on the source,
// and a local target's index agrees with its files.
func TestMoveCopyOfAReferenceFork(t *testing.T) {
	move := func(t *testing.T, from, to manager.Backend) {
		ids := walrusChain(t, from)
		if _, err := Copy(t.Context(), from, to, ids[2], true); err != nil {
			t.Fatal(err)
		}
		sameThreads(t, from, to, ids)
		if here, there := walrusHits(t, from), walrusHits(t, to); len(here) != 12 || !slices.Equal(there, here) {
			t.Fatalf("hits there %v, here %v; want the same twelve", there, here)
		}
	}
	t.Run("up", func(t *testing.T) {
		move(t, openLocal(t), openPG(t))
	})
	t.Run("down", func(t *testing.T) {
		root := t.TempDir()
		local := openRoot(t, root)
		move(t, openPG(t), local)
		verifyClosed(t, root, local)
	})
}

// TestMoveAfterAPurge: a purge in the middle of a chain of reference
// forks makes the forks below it self-contained, their inherited prompts
// copies (whose fork points say where they end by line, as a copy fork's
// do); the chain then moves down to a root saying what it says here: each
// prompt is found once there as here, not in a fork as well as in the
// thread it copies, and the root's index agrees with its files.
func TestMoveAfterAPurge(t *testing.T) {
	pg, root := openPG(t), t.TempDir()
	local := openRoot(t, root)
	ids := walrusChain(t, pg)[:2]
	for _, prompts := range []int{3, 1} { // two more reference forks, each of the last
		fork, err := pg.Fork(t.Context(), ids[len(ids)-1], manager.ForkOptions{Mode: manager.ForkReference})
		if err != nil {
			t.Fatal(err)
		}
		for i := range prompts {
			if _, err := pg.AppendWith(t.Context(), fork.ID, []rollout.Item{item("user", fmt.Sprint("walrus fork ", i)), item("assistant", "noted")}, manager.AppendOptions{}); err != nil {
				t.Fatal(err)
			}
		}
		ids = append(ids, fork.ID)
	}
	// The second's bytes are in the two below it: they are rewritten.
	if err := pg.Purge(t.Context(), ids[1]); err != nil {
		t.Fatal(err)
	}
	ids = slices.Delete(ids, 1, 2)
	if _, err := Copy(t.Context(), pg, local, ids[len(ids)-1], true); err != nil {
		t.Fatal(err)
	}
	sameThreads(t, pg, local, ids)
	// The copy fork walrusChain made of the purged thread stays behind.
	here := slices.DeleteFunc(walrusHits(t, pg), func(h string) bool { return !slices.Contains(ids, strings.Fields(h)[0]) })
	if there := walrusHits(t, local); len(here) != 15 || !slices.Equal(there, here) {
		t.Fatalf("hits there %v, here %v; want the same fifteen", there, here)
	}
	verifyClosed(t, root, local)
}

// walrusChain makes a lineage on b: a paginated thread with five prompts,
// a reference fork of it with six more, and a copy fork of that with one
// more, every prompt saying walrus; it returns their ids in that order.
func walrusChain(t *testing.T, b manager.Backend) []string {
	t.Helper()
	first, err := b.Start(t.Context(), manager.StartOptions{Cwd: "/work", HistoryMode: string(rollout.HistoryPaginated)})
	if err != nil {
		t.Fatal(err)
	}
	say := func(id, text string) {
		if _, err := b.AppendWith(t.Context(), id, []rollout.Item{item("user", text), item("assistant", "noted")}, manager.AppendOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 5 { // ten lines after its meta: renumbered after another meta, one gets longer
		say(first.ID, fmt.Sprint("walrus first ", i))
	}
	ref, err := b.Fork(t.Context(), first.ID, manager.ForkOptions{Mode: manager.ForkReference})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 6 { // enough lines that renumbering changes lengths
		say(ref.ID, fmt.Sprint("walrus ref ", i))
	}
	copied, err := b.Fork(t.Context(), ref.ID, manager.ForkOptions{Mode: manager.ForkCopy})
	if err != nil {
		t.Fatal(err)
	}
	say(copied.ID, "walrus copy")
	return []string{first.ID, ref.ID, copied.ID}
}

// walrusHits returns b's hits for "walrus" as "thread ordinal", sorted.
func walrusHits(t *testing.T, b manager.Backend) []string {
	t.Helper()
	page, err := b.(manager.Searcher).SearchPage(t.Context(), manager.SearchOptions{Query: "walrus", Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, h := range page.Hits {
		got = append(got, fmt.Sprintf("%s %d", h.ThreadID, h.Ordinal))
	}
	slices.Sort(got)
	return got
}

// TestMovePreservesTimes: threads moved up to the distributed backend
// keep when they were made and last updated (their metas' and newest
// lines' times, as the local index reads them), and so list in the same
// order there; a thread started there is created when its meta says.
func TestMovePreservesTimes(t *testing.T) {
	ctx := t.Context()
	then := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	local, err := manager.Open(ctx, manager.Options{Root: t.TempDir(), Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Now: func() time.Time { then = then.Add(time.Minute); return then }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { local.Close() })
	pg := openPG(t)
	ids := lineage(t, local)
	if _, err := Copy(ctx, local, pg, ids[2], true); err != nil {
		t.Fatal(err)
	}
	for _, id := range ids {
		a, err := local.Get(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		b, err := pg.Get(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if !b.CreatedAt.Equal(a.CreatedAt) || !b.UpdatedAt.Equal(a.UpdatedAt) {
			t.Errorf("%s moved up: created %v, updated %v; want %v, %v", id, b.CreatedAt, b.UpdatedAt, a.CreatedAt, a.UpdatedAt)
		}
	}

	// A line stamped in the future dates an import no later than a local
	// index would date the file written now.
	future := `{"timestamp":"2099-01-01T00:00:00.000Z","type":"response_item","payload":{"type":"message","role":"assistant","content":[{"type":"output_text","text":"from the future"}]}}` + "\n"
	meta, err := rollout.NewSessionMetaLine("2025-03-01T12:00:00.000Z", rollout.MetaPayload{SessionMeta: rollout.SessionMeta{
		ID: "01a216d8-0000-7000-8000-000000000001", Timestamp: "2025-03-01T12:00:00.000Z", Cwd: "/work", Source: "cli"}})
	if err != nil {
		t.Fatal(err)
	}
	imported, err := pg.Import(ctx, strings.NewReader(string(meta)+future))
	if err != nil {
		t.Fatal(err)
	}
	if bound := time.Now().Add(indexer.MaxClockSkew); imported.UpdatedAt.After(bound) || imported.UpdatedAt.Before(imported.CreatedAt) {
		t.Errorf("imported with a line stamped 2099: updated %v, want between its creation %v and %v", imported.UpdatedAt, imported.CreatedAt, bound)
	}

	started, err := pg.Start(ctx, manager.StartOptions{Cwd: "/work"})
	if err != nil {
		t.Fatal(err)
	}
	rc, _, err := pg.ReadAfter(ctx, started.ID, 0)
	head, _, _ := bytes.Cut(backendtest.ReadAll(t, rc, err), []byte{'\n'})
	startMeta, err := rollout.ParseSessionMeta(head)
	if err != nil {
		t.Fatal(err)
	}
	if made, ok := rollout.ParseTimestamp(startMeta.Timestamp); !ok || !made.Equal(started.CreatedAt) {
		t.Errorf("started on the distributed backend: created %v, its meta says %s", started.CreatedAt, startMeta.Timestamp)
	}
}

// TestExportAcrossAPurgePG is TestExportAcrossAPurge on the distributed
// backend.
func TestExportAcrossAPurgePG(t *testing.T) {
	exportAcrossAPurge(t, openPG(t))
}

// TestExportRevertedReferenceForkPG is TestExportRevertedReferenceFork
// from the distributed backend, where a revert moves the cut part to a
// link and writes no meta, to a local root.
func TestExportRevertedReferenceForkPG(t *testing.T) {
	exportRevertedReferenceFork(t, openPG(t), openLocal(t))
}

// TestRevertedMoves: a reverted thread moves from a local root to the
// distributed backend, is reverted there again, and moves to a new root,
// saying at every step what it says where it was reverted: its history
// before the cut and what was appended after it.
func TestRevertedMoves(t *testing.T) {
	local, pg, back := openLocal(t), openPG(t), openLocal(t)
	revert := func(b manager.Backend, id, after string) {
		t.Helper()
		one := 1
		if _, err := b.(manager.Reverter).Revert(t.Context(), id, manager.RevertOptions{BeforeUserMessage: &one}); err != nil {
			t.Fatal(err)
		}
		if _, err := b.AppendWith(t.Context(), id, []rollout.Item{item("user", after), item("assistant", "answer")}, manager.AppendOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	th, err := local.Start(t.Context(), manager.StartOptions{Cwd: "/work", Source: "cli"})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if _, err := local.AppendWith(t.Context(), th.ID, []rollout.Item{item("user", fmt.Sprintf("prompt %d", i)), item("assistant", "answer")}, manager.AppendOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	revert(local, th.ID, "after the local revert")
	if _, err := Copy(t.Context(), local, pg, th.ID, true); err != nil {
		t.Fatal(err)
	}
	sameThreads(t, local, pg, []string{th.ID})
	revert(pg, th.ID, "after the distributed revert")
	if _, err := Copy(t.Context(), pg, back, th.ID, true); err != nil {
		t.Fatal(err)
	}
	sameThreads(t, pg, back, []string{th.ID})
	if got := said(t, back, th.ID); len(got) != 4 || !strings.Contains(got[2], "after the distributed revert") {
		t.Fatalf("the thread moved back says %q, want prompt 0, the distributed revert's prompt and their answers", got)
	}
	if problems, err := pg.Store().Verify(t.Context()); err != nil || len(problems) > 0 {
		t.Fatalf("verify: %v, %v", problems, err)
	}
}

func init() {
	for _, mode := range []rollout.HistoryMode{rollout.HistoryLegacy, rollout.HistoryPaginated} {
		streamBackends = append(streamBackends, struct {
			name string
			mode rollout.HistoryMode
			open func(t *testing.T) manager.Backend
		}{"distributed " + string(mode), mode, func(t *testing.T) manager.Backend {
			// No bucket: the sealer, which reads what it seals whole, stays
			// out of the measurement.
			b, err := pgbackend.Open(t.Context(), pgbackend.Options{DSN: disttest.DSN(t)})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { b.Close() })
			return b
		}})
	}
}

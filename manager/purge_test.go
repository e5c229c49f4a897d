package manager

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/spoolhq/spool/rollout"
	"github.com/spoolhq/spool/rolloutfs"
	"github.com/spoolhq/spool/store"
)

// TestPurgeMiddleThread purges f1, the middle of a chain of reference
// forks (Delete refuses, as Codex does): its descendants f2 and f3 become
// self-contained and read the same lines as before, ordinals aside, with
// their own meta (without history_base) and their ancestors' metas first;
// their turns (metas aside), counts, previews, parents and ancestry are unchanged; f1's
// file and rows are gone, the root is untouched, and a rebuilt index
// agrees with the live one. Purging the root then frees its last fork.
func TestPurgeMiddleThread(t *testing.T) {
	ctx := t.Context()
	m := openTest(t, func(o *Options) { o.Sync = rolloutfs.SyncAlways })
	parent, f1, f2, f3 := referenceChain(t, m)
	g, err := m.Fork(ctx, parent.ID, ForkOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var ref *ReferencedError
	if err := m.Delete(ctx, f1.ID); !errors.As(err, &ref) {
		t.Fatalf("delete of a base: %v, want a *ReferencedError", err)
	}

	type snapshot struct {
		row       Thread
		history   []byte
		own       []byte
		turns     [][]byte
		ancestors string
	}
	take := func(id string) snapshot {
		row, err := m.Get(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		s := snapshot{row: row, history: historyOf(t, m, id), own: ownFile(t, m, id)}
		for k := range row.UserMessageCount {
			rc, err := m.ReadTurn(ctx, id, k)
			s.turns = append(s.turns, withoutMetas(withoutOrdinals(readAll(t, rc, err))))
		}
		anc, err := m.Ancestors(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		var ancIDs []string
		for _, a := range anc {
			ancIDs = append(ancIDs, a.ID)
		}
		s.ancestors = fmt.Sprint(ancIDs)
		return s
	}
	// An archived descendant is rewritten where it lies and stays archived.
	if _, err := m.Archive(ctx, f3.ID); err != nil {
		t.Fatal(err)
	}
	rootBefore := take(parent.ID)
	before := map[string]snapshot{f2.ID: take(f2.ID), f3.ID: take(f3.ID)}

	if err := m.Purge(ctx, f1.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Get(ctx, f1.ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("purged thread: Get = %v, want ErrNotFound", err)
	}
	if hits, err := m.Search(ctx, store.SearchOptions{Query: "own"}); err != nil || !onlyIn(hits, f2.ID, f3.ID) {
		t.Fatalf("search after the purge = %v (%v), want hits in the materialised descendants only", hits, err)
	}
	for _, id := range []string{f2.ID, f3.ID} {
		was, now := before[id], take(id)
		if now.row.BaseID != "" || now.row.BaseSize != 0 {
			t.Fatalf("%s after the purge: base %q size %d, want self-contained", id, now.row.BaseID, now.row.BaseSize)
		}
		if now.row.Archived != was.row.Archived || !now.row.ArchivedAt.Equal(was.row.ArchivedAt) {
			t.Fatalf("%s after the purge: archived %t at %v, want %t at %v", id, now.row.Archived, now.row.ArchivedAt, was.row.Archived, was.row.ArchivedAt)
		}
		if now.row.ParentID != was.row.ParentID || now.row.UserMessageCount != was.row.UserMessageCount ||
			now.row.Preview != was.row.Preview || now.row.RolloutPath != was.row.RolloutPath || now.ancestors != was.ancestors {
			t.Fatalf("%s after the purge:\n%+v %s\nwant parent, count, preview, path and ancestry of\n%+v %s", id, now.row, now.ancestors, was.row, was.ancestors)
		}
		checkOrdinals(t, now.own)
		ownMeta := was.own[:bytes.IndexByte(was.own, '\n')+1]
		lineage := len(metaIDs(t, now.own)) - len(metaIDs(t, was.history))
		wantHistory := append(append([]byte{}, was.history[:was.row.BaseSize]...), was.history[was.row.BaseSize+int64(len(ownMeta)):]...)
		if got := afterLines(t, now.history, lineage); !bytes.Equal(withoutOrdinals(got), withoutOrdinals(wantHistory)) {
			t.Fatalf("%s after the purge reads\n%s\nwant its old history (its own meta moved first)\n%s", id, got, wantHistory)
		}
		if fmt.Sprint(now.turns) != fmt.Sprint(was.turns) {
			t.Fatalf("%s turns after the purge:\n%q\nwant\n%q", id, now.turns, was.turns)
		}
	}
	if now := take(parent.ID); !bytes.Equal(now.own, rootBefore.own) {
		t.Fatal("purging a fork changed its base's file")
	}

	compareRebuilds(t, m, "alpha", "beta", "archived")

	gHistory := historyOf(t, m, g.ID)
	if err := m.Purge(ctx, parent.ID); err != nil {
		t.Fatal(err)
	}
	gNow, err := m.Get(ctx, g.ID)
	if err != nil || gNow.BaseID != "" {
		t.Fatalf("fork of the purged root: %+v (%v), want self-contained", gNow, err)
	}
	// g's old history: the root's lines, then g's meta; now g's meta
	// leads (its parent's meta is the history's first line).
	if got, want := afterMeta(t, historyOf(t, m, g.ID)), gHistory[:len(gHistory)-lastLineLen(gHistory)]; !bytes.Equal(withoutOrdinals(got), withoutOrdinals(want)) {
		t.Fatalf("fork of the purged root reads\n%s\nwant\n%s", got, want)
	}
	if err := m.Purge(ctx, parent.ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("purge of a purged thread: %v, want ErrNotFound", err)
	}
}

// withoutMetas drops the session_meta lines of b: a thread made
// self-contained moves its own meta first.
func withoutMetas(b []byte) []byte {
	var out []byte
	for _, l := range lines(b) {
		if !bytes.Contains(l, []byte(`"type":"session_meta"`)) {
			out = append(out, l...)
		}
	}
	return out
}

// lastLineLen returns the length of the last line of b.
func lastLineLen(b []byte) int {
	return len(b) - (bytes.LastIndexByte(b[:len(b)-1], '\n') + 1)
}

// onlyIn reports whether hits is not empty and every hit is in one of ids.
func onlyIn(hits []SearchHit, ids ...string) bool {
	for _, h := range hits {
		found := false
		for _, id := range ids {
			found = found || h.ThreadID == id
		}
		if !found {
			return false
		}
	}
	return len(hits) > 0
}

// TestMaterializeHoldsPlace: a purge makes the forks of the purged thread
// self-contained by replacing their files; between a replace and the
// index commit no reader may resolve the thread's row to its file (it
// would pair the old row with the new file), so the thread's place lock
// is held there.
func TestMaterializeHoldsPlace(t *testing.T) {
	ctx := t.Context()
	m := openTest(t)
	parent, f1, _, _ := referenceChain(t, m)
	var replaced []string
	m.materializedFile = func(id string) {
		replaced = append(replaced, id)
		if place := m.placeLock(id); place.TryRLock() {
			place.RUnlock()
			t.Errorf("a reader could open %s between its file's replace and the index commit", id)
		}
	}
	if err := m.Purge(ctx, parent.ID); err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(replaced, f1.ID) {
		t.Fatalf("purge of %s replaced the files of %v, want its fork %s among them", parent.ID, replaced, f1.ID)
	}
}

// TestPurgeKeepsTheLineageOfAForkBasedPastItsParent: c is a fork of b
// whose cut lies in what b inherits from r, so its base is r; b is a
// fork of a, a of r. Purging r makes b self-contained before c (b is
// further from r). c's new file must still hold its ancestors' metas down
// to the thread its own history starts with (b's and a's), though b
// starts its own history by then. Once b is purged too, c's file alone
// says its ancestry, and a rebuild agrees with the live index.
func TestPurgeKeepsTheLineageOfAForkBasedPastItsParent(t *testing.T) {
	ctx := t.Context()
	m := openTest(t)
	r := startPaginated(t, m, user("u1"), assistant("a1"), user("u2"), assistant("a2"))
	fork := func(parent Thread, o ForkOptions, own string) Thread {
		t.Helper()
		f, err := m.Fork(ctx, parent.ID, o)
		if err != nil {
			t.Fatal(err)
		}
		if own != "" {
			if _, err := m.Append(ctx, f.ID, []rollout.Item{user(own), assistant("answer")}); err != nil {
				t.Fatal(err)
			}
		}
		return f
	}
	a := fork(r, ForkOptions{}, "own a")
	b := fork(a, ForkOptions{}, "own b")
	c := fork(b, ForkOptions{BeforeUserMessage: intp(1)}, "")
	if a.BaseID != r.ID || b.BaseID != a.ID || c.BaseID != r.ID {
		t.Fatalf("bases: a %s, b %s, c %s; want r, a, r", a.BaseID, b.BaseID, c.BaseID)
	}
	var order []string
	m.materializedFile = func(id string) { order = append(order, id) }
	if err := m.Purge(ctx, r.ID); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(order, []string{b.ID, c.ID, a.ID}) {
		t.Fatalf("made self-contained in the order %v, want b %s, c %s, a %s", order, b.ID, c.ID, a.ID)
	}
	if err := m.Purge(ctx, b.ID); err != nil {
		t.Fatal(err)
	}
	anc, err := m.Ancestors(ctx, c.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(anc) != 3 || anc[0].ID != b.ID || anc[1].ID != a.ID || anc[2].ID != r.ID {
		t.Fatalf("ancestors of c: %+v, want b, a, r", anc)
	}
	verifyClean(t, m)
	compareRebuilds(t, m, "alpha", "beta", "archived")
}

// TestPurgeKeepsTheForkPointOfACodexFork: a reference fork Codex wrote
// (its meta has history_base and no spool_fork_point) made self-contained
// by a purge of its base keeps where it was cut, and says so in its new
// meta: the index and a rebuild from the files agree on its fork point.
func TestPurgeKeepsTheForkPointOfACodexFork(t *testing.T) {
	ctx := t.Context()
	m := openTest(t)
	base := threeTurns(t, m, "paginated")
	h, data := historyTurns(t, m, base.ID)
	cut := h.Turns[1].End
	ordinal := ordinalAtOffset(t, data, cut)
	at := time.Now()
	id := uuid.Must(uuid.NewV7()).String()
	meta, err := rollout.NewSessionMetaLine(rollout.FormatTimestamp(at), rollout.MetaPayload{SessionMeta: rollout.SessionMeta{
		ID: id, ForkedFromID: base.ID, Timestamp: rollout.FormatTimestamp(at), Cwd: "/work", Source: "cli",
		HistoryMode: rollout.HistoryPaginated, ForkedFromOrdinalExclusive: &ordinal,
		HistoryBase: &rollout.HistoryBase{ThreadID: base.ID, EndOrdinalExclusive: ordinal, EndByteOffset: cut},
	}})
	if err == nil {
		meta, err = rollout.WithOrdinal(meta, ordinal)
	}
	if err != nil {
		t.Fatal(err)
	}
	rel, err := rollout.SessionPath(rollout.FileName(at, id))
	if err != nil {
		t.Fatal(err)
	}
	abs := filepath.Join(m.Root(), filepath.FromSlash(rel))
	if err := os.MkdirAll(filepath.Dir(abs), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(abs, meta, 0o600); err != nil {
		t.Fatal(err)
	}
	fork, err := m.ResumePath(ctx, rel)
	if err != nil {
		t.Fatal(err)
	}
	if fork.ForkUserMessage != 2 || fork.ForkOffset != cut {
		t.Fatalf("Codex's fork is cut before user message %d at %d, want 2 at %d", fork.ForkUserMessage, fork.ForkOffset, cut)
	}
	if err := m.Purge(ctx, base.ID); err != nil {
		t.Fatal(err)
	}
	after, err := m.Get(ctx, fork.ID)
	if err != nil {
		t.Fatal(err)
	}
	if after.BaseID != "" || after.ForkUserMessage != fork.ForkUserMessage || after.ForkOffset != fork.ForkOffset {
		t.Fatalf("after the purge: base %q, cut before %d at %d; want none, %d at %d", after.BaseID, after.ForkUserMessage, after.ForkOffset, fork.ForkUserMessage, fork.ForkOffset)
	}
	compareRebuilds(t, m, "alpha", "beta", "archived")
}

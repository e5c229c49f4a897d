//go:build distributed

package pgstore

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/spoolhq/spool/rollout"
)

// readHistory returns thread id's whole history.
func readHistory(t *testing.T, s *Store, id string) []byte {
	t.Helper()
	var b bytes.Buffer
	if _, err := s.WriteHistory(t.Context(), &b, id, 0); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// createPaginated creates a paginated thread holding its meta and returns
// its id.
func createPaginated(t testing.TB, s *Store) string {
	t.Helper()
	id := newID(t)
	meta, err := rollout.WithOrdinal(metaLine(id), 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Create(t.Context(), NewThread{ID: id, Lines: meta, HistoryMode: HistoryPaginated}); err != nil {
		t.Fatal(err)
	}
	return id
}

// links returns the links of thread id, by id.
func links(t *testing.T, s *Store, id string) []string {
	t.Helper()
	rows, err := s.pool.Query(t.Context(), `SELECT id FROM threads WHERE link_of = $1 ORDER BY id`, id)
	if err != nil {
		t.Fatal(err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	return ids
}

// checkClean fails unless Verify finds nothing, Repair rewrites nothing
// and no object in the bucket is left that no row names.
func checkClean(t *testing.T, s *Store) {
	t.Helper()
	if problems, err := s.Verify(t.Context()); err != nil || len(problems) > 0 {
		t.Fatalf("Verify: %v, %v", problems, err)
	}
	if repaired, problems, err := s.Repair(t.Context()); err != nil || len(repaired) > 0 || len(problems) > 0 {
		t.Fatalf("Repair rewrote %v (problems %v, %v), want nothing", repaired, problems, err)
	}
	if orphans, err := s.CollectOrphans(t.Context(), -1); err != nil || len(orphans) > 0 {
		t.Fatalf("objects no row names: %v, %v", orphans, err)
	}
}

// TestRevertLinks: a revert moves the sealed and unsealed bytes it cuts
// into into a link that the thread reads through, numbers what follows on
// from the cut, and deletes what the history no longer holds (rows and
// objects) when a later revert goes back past it; Verify, Repair and the
// collector find nothing to do after each, and links are neither listed
// nor counted.
func TestRevertLinks(t *testing.T) {
	ctx := t.Context()
	s := openStore(t, testDSN(t), newBucket(t))
	id := createPaginated(t, s)
	starts := map[string]int64{}
	appendTurn := func(turn string, seal bool) {
		t.Helper()
		th, err := s.Get(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		starts[turn] = th.HistorySize()
		lines := slices.Concat(turnLine("event_msg", "task_started", turn), userLine("prompt "+turn), turnLine("event_msg", "task_complete", turn))
		if _, err := s.Append(ctx, id, lines, -1); err != nil {
			t.Fatal(err)
		}
		if seal {
			if _, err := s.Seal(ctx, id, 1); err != nil {
				t.Fatal(err)
			}
		}
	}
	revert := func(turn string) Thread {
		t.Helper()
		th, err := s.Revert(ctx, Revert{ID: id, TurnID: turn})
		if err != nil {
			t.Fatal(err)
		}
		if th.BaseSize != starts[turn] || th.BaseThreadID() != id {
			t.Fatalf("revert before %s: base %s at %d, want %s at %d", turn, th.BaseThreadID(), th.BaseSize, id, starts[turn])
		}
		checkClean(t, s)
		return th
	}
	appendTurn("turn-a", true)
	appendTurn("turn-b", true)
	appendTurn("turn-c", false) // unsealed chunks move too
	original := readHistory(t, s, id)

	revert("turn-c")
	appendTurn("turn-x", true)
	afterX := readHistory(t, s, id)
	revert("turn-x")
	if got := links(t, s, id); len(got) != 2 {
		t.Fatalf("links after two reverts in the head = %v, want 2", got)
	}
	appendTurn("turn-y", false)
	th := revert("turn-b") // into the first link: the second and the head go
	if got := links(t, s, id); len(got) != 1 || got[0] != th.BaseID {
		t.Fatalf("links after a revert into the first = %v, want %s alone", got, th.BaseID)
	}
	h := readHistory(t, s, id)
	cut := starts["turn-b"]
	if !bytes.Equal(h[:cut], original[:cut]) || !bytes.Equal(afterX[:cut], original[:cut]) {
		t.Fatal("the history before the cut changed")
	}
	// Codex numbers a history without gaps: the new meta goes on from the
	// cut, and so does the next append.
	appendTurn("turn-z", false)
	for i, line := range bytes.SplitAfter(readHistory(t, s, id), []byte{'\n'}) {
		if len(line) == 0 {
			continue
		}
		if n, ok, err := rollout.LineOrdinal(bytes.TrimSuffix(line, []byte{'\n'})); err != nil || !ok || n != int64(i) {
			t.Fatalf("line %d has ordinal %d (%v, %v), want %d", i, n, ok, err, i)
		}
	}
	if msgs, err := s.UserMessages(ctx, id); err != nil || len(msgs) != 2 || msgs[0].Text != "prompt turn-a" || msgs[1].Text != "prompt turn-z" {
		t.Fatalf("user messages = %+v, %v; want turn-a's and turn-z's", msgs, err)
	}
	if _, err := s.UserMessageOfTurn(ctx, id, "turn-c"); !errors.Is(err, ErrTurnNotFound) {
		t.Fatalf("a turn reverted away: %v, want ErrTurnNotFound", err)
	}
	listed, err := s.List(ctx, ListOptions{})
	if err != nil || len(listed) != 1 || listed[0].ID != id {
		t.Fatalf("List = %d threads (%v), want the thread alone", len(listed), err)
	}
	if c, err := s.Counts(ctx); err != nil || c.Threads != 1 || c.UserMessages != 2 {
		t.Fatalf("Counts = %+v, %v; want 1 thread and its 2 user messages", c, err)
	}
	hits, err := s.Search(ctx, SearchOptions{Query: `"prompt"`})
	if err != nil || len(hits) != 2 || hits[0].ThreadID != id || hits[1].ThreadID != id {
		t.Fatalf("Search = %+v, %v; want turn-a's and turn-z's prompts in the thread", hits, err)
	}
	checkClean(t, s)

	// A link nothing reads through, or of a thread that is gone, is
	// reported.
	if _, err := s.pool.Exec(ctx, `INSERT INTO threads (id, link_of, created_at, updated_at, size)
		VALUES ($1 || '_x', $1, 0, 0, 0), ($2 || '_x', $2, 0, 0, 0)`, id, newID(t)); err != nil {
		t.Fatal(err)
	}
	if problems, err := s.Verify(ctx); err != nil || len(problems) != 2 {
		t.Fatalf("Verify with a stray link and an orphan one: %v, %v; want 2 problems", problems, err)
	}
	if _, err := s.pool.Exec(ctx, `DELETE FROM threads WHERE id LIKE '%\_x'`); err != nil {
		t.Fatal(err)
	}

	// Delete takes the links and their objects with the thread.
	if err := s.Purge(ctx, id); err != nil {
		t.Fatal(err)
	}
	if got := links(t, s, id); len(got) != 0 {
		t.Fatalf("links after purge = %v", got)
	}
	objects, err := s.bucket.List(context.WithoutCancel(ctx), "segments/")
	if err != nil || len(objects) != 0 {
		t.Fatalf("objects after purge = %d (%v), want none", len(objects), err)
	}
}

// TestRepairNextOrdinal: Repair gives a paginated thread whose row lost
// count of its ordinals the next ordinal its bytes say, so the next
// append goes on without a gap.
func TestRepairNextOrdinal(t *testing.T) {
	ctx := t.Context()
	s := openStore(t, testDSN(t), nil)
	id := createPaginated(t, s)
	if _, err := s.Append(ctx, id, slices.Concat(userLine("a"), otherLine(1)), -1); err != nil {
		t.Fatal(err)
	}
	if _, err := s.pool.Exec(ctx, `UPDATE threads SET next_ordinal = 7 WHERE id = $1`, id); err != nil {
		t.Fatal(err)
	}
	repaired, problems, err := s.Repair(ctx)
	if err != nil || len(problems) > 0 || !slices.Equal(repaired, []string{id}) {
		t.Fatalf("Repair = %v, %v, %v; want %s repaired", repaired, problems, err, id)
	}
	if th, err := s.Get(ctx, id); err != nil || th.NextOrdinal != 3 {
		t.Fatalf("next ordinal after Repair = %d (%v), want 3", th.NextOrdinal, err)
	}
}

// TestStaleEra: positions found in a thread's history before a revert
// are refused after it (ErrChanged), where they would name other bytes: a
// fork cut at one, and a read of the history as the caller knew it.
func TestStaleEra(t *testing.T) {
	ctx := t.Context()
	s := openStore(t, testDSN(t), nil)
	id := createPaginated(t, s)
	appendTurns := func(turns ...string) Thread {
		t.Helper()
		var res AppendResult
		for _, turn := range turns {
			var err error
			lines := slices.Concat(turnLine("event_msg", "task_started", turn), userLine("prompt "+turn), turnLine("event_msg", "task_complete", turn))
			if res, err = s.Append(ctx, id, lines, -1); err != nil {
				t.Fatal(err)
			}
		}
		return res.Thread
	}
	before := appendTurns("turn-a", "turn-b")
	if _, err := s.Revert(ctx, Revert{ID: id, TurnID: "turn-b"}); err != nil {
		t.Fatal(err)
	}
	after := appendTurns("turn-x", "turn-y")
	if after.HistorySize() <= before.HistorySize() {
		t.Fatalf("the history after the revert (%d bytes) must outgrow the one before (%d) for the stale cut to lie in it", after.HistorySize(), before.HistorySize())
	}
	child := newID(t)
	stale := before.Era()
	_, err := s.Fork(ctx, Fork{ParentID: id, ChildID: child, At: &Cut{Offset: before.HistorySize(), Messages: 2}, BeforeUserMessage: -1,
		Lines: metaLine(child), Era: &stale})
	if !errors.Is(err, ErrChanged) {
		t.Fatalf("fork at a cut found before the revert: %v, want ErrChanged", err)
	}
	if _, _, err := s.OpenHistoryIn(ctx, id, stale, 0, before.HistorySize()); !errors.Is(err, ErrChanged) {
		t.Fatalf("read of the history as it was before the revert: %v, want ErrChanged", err)
	}
	rc, _, err := s.OpenHistoryIn(ctx, id, after.Era(), 0, -1)
	if err != nil {
		t.Fatal(err)
	}
	rc.Close()
}

package manager

import (
	"path/filepath"
	"slices"
	"testing"

	"github.com/jmoiron/sqlx"

	"github.com/spoolhq/spool/indexer"
	"github.com/spoolhq/spool/internal/indextest"
	"github.com/spoolhq/spool/rollout"
	"github.com/spoolhq/spool/rolloutfs"
	"github.com/spoolhq/spool/store"
)

// TestFullRescanMendsLostSegments: the thread_segments rows of reverted
// threads deleted by hand (the sqlite3 shell, spoold stopped) left each
// row naming its newest file with no record of the earlier files its
// history runs through. reindex --full failed those files ("its base ...
// is in no indexed file of the thread") and exited 1; only a rebuild from
// nothing mended them, and that forgets the append idempotency keys. A
// full rescan reads such a thread again from its first file, whatever it
// is (a reverted thread, a reverted reference fork, a reverted copy fork),
// gives the index a rebuild gives, and keeps the keys.
//
// reindex --repair and an incremental sync (spoold's start) left them
// broken, whichever rows went: they mend them too, reading such a thread
// again as a full rescan does.
func TestFullRescanMendsLostSegments(t *testing.T) {
	for _, tc := range []struct {
		name   string
		delete string // the thread_segments rows deleted
		full   bool   // reindex --full, else reindex --repair
	}{
		{"all rows, full", `DELETE FROM thread_segments`, true},
		{"all rows, repair", `DELETE FROM thread_segments`, false},
		{"first files' rows, full", `DELETE FROM thread_segments WHERE seq = 0`, true},
		{"first files' rows, repair", `DELETE FROM thread_segments WHERE seq = 0`, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mendLostSegments(t, tc.delete, tc.full)
		})
	}
}

func mendLostSegments(t *testing.T, deleteRows string, full bool) {
	ctx := t.Context()
	root := t.TempDir()
	m := opener(t, root)()
	p := startPaginated(t, m, user("alpha one"), assistant("a1"), user("bravo two"), assistant("a2"), user("charlie three"), assistant("a3"))
	ref, err := m.Fork(ctx, p.ID, ForkOptions{Mode: ForkReference, BeforeUserMessage: intp(1)})
	if err != nil {
		t.Fatal(err)
	}
	cp, err := m.Fork(ctx, p.ID, ForkOptions{Mode: ForkCopy, BeforeUserMessage: intp(2)})
	if err != nil {
		t.Fatal(err)
	}
	keyed := AppendOptions{IdempotencyKey: "after-the-revert"}
	var first []AppendResult
	for _, th := range []Thread{ref, cp} {
		if _, err := m.Append(ctx, th.ID, []rollout.Item{user("delta own"), assistant("a4"), user("echo own"), assistant("a5")}); err != nil {
			t.Fatal(err)
		}
		n := 2 // before echo
		if th.ID == cp.ID {
			n = 3
		}
		if _, err := m.Revert(ctx, th.ID, RevertOptions{BeforeUserMessage: intp(n)}); err != nil {
			t.Fatal(err)
		}
		res, err := m.AppendWith(ctx, th.ID, []rollout.Item{user("foxtrot again"), assistant("a6")}, keyed)
		if err != nil {
			t.Fatal(err)
		}
		first = append(first, res)
	}
	if _, err := m.Revert(ctx, p.ID, RevertOptions{BeforeUserMessage: intp(2)}); err != nil {
		t.Fatal(err)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}

	index := filepath.Join(root, IndexFile)
	db, err := sqlx.Open("sqlite", "file:"+index+"?_pragma=busy_timeout(10000)") // foreign keys off, as in the sqlite3 shell; waits while the store checkpoints
	if err != nil {
		t.Fatal(err)
	}
	res, err := db.ExecContext(ctx, deleteRows)
	if err != nil {
		t.Fatal(err)
	}
	if n, err := res.RowsAffected(); err != nil || n < 3 {
		t.Fatalf("deleted %d segment rows (%v), want those of the three reverted threads", n, err)
	}
	db.Close()

	st, err := store.Open(ctx, index)
	if err != nil {
		t.Fatal(err)
	}
	var sum indexer.Summary
	if full {
		sum, err = indexer.Sync(ctx, st, rolloutfs.Local{Root: root}, indexer.SyncOptions{Full: true})
	} else {
		var rep indexer.RepairReport
		rep, err = indexer.Repair(ctx, st, rolloutfs.Local{Root: root}, indexer.TailRule{}, indexer.SyncOptions{})
		sum = rep.Sync
	}
	if err != nil {
		t.Fatal(err)
	}
	if sum.Failed != 0 {
		t.Fatalf("reindex (full %t) failed %d files: %v", full, sum.Failed, sum.Problems)
	}
	indextest.Compare(t, st, indextest.Rebuild(t, root), "alpha", "bravo", "charlie", "own", "foxtrot")
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}

	m = opener(t, root)()
	defer m.Close()
	for i, th := range []Thread{ref, cp} {
		again, err := m.AppendWith(ctx, th.ID, []rollout.Item{user("foxtrot again"), assistant("a6")}, keyed)
		if err != nil || !slices.Equal(again.Offsets, first[i].Offsets) {
			t.Errorf("the keyed append to %s sent again: offsets %v, %v; want %v replayed", th.ID, again.Offsets, err, first[i].Offsets)
		}
	}
}

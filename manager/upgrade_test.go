package manager

import (
	"path/filepath"
	"testing"

	"github.com/jmoiron/sqlx"
	_ "modernc.org/sqlite"

	"github.com/spoolhq/spool/indexer"
	"github.com/spoolhq/spool/rolloutfs"
)

// TestUpgradedIndexIsRescanned opens a root whose index an older release
// wrote: rows without cut offsets (as migration 00003 leaves them) and the
// rescan request the migration records. Open rescans every file once, so
// the index verifies clean, cut offsets and all, and the request is gone.
func TestUpgradedIndexIsRescanned(t *testing.T) {
	ctx := t.Context()
	root := t.TempDir()
	m := openTest(t, func(o *Options) { o.Root = root })
	th := start(t, m, user("one"))
	if _, err := m.AppendTurn(ctx, th.ID, TurnOptions{Prompt: "two", Answer: "ok"}); err != nil {
		t.Fatal(err)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}

	// What an index of the previous release looks like after migrating.
	db, err := sqlx.Open("sqlite", "file:"+filepath.Join(root, IndexFile))
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		`UPDATE user_messages SET cut_offset = 0, turn_id = ''`,
		`UPDATE threads SET history_mode = '', turn_offset = 0, turn_id = ''`,
		`INSERT INTO index_state (key, value) VALUES ('rescan', 'test: an upgraded index')`,
	} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	db.Close()

	m2 := openTest(t, func(o *Options) { o.Root = root })
	if need, _, err := m2.store.RescanNeeded(ctx); err != nil || need {
		t.Fatalf("rescan still requested after open: %t, %v", need, err)
	}
	msg, err := m2.store.UserMessage(ctx, th.ID, 1)
	if err != nil || msg.CutOffset <= 0 || msg.CutOffset >= msg.Offset {
		t.Fatalf("user message 1 after the rescan: %+v (%v), want a cut before its turn", msg, err)
	}
	rep, err := indexer.Verify(ctx, m2.store, rolloutfs.Local{Root: root})
	if err != nil || !rep.Clean() {
		t.Fatalf("verify after the upgrade: %+v, %v", rep.Drifts, err)
	}
}

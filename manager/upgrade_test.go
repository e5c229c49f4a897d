package manager

import (
	"bytes"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/jmoiron/sqlx"
	"modernc.org/sqlite"

	"github.com/spoolhq/spool/indexer"
	"github.com/spoolhq/spool/internal/indextest"
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

	olderIndex(t, root)

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

// TestBackgroundOpenRescansBeforeUse opens, as spoold does (Background),
// a root whose index an older release wrote and a migration asked to be
// rescanned. Until the rescan reaches a thread its rows are the old
// release's: no cut offsets, so a fork cut at the message line and kept
// the cut turn's start (a phantom interrupted turn in Codex, for good in
// the fork's file); and a thread in use while the rescan ran was skipped
// by it, so its rows stayed stale after the request was cleared. Open
// now finishes the rescan the index asks for before it returns.
func TestBackgroundOpenRescansBeforeUse(t *testing.T) {
	ctx := t.Context()
	root := t.TempDir()
	m := openTest(t, func(o *Options) { o.Root = root })
	th := start(t, m)
	for _, prompt := range []string{"one", "two"} {
		if _, err := m.AppendTurn(ctx, th.ID, TurnOptions{Prompt: prompt, Answer: "ok"}); err != nil {
			t.Fatal(err)
		}
	}
	msg, err := m.store.UserMessage(ctx, th.ID, 1)
	if err != nil {
		t.Fatal(err)
	}
	wantCut := msg.CutOffset
	if wantCut <= 0 || wantCut >= msg.Offset {
		t.Fatalf("user message 1: %+v, want a cut before its turn", msg)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}

	olderIndex(t, root)

	m2 := openTest(t, func(o *Options) { o.Root = root; o.Background = true })
	if need, _, err := m2.store.RescanNeeded(ctx); err != nil || need {
		t.Errorf("rescan still requested when Open returned: %t, %v", need, err)
	}
	one := 1
	fork, err := m2.Fork(ctx, th.ID, ForkOptions{BeforeUserMessage: &one})
	if err != nil {
		t.Fatal(err)
	}
	if fork.ForkOffset != wantCut {
		t.Errorf("fork before user message 1 cut at %d, want %d (before its turn's start)", fork.ForkOffset, wantCut)
	}
	<-m2.Reconciled()
	rep, err := indexer.Verify(ctx, m2.store, rolloutfs.Local{Root: root})
	if err != nil || !rep.Clean() {
		t.Fatalf("verify after the upgrade: %+v, %v", rep.Drifts, err)
	}
}

// olderIndex makes the closed index of root look like one an older
// release wrote, after migrating: no cut offsets, turn ids or history
// modes, and a request to rescan.
func olderIndex(t *testing.T, root string) {
	t.Helper()
	db, err := sqlx.Open("sqlite", "file:"+filepath.Join(root, IndexFile))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, q := range []string{
		`UPDATE user_messages SET cut_offset = 0, turn_id = ''`,
		`UPDATE threads SET history_mode = '', turn_offset = 0, turn_id = ''`,
		`INSERT INTO index_state (key, value) VALUES ('rescan', 'test: an upgraded index')`,
	} {
		if _, err := db.ExecContext(t.Context(), q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
}

// TestUpgradeRescanWritesInBatches opens, as spoold does, a root whose
// index a migration asked to be rescanned. That rescan runs in Open,
// before anything else can write the index, so it writes its rows in
// batches, as reindex does. It took the holds of a sync beside live
// threads and wrote each rescanned thread in a transaction of its own:
// spoold upgraded an index of 10,000 threads in 82 s before it listened,
// where `reindex` took 12 s.
func TestUpgradeRescanWritesInBatches(t *testing.T) {
	const threads = 64
	ctx := t.Context()
	root := t.TempDir()
	m := openTest(t, func(o *Options) { o.Root = root })
	for i := range threads {
		start(t, m, user(fmt.Sprintf("prompt %d", i)))
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	olderIndex(t, root)

	var commits atomic.Int64
	sqlite.RegisterConnectionHook(func(conn sqlite.ExecQuerierContext, dsn string) error {
		if hooks, ok := conn.(sqlite.HookRegisterer); ok && strings.Contains(dsn, root) {
			hooks.RegisterCommitHook(func() int32 { commits.Add(1); return 0 })
		}
		return nil
	})
	m2 := openTest(t, func(o *Options) { o.Root = root; o.Background = true })
	if need, _, err := m2.store.RescanNeeded(ctx); err != nil || need {
		t.Fatalf("rescan still requested when Open returned: %t, %v", need, err)
	}
	if got, most := commits.Load(), int64(threads/4); got > most {
		t.Errorf("the rescan of %d threads in Open committed %d transactions, want at most %d", threads, got, most)
	}
}

// TestUpgradeLogsMigration opens a root whose index an older release
// wrote (schema version 14) and checks that the log says the schema was
// migrated, from which version to which, and how long it took. The log
// said nothing of it: an operator who upgraded saw only the rescan that
// one of the migrations asked for.
func TestUpgradeLogsMigration(t *testing.T) {
	const older = 14
	root := t.TempDir()
	m := openTest(t, func(o *Options) { o.Root = root })
	start(t, m, user("one"))
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	newest := indextest.DownTo(t, filepath.Join(root, IndexFile), older)

	var logged bytes.Buffer
	openTest(t, func(o *Options) {
		o.Root = root
		o.Logger = slog.New(slog.NewTextHandler(&logged, nil))
	})
	want := fmt.Sprintf(`msg="migrated the index schema" index=%s from=%d to=%d duration=`, filepath.Join(root, IndexFile), older, newest)
	if !strings.Contains(logged.String(), want) {
		t.Fatalf("the log of the open does not say %q:\n%s", want, logged.String())
	}
}

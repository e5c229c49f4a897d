package indexer

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/spoolhq/spool/codexlock"
	"github.com/spoolhq/spool/rolloutfs"
	"github.com/spoolhq/spool/rolloutfs/faultfs"
	"github.com/spoolhq/spool/store"
)

// TestVerifyDrift tampers with a synced index, one kind of drift per case,
// and checks that Verify reports exactly that drift.
func TestVerifyDrift(t *testing.T) {
	ctx := context.Background()
	scan := func(t *testing.T, root, rel string) store.Record {
		t.Helper()
		rec, _, err := ScanFile(ctx, rolloutfs.Local{Root: root}, rel)
		if err != nil {
			t.Fatal(err)
		}
		return rec
	}
	replace := func(t *testing.T, st *store.Store, rec store.Record) {
		t.Helper()
		if err := st.Replace(ctx, []store.Record{rec}); err != nil {
			t.Fatalf("Replace: %v", err)
		}
	}
	tests := []struct {
		name   string
		tamper func(t *testing.T, st *store.Store, root string)
		kind   DriftKind
		id     string
		path   string
		detail string
	}{
		{
			name: "missing row",
			tamper: func(t *testing.T, st *store.Store, root string) {
				if err := st.Delete(ctx, idB); err != nil {
					t.Fatal(err)
				}
			},
			kind: DriftMissing, id: idB, path: relB,
		},
		{
			name: "stale row",
			tamper: func(t *testing.T, st *store.Store, root string) {
				if err := os.Remove(filepath.Join(root, relC)); err != nil {
					t.Fatal(err)
				}
			},
			kind: DriftStale, id: idC, path: relC,
		},
		{
			name: "wrong offsets",
			tamper: func(t *testing.T, st *store.Store, root string) {
				rec := scan(t, root, relA)
				rec.Messages[1].Offset++
				replace(t, st, rec)
			},
			kind: DriftMessages, id: idA, path: relA, detail: "message 1",
		},
		{
			name: "missing message",
			tamper: func(t *testing.T, st *store.Store, root string) {
				rec := scan(t, root, relA)
				rec.Messages = rec.Messages[:2]
				replace(t, st, rec)
			},
			kind: DriftMessages, id: idA, path: relA, detail: "index has 2 user messages, file has 3",
		},
		{
			name: "wrong lineage",
			tamper: func(t *testing.T, st *store.Store, root string) {
				rec := scan(t, root, relC)
				rec.Ancestors = rec.Ancestors[:1]
				replace(t, st, rec)
			},
			kind: DriftLineage, id: idC, path: relC, detail: idA,
		},
		{
			name: "wrong spawn edge",
			tamper: func(t *testing.T, st *store.Store, root string) {
				rec := scan(t, root, relB)
				rec.SpawnParentID = idA
				replace(t, st, rec)
			},
			kind: DriftLineage, id: idB, path: relB, detail: `spawned by "` + idA + `", file says ""`,
		},
		{
			name: "wrong field",
			tamper: func(t *testing.T, st *store.Store, root string) {
				rec := scan(t, root, relB)
				rec.Thread.Cwd = "/elsewhere"
				replace(t, st, rec)
			},
			kind: DriftField, id: idB, path: relB, detail: `cwd: index "/elsewhere", file "/src/alpha"`,
		},
		{
			name: "wrong name",
			tamper: func(t *testing.T, st *store.Store, root string) {
				if err := st.SetName(ctx, idA, "renamed behind our back", 1); err != nil {
					t.Fatal(err)
				}
			},
			kind: DriftField, id: idA, path: relA, detail: "name:",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := testHome(t)
			st := openStore(t)
			mustSync(t, st, root, SyncOptions{})
			tt.tamper(t, st, root)
			rep, err := Verify(ctx, st, rolloutfs.Local{Root: root})
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if rep.Clean() || len(rep.Drifts) != 1 {
				t.Fatalf("drifts = %+v, want exactly one %s", rep.Drifts, tt.kind)
			}
			d := rep.Drifts[0]
			if d.Kind != tt.kind || d.ThreadID != tt.id || d.Path != tt.path || !strings.Contains(d.Detail, tt.detail) {
				t.Fatalf("drift = %+v, want %s of %s at %s with detail containing %q", d, tt.kind, tt.id, tt.path, tt.detail)
			}
		})
	}
}

func TestVerifyReportsProblems(t *testing.T) {
	root := testHome(t)
	st := openStore(t)
	torn := `{"timestamp":"2026-05-01T09:06:00.000Z","type":"resp`
	appendTo(t, root, relA, "not json\n"+torn)
	mustSync(t, st, root, SyncOptions{})
	rep := mustVerifyClean(t, st, root)
	if len(rep.Problems) != 2 {
		t.Fatalf("problems = %+v, want a malformed line and a torn tail", rep.Problems)
	}
	if p := rep.Problems[0]; p.Kind != ProblemMalformed || p.Path != relA || p.Offset != 1643 || p.Line != 8 {
		t.Errorf("problem 0 = %+v, want malformed at offset 1643, line 8", p)
	}
	if p := rep.Problems[1]; p.Kind != ProblemTorn || p.Path != relA || p.Offset != 1643+9 {
		t.Errorf("problem 1 = %+v, want torn at offset %d", p, 1643+9)
	}
	if rep.Files != 3 || rep.Threads != 3 {
		t.Errorf("Files, Threads = %d, %d, want 3, 3", rep.Files, rep.Threads)
	}
}

func TestRepair(t *testing.T) {
	ctx := context.Background()
	root := testHome(t)
	st := openStore(t)
	mustSync(t, st, root, SyncOptions{})

	// A complete line, then a torn one: Repair keeps the first and cuts
	// the second into a side file.
	complete := userLine("2026-05-01T09:07:00.000Z", "Fourth question")
	torn := `{"timestamp":"2026-05-01T09:08:00.000Z","type":"response_item","payload":{"type":"mess`
	appendTo(t, root, relA, complete+torn)
	before, err := Verify(ctx, st, rolloutfs.Local{Root: root})
	if err != nil {
		t.Fatal(err)
	}
	if before.Clean() {
		t.Fatal("Verify before Repair is clean, want drift for the appended line")
	}

	rep, err := Repair(ctx, st, rolloutfs.Local{Root: root}, TailRule{}, SyncOptions{})
	if err != nil {
		t.Fatalf("Repair: %v", err)
	}
	wantSize := int64(1643 + len(complete))
	if len(rep.Cuts) != 1 {
		t.Fatalf("cuts = %+v, want one", rep.Cuts)
	}
	cut := rep.Cuts[0]
	if cut.Path != relA || cut.Offset != wantSize || cut.Length != int64(len(torn)) {
		t.Fatalf("cut = %+v, want %s at %d, %d bytes", cut, relA, wantSize, len(torn))
	}
	if dir, base := path.Split(cut.SideFile); dir != path.Dir(relA)+"/" || !strings.HasPrefix(base, path.Base(relA)+TornSuffix) {
		t.Fatalf("side file = %s, want %s%s<nanos> next to the rollout", cut.SideFile, relA, TornSuffix)
	}
	side, err := os.ReadFile(filepath.Join(root, cut.SideFile))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(side, []byte(torn)) {
		t.Fatalf("side file holds %q, want %q", side, torn)
	}
	if got := fileSize(t, root, relA); got != wantSize {
		t.Fatalf("rollout size = %d, want %d (the complete line kept)", got, wantSize)
	}
	if rep.Sync.CaughtUp != 1 || rep.Sync.Skipped != 2 {
		t.Fatalf("repair sync = %+v, want 1 caught up, 2 skipped", rep.Sync)
	}
	after := mustVerifyClean(t, st, root)
	if len(after.Problems) != 0 {
		t.Fatalf("problems after Repair = %+v, want none", after.Problems)
	}

	again, err := Repair(ctx, st, rolloutfs.Local{Root: root}, TailRule{}, SyncOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(again.Cuts) != 0 || again.Sync.Skipped != 3 {
		t.Fatalf("second Repair = %+v, want no cuts and 3 skipped", again)
	}

	// A whole record without its newline is ended, not cut: it is a line
	// of the thread after the repair.
	whole := strings.TrimSuffix(userLine("2026-05-01T09:09:00.000Z", "Fifth question"), "\n")
	appendTo(t, root, relA, whole)
	ended, err := Repair(ctx, st, rolloutfs.Local{Root: root}, TailRule{}, SyncOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(ended.Cuts) != 1 || !ended.Cuts[0].Ended || ended.Cuts[0].Length != 0 || ended.Cuts[0].Offset != wantSize+int64(len(whole))+1 {
		t.Fatalf("repair of a record without its newline = %+v, want it ended at %d", ended.Cuts, wantSize+int64(len(whole))+1)
	}
	th, err := st.Get(ctx, idA)
	if err != nil || th.IndexedSize != wantSize+int64(len(whole))+1 {
		t.Fatalf("thread after the record was ended: %+v, %v; want it indexed to %d", th, err, wantSize+int64(len(whole))+1)
	}
	mustVerifyClean(t, st, root)
}

// TestRepairLeavesActiveWriters: Repair cuts a torn tail only as an
// append would (TailRule): not while another process holds the thread's
// writer lock (Codex finishing the line), not while the tail is younger
// than the grace, and then it leaves the file as it was and reports why.
func TestRepairLeavesActiveWriters(t *testing.T) {
	torn := `{"timestamp":"2026-05-01T09:08:00.000Z","type":"response_item","payload":{"type":"mess`
	tests := []struct {
		name      string
		age       time.Duration // of the torn tail
		held      bool          // another process holds the writer lock
		wantCut   bool
		wantRetry time.Duration
	}{
		{name: "old and free", age: 10 * time.Second, wantCut: true},
		{name: "young", age: 2 * time.Second, wantRetry: 3 * time.Second},
		{name: "held", age: 10 * time.Second, held: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := t.Context()
			root := testHome(t)
			st := openStore(t)
			mustSync(t, st, root, SyncOptions{})
			appendTo(t, root, relA, torn)
			abs := filepath.Join(root, filepath.FromSlash(relA))
			written := time.Now().Add(-tt.age)
			if err := os.Chtimes(abs, written, written); err != nil {
				t.Fatal(err)
			}
			size := fileSize(t, root, relA)
			if tt.held {
				codex, err := codexlock.TryLock(root, idA)
				if err != nil {
					t.Fatal(err)
				}
				defer codex.Unlock()
			}
			var locked []string
			rule := TailRule{
				Grace: 5 * time.Second,
				Now:   func() time.Time { return written.Add(tt.age) },
				Lock: func(id string) (func(), error) {
					locked = append(locked, id)
					l, err := codexlock.TryLock(root, id)
					if err != nil {
						return nil, err
					}
					return func() { l.Unlock() }, nil
				},
			}
			rep, err := Repair(ctx, st, rolloutfs.Local{Root: root}, rule, SyncOptions{})
			if err != nil {
				t.Fatalf("Repair: %v", err)
			}
			if tt.wantCut {
				if len(rep.Cuts) != 1 || len(rep.Left) != 0 || fileSize(t, root, relA) != size-int64(len(torn)) {
					t.Fatalf("report %+v, size %d: want the tail cut", rep, fileSize(t, root, relA))
				}
				if len(locked) != 1 || locked[0] != idA {
					t.Fatalf("locked %v for the cut, want [%s]", locked, idA)
				}
				return
			}
			if len(rep.Cuts) != 0 || len(rep.Left) != 1 || fileSize(t, root, relA) != size {
				t.Fatalf("report %+v, size %d (was %d): want the tail left", rep, fileSize(t, root, relA), size)
			}
			left := rep.Left[0]
			if left.Path != relA || !errors.Is(left.Err, ErrWriterActive) || left.RetryAfter != tt.wantRetry {
				t.Fatalf("left %+v, want %s with ErrWriterActive, retry after %v", left, relA, tt.wantRetry)
			}
			if tt.held && !errors.Is(left.Err, codexlock.ErrHeld) {
				t.Fatalf("left because %v, want the held lock named", left.Err)
			}
		})
	}
}

// TestSelfNamingMeta: a meta naming its own thread as its fork parent or
// its spawner makes no edge: the file is indexed as a root that nothing
// spawned, beside a healthy file, and verifies clean.
func TestSelfNamingMeta(t *testing.T) {
	const ts = "2026-04-20T10:00:00.000Z"
	root := t.TempDir()
	self := line(ts, "session_meta", map[string]any{"id": idX, "timestamp": ts, "cwd": "/src/gen", "originator": "test",
		"cli_version": "1.0.0", "forked_from_id": idX,
		"source": map[string]any{"subagent": map[string]any{"thread_spawn": map[string]any{"parent_thread_id": idX, "depth": 1}}}})
	writeRollout(t, root, relFor(idX), self, userLine(ts, "hello"))
	writeRollout(t, root, relFor(idY), metaLine(ts, idY, ""), userLine(ts, "healthy"))
	st := openStore(t)
	mustSync(t, st, root, SyncOptions{Full: true})
	th, err := st.Get(t.Context(), idX)
	if err != nil {
		t.Fatal(err)
	}
	if th.ParentID != "" {
		t.Errorf("parent %q, want none", th.ParentID)
	}
	if p, err := st.SpawnParent(t.Context(), idX); err != nil || p != "" {
		t.Errorf("spawned by %q (%v), want none", p, err)
	}
	rep, err := Verify(t.Context(), st, rolloutfs.Local{Root: root})
	if err != nil || !rep.Clean() || rep.Threads != 2 {
		t.Fatalf("Verify: %d threads, drifts %v, %v; want 2 and none", rep.Threads, rep.Drifts, err)
	}
}

// TestRepairGoesOnPastAFailure: a file whose torn tail cannot be cut (its
// side file fails to be written) is reported, and the other files are
// repaired.
func TestRepairGoesOnPastAFailure(t *testing.T) {
	ctx := t.Context()
	root := testHome(t)
	st := openStore(t)
	mustSync(t, st, root, SyncOptions{})
	const torn = `{"timestamp":"2026-05-01T09:08:00.000Z","type":"respo`
	appendTo(t, root, relA, torn)
	appendTo(t, root, relB, torn)
	fsys := faultfs.New(rolloutfs.Local{Root: root})
	fsys.Inject(func(p faultfs.Point) error {
		if p.Op == faultfs.OpCutSide && p.Name == relA {
			return syscall.EIO
		}
		return nil
	})
	rep, err := Repair(ctx, st, fsys, TailRule{}, SyncOptions{})
	if err != nil {
		t.Fatalf("Repair: %v", err)
	}
	if len(rep.Failed) != 1 || rep.Failed[0].Path != relA || !strings.Contains(rep.Failed[0].Detail, syscall.EIO.Error()) {
		t.Fatalf("failed = %+v, want %s with EIO", rep.Failed, relA)
	}
	if len(rep.Cuts) != 1 || rep.Cuts[0].Path != relB {
		t.Fatalf("cuts = %+v, want %s cut", rep.Cuts, relB)
	}
}

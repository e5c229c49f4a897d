package crashtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/spoolhq/spool/indexer"
	"github.com/spoolhq/spool/internal/storetest"
	"github.com/spoolhq/spool/manager"
	"github.com/spoolhq/spool/rolloutfs"
	"github.com/spoolhq/spool/rolloutfs/faultfs"
	"github.com/spoolhq/spool/store"
)

// lineMarker is in every line the crash-point tests append, so the lines
// of a file that matter can be picked out from metas and events.
const lineMarker = "crashpoint-line"

// model is what the crash-point tests know was acknowledged: per thread,
// its lines (inherited ones included) in order, its name and whether it is
// archived. maybe holds the lines and thread of the operation that failed:
// they may or may not be there afterwards, but nothing else may.
type model struct {
	threads map[string]*threadModel
	order   []string // thread ids in creation order
	maybe   struct {
		id    string   // the thread the failed lines went to
		lines [][]byte // lines of a failed append
	}
}

type threadModel struct {
	lines    [][]byte
	name     string
	archived bool
	deleted  bool
}

func newModel() *model { return &model{threads: map[string]*threadModel{}} }

func (md *model) add(id string, lines [][]byte) {
	md.threads[id] = &threadModel{lines: lines}
	md.order = append(md.order, id)
}

// byName returns the thread ids in creation order, skipping deleted ones.
func (md *model) live() []string {
	var ids []string
	for _, id := range md.order {
		if !md.threads[id].deleted {
			ids = append(ids, id)
		}
	}
	return ids
}

// step is one operation of the crash-point sequence. It returns the error
// of the operation; on success it records its effect in md.
type step struct {
	name string
	run  func(ctx context.Context, t *testing.T, w *faultWorld) error
}

// faultWorld is one run: a root, its fault-injecting FS and a manager.
type faultWorld struct {
	root   string
	fsys   *faultfs.FS
	m      *manager.Manager
	policy rolloutfs.SyncPolicy
	mode   string // history mode of the threads it starts
	md     *model
	seq    int // lines appended so far, to make each line unique
}

func newFaultWorld(t *testing.T, c crashCase) *faultWorld {
	t.Helper()
	root := t.TempDir()
	w := &faultWorld{root: root, fsys: faultfs.New(rolloutfs.Local{Root: root}), policy: c.policy, mode: c.mode, md: newModel()}
	storetest.Write(t, filepath.Join(root, manager.IndexFile))
	w.open(t, w.fsys)
	return w
}

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func (w *faultWorld) open(t *testing.T, fsys rolloutfs.FS) {
	t.Helper()
	// No grace for torn tails: the repair step's writer is gone.
	m, err := manager.Open(t.Context(), manager.Options{Root: w.root, FS: fsys, Sync: w.policy, Logger: quietLogger(), TornGrace: time.Nanosecond})
	if err != nil {
		t.Fatalf("open manager: %v", err)
	}
	w.m = m
}

// nextLines returns n new user-message lines.
func (w *faultWorld) nextLines(n int) [][]byte {
	lines := make([][]byte, n)
	for i := range lines {
		w.seq++
		lines[i] = fmt.Appendf(nil, `{"timestamp":"2026-11-25T10:00:00.000Z","type":"response_item","payload":{"type":"message","role":"user","content":[{"type":"input_text","text":"%s %d"}]}}`+"\n", lineMarker, w.seq)
	}
	return lines
}

// start starts a thread in the world's history mode and adds it, empty,
// to the model.
func (w *faultWorld) start(ctx context.Context) error {
	th, err := w.m.Start(ctx, manager.StartOptions{Cwd: "/work", HistoryMode: w.mode})
	if err == nil {
		w.md.add(th.ID, nil)
	}
	return err
}

func (w *faultWorld) appendTo(ctx context.Context, id string, n int) error {
	lines := w.nextLines(n)
	raw := make([][]byte, n)
	for i, l := range lines {
		raw[i] = l[:len(l)-1]
	}
	w.md.maybe.id, w.md.maybe.lines = id, lines
	if _, err := w.m.AppendLines(ctx, id, raw); err != nil {
		return err
	}
	w.md.maybe.lines = nil
	w.md.threads[id].lines = append(w.md.threads[id].lines, lines...)
	return nil
}

// first returns the first thread of the model that is not deleted.
func (w *faultWorld) first() string { return w.md.live()[0] }

// crashSteps is the sequence every crash-point test runs: each kind of
// operation that writes, in an order where each has something to act on.
func crashSteps() []step {
	return []step{
		{"start", func(ctx context.Context, t *testing.T, w *faultWorld) error { return w.start(ctx) }},
		{"append", func(ctx context.Context, t *testing.T, w *faultWorld) error {
			return w.appendTo(ctx, w.first(), 2)
		}},
		{"fork", func(ctx context.Context, t *testing.T, w *faultWorld) error {
			parent := w.first()
			before := 1
			th, err := w.m.Fork(ctx, parent, manager.ForkOptions{BeforeUserMessage: &before})
			if err == nil {
				w.md.add(th.ID, append([][]byte(nil), w.md.threads[parent].lines[:1]...))
			}
			return err
		}},
		{"rename", func(ctx context.Context, t *testing.T, w *faultWorld) error {
			id := w.first()
			_, err := w.m.Rename(ctx, id, "renamed")
			if err == nil {
				w.md.threads[id].name = "renamed"
			}
			return err
		}},
		{"archive", func(ctx context.Context, t *testing.T, w *faultWorld) error {
			id := w.first()
			_, err := w.m.Archive(ctx, id)
			if err == nil {
				w.md.threads[id].archived = true
			}
			return err
		}},
		{"unarchive", func(ctx context.Context, t *testing.T, w *faultWorld) error {
			id := w.first()
			_, err := w.m.Unarchive(ctx, id)
			if err == nil {
				w.md.threads[id].archived = false
			}
			return err
		}},
		{"repair", func(ctx context.Context, t *testing.T, w *faultWorld) error {
			// A writer died mid-line: the next append cuts the torn bytes
			// into a side file first.
			id := w.first()
			if err := w.m.Evict(ctx, id); err != nil {
				t.Fatal(err)
			}
			th, err := w.m.Get(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			f, err := os.OpenFile(filepath.Join(w.root, filepath.FromSlash(th.RolloutPath)), os.O_WRONLY|os.O_APPEND, 0)
			if err != nil {
				t.Fatal(err)
			}
			f.WriteString(`{"timestamp":"2026-11-25T10:00:00.000Z","type":"respo`)
			f.Close()
			return w.appendTo(ctx, id, 1)
		}},
		{"delete", func(ctx context.Context, t *testing.T, w *faultWorld) error {
			ids := w.md.live()
			id := ids[len(ids)-1] // the fork
			err := w.m.Delete(ctx, id)
			if err == nil {
				w.md.threads[id].deleted = true
			}
			return err
		}},
	}
}

// crashCase is a sync policy and the history mode of the threads: every
// policy with legacy threads, and paginated threads (reference forks,
// ordinals) at the default policy.
type crashCase struct {
	policy rolloutfs.SyncPolicy
	mode   string
}

func (c crashCase) String() string { return c.policy.String() + "/" + c.mode }

var crashCases = []crashCase{
	{rolloutfs.SyncAlways, "legacy"}, {rolloutfs.SyncBatch, "legacy"}, {rolloutfs.SyncNone, "legacy"},
	{rolloutfs.SyncAlways, "paginated"},
}

// TestFaultPoints fails, one at a time, every fault point that each
// writing operation reaches (under each sync policy), with EIO or ENOSPC.
// After each failure the thread must still take appends; then the store
// is reopened and must hold every acknowledged line in order, nothing that
// was not acknowledged but the failed operation's own lines, no half
// thread, and an index that verifies clean.
func TestFaultPoints(t *testing.T) {
	steps := crashSteps()
	covered := map[faultfs.Op]int{}
	total := 0
	for _, c := range crashCases {
		for i, st := range steps {
			points := countPoints(t, c, steps[:i], st)
			for p := 1; p <= len(points); p++ {
				errno := []error{syscall.EIO, syscall.ENOSPC}[p%2]
				name := fmt.Sprintf("%s/%s/%d-%s-%v", c, st.name, p, points[p-1].Op, errno)
				t.Run(name, func(t *testing.T) {
					ctx := t.Context()
					w := newFaultWorld(t, c)
					replay(ctx, t, w, steps[:i])
					w.fsys.Reset()
					w.fsys.FailAt(p, errno)
					opErr := st.run(ctx, t, w)
					w.fsys.Inject(nil)
					if opErr != nil && !errors.Is(opErr, errno) {
						t.Fatalf("%s failed with %v, want an error wrapping %v", st.name, opErr, errno)
					}
					w.recoverAppend(ctx, t)
					w.reopenAndCheck(t, nil)
				})
				covered[points[p-1].Op]++
				total++
			}
		}
	}
	t.Logf("covered %d failure points: %v", total, covered)
	if total < len(crashCases)*len(steps) {
		t.Fatalf("only %d failure points covered", total)
	}
}

// sweepFaultPoints fails, one at a time, every fault point op reaches
// after setup (under c), with EIO or ENOSPC: op must fail with that error
// or succeed, and after checks the world then. It returns how many points
// of each kind it covered.
func sweepFaultPoints(t *testing.T, c crashCase, setup []step, op step, after func(t *testing.T, w *faultWorld, opErr error)) map[faultfs.Op]int {
	t.Helper()
	points := countPoints(t, c, setup, op)
	if len(points) == 0 {
		t.Fatalf("%s reached no fault point", op.name)
	}
	covered := map[faultfs.Op]int{}
	for p := 1; p <= len(points); p++ {
		errno := []error{syscall.EIO, syscall.ENOSPC}[p%2]
		t.Run(fmt.Sprintf("%s/%d-%s-%v", op.name, p, points[p-1].Op, errno), func(t *testing.T) {
			ctx := t.Context()
			w := newFaultWorld(t, c)
			replay(ctx, t, w, setup)
			w.fsys.Reset()
			w.fsys.FailAt(p, errno)
			err := op.run(ctx, t, w)
			w.fsys.Inject(nil)
			if err != nil && !errors.Is(err, errno) {
				t.Fatalf("%s failed with %v, want an error wrapping %v", op.name, err, errno)
			}
			after(t, w, err)
		})
		covered[points[p-1].Op]++
	}
	return covered
}

// countPoints runs steps and then st without faults and returns the fault
// points st reached.
func countPoints(t *testing.T, c crashCase, before []step, st step) []faultfs.Point {
	t.Helper()
	w := newFaultWorld(t, c)
	defer w.m.Close()
	replay(t.Context(), t, w, before)
	w.fsys.Reset()
	if err := st.run(t.Context(), t, w); err != nil {
		t.Fatalf("%s without faults: %v", st.name, err)
	}
	return w.fsys.Points()
}

func replay(ctx context.Context, t *testing.T, w *faultWorld, steps []step) {
	t.Helper()
	for _, st := range steps {
		if err := st.run(ctx, t, w); err != nil {
			t.Fatalf("%s without faults: %v", st.name, err)
		}
	}
}

// recoverAppend checks that a failure left the first thread usable: an
// append to it (unless archived) is acknowledged.
func (w *faultWorld) recoverAppend(ctx context.Context, t *testing.T) {
	t.Helper()
	live := w.md.live()
	if len(live) == 0 {
		return
	}
	id := live[0]
	if w.md.threads[id].archived {
		return
	}
	failed := w.md.maybe
	if err := w.appendTo(ctx, id, 1); err != nil {
		t.Fatalf("append after the failure: %v", err)
	}
	w.md.maybe = failed
}

// reopenAndCheck closes the manager, reopens the root on the plain local
// filesystem and compares every thread with the model. floor is nil for
// an exact comparison. After a power loss under sync=none, floor is the
// model as of the last writeback: a thread it holds must exist with at
// least its lines, and each thread's lines may stop anywhere between
// floor's and the model's.
func (w *faultWorld) reopenAndCheck(t *testing.T, floor *model) {
	t.Helper()
	w.m.Close()
	w.open(t, rolloutfs.Local{Root: w.root})
	defer w.m.Close()
	ctx := t.Context()

	seen := map[string]bool{}
	page, err := w.m.List(ctx, store.ListOptions{Limit: 200})
	if err != nil {
		t.Fatal(err)
	}
	for _, th := range page.Threads {
		seen[th.ID] = true
		tm, ok := w.md.threads[th.ID]
		if !ok || tm.deleted {
			t.Errorf("thread %s exists but was never acknowledged (or was deleted)", th.ID)
			continue
		}
		if th.Archived != tm.archived {
			t.Errorf("thread %s archived = %t, want %t", th.ID, th.Archived, tm.archived)
		}
		if tm.name != "" && th.Name != tm.name {
			t.Errorf("thread %s name = %q, want %q", th.ID, th.Name, tm.name)
		}
		minLines := len(tm.lines)
		if floor != nil {
			minLines = 0
			if ft, ok := floor.threads[th.ID]; ok {
				minLines = len(ft.lines)
			}
		}
		w.checkLines(t, th.ID, tm, minLines)
	}
	required := w.md
	if floor != nil {
		required = floor
	}
	for _, id := range required.live() {
		if !seen[id] && !w.md.threads[id].deleted {
			t.Errorf("acknowledged thread %s is missing", id)
		}
	}
	rep, err := indexer.Verify(ctx, w.indexStore(t), rolloutfs.Local{Root: w.root})
	if err != nil {
		t.Fatal(err)
	}
	if !rep.Clean() {
		t.Errorf("index drift after reopen: %+v", rep.Drifts)
	}
}

// checkLines compares the marked lines of thread id's history with the
// model: the acknowledged lines in order (at least minLines of them, all
// when minLines is len(tm.lines)), then possibly the failed append's
// lines, and nothing else.
func (w *faultWorld) checkLines(t *testing.T, id string, tm *threadModel, minLines int) {
	t.Helper()
	got := w.markedLines(t, id)
	want := markers(tm.lines)
	if len(got) >= minLines && len(got) < len(want) {
		want = want[:len(got)]
	}
	withMaybe := want
	if w.md.maybe.id == id && len(got) > len(want) {
		withMaybe = append(append([][]byte(nil), want...), markers(w.md.maybe.lines)...)
	}
	if !equalLines(got, want) && !equalLines(got, withMaybe) {
		t.Errorf("thread %s lines:\n%s\nwant (at least %d of):\n%s", id, join(got), minLines, join(tm.lines))
	}
}

func (w *faultWorld) indexStore(t *testing.T) *store.Store {
	t.Helper()
	st, err := store.Open(t.Context(), filepath.Join(w.root, manager.IndexFile))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// markerRE finds the marker of a line the tests appended: the lines are
// compared by it, since a paginated thread's lines get ordinals.
var markerRE = regexp.MustCompile(lineMarker + ` [0-9]+`)

func markerOf(line []byte) []byte { return markerRE.Find(line) }

func markers(lines [][]byte) [][]byte {
	out := make([][]byte, len(lines))
	for i, l := range lines {
		out[i] = markerOf(l)
	}
	return out
}

func equalLines(a, b [][]byte) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !bytes.Equal(a[i], b[i]) {
			return false
		}
	}
	return true
}

func join(lines [][]byte) string {
	var b strings.Builder
	for _, l := range lines {
		b.Write(l)
	}
	return b.String()
}

// TestPowerLoss cuts the power after each acknowledged operation of the
// sequence, under each sync policy, reopens the store and checks it. With
// always and batch every acknowledged line, thread, name and archive is
// there. With none, what was written since the last writeback may be
// lost, and only that: each thread holds at least what the writeback
// left, its acknowledged lines cut to a prefix, and nothing else.
func TestPowerLoss(t *testing.T) {
	steps := crashSteps()
	rounds := 0
	for _, c := range crashCases {
		for i := range steps {
			t.Run(fmt.Sprintf("%s/after-%s", c, steps[i].name), func(t *testing.T) {
				ctx := t.Context()
				w := newFaultWorld(t, c)
				replay(ctx, t, w, steps[:i])
				var floor *model
				if c.policy == rolloutfs.SyncNone {
					// The kernel wrote back what the steps before this one
					// left; this step's writes are in the page cache.
					w.fsys.Flush()
					floor = w.md.clone()
				}
				replay(ctx, t, w, steps[i:i+1])
				if err := w.fsys.PowerLoss(); err != nil {
					t.Fatal(err)
				}
				w.m.Close() // its handles are dead; what it says does not matter
				w.reopenAndCheck(t, floor)
			})
			rounds++
		}
	}
	t.Logf("power lost after %d acknowledged operations", rounds)
}

func (md *model) clone() *model {
	c := newModel()
	c.order = append(c.order, md.order...)
	for id, tm := range md.threads {
		cp := *tm
		cp.lines = append([][]byte(nil), tm.lines...)
		c.threads[id] = &cp
	}
	c.maybe = md.maybe
	return c
}

// TestPowerLossDuringSync cuts the power at each sync an append reaches,
// under each policy that syncs, so that the append fails. Under batch the
// index update runs while the sync does, so the index may have taken lines
// the power loss then took from the file: the failed append must bring the
// index back to the file (it verifies clean before the store is reopened),
// every acknowledged line must survive, and the reopened index must verify
// clean too (issue #11).
func TestPowerLossDuringSync(t *testing.T) {
	rounds := 0
	durableSteps([]string{"append", "repair"}, func(c crashCase, before []step, st step) {
		written := false // the syncs before the append's write are an eviction's
		for _, p := range countPoints(t, c, before, st) {
			written = written || p.Op == faultfs.OpWrite
			if !written || p.Op != faultfs.OpSync {
				continue
			}
			t.Run(fmt.Sprintf("%s/%s/%d-%s", c, st.name, p.Seq, p.Op), func(t *testing.T) {
				ctx := t.Context()
				w := newFaultWorld(t, c)
				replay(ctx, t, w, before)
				w.fsys.Reset()
				w.runLosingPower(t, st, func(q faultfs.Point) bool { return q.Seq == p.Seq })
				// The failed append left the index as the file is, before
				// any reopen: a running server has no drift to show.
				rep, err := indexer.Verify(ctx, w.indexStore(t), rolloutfs.Local{Root: w.root})
				if err != nil {
					t.Fatal(err)
				}
				if !rep.Clean() {
					t.Errorf("index drift after the failed append: %+v", rep.Drifts)
				}
				w.reopenAndCheck(t, nil)
			})
			rounds++
		}
	})
	if rounds == 0 {
		t.Fatal("no sync point reached by an append")
	}
	t.Logf("power lost at %d syncs of appends", rounds)
}

// durableSteps calls fn for each step of crashSteps named in names, under
// each crash case whose policy syncs, with the steps before it.
func durableSteps(names []string, fn func(c crashCase, before []step, st step)) {
	steps := crashSteps()
	for _, c := range crashCases {
		if !c.policy.Durable() {
			continue
		}
		for i, st := range steps {
			if slices.Contains(names, st.name) {
				fn(c, steps[:i], st)
			}
		}
	}
}

// TestReopenDropsRowWithoutFile: a fork's index row whose file is gone
// (removed behind the store's back while it was closed). The reopened
// store drops the row and keeps everything else.
func TestReopenDropsRowWithoutFile(t *testing.T) {
	ctx := t.Context()
	w := newFaultWorld(t, crashCase{rolloutfs.SyncAlways, "paginated"})
	steps := crashSteps()
	replay(ctx, t, w, steps[:2]) // start, append
	before := 1
	parent := w.first()
	fork, err := w.m.Fork(ctx, parent, manager.ForkOptions{BeforeUserMessage: &before})
	if err != nil {
		t.Fatal(err)
	}
	w.m.Close()
	if err := os.Remove(filepath.Join(w.root, filepath.FromSlash(fork.RolloutPath))); err != nil {
		t.Fatal(err)
	}
	w.open(t, rolloutfs.Local{Root: w.root})
	if _, err := w.m.Get(ctx, fork.ID); !errors.Is(err, manager.ErrNotFound) {
		t.Fatalf("fork whose file is gone: %v, want ErrNotFound after reopen", err)
	}
	w.reopenAndCheck(t, nil)
}

// runLosingPower runs st with the power cut at the fault point at
// matches: st must fail with faultfs.ErrPowerLost.
func (w *faultWorld) runLosingPower(t *testing.T, st step, at func(faultfs.Point) bool) {
	t.Helper()
	w.fsys.Inject(func(p faultfs.Point) error {
		if !at(p) {
			return nil
		}
		if err := w.fsys.PowerLoss(); err != nil {
			t.Error(err)
		}
		return faultfs.ErrPowerLost
	})
	if err := st.run(t.Context(), t, w); !errors.Is(err, faultfs.ErrPowerLost) {
		t.Fatalf("%s = %v, want an error wrapping %v", st.name, err, faultfs.ErrPowerLost)
	}
	w.fsys.Inject(nil)
}

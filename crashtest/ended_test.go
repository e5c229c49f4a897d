package crashtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/spoolhq/spool/indexer"
	"github.com/spoolhq/spool/rolloutfs"
	"github.com/spoolhq/spool/rolloutfs/faultfs"
)

// TestEndedRecordFaultPoints fails, one at a time, every fault point of
// an append to a thread whose file ends with a whole record lacking only
// its newline (the append ends the record, then writes), under each
// policy that syncs. Whatever fails, the acknowledged lines are there in
// order, the record is there whole or not at all, the failed append's line
// only after it, the next append is acknowledged, and the reopened store
// verifies clean.
func TestEndedRecordFaultPoints(t *testing.T) {
	setup := []step{
		{"start", func(ctx context.Context, t *testing.T, w *faultWorld) error { return w.start(ctx) }},
		{"append", func(ctx context.Context, t *testing.T, w *faultWorld) error { return w.appendTo(ctx, w.first(), 2) }},
		{"a record without its newline", func(ctx context.Context, t *testing.T, w *faultWorld) error {
			th, err := w.m.Get(ctx, w.first())
			if err != nil {
				return err
			}
			if err := w.m.Evict(ctx, th.ID); err != nil {
				return err
			}
			record := w.nextLines(1)[0]
			f, err := os.OpenFile(filepath.Join(w.root, filepath.FromSlash(th.RolloutPath)), os.O_WRONLY|os.O_APPEND, 0)
			if err != nil {
				return err
			}
			_, err = f.Write(record[:len(record)-1])
			return errors.Join(err, f.Close())
		}},
	}
	appendOne := step{"append after the record", func(ctx context.Context, t *testing.T, w *faultWorld) error {
		return w.appendTo(ctx, w.first(), 1)
	}}
	covered := map[faultfs.Op]int{}
	for _, c := range []crashCase{{rolloutfs.SyncAlways, "legacy"}, {rolloutfs.SyncBatch, "legacy"}, {rolloutfs.SyncAlways, "paginated"}} {
		points := countPoints(t, c, setup, appendOne)
		for p := 1; p <= len(points); p++ {
			errno := []error{syscall.EIO, syscall.ENOSPC}[p%2]
			t.Run(fmt.Sprintf("%s/%d-%s-%v", c, p, points[p-1].Op, errno), func(t *testing.T) {
				ctx := t.Context()
				w := newFaultWorld(t, c)
				replay(ctx, t, w, setup)
				acked := markers(w.md.threads[w.first()].lines)
				record := []byte(fmt.Sprintf("%s %d", lineMarker, w.seq))
				w.fsys.Reset()
				w.fsys.FailAt(p, errno)
				opErr := appendOne.run(ctx, t, w)
				w.fsys.Inject(nil)
				if opErr != nil && !errors.Is(opErr, errno) {
					t.Fatalf("append failed with %v, want an error wrapping %v", opErr, errno)
				}
				failed := markers(w.md.maybe.lines)
				if opErr == nil {
					failed = nil
				}
				if err := w.appendTo(ctx, w.first(), 1); err != nil {
					t.Fatalf("append after the failure: %v", err)
				}
				lines := w.md.threads[w.first()].lines
				recovered := markerOf(lines[len(lines)-1])
				w.m.Close()
				w.open(t, rolloutfs.Local{Root: w.root})
				defer w.m.Close()
				got := w.markedLines(t, w.first())
				with := func(parts ...[]byte) [][]byte { return append(append([][]byte(nil), acked...), parts...) }
				accept := [][][]byte{with(record, markerOf(lines[len(acked)]), recovered)} // acknowledged: the record was ended
				if opErr != nil {
					accept = [][][]byte{with(recovered), with(record, recovered)}
					if len(failed) == 1 {
						accept = append(accept, with(record, failed[0], recovered))
					}
				}
				ok := false
				for _, a := range accept {
					ok = ok || equalLines(got, a)
				}
				if !ok {
					t.Fatalf("lines %q, want one of %q", got, accept)
				}
				rep, err := indexer.Verify(ctx, w.indexStore(t), rolloutfs.Local{Root: w.root})
				if err != nil || !rep.Clean() {
					t.Fatalf("verify after reopen: %v, %+v", err, rep.Drifts)
				}
			})
			covered[points[p-1].Op]++
		}
	}
	t.Logf("covered fault points: %v", covered)
	if covered[faultfs.OpCutTruncate] == 0 {
		t.Fatalf("no point of the ending reached: %v", covered)
	}
}

// markedLines returns the markers of thread id's history, in order.
func (w *faultWorld) markedLines(t *testing.T, id string) [][]byte {
	t.Helper()
	rc, err := w.m.ReadFrom(t.Context(), id, -1)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	data, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	var got [][]byte
	for _, l := range bytes.SplitAfter(data, []byte("\n")) {
		if m := markerOf(l); m != nil {
			got = append(got, m)
		}
	}
	return got
}

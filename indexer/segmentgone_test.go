package indexer

import (
	"context"
	"path"
	"testing"
	"time"

	"github.com/spoolhq/spool/rollout"
	"github.com/spoolhq/spool/rolloutfs"
)

// TestSyncDoesNotRecordARemovedEarlierFile: a thread indexed from its
// newest file whose earlier file the index does not list (a reverted
// thread just made self-contained by a purge, which removes the earlier
// files after writing the row) has that file recorded as a segment only if
// it is still there under the hold: one its holder removed after the
// decision is not recorded, or the index would list a file that is gone.
func TestSyncDoesNotRecordARemovedEarlierFile(t *testing.T) {
	const id = "019a0000-0000-7000-8000-0000000000f7"
	ctx := context.Background()
	root := t.TempDir()
	st := openStore(t)
	fsys := rolloutfs.Local{Root: root}
	created := time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)
	later := created.Add(time.Hour)
	first, err := rollout.SessionPath(rollout.FileName(created, id))
	if err != nil {
		t.Fatal(err)
	}
	name, err := rollout.SegmentFileName(later, id, "019a0000-0000-7000-8000-0000000000f8")
	if err != nil {
		t.Fatal(err)
	}
	newest := path.Join(path.Dir(first), name)
	ts := rollout.FormatTimestamp(created)
	writeRollout(t, root, first, metaLine(ts, id, ""), userLine(ts, "one"))
	// The self-contained newest file, indexed alone: no segments.
	writeRollout(t, root, newest, metaLine(ts, id, ""), userLine(ts, "one"), userLine(ts, "two"))
	if _, err := SyncPaths(ctx, st, fsys, []string{newest}, SyncOptions{}); err != nil {
		t.Fatal(err)
	}
	removed := false
	hold := func(heldID string) (func(), bool) {
		if heldID == id && !removed { // the holder removes the earlier file
			removed = true
			if err := fsys.Remove(ctx, first); err != nil {
				t.Fatal(err)
			}
		}
		return func() {}, false
	}
	if _, err := Sync(ctx, st, fsys, SyncOptions{Hold: hold}); err != nil {
		t.Fatal(err)
	}
	if !removed {
		t.Fatal("Hold never called")
	}
	segs, err := st.Segments(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range segs {
		if s.RolloutPath == first {
			t.Errorf("the removed earlier file %s is recorded as a segment: %+v", first, s)
		}
	}
	mustVerifyClean(t, st, root)
}

package indexer

import (
	"testing"
	"time"
)

// TestSegmentOwnerOnlyOnceTheParentMayBeMissing: a base named by a
// segment's uuid that neither the fork nor its parent's chain holds is
// looked for by its owner (store.SegmentOwner, a scan of every file name)
// only once the fork's parent may be missing and is not waiting itself.
// Before that, in a sync's strict rounds, a base not found is most often
// one not indexed yet, and the fork waits for it anyway: a rebuild ran the
// scan once for nearly every reference fork.
func TestSegmentOwnerOnlyOnceTheParentMayBeMissing(t *testing.T) {
	ctx := t.Context()
	root := t.TempDir()
	st := openStore(t)
	rt := newRevertedThread(t, root, 3)
	const segmentID = "019dab90-9999-7000-8000-000000000001"
	rt.revert(t, root, rt.data, rt.hist.Turns[1].Offset, segmentID, rt.created.Add(24*time.Hour))
	if sum := mustSync(t, st, root, SyncOptions{}); len(sum.Problems) != 0 {
		t.Fatalf("problems: %v", sum.Problems)
	}
	const fork, gone = "019dab90-0000-7000-8000-00000000f001", "019dab90-0000-7000-8000-00000000f002"
	for _, tc := range []struct {
		name  string
		bases StoreBases
		want  bool
	}{
		{"strict round", StoreBases{Store: st}, false},
		{"lenient round, the parent waiting", StoreBases{Store: st, ParentsMayBeMissing: true, Waiting: map[string]bool{gone: true}}, false},
		{"lenient round, the parent gone", StoreBases{Store: st, ParentsMayBeMissing: true, Waiting: map[string]bool{fork: true}}, true},
		{"outside a sync", StoreBases{Store: st, ParentsMayBeMissing: true}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			owner, _, found, err := segmentNamed(ctx, tc.bases, segmentID, fork, gone)
			if err != nil {
				t.Fatal(err)
			}
			if found != tc.want || found && owner != rt.id {
				t.Fatalf("segmentNamed: found %v (owner %q), want found %v (owner %s)", found, owner, tc.want, rt.id)
			}
		})
	}
}

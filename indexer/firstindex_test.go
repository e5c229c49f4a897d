package indexer

import (
	"context"
	"errors"
	"testing"

	"github.com/spoolhq/spool/rolloutfs"
)

// TestFirstSyncBuildsListIndexesAtItsEnd: a first index (FirstIndex) into
// an index with no thread writes its rows without the list indexes and
// builds them before it returns, whether it ends well or is cut short; a
// sync into an index that has threads, or a watcher's periodic sync,
// leaves them as they are.
func TestFirstSyncBuildsListIndexesAtItsEnd(t *testing.T) {
	const ts = "2026-05-01T10:00:00.000Z"
	ids := []string{"019a0000-0000-7000-8000-0000000000a1", "019a0000-0000-7000-8000-0000000000a2"}
	tests := []struct {
		name        string
		indexed     bool // the index holds a thread before the sync
		periodic    bool // a watcher's sync, without FirstIndex
		cancel      bool // the sync is cut short at its first write
		wantDeferAt bool // the list indexes are dropped while it writes
	}{
		{"first index", false, false, false, true},
		{"first index cut short", false, false, true, true},
		{"index with threads", true, false, false, false},
		{"a watcher's sync of an empty index", false, true, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := t.TempDir()
			st := openStore(t)
			fsys := rolloutfs.Local{Root: root}
			writeRollout(t, root, "sessions/2026/05/01/rollout-2026-05-01T10-00-00-"+ids[0]+".jsonl", metaLine(ts, ids[0], ""), userLine(ts, "one"))
			if tt.indexed {
				if _, err := Sync(t.Context(), st, fsys, SyncOptions{}); err != nil {
					t.Fatal(err)
				}
			}
			writeRollout(t, root, "sessions/2026/05/01/rollout-2026-05-01T10-00-00-"+ids[1]+".jsonl", metaLine(ts, ids[1], ""), userLine(ts, "two"))
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			holds, deferredAt := 0, false
			hold := func(string) (func(), bool) {
				holds++
				if holds == 1 {
					pending, err := st.ListIndexesDeferred(t.Context())
					if err != nil {
						t.Error(err)
					}
					deferredAt = pending
					if tt.cancel {
						cancel()
					}
				}
				return func() {}, false
			}
			_, err := Sync(ctx, st, fsys, SyncOptions{Hold: hold, FirstIndex: !tt.periodic})
			if tt.cancel != errors.Is(err, context.Canceled) {
				t.Fatalf("Sync = %v, want canceled: %v", err, tt.cancel)
			}
			if holds == 0 || deferredAt != tt.wantDeferAt {
				t.Fatalf("list indexes dropped while the sync wrote: %v (%d writes), want %v", deferredAt, holds, tt.wantDeferAt)
			}
			if pending, err := st.ListIndexesDeferred(t.Context()); pending || err != nil {
				t.Fatalf("list indexes still to build after the sync returned (%v)", err)
			}
		})
	}
}

package manager

import (
	"testing"
)

// TestRescanBuildsDeferredListIndexes: list indexes a first index left
// unbuilt (their build at its end failed) are built by the next rescan,
// not only at the next start.
func TestRescanBuildsDeferredListIndexes(t *testing.T) {
	m := openTest(t)
	ctx := t.Context()
	if deferred, err := m.store.DeferListIndexes(ctx); err != nil || !deferred {
		t.Fatalf("DeferListIndexes = %v, %v; want true", deferred, err)
	}
	start(t, m, user("a prompt"))
	if err := m.rescan(ctx); err != nil {
		t.Fatalf("rescan: %v", err)
	}
	if pending, err := m.store.ListIndexesDeferred(ctx); err != nil || pending {
		t.Fatalf("after a rescan the list indexes are deferred = %v (%v), want built", pending, err)
	}
}

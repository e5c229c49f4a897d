//go:build distributed

package pgbackend

import (
	"errors"
	"slices"
	"testing"

	"github.com/spoolhq/spool/internal/disttest"
	"github.com/spoolhq/spool/manager"
)

// TestRevertUnderARevertedFork: a revert of a base before where a
// reference fork reverted in its own part leaves it is refused, and the
// refusal names the fork, never the link that now holds the fork's bytes
// before its cut (a row id the API does not know).
func TestRevertUnderARevertedFork(t *testing.T) {
	ctx := t.Context()
	b, err := Open(ctx, Options{DSN: disttest.DSN(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	base, fork := revertedReferenceFork(t, b)
	_, err = b.Revert(ctx, base.ID, manager.RevertOptions{BeforeTurnID: "turn-b"})
	var refused *manager.ReferencedError
	if !errors.As(err, &refused) || !slices.Equal(refused.Forks, []string{fork.ID}) {
		t.Fatalf("revert of the base before the reverted fork's cut: %v, want a ReferencedError naming %s", err, fork.ID)
	}
}

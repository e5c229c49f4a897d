//go:build distributed

package transfer

import (
	"testing"

	"github.com/spoolhq/spool/internal/disttest"
	"github.com/spoolhq/spool/manager"
	"github.com/spoolhq/spool/pgbackend"
	"github.com/spoolhq/spool/rollout"
)

func openPG(t *testing.T) *pgbackend.Backend {
	t.Helper()
	b, err := pgbackend.Open(t.Context(), pgbackend.Options{DSN: disttest.DSN(t), Bucket: disttest.Bucket(t), SealBytes: 1, SealEvery: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

// TestMoveUpAndBack: a lineage moves from a local root to the distributed
// backend and from there to a new root, saying the same and keeping its
// lineage at every step; the database verifies clean.
func TestMoveUpAndBack(t *testing.T) {
	local, pg, back := openLocal(t), openPG(t), openLocal(t)
	ids := lineage(t, local)
	if _, err := Copy(t.Context(), local, pg, ids[2], true); err != nil {
		t.Fatal(err)
	}
	sameThreads(t, local, pg, ids)
	// A fork made there moves back with the rest.
	one := 1
	fork, err := pg.Fork(t.Context(), ids[2], manager.ForkOptions{BeforeUserMessage: &one})
	if err != nil {
		t.Fatal(err)
	}
	ids = append(ids, fork.ID)
	if _, err := Copy(t.Context(), pg, back, fork.ID, true); err != nil {
		t.Fatal(err)
	}
	sameThreads(t, pg, back, ids)
	if problems, err := pg.Store().Verify(t.Context()); err != nil || len(problems) > 0 {
		t.Fatalf("verify: %v, %v", problems, err)
	}
}

func init() {
	streamBackends = append(streamBackends, struct {
		name string
		mode rollout.HistoryMode
		open func(t *testing.T) manager.Backend
	}{"distributed", rollout.HistoryLegacy, func(t *testing.T) manager.Backend {
		// No bucket: the sealer, which reads what it seals whole, stays
		// out of the measurement.
		b, err := pgbackend.Open(t.Context(), pgbackend.Options{DSN: disttest.DSN(t)})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { b.Close() })
		return b
	}})
}

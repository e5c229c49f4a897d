//go:build distributed

package pgbackend

import (
	"context"
	"testing"

	"github.com/spoolhq/spool/backendtest"
	"github.com/spoolhq/spool/internal/disttest"
	"github.com/spoolhq/spool/manager"
	"github.com/spoolhq/spool/objstore"
)

// TestBackendConformance runs the suite every backend passes on
// PostgreSQL (SPOOL_TEST_PG) and the S3 gateway (SPOOL_TEST_S3), sealing
// every byte as soon as it can so that reads cross segments, through a
// segment cache.
func TestBackendConformance(t *testing.T) {
	backendtest.Run(t, func(t *testing.T) manager.Backend {
		// Reads go through a segment cache small enough to evict.
		bucket, err := objstore.NewCache(disttest.Bucket(t), t.TempDir(), 4<<10)
		if err != nil {
			t.Fatal(err)
		}
		b, err := Open(t.Context(), Options{DSN: disttest.DSN(t), Bucket: bucket, SealBytes: 1, SealEvery: 1})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { b.Close() })
		t.Cleanup(func() {
			ctx := context.WithoutCancel(t.Context())
			repaired, problems, err := b.Store().Repair(ctx)
			if err != nil || len(repaired) > 0 || len(problems) > 0 {
				t.Errorf("repair after the case: repaired %v, problems %v, %v", repaired, problems, err)
			}
			if problems, err := b.Store().Verify(ctx); err != nil || len(problems) > 0 {
				t.Errorf("verify after the case: %v, %v", problems, err)
			}
		})
		return b
	})
}

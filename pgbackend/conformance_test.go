//go:build distributed

package pgbackend

import (
	"testing"

	"github.com/spoolhq/spool/backendtest"
	"github.com/spoolhq/spool/internal/disttest"
	"github.com/spoolhq/spool/manager"
)

// TestBackendConformance runs the suite every backend passes on
// PostgreSQL (SPOOL_TEST_PG) and the S3 gateway (SPOOL_TEST_S3), sealing
// every byte as soon as it can so that reads cross segments.
func TestBackendConformance(t *testing.T) {
	backendtest.Run(t, func(t *testing.T) manager.Backend {
		b, err := Open(t.Context(), Options{DSN: disttest.DSN(t), Bucket: disttest.Bucket(t), SealBytes: 1, SealEvery: 1})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { b.Close() })
		return b
	})
}

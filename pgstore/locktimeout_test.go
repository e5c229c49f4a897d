//go:build distributed

package pgstore

import (
	"testing"
	"time"

	"github.com/spoolhq/spool/internal/disttest"
)

// TestLockTimeoutStands: the store's connections run with three quarters
// of the query timeout as lock_timeout unless their session has one
// already, from the DSN's lock_timeout key or from options (as from
// PGOPTIONS, the role or the database), which then stands; LockTimeout
// says which the server applies. The first version read only the key,
// and set its own over the other forms.
func TestLockTimeoutStands(t *testing.T) {
	plain := testDSN(t)
	for _, tt := range []struct {
		name   string
		params map[string]string
		want   time.Duration
	}{
		{"spool's", map[string]string{"spool_query_timeout": "2s"}, 1500 * time.Millisecond},
		{"the DSN's key", map[string]string{"spool_query_timeout": "2s", "lock_timeout": "4s"}, 4 * time.Second},
		{"options", map[string]string{"spool_query_timeout": "2s", "options": "--lock_timeout=5s"}, 5 * time.Second},
		{"no query timeout", map[string]string{"spool_query_timeout": "0"}, 0},
		{"the DSN's 0", map[string]string{"spool_query_timeout": "2s", "lock_timeout": "0"}, 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dsn := plain
			for k, v := range tt.params {
				dsn = disttest.WithParam(t, dsn, k, v)
			}
			s := openStore(t, dsn, nil)
			if got := s.LockTimeout(); got != tt.want {
				t.Fatalf("LockTimeout = %s, want %s", got, tt.want)
			}
		})
	}
}

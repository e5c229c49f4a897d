package manager

import (
	"strconv"
	"testing"

	"github.com/spoolhq/spool/rollout"
	"github.com/spoolhq/spool/rolloutfs"
)

// BenchmarkAppendIdempotent measures what an idempotency key adds to an
// append (SyncNone, so the index's work is not hidden behind an fsync):
// "none" is a plain append, "new key" an append with a fresh key (a
// lookup that misses, and the key recorded in the index update), "retry"
// a replayed key (one read of the index, nothing written).
func BenchmarkAppendIdempotent(b *testing.B) {
	items := []rollout.Item{item(rollout.TypeEventMsg, map[string]string{"type": "note"})}
	for _, bc := range []struct {
		name string
		key  func(i int) string
	}{
		{"none", func(int) string { return "" }},
		{"new key", func(i int) string { return "k" + strconv.Itoa(i) }},
		{"retry", func(int) string { return "same" }},
	} {
		b.Run(bc.name, func(b *testing.B) {
			m := openTest(b, func(o *Options) { o.Sync = rolloutfs.SyncNone })
			th := start(b, m)
			ctx := b.Context()
			for i := 0; b.Loop(); i++ {
				if _, err := m.AppendWith(ctx, th.ID, items, AppendOptions{IdempotencyKey: bc.key(i)}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

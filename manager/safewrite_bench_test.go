package manager

import (
	"strconv"
	"testing"

	"github.com/spoolhq/spool/rollout"
	"github.com/spoolhq/spool/rolloutfs"
)

// BenchmarkAppendIdempotent measures what an idempotency key adds to an
// append, under SyncNone (the index's work alone) and SyncAlways (the
// default, an fdatasync per append): "none" is a plain append, "new key"
// an append with a fresh key (a lookup that misses, and the key recorded
// in the index update), "retry" a replayed key (one read of the index,
// nothing written).
func BenchmarkAppendIdempotent(b *testing.B) {
	items := []rollout.Item{item(rollout.TypeEventMsg, map[string]string{"type": "note"})}
	for _, bc := range []struct {
		name string
		sync rolloutfs.SyncPolicy
		key  func(i int) string
	}{
		{"sync=none/none", rolloutfs.SyncNone, func(int) string { return "" }},
		{"sync=none/new key", rolloutfs.SyncNone, func(i int) string { return "k" + strconv.Itoa(i) }},
		{"sync=none/retry", rolloutfs.SyncNone, func(int) string { return "same" }},
		{"sync=always/none", rolloutfs.SyncAlways, func(int) string { return "" }},
		{"sync=always/new key", rolloutfs.SyncAlways, func(i int) string { return "k" + strconv.Itoa(i) }},
	} {
		b.Run(bc.name, func(b *testing.B) {
			m := openTest(b, func(o *Options) { o.Sync = bc.sync })
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

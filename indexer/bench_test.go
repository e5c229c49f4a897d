package indexer

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/spoolhq/spool/rolloutfs"
)

// BenchmarkSyncFull indexes a generated root of 50 threads from scratch
// and reports the read throughput.
func BenchmarkSyncFull(b *testing.B) {
	root := b.TempDir()
	var total int64
	start := time.Date(2026, 7, 1, 0, 0, 0, 0, time.UTC)
	for i := range 50 {
		created := start.Add(time.Duration(i) * time.Minute)
		id := fmt.Sprintf("%08x-0000-7000-8000-%012x", i, i)
		ts := created.Format("2006-01-02T15:04:05.000Z")
		lines := []string{metaLine(ts, id, "")}
		for turn := range 40 {
			lines = append(lines, userLine(ts, fmt.Sprintf("question %d %s", turn, strings.Repeat("words ", 50))),
				assistantLine(ts, strings.Repeat("answer text ", 200)))
		}
		rel := "sessions/2026/07/01/rollout-" + created.Format("2006-01-02T15-04-05") + "-" + id + ".jsonl"
		writeRollout(b, root, rel, lines...)
		total += fileSize(b, root, rel)
	}
	st := openStore(b)
	b.SetBytes(total)
	b.ResetTimer()
	for b.Loop() {
		if _, err := Sync(context.Background(), st, rolloutfs.Local{Root: root}, SyncOptions{Full: true}); err != nil {
			b.Fatal(err)
		}
	}
}

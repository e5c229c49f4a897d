//go:build distributed

package pgstore

import (
	"fmt"
	"io"
	"slices"
	"testing"
)

// BenchmarkReadRevertChain reads the whole history of a thread reverted
// BENCH_REVERTS times (default 200), a chain of as many links, with
// WriteHistory. Each piece of the read looks up its own link and the
// thread's row, not every link above it.
func BenchmarkReadRevertChain(b *testing.B) {
	ctx := b.Context()
	s := openStore(b, testDSN(b), nil)
	n := 200
	id := createPaginated(b, s)
	turn := func(name string) {
		lines := slices.Concat(turnLine("event_msg", "task_started", name), userLine("prompt "+name), otherLine(1), turnLine("event_msg", "task_complete", name))
		if _, err := s.Append(ctx, id, lines, -1); err != nil {
			b.Fatal(err)
		}
	}
	for i := range n {
		turn(fmt.Sprintf("keep-%d", i))
		turn(fmt.Sprintf("drop-%d", i))
		if _, err := s.Revert(ctx, Revert{ID: id, TurnID: fmt.Sprintf("drop-%d", i)}); err != nil {
			b.Fatal(err)
		}
	}
	th, err := s.Get(ctx, id)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(th.HistorySize())
	b.ResetTimer()
	for b.Loop() {
		if m, err := s.WriteHistory(ctx, io.Discard, id, 0); err != nil || m != th.HistorySize() {
			b.Fatalf("read %d of %d bytes: %v", m, th.HistorySize(), err)
		}
	}
}

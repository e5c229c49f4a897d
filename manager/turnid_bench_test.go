package manager

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	"github.com/spoolhq/spool/rollout"
)

// BenchmarkUnknownTurnID measures the answer to a turn id a history does
// not hold (a mistyped or guessed one), which the index cannot rule out:
// "search" is findTurn, a byte search for the quoted id; "parse" is
// FindTurn, which decodes every line, as every unknown id cost before.
// The history is about 20 MB of complete Codex turns, in memory.
func BenchmarkUnknownTurnID(b *testing.B) {
	var history []byte
	next := int64(0)
	at := time.Date(2026, 11, 20, 9, 0, 0, 0, time.UTC)
	for i := 0; len(history) < 20<<20; i++ {
		lines, n, err := rollout.RenderTurn(rollout.HistoryLegacy, next, rollout.TurnSpec{
			ThreadID: "019dab90-0000-7000-8000-00000000a001", TurnID: fmt.Sprintf("turn-%d", i),
			UserText: fmt.Sprintf("prompt %d %s", i, bytes.Repeat([]byte("x"), 2000)), AgentText: "answer", Cwd: "/src", Model: "gpt-5",
			Started: at, Completed: at.Add(time.Second),
		})
		if err != nil {
			b.Fatal(err)
		}
		history, next = append(history, lines...), n
	}
	src := bytes.NewReader(history)
	size := int64(len(history))
	b.Run("search", func(b *testing.B) {
		b.SetBytes(size)
		for b.Loop() {
			if _, err := findTurn(b.Context(), src, size, "no-such-turn"); err == nil {
				b.Fatal("found a turn that is not there")
			}
		}
	})
	b.Run("parse", func(b *testing.B) {
		b.SetBytes(size)
		for b.Loop() {
			if _, err := FindTurn(b.Context(), bytes.NewReader(history), "no-such-turn"); err == nil {
				b.Fatal("found a turn that is not there")
			}
		}
	})
}

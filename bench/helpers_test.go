package bench

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/spoolhq/spool/manager"
)

// forkEach forks thread id of m with o once an iteration of b.Loop and
// deletes each fork again, untimed. It fails b when a fork fails or when
// check, if not nil, refuses the fork made (checked untimed). It returns
// the time of each fork.
func forkEach(b *testing.B, m *manager.Manager, id string, o manager.ForkOptions, check func(manager.Thread) error) []time.Duration {
	b.Helper()
	var times []time.Duration
	for b.Loop() {
		start := time.Now()
		child, err := m.Fork(b.Context(), id, o)
		times = append(times, time.Since(start))
		if err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		if check != nil {
			if err := check(child); err != nil {
				b.Fatal(err)
			}
		}
		if err := m.Delete(b.Context(), child.ID); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
	return times
}

// startThreads starts n threads on m and returns their ids.
func startThreads(b *testing.B, m *manager.Manager, n int) []string {
	b.Helper()
	ids := make([]string, n)
	for i := range ids {
		t, err := m.Start(b.Context(), manager.StartOptions{Cwd: "/bench", Source: "cli"})
		if err != nil {
			b.Fatal(err)
		}
		ids[i] = t.ID
	}
	return ids
}

// writeEach calls write once an iteration of b.Loop with the path of a
// file it must create, in a directory of its own, and removes the file
// again, untimed. It fails b when write fails.
func writeEach(b *testing.B, write func(dst string) error) {
	b.Helper()
	dst := filepath.Join(b.TempDir(), "out.jsonl")
	for b.Loop() {
		if err := write(dst); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		if err := os.Remove(dst); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
}

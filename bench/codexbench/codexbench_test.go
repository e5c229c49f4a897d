package main

import (
	"os"
	"runtime"
	"runtime/debug"
	"testing"
	"time"
)

// TestTimedPeak: the peak RSS of a sample covers what its operation
// touched (64 MiB here) on top of the process's RSS before it.
func TestTimedPeak(t *testing.T) {
	pid := os.Getpid()
	// Memory an earlier run freed (-count) would otherwise still be
	// resident and hold the new buffer without raising the RSS.
	debug.FreeOSMemory()
	if err := resetPeak(pid); err != nil {
		t.Fatal(err)
	}
	before, err := readPeak(pid)
	if err != nil {
		t.Fatal(err)
	}
	var keep []byte
	s, err := timed(pid, func() error {
		keep = make([]byte, 64<<20)
		for i := 0; i < len(keep); i += 4096 {
			keep[i] = 1
		}
		return nil
	})
	runtime.KeepAlive(keep)
	if err != nil {
		t.Fatal(err)
	}
	if s.hwmKB < before.rssKB+60<<10 {
		t.Fatalf("peak during a 64 MiB operation %d KiB, RSS before it %d KiB: want 60 MiB more", s.hwmKB, before.rssKB)
	}
	if s.d <= 0 {
		t.Fatalf("duration %v: want positive", s.d)
	}
}

// TestReportMedian: medians of durations, the largest peak, and no sample
// for a failed operation.
func TestReportMedian(t *testing.T) {
	r := newReport()
	for _, ms := range []int{5, 1, 3, 100} {
		r.add("fig", "spool", sample{d: time.Duration(ms) * time.Millisecond, hwmKB: int64(ms)})
	}
	r.add("fig", "spool", sample{})
	m, hwm, n := r.median("fig", "spool")
	if got, want := m, 4*time.Millisecond; got != want || hwm != 100 || n != 4 {
		t.Fatalf("median %v, peak %d, n %d; want %v, 100, 4", got, hwm, n, want)
	}
}

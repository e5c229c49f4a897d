package main

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
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

// TestWaitIndexed: the wait for a first index ends with the walk's log
// line and a check of /metrics, and with an error, not a hang, when the
// walk fails, when spoold exits first, or when the index holds other than
// the threads asked for. spoold is a script that logs what a spoold would,
// and /metrics a server of the test's.
func TestWaitIndexed(t *testing.T) {
	metrics := "spool_reconciled 1\nspool_index_threads 1e+06\n"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, metrics)
	}))
	defer srv.Close()
	listening := "echo 'level=INFO msg=listening addr=" + strings.TrimPrefix(srv.URL, "http://") + "' >&2"
	tests := []struct {
		name    string
		script  string
		threads int
		err     string // "" for none
	}{
		{"indexed", listening + "\necho 'level=INFO msg=\"reconciled store\" files=1000000' >&2\nexec sleep 60", 1_000_000, ""},
		{"another count", listening + "\necho 'level=INFO msg=\"reconciled store\"' >&2\nexec sleep 60", 10, "spool_index_threads 1e+06"},
		{"walk failed", listening + "\necho 'level=ERROR msg=\"reconcile in the background\" err=boom' >&2\nexec sleep 60", 10, "walk failed"},
		{"exited", listening + "\nexit 2", 10, "exited before its walk ended"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bin := filepath.Join(t.TempDir(), "spoold")
			if err := os.WriteFile(bin, []byte("#!/bin/sh\n"+tt.script+"\n"), 0o755); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
			defer cancel()
			s, err := startSpoold(ctx, bin, t.TempDir(), "always")
			if err != nil {
				t.Fatal(err)
			}
			defer func() {
				_ = s.cmd.Process.Kill()
				<-s.waited
			}()
			err = s.waitIndexed(ctx, tt.threads)
			switch {
			case tt.err == "" && err != nil:
				t.Fatalf("waitIndexed: %v", err)
			case tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)):
				t.Fatalf("waitIndexed: %v, want an error saying %q", err, tt.err)
			}
		})
	}
}

package spooldtest

import (
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"testing"
)

// fakeLines, set in the environment, makes the test binary a stand-in for
// spoold: it logs the variable's lines (separated by "|") to stderr, then
// waits for SIGTERM and exits 0. A line "LONG" is logged as longLine.
const fakeLines = "SPOOLDTEST_FAKE_LINES"

func TestMain(m *testing.M) {
	if lines, ok := os.LookupEnv(fakeLines); ok {
		term := make(chan os.Signal, 1)
		signal.Notify(term, syscall.SIGTERM)
		for line := range strings.SplitSeq(lines, "|") {
			if line == "LONG" {
				line = longLine
			}
			fmt.Fprintln(os.Stderr, line)
		}
		<-term
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// startFake runs the test binary as a spoold that logs lines.
func startFake(t *testing.T, lines ...string) *Process {
	t.Helper()
	return Start(t, os.Args[0], Options{Env: []string{fakeLines + "=" + strings.Join(lines, "|")}})
}

// longLine is longer than a bufio.Scanner reads by default (64 KiB).
var longLine = strings.Repeat("x", 1<<20)

const listening = "level=INFO msg=listening addr=127.0.0.1:4242"

func TestStartFindsTheAddress(t *testing.T) {
	p := startFake(t, listening)
	if p.Addr != "127.0.0.1:4242" || p.URL != "http://127.0.0.1:4242" {
		t.Fatalf("Addr %q, URL %q", p.Addr, p.URL)
	}
	p.Stop(t)
}

func TestWaitLogWaitsForTheNextLine(t *testing.T) {
	p := startFake(t, "msg=early", listening, "tick 1", "LONG", "tick 2", "msg=last")
	for _, tc := range []struct{ substr, want string }{
		{"early", "msg=early"}, // logged before listening: still there
		{"tick", "tick 1"},
		{"tick", "tick 2"}, // the same words again: the next line that has them
		{"last", "msg=last"},
	} {
		if got := p.WaitLog(t, tc.substr); got != tc.want {
			t.Fatalf("WaitLog(%q) = %.40q, want %q", tc.substr, got, tc.want)
		}
	}
	if lines := p.Lines(); len(lines) != 6 || lines[3] != longLine {
		t.Fatalf("%d lines kept, the long one intact: %v", len(lines), len(lines) > 3 && lines[3] == longLine)
	}
	p.Stop(t)
}

func TestKillReapsAnExitedProcess(t *testing.T) {
	p := startFake(t, listening)
	p.Stop(t)
	p.Kill(t) // after the exit: no error, no wait
	if p.Err() != nil {
		t.Fatalf("exit error after SIGTERM: %v", p.Err())
	}
}

package interrupt

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"
)

// interruptChild makes the test binary, run again by
// TestSecondInterruptEndsAtOnce, a command that winds down forever once
// interrupted.
const interruptChild = "SPOOL_TEST_INTERRUPT_CHILD"

// TestSecondInterruptEndsAtOnce: the first Ctrl-C (SIGINT) asks the
// command to stop in order; a second one, while it winds down, ends the
// process at once, by the signal's default action, as it ends go test or
// docker. spool caught every one, so a wind-down that hung (a server that
// did not answer) could only be killed from another terminal; reindex did
// too.
func TestSecondInterruptEndsAtOnce(t *testing.T) {
	if os.Getenv(interruptChild) == "1" {
		ctx, stop := Context()
		defer stop()
		fmt.Println("ready")
		<-ctx.Done()
		fmt.Println("winding down")
		io.Copy(io.Discard, os.Stdin) // until the parent closes it: never
		return
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	child := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestSecondInterruptEndsAtOnce$")
	child.Env = append(os.Environ(), interruptChild+"=1")
	stdin, err := child.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	defer stdin.Close()
	stdout, err := child.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	lines := bufio.NewScanner(stdout)
	for _, want := range []string{"ready", "winding down"} {
		if !lines.Scan() || lines.Text() != want {
			t.Fatalf("child said %q (%v), want %q", lines.Text(), lines.Err(), want)
		}
		if err := child.Process.Signal(os.Interrupt); err != nil {
			t.Fatal(err)
		}
	}
	err = child.Wait()
	var exit *exec.ExitError
	if !errors.As(err, &exit) {
		t.Fatalf("child after a second interrupt: %v, want it ended by SIGINT", err)
	}
	status := exit.Sys().(syscall.WaitStatus)
	if !status.Signaled() || status.Signal() != syscall.SIGINT {
		t.Fatalf("child after a second interrupt: %v, want it ended by SIGINT (not by the test's timeout)", err)
	}
}

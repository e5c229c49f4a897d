// Package spooldtest runs a spoold binary for a test or a benchmark, the
// way users run it: a process of its own on a loopback port the kernel
// picks, with every line it logs kept and each one waitable.
package spooldtest

import (
	"bufio"
	"errors"
	"io"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Timeout bounds each wait of this package (the "listening" line, a
// WaitLog, an exit after Stop). It is long: a wait that fails is a broken
// server, and a machine running every package's tests with -race is slow.
const Timeout = 60 * time.Second

// Options says how to run spoold.
type Options struct {
	// Args are spoold's flags; Start puts "-addr 127.0.0.1:0" before them,
	// which an -addr among them overrides.
	Args []string
	// Env is the whole environment of the process. Nil gives it PATH and a
	// HOME of its own (a temporary directory), so that no setting of the
	// caller's (SPOOL_TOKEN, say) reaches it.
	Env []string
}

// Process is a running spoold. A test's cleanup kills it if it still runs.
type Process struct {
	// Cmd is the process; use it for signals and its pid.
	Cmd *exec.Cmd
	// Addr is the host:port it listens on; URL is "http://" + Addr.
	Addr, URL string

	done chan struct{} // closed once the process exited and its log is read
	err  error         // its exit error, set before done is closed

	mu      sync.Mutex
	lines   []string      // everything logged so far; guarded by mu
	logged  chan struct{} // closed and replaced at each line; guarded by mu
	waitPos int           // where the next WaitLog starts; guarded by mu
}

var listeningRE = regexp.MustCompile(`msg=listening addr=(\S+)`)

// Start runs bin with o and returns once it logged that it listens. It
// fails tb if the process cannot start, exits first, or says nothing
// within Timeout.
func Start(tb testing.TB, bin string, o Options) *Process {
	tb.Helper()
	cmd := exec.Command(bin, append([]string{"-addr", "127.0.0.1:0"}, o.Args...)...)
	cmd.Env = o.Env
	if cmd.Env == nil {
		cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + tb.TempDir()}
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		tb.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		tb.Fatalf("start spoold: %v", err)
	}
	p := &Process{Cmd: cmd, done: make(chan struct{}), logged: make(chan struct{})}
	go p.read(stderr)
	tb.Cleanup(func() { p.kill() })
	line, _ := p.waitFor(tb, "msg=listening ", 0)
	m := listeningRE.FindStringSubmatch(line)
	if m == nil {
		tb.Fatalf("spoold's listening line names no address: %s", line)
	}
	p.Addr, p.URL = m[1], "http://"+m[1]
	return p
}

// read keeps every line r gives until its end, then reaps the process: Wait
// must not run before the pipe is drained. bufio.Reader has no limit on a
// line's length, where a Scanner would stop reading at 64 KiB and leave the
// process writing into a pipe nobody empties.
func (p *Process) read(r io.Reader) {
	br := bufio.NewReader(r)
	for {
		line, err := br.ReadString('\n')
		if line != "" {
			p.mu.Lock()
			p.lines = append(p.lines, strings.TrimSuffix(line, "\n"))
			close(p.logged)
			p.logged = make(chan struct{})
			p.mu.Unlock()
		}
		if err != nil {
			break
		}
	}
	p.err = p.Cmd.Wait()
	close(p.done)
}

// Log returns everything logged so far, a line each.
func (p *Process) Log() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.lines) == 0 {
		return ""
	}
	return strings.Join(p.lines, "\n") + "\n"
}

// Lines returns the lines logged so far.
func (p *Process) Lines() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.lines...)
}

// WaitLog waits for a line containing substr, logged after the line the
// previous WaitLog found (from the first line, the first time), and
// returns it. Waiting twice for the same words thus waits for them to be
// logged twice.
func (p *Process) WaitLog(tb testing.TB, substr string) string {
	tb.Helper()
	p.mu.Lock()
	from := p.waitPos
	p.mu.Unlock()
	line, i := p.waitFor(tb, substr, from)
	p.mu.Lock()
	p.waitPos = i + 1
	p.mu.Unlock()
	return line
}

// waitFor waits for a line from index from on that contains substr and
// returns it and its index.
func (p *Process) waitFor(tb testing.TB, substr string, from int) (string, int) {
	tb.Helper()
	deadline := time.NewTimer(Timeout)
	defer deadline.Stop()
	for {
		line, i, logged := p.find(substr, from)
		if i >= 0 {
			return line, i
		}
		select {
		case <-logged:
		case <-p.done:
			if line, i, _ := p.find(substr, from); i >= 0 {
				return line, i
			}
			tb.Fatalf("spoold exited (%v) before logging %q:\n%s", p.err, substr, p.Log())
		case <-deadline.C:
			tb.Fatalf("spoold logged no %q within %v:\n%s", substr, Timeout, p.Log())
		}
	}
}

// find returns the first line from index from on that contains substr and
// its index, or an index of -1 and a channel closed at the next line.
func (p *Process) find(substr string, from int) (line string, i int, logged <-chan struct{}) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for i := from; i < len(p.lines); i++ {
		if strings.Contains(p.lines[i], substr) {
			return p.lines[i], i, nil
		}
	}
	return "", -1, p.logged
}

// Done is closed once the process has exited and all it logged is read.
func (p *Process) Done() <-chan struct{} { return p.done }

// Err is the process's exit error; call it once Done is closed.
func (p *Process) Err() error { return p.err }

// Signal sends sig to the process, failing tb if it cannot.
func (p *Process) Signal(tb testing.TB, sig os.Signal) {
	tb.Helper()
	if err := p.Cmd.Process.Signal(sig); err != nil {
		tb.Fatalf("signal spoold: %v", err)
	}
}

// Exit waits for the process to exit and returns its exit error, failing
// tb if it is still running after Timeout.
func (p *Process) Exit(tb testing.TB) error {
	tb.Helper()
	select {
	case <-p.done:
		return p.err
	case <-time.After(Timeout):
		tb.Fatalf("spoold still runs after %v:\n%s", Timeout, p.Log())
		return nil
	}
}

// Stop sends SIGTERM and fails tb unless the process then exits cleanly.
func (p *Process) Stop(tb testing.TB) {
	tb.Helper()
	p.Signal(tb, syscall.SIGTERM)
	if err := p.Exit(tb); err != nil {
		tb.Fatalf("spoold exit after SIGTERM: %v\n%s", err, p.Log())
	}
}

// Kill sends SIGKILL, if the process still runs, and waits for it to be
// gone.
func (p *Process) Kill(tb testing.TB) {
	tb.Helper()
	if err := p.kill(); err != nil {
		tb.Errorf("kill spoold: %v", err)
	}
}

func (p *Process) kill() error {
	err := p.Cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
	if errors.Is(err, os.ErrProcessDone) {
		return nil
	}
	return err
}

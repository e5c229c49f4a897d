// Command spool is the command line for people who keep their Codex
// threads in spool: list, read, follow, fork, search, rename, archive and
// delete threads, draw fork trees, and check the index against the files.
//
// It talks to a running spoold ($SPOOL_ADDR, default 127.0.0.1:7878, token
// $SPOOL_TOKEN) and, when none answers at the default address, opens the
// root itself ($SPOOL_ROOT, default ~/.spool). `spool -h` lists the commands; `spool completion`
// writes shell completion scripts.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"golang.org/x/term"
)

func main() {
	ctx, stop := interruptContext()
	code := run(ctx, os.Args[1:], env{
		stdin:     os.Stdin,
		stdout:    os.Stdout,
		stderr:    os.Stderr,
		lookupEnv: os.LookupEnv,
		terminal:  term.IsTerminal(int(os.Stdout.Fd())),
	})
	stop()
	os.Exit(code)
}

// interruptContext returns a context done at the first SIGINT or SIGTERM,
// and only once those signals have their default action again: the first
// Ctrl-C asks the command to stop in order (exit 130), and a second, while
// it winds down, ends the process at once, as it ends go test or docker.
// cancel stops listening.
func interruptContext() (ctx context.Context, cancel context.CancelFunc) {
	ctx, cancel = context.WithCancel(context.Background())
	signals := make(chan os.Signal, 1)
	signal.Notify(signals, os.Interrupt, syscall.SIGTERM)
	go func() {
		select {
		case <-signals:
		case <-ctx.Done():
		}
		signal.Stop(signals)
		cancel()
	}()
	return ctx, cancel
}

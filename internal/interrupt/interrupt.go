// Package interrupt gives the commands their answer to Ctrl-C: the first
// SIGINT or SIGTERM asks for an orderly stop, a second ends the process.
package interrupt

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

// Context returns a context done at the first SIGINT or SIGTERM, and only
// once those signals have their default action again: the first Ctrl-C
// asks the command to stop in order, and a second, while it winds down,
// ends the process at once, as it ends go test or docker. cancel stops
// listening.
func Context() (ctx context.Context, cancel context.CancelFunc) {
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

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
	"os"

	"golang.org/x/term"

	"github.com/spoolhq/spool/internal/interrupt"
)

func main() {
	ctx, stop := interrupt.Context()
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

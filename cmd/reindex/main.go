// Command reindex builds, updates, verifies or repairs the SQLite index of
// a spool root (or of any Codex home) from its rollout files.
//
// Usage:
//
//	reindex [--root DIR] [--index PATH] [--full | --verify | --repair [--torn-grace D]] [--json] [--workers N]
//
// By default it brings the index up to date incrementally: unchanged files
// are skipped and grown files are read from their indexed size. --full
// rescans every file. --verify changes nothing and reports every way the
// index disagrees with the files. --repair cuts torn last lines (keeping
// them in side files next to the rollouts) and then updates the index; it
// leaves, and reports, a torn line whose thread a running Codex holds
// (its writer lock) or that is younger than --torn-grace, as an append
// does: its writer may still finish it.
//
// The root defaults to $SPOOL_ROOT, else ~/.spool; the index to
// $SPOOL_INDEX, else ROOT/spool.db (as spoold's -root and -index). Pointing --index elsewhere indexes a read-only Codex home
// (such as ~/.codex) without writing into it. reindex holds the lock file
// next to the index while it runs, so it never races spoold; --verify
// takes no lock and opens the index read-only, so it runs beside spoold
// and writes nothing (threads written meanwhile may show as drift).
//
// Exit codes: 0 success, 1 drift found by --verify, a rollout file that
// could not be read or indexed, or a torn line --repair left, 2 usage or
// I/O error, 3 the index is locked by another process, 130 interrupted
// (SIGINT, SIGTERM) before it was done; a second one, while it winds down,
// ends it at once.
package main

import (
	"os"

	"github.com/spoolhq/spool/internal/interrupt"
)

func main() {
	ctx, stop := interrupt.Context()
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

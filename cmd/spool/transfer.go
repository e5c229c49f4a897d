package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/spoolhq/spool/client"
	"github.com/spoolhq/spool/manager"
	"github.com/spoolhq/spool/objstore"
	"github.com/spoolhq/spool/pgbackend"
	"github.com/spoolhq/spool/transfer"
)

func newTransferCmd(a *app) *cobra.Command {
	var from, to string
	var ancestry bool
	cmd := &cobra.Command{
		Use:   "transfer ID...",
		Short: "Copy threads between a local root and the distributed backend",
		Long: `Copy threads, with their fork ancestors, from one backend to another: a local
root (a directory) or the distributed backend (a postgres:// URL; its bucket
from $SPOOL_S3, $SPOOL_S3_BUCKET, $SPOOL_S3_ACCESS_KEY, $SPOOL_S3_SECRET_KEY).
A thread leaves as a self-contained rollout and keeps its id, its lineage and
every line; a thread the target has already is left alone. Threads are named
by id or by a unique prefix or suffix of one in --from.

A --from root must exist; a --to root that does not is made (a new root to
copy threads into). A local root is opened directly, so no spoold may serve
it meanwhile. A root is opened with the index --index or $SPOOL_INDEX gives
when it is the root --root or $SPOOL_ROOT names, else with ROOT/spool.db.
See docs/DISTRIBUTED.md.`,
		Example: `  spool transfer 01a2153c-... --from ~/.spool --to postgres://db/spool
  spool transfer 01a2153c-... --from postgres://db/spool --to ~/.spool`,
		Args: idArgs(cobra.MinimumNArgs(1), -1),
		RunE: func(cmd *cobra.Command, argv []string) error {
			ctx := cmd.Context()
			if from == "" || to == "" {
				return usageError{errors.New("--from and --to are required")}
			}
			if !isURL(from) && !isURL(to) && sameRoot(from, to) {
				return usageError{fmt.Errorf("--from and --to are the same root, %s: a transfer copies threads to another one", from)}
			}
			if !isURL(from) {
				if _, err := os.Stat(from); errors.Is(err, fs.ErrNotExist) {
					return fmt.Errorf("--from: %w: %s", errNoRoot, from)
				}
				if !manager.LooksLikeRoot(from, a.indexOf(from)) {
					return fmt.Errorf("--from: %w: %s", manager.ErrNotRoot, from)
				}
			}
			if !isURL(to) {
				// A missing or empty directory becomes a new root; one
				// that holds other things is a mistyped path.
				if err := manager.CheckRoot(to, a.indexOf(to)); errors.Is(err, manager.ErrNotRoot) {
					return fmt.Errorf("--to: %w: %s (a transfer makes a new root only in a missing or empty directory)", manager.ErrNotRoot, to)
				} else if err != nil {
					return fmt.Errorf("--to: %w", err)
				}
			}
			src, err := a.openSpec(ctx, "--from", from)
			if err != nil {
				return err
			}
			defer src.Close()
			// Every name is resolved before the target is opened (and a
			// new root made).
			ids := make([]string, len(argv))
			for i, arg := range argv {
				if ids[i], err = a.resolve(ctx, backendLister{src}, arg); err != nil {
					return err
				}
			}
			dst, err := a.openSpec(ctx, "--to", to)
			if err != nil {
				return err
			}
			defer dst.Close()
			for _, id := range ids {
				results, err := transfer.Copy(ctx, src, dst, id, ancestry)
				for _, r := range results {
					verb := "copied"
					if !r.Copied {
						verb = "present"
					}
					fmt.Fprintf(a.stdout, "%s %s (%s)\n", verb, r.ID, count(r.Summary.UserMessageCount, "user message"))
				}
				if err != nil {
					return err
				}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&from, "from", "", "the source: an existing root directory or a postgres:// URL")
	cmd.Flags().StringVar(&to, "to", "", "the target: a root directory (made if missing) or a postgres:// URL")
	cmd.Flags().BoolVar(&ancestry, "ancestry", true, "bring each thread's fork ancestors first")
	return cmd
}

// isURL reports whether a --from or --to names the distributed backend
// (a postgres:// URL) rather than a root directory.
func isURL(spec string) bool {
	return strings.HasPrefix(spec, "postgres://") || strings.HasPrefix(spec, "postgresql://")
}

// sameRoot reports whether the root paths x and y name one directory: the
// same absolute path, or, when both exist, the same file (one a symlink to
// the other, say).
func sameRoot(x, y string) bool {
	absX, errX := filepath.Abs(x)
	absY, errY := filepath.Abs(y)
	if errX == nil && errY == nil && absX == absY {
		return true
	}
	fx, errX := os.Stat(x)
	fy, errY := os.Stat(y)
	return errX == nil && errY == nil && os.SameFile(fx, fy)
}

// indexOf returns the index file of the root directory dir: the one
// --index or $SPOOL_INDEX gives when dir is the root --root or $SPOOL_ROOT
// names (a Codex home served with spoold -index elsewhere), else
// DIR/spool.db. An index is never opened for a root it was not given for.
func (a *app) indexOf(dir string) string {
	if index := a.setting(a.index, "SPOOL_INDEX", ""); index != "" {
		if root := a.setting(a.root, "SPOOL_ROOT", ""); root != "" && sameRoot(dir, root) {
			return index
		}
	}
	return filepath.Join(dir, manager.IndexFile)
}

// backendLister lists the threads of a manager.Backend (transfer's
// --from) in the client's types, for resolve.
type backendLister struct{ b manager.Backend }

func (l backendLister) List(ctx context.Context, o client.ListOptions) (client.Page, error) {
	return listThreads(ctx, l.b, o)
}

// openSpec opens the backend that flag (--from or --to) names, spec. Its
// errors name the flag, and a URL (which the driver's errors do not
// name), without its password: both sides may be the distributed backend.
func (a *app) openSpec(ctx context.Context, flag, spec string) (manager.Backend, error) {
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	if !isURL(spec) {
		m, err := manager.Open(ctx, manager.Options{Root: spec, IndexPath: a.indexOf(spec), Logger: quiet})
		if err != nil {
			return nil, fmt.Errorf("%s: %w", flag, lockedHint(err, spec, "stop it first: transfer opens a root directly, never through spoold"))
		}
		return m, nil
	}
	b, err := openDistributed(ctx, spec, a.getenv, quiet)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", flag, redacted(spec), err)
	}
	return b, nil
}

// openDistributed opens the distributed backend at the postgres:// URL
// dsn, with the bucket that $SPOOL_S3 and its fellows name, if any.
func openDistributed(ctx context.Context, dsn string, getenv func(string) string, logger *slog.Logger) (manager.Backend, error) {
	o := pgbackend.Options{DSN: dsn, Logger: logger}
	if endpoint := getenv("SPOOL_S3"); endpoint != "" {
		bucket := getenv("SPOOL_S3_BUCKET")
		if bucket == "" {
			bucket = "spool"
		}
		b, err := objstore.OpenS3(ctx, objstore.S3Config{Endpoint: endpoint, Bucket: bucket,
			AccessKey: getenv("SPOOL_S3_ACCESS_KEY"), SecretKey: getenv("SPOOL_S3_SECRET_KEY")})
		if err != nil {
			return nil, err
		}
		o.Bucket = b
	}
	pb, err := pgbackend.Open(ctx, o)
	if err != nil {
		return nil, err // not a nil *pgbackend.Backend in a non-nil interface
	}
	return pb, nil
}

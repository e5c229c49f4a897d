package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/spf13/cobra"

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
every line; a thread the target has already is left alone. A local root is
opened directly, so no spoold may serve it meanwhile. See docs/DISTRIBUTED.md.`,
		Example: `  spool transfer 01a2153c-... --from ~/.spool --to postgres://db/spool
  spool transfer 01a2153c-... --from postgres://db/spool --to ~/.spool`,
		Args: args(cobra.MinimumNArgs(1)),
		RunE: func(cmd *cobra.Command, ids []string) error {
			ctx := cmd.Context()
			if from == "" || to == "" {
				return usageError{errors.New("--from and --to are required")}
			}
			src, err := a.openSpec(ctx, from)
			if err != nil {
				return err
			}
			defer src.Close()
			dst, err := a.openSpec(ctx, to)
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
					fmt.Fprintf(a.stdout, "%s %s (%d user messages)\n", verb, r.ID, r.Summary.UserMessageCount)
				}
				if err != nil {
					return err
				}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&from, "from", "", "the source: a root directory or a postgres:// URL")
	cmd.Flags().StringVar(&to, "to", "", "the target: a root directory or a postgres:// URL")
	cmd.Flags().BoolVar(&ancestry, "ancestry", true, "bring each thread's fork ancestors first")
	return cmd
}

// openSpec opens the backend a --from or --to names.
func (a *app) openSpec(ctx context.Context, spec string) (manager.Backend, error) {
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	if !strings.HasPrefix(spec, "postgres://") && !strings.HasPrefix(spec, "postgresql://") {
		m, err := manager.Open(ctx, manager.Options{Root: spec, Logger: quiet})
		if err != nil {
			return nil, lockedHint(err, spec)
		}
		return m, nil
	}
	o := pgbackend.Options{DSN: spec, Logger: quiet}
	if endpoint := a.getenv("SPOOL_S3"); endpoint != "" {
		bucket := a.getenv("SPOOL_S3_BUCKET")
		if bucket == "" {
			bucket = "spool"
		}
		b, err := objstore.OpenS3(ctx, objstore.S3Config{Endpoint: endpoint, Bucket: bucket,
			AccessKey: a.getenv("SPOOL_S3_ACCESS_KEY"), SecretKey: a.getenv("SPOOL_S3_SECRET_KEY")})
		if err != nil {
			return nil, err
		}
		o.Bucket = b
	}
	return pgbackend.Open(ctx, o)
}

package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"

	"github.com/spoolhq/spool/objstore"
	"github.com/spoolhq/spool/pgstore"
)

// distributedReport is the --json output of --pg.
type distributedReport struct {
	Mode      string            `json:"mode"` // "verify", "repair" or "collect"
	Problems  []pgstore.Problem `json:"problems,omitempty"`
	Repaired  []string          `json:"repaired,omitempty"`
	Collected []string          `json:"collected,omitempty"`
}

// runDistributed verifies, repairs or collects the distributed backend's
// database and bucket. --verify reads only: it exits 1 when it finds a
// problem and deletes nothing; --repair rebuilds each thread's message
// rows and counts from its bytes and exits 1 when a thread's bytes could
// not be read; --collect deletes only objects no row names.
func runDistributed(ctx context.Context, cfg config, stdout, stderr io.Writer) int {
	var o pgstore.Options
	if cfg.s3 != "" {
		bucket, err := objstore.OpenS3(ctx, objstore.S3Config{Endpoint: cfg.s3, Bucket: cfg.s3Bucket,
			AccessKey: os.Getenv("SPOOL_S3_ACCESS_KEY"), SecretKey: os.Getenv("SPOOL_S3_SECRET_KEY")})
		if err != nil {
			fmt.Fprintf(stderr, "reindex: %v\n", err)
			return exitError
		}
		o.Bucket = bucket
	}
	st, err := pgstore.Open(ctx, cfg.pg, o)
	if err != nil {
		fmt.Fprintf(stderr, "reindex: %v\n", err)
		return exitError
	}
	defer st.Close()
	rep := distributedReport{Mode: "verify"}
	code := exitOK
	switch {
	case cfg.collect:
		rep.Mode = "collect"
		if rep.Collected, err = st.CollectOrphans(ctx, cfg.grace); err != nil {
			fmt.Fprintf(stderr, "reindex: %v\n", err)
			return exitError
		}
	case cfg.repair:
		rep.Mode = "repair"
		if rep.Repaired, rep.Problems, err = st.Repair(ctx); err != nil {
			fmt.Fprintf(stderr, "reindex: %v\n", err)
			return exitError
		}
		if len(rep.Problems) > 0 {
			code = exitDrift
		}
	default:
		if rep.Problems, err = st.Verify(ctx); err != nil {
			fmt.Fprintf(stderr, "reindex: %v\n", err)
			return exitError
		}
		if len(rep.Problems) > 0 {
			code = exitDrift
		}
	}
	if cfg.json {
		if err := json.NewEncoder(stdout).Encode(rep); err != nil {
			return exitError
		}
		return code
	}
	for _, p := range rep.Problems {
		fmt.Fprintf(stdout, "problem: %s\n", p)
	}
	for _, id := range rep.Repaired {
		fmt.Fprintf(stdout, "repaired: %s\n", id)
	}
	for _, k := range rep.Collected {
		fmt.Fprintf(stdout, "collected: %s\n", k)
	}
	fmt.Fprintf(stdout, "%s: %s, %s repaired, %s collected\n", rep.Mode, count(len(rep.Problems), "problem"), count(len(rep.Repaired), "thread"), count(len(rep.Collected), "object"))
	return code
}

// envOr returns the environment variable name, or def when it is empty.
func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

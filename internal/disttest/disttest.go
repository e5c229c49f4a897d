//go:build distributed

// Package disttest gives the tests behind the distributed build tag the
// servers that scripts/test-distributed.sh starts: a new database on
// SPOOL_TEST_PG and a new bucket on SPOOL_TEST_S3 for each caller. Without
// those variables a test fails: it never skips.
package disttest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/spoolhq/spool/objstore"
)

// AdminDSN returns SPOOL_TEST_PG, the URL of the server's own database,
// for what spans databases (creating them, the server's statistics).
func AdminDSN(tb testing.TB) string {
	tb.Helper()
	admin := os.Getenv("SPOOL_TEST_PG")
	if admin == "" {
		tb.Fatal("SPOOL_TEST_PG is not set: run `make test-distributed`, which starts PostgreSQL and sets it")
	}
	return admin
}

// DSN returns the URL of a new, empty database, dropped when tb ends.
func DSN(tb testing.TB) string {
	tb.Helper()
	admin := AdminDSN(tb)
	u, err := url.Parse(admin)
	if err != nil {
		tb.Fatalf("SPOOL_TEST_PG: %v", err)
	}
	name := "spool_" + randomHex()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		tb.Fatalf("connect to SPOOL_TEST_PG: %v", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		tb.Fatalf("create database: %v", err)
	}
	tb.Cleanup(func() {
		conn, err := pgx.Connect(ctx, admin)
		if err != nil {
			tb.Errorf("drop database %s: %v", name, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "DROP DATABASE "+name+" WITH (FORCE)"); err != nil {
			tb.Errorf("drop database %s: %v", name, err)
		}
	})
	u.Path = "/" + name
	return u.String()
}

// S3Config returns the gateway's address and credentials with a new
// bucket name.
func S3Config(tb testing.TB) objstore.S3Config {
	tb.Helper()
	endpoint := os.Getenv("SPOOL_TEST_S3")
	if endpoint == "" {
		tb.Fatal("SPOOL_TEST_S3 is not set: run `make test-distributed`, which starts versitygw and sets it")
	}
	return objstore.S3Config{Endpoint: endpoint, Bucket: "spool-" + randomHex(), AccessKey: "spool", SecretKey: "spool-secret"}
}

// Bucket returns a new bucket on the gateway.
func Bucket(tb testing.TB) objstore.Bucket {
	tb.Helper()
	b, err := objstore.OpenS3(context.Background(), S3Config(tb))
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

func randomHex() string {
	var r [6]byte
	rand.Read(r[:])
	return hex.EncodeToString(r[:])
}

// WithQueryTimeout returns dsn with spool_query_timeout, how long the
// distributed backend lets a statement run, set to d.
func WithQueryTimeout(tb testing.TB, dsn, d string) string {
	tb.Helper()
	return WithParam(tb, dsn, "spool_query_timeout", d)
}

// WithParam returns dsn, a URL, with its query parameter name set to
// value.
func WithParam(tb testing.TB, dsn, name, value string) string {
	tb.Helper()
	u, err := url.Parse(dsn)
	if err != nil {
		tb.Fatal(err)
	}
	q := u.Query()
	q.Set(name, value)
	u.RawQuery = q.Encode()
	return u.String()
}

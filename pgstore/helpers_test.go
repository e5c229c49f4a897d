//go:build distributed

package pgstore

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/http/httptest"
	"net/url"
	"os"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"

	"github.com/spoolhq/spool/objstore"
)

// testDSN returns a URL of a new, empty database on the server named by
// SPOOL_TEST_PG (scripts/test-distributed.sh starts one), dropped at the
// end of the test. Built with the distributed tag, a test without that
// server fails: it never skips.
func testDSN(t *testing.T) string {
	t.Helper()
	admin := os.Getenv("SPOOL_TEST_PG")
	if admin == "" {
		t.Fatal("SPOOL_TEST_PG is not set: run `make test-distributed`, which starts PostgreSQL and sets it")
	}
	u, err := url.Parse(admin)
	if err != nil {
		t.Fatalf("SPOOL_TEST_PG: %v", err)
	}
	var b [6]byte
	rand.Read(b[:])
	name := "spool_" + hex.EncodeToString(b[:])
	conn, err := pgx.Connect(t.Context(), admin)
	if err != nil {
		t.Fatalf("connect to SPOOL_TEST_PG: %v", err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(t.Context(), "CREATE DATABASE "+name); err != nil {
		t.Fatalf("create database: %v", err)
	}
	t.Cleanup(func() {
		ctx := context.Background()
		conn, err := pgx.Connect(ctx, admin)
		if err != nil {
			t.Errorf("drop database %s: %v", name, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "DROP DATABASE "+name+" WITH (FORCE)"); err != nil {
			t.Errorf("drop database %s: %v", name, err)
		}
	})
	u.Path = "/" + name
	return u.String()
}

// newBucket returns a bucket on an in-process gofakes3 server, for the
// Stores of one test to share.
func newBucket(t *testing.T) objstore.Bucket {
	t.Helper()
	srv := httptest.NewServer(gofakes3.New(s3mem.New()).Server())
	t.Cleanup(srv.Close)
	b, err := objstore.OpenS3(t.Context(), objstore.S3Config{Endpoint: srv.URL, Bucket: "spool", AccessKey: "k", SecretKey: "secret"})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// gatewayBucket returns a new bucket on the S3 gateway that
// scripts/test-distributed.sh starts (SPOOL_TEST_S3): a real server in its
// own process, for tests of several Stores at once.
func gatewayBucket(t *testing.T) objstore.Bucket {
	t.Helper()
	endpoint := os.Getenv("SPOOL_TEST_S3")
	if endpoint == "" {
		t.Fatal("SPOOL_TEST_S3 is not set: run `make test-distributed`, which starts versitygw and sets it")
	}
	var r [6]byte
	rand.Read(r[:])
	b, err := objstore.OpenS3(t.Context(), objstore.S3Config{Endpoint: endpoint,
		Bucket: "spool-" + hex.EncodeToString(r[:]), AccessKey: "spool", SecretKey: "spool-secret"})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// openStore opens a Store on dsn with bucket (nil for none), closed at the
// end of the test.
func openStore(t *testing.T, dsn string, bucket objstore.Bucket) *Store {
	t.Helper()
	s, err := Open(t.Context(), dsn, Options{Bucket: bucket})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

// metaLine is a session_meta line for id.
func metaLine(id string) []byte {
	return fmt.Appendf(nil, `{"timestamp":"2026-11-25T00:00:00.000Z","type":"session_meta","payload":{"id":%q,"history_mode":"paginated"}}`+"\n", id)
}

// userLine is a user message line Codex counts, with text.
func userLine(text string) []byte {
	return fmt.Appendf(nil, `{"timestamp":"2026-11-25T00:00:01.000Z","type":"response_item","payload":{"type":"message","role":"user","content":[{"type":"input_text","text":%q}]}}`+"\n", text)
}

// otherLine is a line that is not a user message.
func otherLine(n int) []byte {
	return fmt.Appendf(nil, `{"timestamp":"2026-11-25T00:00:02.000Z","type":"event_msg","payload":{"type":"agent_message","message":"answer %d"}}`+"\n", n)
}

func newID(t *testing.T) string {
	t.Helper()
	var b [16]byte
	rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x70
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

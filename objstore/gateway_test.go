//go:build distributed

package objstore

import (
	"crypto/rand"
	"encoding/hex"
	"os"
	"testing"
)

// TestS3Gateway runs the Bucket contract on the S3 gateway that
// scripts/test-distributed.sh starts (SPOOL_TEST_S3), in a new bucket.
func TestS3Gateway(t *testing.T) {
	endpoint := os.Getenv("SPOOL_TEST_S3")
	if endpoint == "" {
		t.Fatal("SPOOL_TEST_S3 is not set: run `make test-distributed`, which starts versitygw and sets it")
	}
	var r [6]byte
	rand.Read(r[:])
	b, err := OpenS3(t.Context(), S3Config{Endpoint: endpoint, Bucket: "spool-" + hex.EncodeToString(r[:]),
		AccessKey: "spool", SecretKey: "spool-secret"})
	if err != nil {
		t.Fatal(err)
	}
	testBucket(t, b)
}

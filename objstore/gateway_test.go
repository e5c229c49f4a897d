//go:build distributed

package objstore

import (
	"crypto/rand"
	"encoding/hex"
	"net/http"
	"os"
	"sync"
	"testing"
)

// TestS3Gateway runs the Bucket contract on the S3 gateway that
// scripts/test-distributed.sh starts (SPOOL_TEST_S3), in a new bucket.
func TestS3Gateway(t *testing.T) {
	b, err := OpenS3(t.Context(), newGatewayBucket(t))
	if err != nil {
		t.Fatal(err)
	}
	testBucket(t, b)
}

// newGatewayBucket returns the configuration of a bucket not made yet on
// the S3 gateway that scripts/test-distributed.sh starts (SPOOL_TEST_S3).
func newGatewayBucket(t *testing.T) S3Config {
	t.Helper()
	endpoint := os.Getenv("SPOOL_TEST_S3")
	if endpoint == "" {
		t.Fatal("SPOOL_TEST_S3 is not set: run `make test-distributed`, which starts versitygw and sets it")
	}
	var r [6]byte
	rand.Read(r[:])
	return S3Config{Endpoint: endpoint, Bucket: "spool-" + hex.EncodeToString(r[:]), AccessKey: "spool", SecretKey: "spool-secret"}
}

// bucketRace answers the first HEAD of a bucket 404 without sending it,
// as a node sees a new bucket that another node, started at the same
// moment, creates between its check and its own create.
type bucketRace struct {
	mu     sync.Mutex // guards headed
	headed bool
}

func (r *bucketRace) RoundTrip(req *http.Request) (*http.Response, error) {
	r.mu.Lock()
	first := req.Method == http.MethodHead && !r.headed
	r.headed = r.headed || first
	r.mu.Unlock()
	if first {
		return &http.Response{StatusCode: http.StatusNotFound, Header: http.Header{}, Body: http.NoBody, Request: req}, nil
	}
	return http.DefaultTransport.RoundTrip(req)
}

// TestS3GatewayBucketCreatedMeanwhile: two nodes started at once on a new
// bucket both see it missing, and the one whose create comes second is
// told the bucket is already its own. That is the bucket made, not a
// failure: it used to stop the node ("make bucket …: Your previous request
// to create the named bucket succeeded and you already own it").
func TestS3GatewayBucketCreatedMeanwhile(t *testing.T) {
	cfg := newGatewayBucket(t)
	if _, err := OpenS3(t.Context(), cfg); err != nil {
		t.Fatal(err)
	}
	cfg.Transport = &bucketRace{}
	b, err := OpenS3(t.Context(), cfg)
	if err != nil {
		t.Fatalf("second node's open: %v", err)
	}
	testBucket(t, b)
}

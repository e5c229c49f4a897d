package objstore

import (
	"bytes"
	"errors"
	"io"
	"net/http/httptest"
	"slices"
	"testing"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"
)

// newFake returns an S3 bucket on an in-process gofakes3 server.
func newFake(t *testing.T) *S3 {
	t.Helper()
	srv := httptest.NewServer(gofakes3.New(s3mem.New()).Server())
	t.Cleanup(srv.Close)
	b, err := OpenS3(t.Context(), S3Config{Endpoint: srv.URL, Bucket: "spool", AccessKey: "k", SecretKey: "secret"})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestS3Fake runs the contract on the in-process gofakes3 server; the
// distributed tag runs it on versitygw too (TestS3Gateway).
func TestS3Fake(t *testing.T) { testBucket(t, newFake(t)) }

// testBucket checks the Bucket contract on an empty bucket.
func testBucket(t *testing.T, b Bucket) {
	ctx := t.Context()
	data := []byte("0123456789abcdef")
	if err := b.PutNew(ctx, "segments/a/1", data); err != nil {
		t.Fatal(err)
	}
	if err := b.PutNew(ctx, "segments/a/1", []byte("other")); !errors.Is(err, ErrExists) {
		t.Fatalf("second PutNew: got %v, want ErrExists", err)
	}
	// Past 16 MiB the S3 client uploads in parts: the condition must
	// hold for the whole upload too.
	big := bytes.Repeat([]byte("first "), 17<<20/6)
	if err := b.PutNew(ctx, "segments/big/1", big); err != nil {
		t.Fatal(err)
	}
	if err := b.PutNew(ctx, "segments/big/1", bytes.Repeat([]byte("other "), 17<<20/6)); !errors.Is(err, ErrExists) {
		t.Fatalf("second PutNew of %d bytes: got %v, want ErrExists", len(big), err)
	}
	if got, err := b.ReadRange(ctx, "segments/big/1", int64(len(big))-6, 6); err != nil || string(got) != "first " {
		t.Fatalf("ReadRange of the big object's end: %q, %v; want the first write kept", got, err)
	}
	if err := b.Delete(ctx, "segments/big/1"); err != nil {
		t.Fatal(err)
	}
	got, err := b.ReadRange(ctx, "segments/a/1", 3, 5)
	if err != nil || !bytes.Equal(got, data[3:8]) {
		t.Fatalf("ReadRange: %q, %v; want %q (the first write kept)", got, err, data[3:8])
	}
	if _, err := b.ReadRange(ctx, "segments/a/missing", 0, 1); !errors.Is(err, ErrNotFound) {
		t.Fatalf("missing key: got %v, want ErrNotFound", err)
	}
	rc, obj, err := b.Get(ctx, "segments/a/1")
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	whole, err := io.ReadAll(rc)
	rc.Close()
	if err != nil || !bytes.Equal(whole, data) || obj.Size != int64(len(data)) || obj.Key != "segments/a/1" {
		t.Fatalf("Get: %q (%+v), %v; want %q", whole, obj, err, data)
	}
	if _, _, err := b.Get(ctx, "segments/a/missing"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get of a missing key: got %v, want ErrNotFound", err)
	}
	if err := b.PutNew(ctx, "segments/b/1", data); err != nil {
		t.Fatal(err)
	}
	objects, err := b.List(ctx, "segments/")
	if err != nil || !slices.Equal(keysOf(objects), []string{"segments/a/1", "segments/b/1"}) {
		t.Fatalf("List: %v, %v", objects, err)
	}
	if objects[0].Size != int64(len(data)) || objects[0].Modified.IsZero() {
		t.Fatalf("listed %+v, want size %d and a time", objects[0], len(data))
	}
	if err := b.Delete(ctx, "segments/a/1"); err != nil {
		t.Fatal(err)
	}
	if objects, _ := b.List(ctx, "segments/"); !slices.Equal(keysOf(objects), []string{"segments/b/1"}) {
		t.Fatalf("after Delete: %v", objects)
	}
}

func keysOf(objects []Object) []string {
	var keys []string
	for _, o := range objects {
		keys = append(keys, o.Key)
	}
	return keys
}

// Package objstore holds sealed segments in object storage: immutable
// objects, written once under names that say what they hold, read by
// range. Bucket is the seam; S3 implements it over any S3-compatible
// service through minio-go.
package objstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// Errors callers test with errors.Is.
var (
	// ErrExists: PutNew found the key already written.
	ErrExists = errors.New("object already exists")
	// ErrNotFound: no object has the key.
	ErrNotFound = errors.New("object not found")
	// ErrUnavailable: the service answered that it cannot serve the
	// request now (a 5xx status, or throttling such as 503 SlowDown),
	// still after the client's own retries: a later retry may succeed.
	ErrUnavailable = errors.New("object store unavailable")
)

// Bucket is a store of immutable objects.
type Bucket interface {
	// PutNew writes data under key unless the key exists (ErrExists then,
	// and nothing changes). A key that holds data already, byte for byte
	// (a retry of a write whose answer was lost), is success.
	PutNew(ctx context.Context, key string, data []byte) error
	// ReadRange returns n bytes of the object key from offset off.
	ReadRange(ctx context.Context, key string, off, n int64) ([]byte, error)
	// Get opens the whole object key for reading and describes it, in
	// one request (ErrNotFound for a missing key). The caller closes it.
	Get(ctx context.Context, key string) (io.ReadCloser, Object, error)
	// Delete removes key; removing a missing key is not an error.
	Delete(ctx context.Context, key string) error
	// List returns the objects whose keys start with prefix, in key order.
	List(ctx context.Context, prefix string) ([]Object, error)
}

// Object is a listed object.
type Object struct {
	Key      string
	Size     int64
	Modified time.Time
}

// S3 is a Bucket in an S3-compatible service.
type S3 struct {
	client  *minio.Client
	bucket  string
	timeout time.Duration // S3Config.RequestTimeout
}

// DefaultRequestTimeout is S3Config.RequestTimeout's default.
const DefaultRequestTimeout = 30 * time.Second

// minRate is the slowest transfer a put or a read of a range waits for
// beyond RequestTimeout: n bytes may take n/minRate seconds more.
const minRate = 1 << 20

// S3Config says where the bucket is.
type S3Config struct {
	// Endpoint is the service's URL (http://127.0.0.1:7070); plain http is
	// allowed for loopback test servers.
	Endpoint  string
	Bucket    string
	AccessKey string
	SecretKey string
	// Transport, when set, carries the requests (tests pass an
	// in-process server's).
	Transport http.RoundTripper
	// RequestTimeout bounds how long a put, a read of a range, a delete,
	// or the answer to a Get (not the reading of its body) may take, the
	// client's retries included (a put also a second per MiB it sends):
	// past it the operation fails with ErrUnavailable, as when the
	// service cannot be reached. A service that accepts connections and
	// never answers would otherwise hold a read of a sealed thread for
	// about ten minutes (a minute per attempt), and a node's sealer for as
	// long as it hangs. Zero means DefaultRequestTimeout.
	RequestTimeout time.Duration
}

// OpenS3 connects to the bucket of c, creating it if it does not exist
// (nodes started at once on a new bucket may all create it).
func OpenS3(ctx context.Context, c S3Config) (*S3, error) {
	u, err := url.Parse(c.Endpoint)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("objstore: endpoint %q: want a URL such as http://127.0.0.1:7070", c.Endpoint)
	}
	client, err := minio.New(u.Host, &minio.Options{
		Creds:     credentials.NewStaticV4(c.AccessKey, c.SecretKey, ""),
		Secure:    u.Scheme == "https",
		Transport: c.Transport,
		Region:    "us-east-1",
	})
	if err != nil {
		return nil, fmt.Errorf("objstore: %w", err)
	}
	ok, err := client.BucketExists(ctx, c.Bucket)
	if err != nil {
		return nil, fmt.Errorf("objstore: bucket %s: %w", c.Bucket, err)
	}
	if !ok {
		// Another node started at the same moment may have made it
		// since: services answer that as BucketAlreadyOwnedByYou, some
		// as BucketAlreadyExists, so a refused create looks again.
		if err := client.MakeBucket(ctx, c.Bucket, minio.MakeBucketOptions{}); err != nil {
			if ok, _ := client.BucketExists(ctx, c.Bucket); !ok {
				return nil, fmt.Errorf("objstore: make bucket %s: %w", c.Bucket, err)
			}
		}
	}
	timeout := c.RequestTimeout
	if timeout <= 0 {
		timeout = DefaultRequestTimeout
	}
	return &S3{client: client, bucket: c.Bucket, timeout: timeout}, nil
}

// bounded returns ctx bounded by d, and the function that gives the
// operation's error: ErrUnavailable, never context.DeadlineExceeded (which
// callers read as "the caller gave up"), when the bound ended it.
func bounded(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc, func(error) error) {
	hung := fmt.Errorf("%w: no answer within %v", ErrUnavailable, d)
	opCtx, cancel := context.WithTimeoutCause(ctx, d, hung)
	return opCtx, cancel, func(err error) error {
		if err != nil && ctx.Err() == nil && context.Cause(opCtx) == hung {
			return hung
		}
		return err
	}
}

// PutNew writes data under key with If-None-Match: *, so a key is written
// once whichever process gets there first. It is one PUT whatever the
// size (S3 takes up to 5 GiB so): a multipart upload checks the condition
// only where the service checks it on completion, and versitygw does not.
//
// A PUT the service carried out but whose answer was lost is sent again
// by the S3 client and meets its own object (412): PutNew then reads the
// object back and succeeds when it holds data, byte for byte.
func (s *S3) PutNew(ctx context.Context, key string, data []byte) error {
	putCtx, cancel, outcome := bounded(ctx, s.timeout+time.Duration(len(data)/minRate)*time.Second)
	defer cancel()
	opts := minio.PutObjectOptions{ContentType: "application/octet-stream", DisableMultipart: true}
	opts.SetMatchETagExcept("*")
	_, err := s.client.PutObject(putCtx, s.bucket, key, bytes.NewReader(data), int64(len(data)), opts)
	err = outcome(err)
	if code := minio.ToErrorResponse(err).StatusCode; code == http.StatusPreconditionFailed {
		same, err := s.holds(ctx, key, data)
		switch {
		case err != nil:
			return fmt.Errorf("put %s: an object is there and reading it back failed: %w", key, err)
		case !same:
			return fmt.Errorf("put %s: %w", key, ErrExists)
		}
		return nil
	}
	if err != nil {
		return fmt.Errorf("put %s: %w", key, classify(err))
	}
	return nil
}

// holds reports whether the object key holds data, byte for byte.
func (s *S3) holds(ctx context.Context, key string, data []byte) (bool, error) {
	ctx, cancel, outcome := bounded(ctx, s.timeout+time.Duration(len(data)/minRate)*time.Second)
	defer cancel()
	rc, obj, err := s.Get(ctx, key)
	if err != nil {
		return false, err
	}
	defer rc.Close()
	if obj.Size != int64(len(data)) {
		return false, nil
	}
	got, err := io.ReadAll(io.LimitReader(rc, int64(len(data))+1))
	if err != nil {
		return false, classify(outcome(err))
	}
	return bytes.Equal(got, data), nil
}

// classify returns err, an error of the S3 client, wrapping ErrUnavailable
// when the service answered with a status that says "not now" (5xx, 429)
// or with a throttling code.
func classify(err error) error {
	resp := minio.ToErrorResponse(err)
	switch {
	case resp.StatusCode >= 500, resp.StatusCode == http.StatusTooManyRequests,
		strings.HasPrefix(resp.Code, "SlowDown"), resp.Code == "InternalError", resp.Code == "ServiceUnavailable":
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	return err
}

// ReadRange reads n bytes of key from off with one ranged GET.
func (s *S3) ReadRange(ctx context.Context, key string, off, n int64) ([]byte, error) {
	if n == 0 {
		return nil, nil
	}
	opts := minio.GetObjectOptions{}
	if err := opts.SetRange(off, off+n-1); err != nil {
		return nil, fmt.Errorf("get %s: %w", key, err)
	}
	ctx, cancel, outcome := bounded(ctx, s.timeout+time.Duration(n/minRate)*time.Second)
	defer cancel()
	obj, err := s.client.GetObject(ctx, s.bucket, key, opts)
	if err != nil {
		return nil, fmt.Errorf("get %s: %w", key, classify(outcome(err)))
	}
	defer obj.Close()
	b := make([]byte, n)
	if _, err := io.ReadFull(obj, b); err != nil {
		err = outcome(err)
		if minio.ToErrorResponse(err).Code == "NoSuchKey" {
			return nil, fmt.Errorf("get %s: %w", key, ErrNotFound)
		}
		return nil, fmt.Errorf("get %s [%d, %d): %w", key, off, off+n, classify(err))
	}
	return b, nil
}

// Get implements Bucket. S3Config.RequestTimeout bounds the wait for the
// answer; the body is then read as slowly as the caller reads it.
func (s *S3) Get(ctx context.Context, key string) (io.ReadCloser, Object, error) {
	parent := ctx
	ctx, cancel := context.WithCancelCause(ctx)
	hung := fmt.Errorf("%w: no answer within %v", ErrUnavailable, s.timeout)
	timer := time.AfterFunc(s.timeout, func() { cancel(hung) })
	fail := func(err error) (io.ReadCloser, Object, error) {
		timer.Stop()
		cancel(nil)
		if parent.Err() == nil && context.Cause(ctx) == hung {
			err = hung
		}
		if minio.ToErrorResponse(err).Code == "NoSuchKey" {
			return nil, Object{}, fmt.Errorf("get %s: %w", key, ErrNotFound)
		}
		return nil, Object{}, fmt.Errorf("get %s: %w", key, classify(err))
	}
	obj, err := s.client.GetObject(ctx, s.bucket, key, minio.GetObjectOptions{})
	if err != nil {
		return fail(err)
	}
	info, err := obj.Stat() // the GET's own answer: no second request
	if err == nil && !timer.Stop() {
		err = hung // the bound ended the body's context as the answer came
	}
	if err != nil {
		obj.Close()
		return fail(err)
	}
	return cancelOnClose{obj, cancel}, Object{Key: key, Size: info.Size, Modified: info.LastModified}, nil
}

// cancelOnClose is a body whose Close also ends the context it is read under.
type cancelOnClose struct {
	io.ReadCloser
	cancel context.CancelCauseFunc
}

func (c cancelOnClose) Close() error {
	err := c.ReadCloser.Close()
	c.cancel(nil)
	return err
}

// Delete removes key.
func (s *S3) Delete(ctx context.Context, key string) error {
	ctx, cancel, outcome := bounded(ctx, s.timeout)
	defer cancel()
	if err := s.client.RemoveObject(ctx, s.bucket, key, minio.RemoveObjectOptions{}); err != nil {
		return fmt.Errorf("delete %s: %w", key, classify(outcome(err)))
	}
	return nil
}

// List returns the objects under prefix in key order.
func (s *S3) List(ctx context.Context, prefix string) ([]Object, error) {
	var objects []Object
	for obj := range s.client.ListObjects(ctx, s.bucket, minio.ListObjectsOptions{Prefix: prefix, Recursive: true}) {
		if obj.Err != nil {
			return nil, fmt.Errorf("list %s: %w", prefix, classify(obj.Err))
		}
		objects = append(objects, Object{Key: obj.Key, Size: obj.Size, Modified: obj.LastModified})
	}
	return objects, nil
}

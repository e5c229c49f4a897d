package objstore

import (
	"bytes"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"
)

// losingTransport carries requests to the server but loses the answer to
// the first PUT of an object once the server has acted on it, as a connection that
// breaks after the request went through: the S3 client sends it again.
type losingTransport struct {
	mu   sync.Mutex // guards lost
	lost bool
}

var errAnswerLost = errors.New("connection reset after the request was sent")

func (l *losingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil || req.Method != http.MethodPut || !strings.Contains(req.URL.Path, "/segments/") {
		return resp, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.lost {
		return resp, nil
	}
	l.lost = true
	resp.Body.Close()
	return nil, errAnswerLost
}

// TestPutNewAnswerLost: a PutNew whose PUT was written but whose answer
// was lost is sent again by the S3 client and meets its own object (412).
// That is the write done, not a conflict: it used to fail with ErrExists,
// and a seal with it. Another object under the key is still ErrExists.
func TestPutNewAnswerLost(t *testing.T) {
	srv := httptest.NewServer(gofakes3.New(s3mem.New()).Server())
	t.Cleanup(srv.Close)
	transport := &losingTransport{}
	b, err := OpenS3(t.Context(), S3Config{Endpoint: srv.URL, Bucket: "spool", AccessKey: "k", SecretKey: "secret", Transport: transport})
	if err != nil {
		t.Fatal(err)
	}
	data := []byte("a segment's bytes")
	if err := b.PutNew(t.Context(), "segments/a/1", data); err != nil {
		t.Fatalf("PutNew whose first answer was lost: %v, want success", err)
	}
	if !transport.lost {
		t.Fatal("no PUT answer was lost: the test tested nothing")
	}
	got, err := b.ReadRange(t.Context(), "segments/a/1", 0, int64(len(data)))
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("object after the retried PutNew: %q, %v; want %q", got, err, data)
	}
	for _, tc := range []struct {
		name string
		data []byte
	}{
		{"other bytes", []byte("a segment's BYTES")},
		{"shorter", data[:5]},
		{"longer", append(bytes.Clone(data), '!')},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := b.PutNew(t.Context(), "segments/a/1", tc.data); !errors.Is(err, ErrExists) {
				t.Fatalf("PutNew of %q over %q: %v, want ErrExists", tc.data, data, err)
			}
		})
	}
}

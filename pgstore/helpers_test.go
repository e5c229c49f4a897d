//go:build distributed

package pgstore

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/http/httptest"
	"testing"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"

	"github.com/spoolhq/spool/internal/disttest"
	"github.com/spoolhq/spool/objstore"
)

// testDSN returns a new database (internal/disttest).
func testDSN(t testing.TB) string { return disttest.DSN(t) }

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
// scripts/test-distributed.sh starts: a real server in its own process, for
// tests of several Stores at once.
func gatewayBucket(t *testing.T) objstore.Bucket { return disttest.Bucket(t) }

// openStore opens a Store on dsn with bucket (nil for none), closed at the
// end of the test.
func openStore(t testing.TB, dsn string, bucket objstore.Bucket) *Store {
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

// echoLine is the echo Codex writes after a prompt: a thread's preview
// comes from the first (rollout.Preview).
func echoLine(text string) []byte {
	return fmt.Appendf(nil, `{"timestamp":"2026-11-25T00:00:01.000Z","type":"event_msg","payload":{"type":"user_message","message":%q,"images":[]}}`+"\n", text)
}

// otherLine is a line that is not a user message.
func otherLine(n int) []byte {
	return fmt.Appendf(nil, `{"timestamp":"2026-11-25T00:00:02.000Z","type":"event_msg","payload":{"type":"agent_message","message":"answer %d"}}`+"\n", n)
}

func newID(t testing.TB) string {
	t.Helper()
	var b [16]byte
	rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x70
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// rename names thread id with a thread_name_updated line, as a backend's
// rename appends one.
func rename(t *testing.T, s *Store, id, name string) error {
	t.Helper()
	line := fmt.Appendf(nil, `{"timestamp":"2026-01-01T00:00:00.000Z","type":"event_msg","payload":{"type":"thread_name_updated","thread_id":%q,"thread_name":%q}}`+"\n", id, name)
	_, err := s.Rename(t.Context(), id, line)
	return err
}

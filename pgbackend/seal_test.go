//go:build distributed

package pgbackend

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/spoolhq/spool/internal/disttest"
	"github.com/spoolhq/spool/manager"
	"github.com/spoolhq/spool/objstore"
	"github.com/spoolhq/spool/rollout"
)

// refusingBucket refuses to write objects whose key holds refused.
type refusingBucket struct {
	objstore.Bucket
	refused string
}

var errRefused = errors.New("object refused")

func (r refusingBucket) PutNew(ctx context.Context, key string, data []byte) error {
	if strings.Contains(key, r.refused) {
		return errRefused
	}
	return r.Bucket.PutNew(ctx, key, data)
}

// TestSealPassesOverAThreadItCannotSeal: the object store refuses the
// segments of the thread with the most unsealed bytes, which a seal pass
// tries first; the pass still seals the other thread, and says what
// failed.
func TestSealPassesOverAThreadItCannotSeal(t *testing.T) {
	ctx := t.Context()
	bucket := &refusingBucket{Bucket: disttest.Bucket(t)}
	b, err := Open(ctx, Options{DSN: disttest.DSN(t), Bucket: bucket, SealBytes: 1, SealEvery: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	start := func(text string) manager.Thread {
		t.Helper()
		payload, _ := json.Marshal(map[string]string{"type": "agent_message", "message": text})
		th, err := b.Start(ctx, manager.StartOptions{Cwd: "/work"})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := b.AppendWith(ctx, th.ID, []rollout.Item{{Type: rollout.TypeEventMsg, Payload: payload}}, manager.AppendOptions{}); err != nil {
			t.Fatal(err)
		}
		return th
	}
	big := start(strings.Repeat("a long message ", 1000))
	small := start("a short message")
	bucket.refused = big.ID
	err = b.sealPass(ctx)
	if !errors.Is(err, errRefused) || !strings.Contains(err.Error(), big.ID) {
		t.Fatalf("seal pass: %v, want the refusal of %s", err, big.ID)
	}
	for _, c := range []struct {
		th     manager.Thread
		sealed bool
	}{{big, false}, {small, true}} {
		row, err := b.Store().Get(ctx, c.th.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got := row.SealedSize == row.Size; got != c.sealed {
			t.Errorf("thread %s: %d of %d bytes sealed, want all sealed: %t", c.th.ID, row.SealedSize, row.Size, c.sealed)
		}
	}
}

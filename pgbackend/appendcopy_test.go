//go:build distributed

package pgbackend

import (
	"bytes"
	"context"
	"encoding/json"
	"runtime"
	"testing"

	"github.com/spoolhq/spool/manager"
	"github.com/spoolhq/spool/rollout"
)

// TestAppendAllocationBounded appends one item, or one line, of 16 MiB to
// a paginated thread and counts the bytes the call allocates: at most
// six times the line. Without a key that is the line, the line with its
// ordinal, and pgx's buffer growing to send it (4x); with one, the
// chunks of the payload the request's hash quotes, 32 KiB at a time (5x).
// It was over ten: that hash, made of the payload quoted whole by fmt even
// without a key, took four, and one line was joined into a copy of
// itself.
func TestAppendAllocationBounded(t *testing.T) {
	b := openUnsealed(t)
	output, err := json.Marshal(string(bytes.Repeat([]byte("0123456789abcdef"), 1<<20)))
	if err != nil {
		t.Fatal(err)
	}
	payload := []byte(`{"type":"function_call_output","call_id":"c","output":` + string(output) + `}`)
	line := []byte(`{"type":"response_item","payload":` + string(payload) + `}`)
	appends := map[string]func(ctx context.Context, id string) error{
		"AppendWith": func(ctx context.Context, id string) error {
			_, err := b.AppendWith(ctx, id, []rollout.Item{{Type: "response_item", Payload: payload}}, manager.AppendOptions{})
			return err
		},
		"AppendWith, keyed": func(ctx context.Context, id string) error {
			_, err := b.AppendWith(ctx, id, []rollout.Item{{Type: "response_item", Payload: payload}}, manager.AppendOptions{IdempotencyKey: "key-" + id})
			return err
		},
		"AppendLinesWith": func(ctx context.Context, id string) error {
			_, err := b.AppendLinesWith(ctx, id, [][]byte{line}, manager.AppendOptions{})
			return err
		},
	}
	for name, appendOne := range appends {
		t.Run(name, func(t *testing.T) {
			th, err := b.Start(t.Context(), manager.StartOptions{Cwd: "/work"})
			if err != nil {
				t.Fatal(err)
			}
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			if err := appendOne(t.Context(), th.ID); err != nil {
				t.Fatal(err)
			}
			runtime.ReadMemStats(&after)
			allocated, limit := after.TotalAlloc-before.TotalAlloc, uint64(len(line))*6
			t.Logf("an append of a %d-byte line allocated %d bytes (%.1fx)", len(line), allocated, float64(allocated)/float64(len(line)))
			if allocated > limit {
				t.Errorf("an append of a %d-byte line allocated %d bytes, want at most %d", len(line), allocated, limit)
			}
		})
	}
}

package pgstore

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// TestQueryDeadlineGrowsWithWhatItSends: a statement's bound is the query
// timeout and a second more per MiB of arguments it sends (lines, texts),
// so a large append on a slow link is not cut off as unanswered, whether
// sent alone or in a batch.
func TestQueryDeadlineGrowsWithWhatItSends(t *testing.T) {
	const timeout = 10 * time.Second
	q := queryDeadline{timeout: timeout}
	batch := func(args ...[]any) context.Context {
		var b pgx.Batch
		for _, a := range args {
			b.Queue("SELECT 1", a...)
		}
		return q.TraceBatchStart(t.Context(), nil, pgx.TraceBatchStartData{Batch: &b})
	}
	tests := []struct {
		name string
		ctx  context.Context
		want time.Duration
	}{
		{"no arguments", q.TraceQueryStart(t.Context(), nil, pgx.TraceQueryStartData{}), timeout},
		{"small arguments", q.TraceQueryStart(t.Context(), nil, pgx.TraceQueryStartData{Args: []any{"id", int64(3)}}), timeout},
		{"3 MiB of lines", q.TraceQueryStart(t.Context(), nil, pgx.TraceQueryStartData{Args: []any{"id", make([]byte, 3<<20)}}), timeout + 3*time.Second},
		{"2 MiB of text", q.TraceQueryStart(t.Context(), nil, pgx.TraceQueryStartData{Args: []any{strings.Repeat("x", 2<<20)}}), timeout + 2*time.Second},
		{"a batch of 3 MiB", batch([]any{"a", make([]byte, 2<<20)}, []any{"b", make([]byte, 1<<20)}), timeout + 3*time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			defer end(tt.ctx)
			deadline, ok := tt.ctx.Deadline()
			if !ok {
				t.Fatal("no deadline")
			}
			// The deadline was set a moment ago: within a second of want.
			if got := time.Until(deadline); got > tt.want || got < tt.want-time.Second {
				t.Fatalf("bound = %s, want %s", got.Round(time.Millisecond), tt.want)
			}
		})
	}
}

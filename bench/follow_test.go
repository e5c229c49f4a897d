package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"github.com/spoolhq/spool/client"
	"github.com/spoolhq/spool/manager"
	"github.com/spoolhq/spool/rolloutfs"
	"github.com/spoolhq/spool/server"
)

// BenchmarkFollowDelay measures how long after an append is acknowledged
// (its HTTP answer read by the appending client) a follower on another
// connection has the line: spoold over loopback, the default sync policy,
// one append of one user message per iteration, the next append only once
// the follower has the line. A line that reaches the follower before the
// appender has its answer counts as 0. It reports the median and the 99th
// percentile in milliseconds (goal: p99 ≤ 100 ms).
func BenchmarkFollowDelay(b *testing.B) {
	ctx := b.Context()
	m, err := manager.Open(ctx, manager.Options{Root: b.TempDir(), Sync: rolloutfs.SyncAlways, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	srv := server.New(m, server.Config{Logger: slog.New(slog.DiscardHandler)})
	ts := httptest.NewServer(srv.Handler())
	defer func() {
		srv.Drain()
		ts.Close()
		m.Close()
	}()
	c, err := client.New(ts.URL)
	if err != nil {
		b.Fatal(err)
	}
	th, err := c.Create(ctx, client.CreateOptions{})
	if err != nil {
		b.Fatal(err)
	}
	followCtx, stop := context.WithCancel(ctx)
	defer stop()
	received := make(chan time.Time, 1)
	followErr := make(chan error, 1)
	go func() {
		for _, err := range c.Follow(followCtx, th.ID, th.IndexedSize) {
			if err != nil {
				followErr <- err
				return
			}
			received <- time.Now()
		}
	}()
	payload, _ := json.Marshal(map[string]any{
		"type": "message", "role": "user",
		"content": []map[string]string{{"type": "input_text", "text": "how do I follow a thread?"}},
	})
	item := client.Item{Type: "response_item", Payload: payload}
	delays := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := range b.N {
		if _, err := c.Append(ctx, th.ID, item); err != nil {
			b.Fatal(err)
		}
		acked := time.Now()
		select {
		case at := <-received:
			delays = append(delays, max(at.Sub(acked), 0))
		case err := <-followErr:
			b.Fatalf("follow ended after %d lines: %v", i, err)
		}
	}
	b.StopTimer()
	slices.Sort(delays)
	pct := func(p float64) float64 {
		return float64(delays[min(len(delays)-1, int(p*float64(len(delays))))]) / float64(time.Millisecond)
	}
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
	b.ReportMetric(float64(delays[len(delays)-1])/float64(time.Millisecond), "max-ms")
	if testing.Verbose() {
		fmt.Fprintf(b.Output(), "follow delay over %d appends: p50 %.3f ms, p99 %.3f ms\n", len(delays), pct(0.5), pct(0.99))
	}
}

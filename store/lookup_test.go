package store

import (
	"context"
	"errors"
	"runtime/metrics"
	"testing"
)

// goroutinesCreated is the number of goroutines the process has started.
func goroutinesCreated() uint64 {
	s := []metrics.Sample{{Name: "/sched/goroutines-created:goroutines"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

// TestLookupsDoNotWatchTheContext: a lookup through an index starts no
// goroutine to watch a context that can be canceled (database/sql and the
// driver start one each per statement that watches it; see lookup), and
// fails with the context's error once it is done.
func TestLookupsDoNotWatchTheContext(t *testing.T) {
	s := openTest(t)
	forkTree(t, s)
	path := newThread("a1", 0).RolloutPath
	lookups := []struct {
		name string
		run  func(context.Context) error
	}{
		{"Get", func(ctx context.Context) error { _, err := s.Get(ctx, "a1"); return err }},
		{"GetByPath", func(ctx context.Context) error { _, err := s.GetByPath(ctx, path); return err }},
		{"UserMessage", func(ctx context.Context) error { _, err := s.UserMessage(ctx, "a1", 1); return err }},
		{"UserMessageOfTurn", func(ctx context.Context) error {
			_, err := s.UserMessageOfTurn(ctx, "a1", "no such turn")
			if errors.Is(err, ErrNotFound) {
				return nil
			}
			return err
		}},
		{"BaseChain", func(ctx context.Context) error { _, err := s.BaseChain(ctx, "a1"); return err }},
		{"ChainUserMessage", func(ctx context.Context) error {
			_, err := s.ChainUserMessage(ctx, []ChainLink{{ID: "a1"}}, 1)
			return err
		}},
		{"Ancestors", func(ctx context.Context) error { _, err := s.Ancestors(ctx, "a1x"); return err }},
		{"Root", func(ctx context.Context) error { _, err := s.Root(ctx, "a1x"); return err }},
	}
	for _, l := range lookups {
		t.Run(l.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			if err := l.run(ctx); err != nil { // prepares its statements
				t.Fatal(err)
			}
			// The fewest of three calls: a goroutine of the runtime's or
			// the test framework's may start during one of them.
			fewest := ^uint64(0)
			for range 3 {
				before := goroutinesCreated()
				if err := l.run(ctx); err != nil {
					t.Fatal(err)
				}
				fewest = min(fewest, goroutinesCreated()-before)
			}
			if fewest != 0 {
				t.Errorf("each call started %d goroutines or more, want none", fewest)
			}
			cancel()
			if err := l.run(ctx); !errors.Is(err, context.Canceled) {
				t.Errorf("with the context canceled: %v, want %v", err, context.Canceled)
			}
		})
	}
}

package manager

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/spoolhq/spool/store"
)

// TestFailedCreateLeavesNothing checks that a Start or Fork that returns an
// error leaves no thread behind.
func TestFailedCreateLeavesNothing(t *testing.T) {
	ctx := context.Background()
	m := openTest(t)
	parent := start(t, m, user("hi"))
	long := strings.Repeat("n", maxNameBytes+1)
	if _, err := m.Start(ctx, StartOptions{Name: long}); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("Start with a %d-byte name: %v, want ErrInvalidArgument", len(long), err)
	}
	if _, err := m.Fork(ctx, parent.ID, ForkOptions{Name: long}); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("Fork with a %d-byte name: %v, want ErrInvalidArgument", len(long), err)
	}
	page, err := m.List(ctx, store.ListOptions{})
	if err != nil || len(page.Threads) != 1 {
		t.Fatalf("after failed creates: %d threads (%v), want only the parent", len(page.Threads), err)
	}
	if before := snapshot(t, m.Root()); before != "" && strings.Count(before, ".jsonl") != 1 {
		t.Fatalf("rollout files after failed creates: %s", before)
	}
}

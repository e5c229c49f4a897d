//go:build compat

package compat

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"testing"
)

// TestDriverLifecycle: the driver records notifications (and waits for
// one that has not arrived yet), shuts Codex down
// cleanly on Close (exit status 0, a second Close gives the same answer),
// refuses calls afterwards with ErrClosed, and gives up on a call whose
// context is done.
func TestDriverLifecycle(t *testing.T) {
	s := startCodex(t, newHome(t))
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := s.Call(ctx, "thread/list", map[string]any{}, nil); !errors.Is(err, context.Canceled) {
		t.Fatalf("call with a cancelled context: %v, want context.Canceled", err)
	}
	var started threadAnswer
	call(t, s, "thread/start", map[string]any{"cwd": "/tmp"}, &started)
	n, err := s.WaitNotification(t.Context(), "thread/started")
	if err != nil {
		t.Fatal(err)
	}
	var params struct {
		Thread struct {
			ID string `json:"id"`
		} `json:"thread"`
	}
	if err := json.Unmarshal(n.Params, &params); err != nil || params.Thread.ID != started.Thread.ID {
		t.Fatalf("thread/started params %s, want thread %s", n.Params, started.Thread.ID)
	}
	if !slices.ContainsFunc(s.Notifications(), func(n Notification) bool { return n.Method == "thread/started" }) {
		t.Fatal("Notifications() lacks the thread/started that WaitNotification returned")
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v, want a clean exit", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if err := s.Call(t.Context(), "thread/list", map[string]any{}, nil); !errors.Is(err, ErrClosed) {
		t.Fatalf("call after Close: %v, want ErrClosed", err)
	}
	if _, err := s.WaitNotification(t.Context(), "never/sent"); !errors.Is(err, ErrClosed) {
		t.Fatalf("wait after Close: %v, want ErrClosed", err)
	}
}

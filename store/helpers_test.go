package store

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
)

// openTest opens a fresh index in a temporary directory, closed at cleanup.
func openTest(t testing.TB) *Store {
	t.Helper()
	s, err := Open(context.Background(), filepath.Join(t.TempDir(), "index.db"))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

// newThread returns a thread row with plausible fields for id.
func newThread(id string, at int64) Thread {
	return Thread{
		ID:              id,
		RolloutPath:     fmt.Sprintf("sessions/2026/04/20/rollout-2026-04-20T10-00-00-%s.jsonl", id),
		CreatedAt:       at,
		UpdatedAt:       at,
		Cwd:             "/work",
		Source:          "cli",
		Originator:      "codex_cli_rs",
		CLIVersion:      "0.1.0",
		ModelProvider:   "openai",
		ForkUserMessage: -1,
		ForkOffset:      -1,
	}
}

// messages returns n user messages with ordinals from first on.
func messages(first, n int, text string) []UserMessage {
	var msgs []UserMessage
	for i := range n {
		ord := first + i
		msgs = append(msgs, UserMessage{
			Ordinal: ord,
			Offset:  int64(1000 * (ord + 1)),
			Line:    int64(10 * (ord + 1)),
			Preview: fmt.Sprintf("%s %d", text, ord),
			Text:    fmt.Sprintf("%s %d full", text, ord),
		})
	}
	return msgs
}

func mustInsert(t testing.TB, s *Store, r Record) {
	t.Helper()
	if err := s.Insert(context.Background(), r); err != nil {
		t.Fatalf("Insert %s: %v", r.Thread.ID, err)
	}
}

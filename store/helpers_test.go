package store

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/jmoiron/sqlx"
	"github.com/pressly/goose/v3"
)

// openTest opens a new index in a temporary directory, closed at cleanup.
// The index is a copy of one made once per process (newIndex).
func openTest(t testing.TB) *Store {
	t.Helper()
	path := filepath.Join(t.TempDir(), "index.db")
	newIndex.once.Do(func() { newIndex.bytes, newIndex.err = os.ReadFile(closedIndex(t)) })
	if newIndex.err != nil {
		t.Fatal(newIndex.err)
	}
	if err := os.WriteFile(path, newIndex.bytes, 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := Open(context.Background(), path)
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

// newIndex holds the bytes of a new index closed again, made once per
// process: migrating a new index parses its schema again after every
// migration, a third of a second under the race detector.
var newIndex struct {
	once  sync.Once
	bytes []byte
	err   error
}

// closedIndex makes an index at the newest schema in a temporary
// directory, closed again, and returns its path.
func closedIndex(t testing.TB) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "index.db")
	s, err := Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

// migratorAt opens the closed index at path and its migrations, for a
// test that moves its schema; both are closed at cleanup.
func migratorAt(t testing.TB, path string) (*sqlx.DB, *goose.Provider) {
	t.Helper()
	db, err := sqlx.Open("sqlite", writerDSN(path))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	p, err := newMigrator(db.DB)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return db, p
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

// queryPlan returns the steps of SQLite's plan for query q with args on
// s's readers (EXPLAIN QUERY PLAN, each step's detail).
func queryPlan(t testing.TB, s *Store, q string, args []any) []string {
	t.Helper()
	var plan []struct {
		ID     int    `db:"id"`
		Parent int    `db:"parent"`
		NotUse int    `db:"notused"`
		Detail string `db:"detail"`
	}
	if err := s.reader.SelectContext(t.Context(), &plan, "EXPLAIN QUERY PLAN "+q, args...); err != nil {
		t.Fatal(err)
	}
	steps := make([]string, len(plan))
	for i, p := range plan {
		steps[i] = p.Detail
	}
	return steps
}

package store

import (
	"errors"
	"fmt"
	"strings"
	"syscall"
	"testing"
)

// TestFullIndexIsENOSPC: a write the index has no room for (SQLITE_FULL)
// fails with an error wrapping syscall.ENOSPC, as a full disk does for a
// rollout, so that callers answer it as a full disk (spoold's 507) and not
// as an internal error. Found with a real full tmpfs under spoold: an
// append whose line still fitted the rollout's last page but whose index
// commit did not was answered 500. The test fills the index with
// max_page_count, which SQLite reports as the same SQLITE_FULL.
func TestFullIndexIsENOSPC(t *testing.T) {
	long := strings.Repeat("many words to index ", 2000)
	for _, tc := range []struct {
		name  string
		write func(s *Store) error
	}{
		{"insert", func(s *Store) error {
			return s.Insert(t.Context(), Record{Thread: newThread("b", 2), Messages: messages(0, 50, long)})
		}},
		{"advance", func(s *Store) error {
			return s.Advance(t.Context(), Progress{ID: "a", NewMessages: messages(0, 50, long)})
		}},
		{"state", func(s *Store) error { return s.PutState(t.Context(), "k", long) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := openTest(t)
			if err := s.Insert(t.Context(), Record{Thread: newThread("a", 1)}); err != nil {
				t.Fatal(err)
			}
			var pages int64
			if err := s.writer.Get(&pages, "PRAGMA page_count"); err != nil {
				t.Fatal(err)
			}
			if _, err := s.writer.Exec(fmt.Sprintf("PRAGMA max_page_count = %d", pages)); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.writer.Exec("PRAGMA max_page_count = 1073741823") }) // room again to close
			err := tc.write(s)
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("%s into a full index: %v, want an error wrapping syscall.ENOSPC", tc.name, err)
			}
			if _, err := s.Get(t.Context(), "a"); err != nil {
				t.Fatalf("the index after the failed write: %v", err)
			}
		})
	}
}

package manager

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/spoolhq/spool/rollout"
)

// TestIndexErrorsAreManagers: what List, SearchPage and Import fail with
// is testable with manager's own sentinels, so a caller of the library
// need not import store.
func TestIndexErrorsAreManagers(t *testing.T) {
	m := openTest(t)
	ctx := t.Context()
	const id = "019b0000-0000-7000-8000-0000000000cc"
	ts := rollout.FormatTimestamp(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	meta, err := rollout.NewSessionMetaLine(ts, rollout.MetaPayload{SessionMeta: rollout.SessionMeta{ID: id, Timestamp: ts}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Import(ctx, bytes.NewReader(meta)); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		call func() error
		want error
	}{
		{"list with a made-up cursor", func() error { _, err := m.List(ctx, ListOptions{Cursor: "nope"}); return err }, ErrBadCursor},
		{"search that does not parse", func() error { _, err := m.SearchPage(ctx, SearchOptions{Query: `"unclosed`}); return err }, ErrBadQuery},
		{"empty search", func() error { _, err := m.SearchPage(ctx, SearchOptions{Query: "  "}); return err }, ErrEmptyQuery},
		{"search with a made-up cursor", func() error {
			_, err := m.SearchPage(ctx, SearchOptions{Query: "x", Cursor: "nope"})
			return err
		}, ErrBadCursor},
		{"import of an id present", func() error { _, err := m.Import(ctx, bytes.NewReader(meta)); return err }, ErrExists},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.call()
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			if tt.want != ErrExists && !errors.Is(err, ErrInvalidArgument) {
				t.Fatalf("err = %v, want it to wrap ErrInvalidArgument too", err)
			}
		})
	}
}

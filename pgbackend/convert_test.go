package pgbackend

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/spoolhq/spool/pgstore"
	"github.com/spoolhq/spool/store"
)

// TestCursorOfAnotherSortNamesBoth: a cursor given to a listing sorted
// otherwise is refused with a message that names the sort and order it was
// made for and the ones asked, in the words of the local backend's (it
// said only "made for another sort or order").
func TestCursorOfAnotherSortNamesBoth(t *testing.T) {
	row := pgstore.Thread{ID: "019dab90-0000-7000-8000-00000000a001", UpdatedAt: time.UnixMilli(2000), CreatedAt: time.UnixMilli(1000)}
	tests := []struct {
		name        string
		made, asked pgstore.ListOptions
		want        string
	}{
		{"updated, asked created", pgstore.ListOptions{}, pgstore.ListOptions{ByCreated: true},
			"made for sort updated_at ascending=false, not created_at ascending=false"},
		{"created ascending, asked updated", pgstore.ListOptions{ByCreated: true, Ascending: true}, pgstore.ListOptions{},
			"made for sort created_at ascending=true, not updated_at ascending=false"},
		{"updated, asked ascending", pgstore.ListOptions{}, pgstore.ListOptions{Ascending: true},
			"made for sort updated_at ascending=false, not updated_at ascending=true"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := decodeCursor(encodeCursor(row, tt.made), tt.asked)
			if !errors.Is(err, store.ErrBadCursor) {
				t.Fatalf("err = %v, want store.ErrBadCursor", err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %q, want it to say %q", err, tt.want)
			}
		})
	}
}

package migrations

import (
	"fmt"
	"io/fs"
	"strconv"
	"strings"
	"testing"
)

// TestFiles checks that the migrations are numbered 1, 2, ... without gaps
// and that each has an Up and a Down section, balanced statement blocks.
func TestFiles(t *testing.T) {
	names, err := fs.Glob(FS, "*.sql")
	if err != nil {
		t.Fatal(err)
	}
	if len(names) == 0 {
		t.Fatal("no migrations embedded")
	}
	prev := 0
	for i, name := range names {
		// Numbers increase from 00001; a gap is a number handed to a branch
		// that has not landed yet.
		n, _ := strconv.Atoi(name[:min(5, len(name))])
		wantMin := prev + 1
		prev = n
		t.Run(name, func(t *testing.T) {
			if n < wantMin || i == 0 && n != 1 || !strings.HasPrefix(name, fmt.Sprintf("%05d_", n)) {
				t.Fatalf("migration %d is %s, want a name starting with a 5-digit number above %d", i+1, name, wantMin-1)
			}
			b, err := fs.ReadFile(FS, name)
			if err != nil {
				t.Fatal(err)
			}
			text := string(b)
			up, down := strings.Index(text, "-- +goose Up"), strings.Index(text, "-- +goose Down")
			if up < 0 || down < up {
				t.Fatalf("want a -- +goose Up section followed by -- +goose Down (at %d, %d)", up, down)
			}
			begins, ends := strings.Count(text, "-- +goose StatementBegin"), strings.Count(text, "-- +goose StatementEnd")
			if begins != ends {
				t.Fatalf("%d StatementBegin, %d StatementEnd", begins, ends)
			}
		})
	}
}

package migrations

import (
	"fmt"
	"io/fs"
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
	for i, name := range names {
		t.Run(name, func(t *testing.T) {
			if want := fmt.Sprintf("%05d_", i+1); !strings.HasPrefix(name, want) {
				t.Fatalf("migration %d is %s, want a name starting %s", i+1, name, want)
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

package store

import (
	"io/fs"
	"path/filepath"
	"testing"

	"github.com/spoolhq/spool/migrations"
)

// TestMigrated checks what Open says it did to the schema: nothing for an
// index already up to date, the versions before and after for an older
// one, from 0 for a new one; only the older one was upgraded.
func TestMigrated(t *testing.T) {
	names, err := fs.Glob(migrations.FS, "*.sql")
	if err != nil {
		t.Fatal(err)
	}
	newest := int64(len(names)) // numbered 1, 2, ... (migrations.TestFiles)
	for _, tc := range []struct {
		name     string
		at       int64 // the version the index is moved down to; 0 for a new index
		wantFrom int64
		upgraded bool
	}{
		{"new", 0, 0, false},
		{"older", 14, 14, true},
		{"current", newest, newest, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "index.db")
			if tc.at > 0 {
				path = closedIndex(t)
				db, p := migratorAt(t, path)
				if _, err := p.DownTo(t.Context(), tc.at); err != nil {
					t.Fatal(err)
				}
				if err := p.Close(); err != nil {
					t.Fatal(err)
				}
				db.Close()
			}
			s, err := Open(t.Context(), path)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Close() })
			if got := s.Migrated(); got.From != tc.wantFrom || got.To != newest {
				t.Fatalf("Migrated() = from %d to %d, want from %d to %d", got.From, got.To, tc.wantFrom, newest)
			}
			if got := s.Migrated().Upgraded(); got != tc.upgraded {
				t.Fatalf("Upgraded() = %v, want %v", got, tc.upgraded)
			}
		})
	}
}

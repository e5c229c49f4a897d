package store

import (
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// indexModes returns the permission bits of the index, its WAL and its SHM.
func indexModes(t *testing.T, path string) map[string]fs.FileMode {
	t.Helper()
	modes := map[string]fs.FileMode{}
	for _, suffix := range indexSuffixes {
		info, err := os.Stat(path + suffix)
		if err != nil {
			t.Fatalf("stat %s: %v", path+suffix, err)
		}
		modes[suffix] = info.Mode().Perm()
	}
	return modes
}

// TestIndexFilesPrivate checks that an index created by Open, and the WAL
// and SHM SQLite creates next to it, are readable by their owner only, even
// under a permissive umask (the index holds every user message's text;
// issue #14).
func TestIndexFilesPrivate(t *testing.T) {
	old := syscall.Umask(0o002)
	t.Cleanup(func() { syscall.Umask(old) })

	path := filepath.Join(t.TempDir(), "index.db")
	s, err := Open(t.Context(), path)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	if err := s.Insert(t.Context(), Record{Thread: newThread("0190f3a4-7b1c-7def-8123-456789abcdef", 1)}); err != nil {
		t.Fatalf("Insert: %v", err)
	}
	for suffix, mode := range indexModes(t, path) {
		if mode != DefaultFileMode {
			t.Errorf("index%s mode = %v, want %v", suffix, mode, DefaultFileMode)
		}
	}
}

// TestSetFileMode checks that SetFileMode tightens an index left 0644 by an
// older version, WAL and SHM included, and that Open keeps a mode chosen on
// purpose (0640) for the index and the WAL and SHM it creates.
func TestSetFileMode(t *testing.T) {
	tests := []struct {
		name string
		mode fs.FileMode
	}{
		{"private", 0o600},
		{"group", 0o640},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "index.db")
			for _, suffix := range indexSuffixes {
				if err := os.WriteFile(path+suffix, nil, 0o644); err != nil {
					t.Fatal(err)
				}
				if err := os.Chmod(path+suffix, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			// An empty WAL and SHM next to an empty file are what SQLite
			// leaves of a database never written; remove them so Open
			// creates its own, which must follow the database's mode.
			os.Remove(path + "-wal")
			os.Remove(path + "-shm")
			if err := SetFileMode(path, tt.mode); err != nil {
				t.Fatalf("SetFileMode: %v", err)
			}
			s, err := Open(t.Context(), path)
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			t.Cleanup(func() { s.Close() })
			if err := s.Insert(t.Context(), Record{Thread: newThread("0190f3a4-7b1c-7def-8123-456789abcdef", 1)}); err != nil {
				t.Fatalf("Insert: %v", err)
			}
			for suffix, mode := range indexModes(t, path) {
				if mode != tt.mode {
					t.Errorf("index%s mode = %v, want %v", suffix, mode, tt.mode)
				}
			}
			// SetFileMode on existing WAL and SHM changes them too.
			if err := SetFileMode(path, 0o600); err != nil {
				t.Fatalf("SetFileMode: %v", err)
			}
			for suffix, mode := range indexModes(t, path) {
				if mode != 0o600 {
					t.Errorf("after SetFileMode(0600): index%s mode = %v", suffix, mode)
				}
			}
		})
	}
}

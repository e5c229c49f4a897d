package rolloutfs

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCreateOutlivesAnEarlyRemoveTemp: a RemoveTemp that takes a
// temporary file between its creation and its writer's lock (another
// process cleaning up) makes the writer take another name; the Create
// completes and leaves no temporary file.
func TestCreateOutlivesAnEarlyRemoveTemp(t *testing.T) {
	l := Local{Root: t.TempDir()}
	removed := 0
	testHookTempCreated = func(path string) {
		if removed > 0 {
			return
		}
		rel, err := filepath.Rel(l.Root, path)
		if err != nil {
			t.Error(err)
			return
		}
		if err := l.RemoveTemp(t.Context(), filepath.ToSlash(rel)); err != nil {
			t.Errorf("RemoveTemp before the lock: %v", err)
		}
		removed++
	}
	defer func() { testHookTempCreated = nil }()
	if _, err := l.Create(t.Context(), "d/a.jsonl", []Part{Bytes([]byte("a\n"))}, true); err != nil {
		t.Fatalf("Create: %v", err)
	}
	if removed != 1 {
		t.Fatalf("%d temporary files removed before their lock, want 1", removed)
	}
	data, err := os.ReadFile(filepath.Join(l.Root, "d", "a.jsonl"))
	if err != nil || string(data) != "a\n" {
		t.Fatalf("the created file: %q, %v", data, err)
	}
	entries, err := os.ReadDir(filepath.Join(l.Root, "d"))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), TempSuffix) {
			t.Fatalf("temporary file left: %s", e.Name())
		}
	}
}

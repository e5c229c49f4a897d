package buildhint

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/spoolhq/spool/manager"
)

// TestStateIndexNamesEachHomeApart: the index a hint builds outside a
// Codex home is named after the home and differs for two homes of one
// name (~a/.codex and ~b/.codex), so pasting the second hint does not
// point it at the first home's index; the same home always gets the same
// one.
func TestStateIndexNamesEachHomeApart(t *testing.T) {
	state := t.TempDir()
	a := filepath.Join(t.TempDir(), "a", ".codex")
	b := filepath.Join(t.TempDir(), "b", ".codex")
	ia, ib := StateIndex(a, state), StateIndex(b, state)
	if ia == ib {
		t.Fatalf("homes %s and %s share the index %s", a, b, ia)
	}
	for _, index := range []string{ia, ib} {
		dir := filepath.Dir(index)
		if filepath.Dir(dir) != filepath.Join(state, "spool") || !strings.HasPrefix(filepath.Base(dir), "codex-") || filepath.Base(index) != manager.IndexFile {
			t.Errorf("index %s: want %s/spool/codex-…/%s", index, state, manager.IndexFile)
		}
	}
	if again := StateIndex(a+"/", state); again != ia {
		t.Errorf("the same home got %s, then %s", ia, again)
	}
}

// TestStateIndexesLockApart: the lock of an index (manager.LockFile) is
// the one file of that name in the index's directory, so two homes whose
// hinted indexes shared a directory could not be served, or reindexed,
// at once: a spoold on one home held the other's lock, and reindex of the
// other said "index is locked by spoold (pid ...)". Each home's index has
// a directory of its own.
func TestStateIndexesLockApart(t *testing.T) {
	state := t.TempDir()
	a := filepath.Join(t.TempDir(), ".codex")
	b := filepath.Join(t.TempDir(), "work")
	la := filepath.Join(filepath.Dir(StateIndex(a, state)), manager.LockFile)
	lb := filepath.Join(filepath.Dir(StateIndex(b, state)), manager.LockFile)
	if la == lb {
		t.Fatalf("the indexes hinted for %s and %s share the lock %s", a, b, la)
	}
}

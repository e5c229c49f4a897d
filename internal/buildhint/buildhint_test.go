package buildhint

import (
	"path/filepath"
	"strings"
	"testing"
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
		if filepath.Dir(index) != filepath.Join(state, "spool") || !strings.HasPrefix(filepath.Base(index), "codex-") || filepath.Ext(index) != ".db" {
			t.Errorf("index %s: want %s/spool/codex-….db", index, state)
		}
	}
	if again := StateIndex(a+"/", state); again != ia {
		t.Errorf("the same home got %s, then %s", ia, again)
	}
}

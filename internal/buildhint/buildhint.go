// Package buildhint says how to build the missing index of a root, as a
// command line a person pastes into a shell (spool doctor and reindex
// --verify give it).
package buildhint

import (
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/spoolhq/spool/internal/shellquote"
	"github.com/spoolhq/spool/manager"
)

// Hint returns how to build the index of root: reindex on that root and
// index, absolute and quoted, with --index unless index is "" (ROOT/spool.db;
// a pasted line may run where $SPOOL_INDEX is not what it was). Into a
// root that has never held spool's index (no spool.lock: a Codex home) a
// pasted command writes nothing: its index goes to stateHome/spool
// (stateHome is $XDG_STATE_HOME, else ~/.local/state; "" when unknown, and
// the index then goes into the root), and the hint gives check(root,
// index), the command line that checks that index.
func Hint(root, index, stateHome string, check func(root, index string) []string) string {
	root = absPath(root)
	if index != "" {
		return shellquote.Join("reindex", "--root", root, "--index", absPath(index)) + " builds one"
	}
	if _, err := os.Lstat(filepath.Join(root, manager.LockFile)); err == nil || stateHome == "" {
		return shellquote.Join("reindex", "--root", root) + " builds one"
	}
	index = StateIndex(root, stateHome)
	return fmt.Sprintf("%s builds one outside this Codex home; then %s checks it",
		shellquote.Join("reindex", "--root", root, "--index", index), shellquote.Join(check(root, index)...))
}

// StateHome is where Hint builds the index of a Codex home: getenv's
// $XDG_STATE_HOME, else ~/.local/state, else "" (no home).
func StateHome(getenv func(string) string) string {
	if dir := getenv("XDG_STATE_HOME"); dir != "" {
		return dir
	}
	if home, err := os.UserHomeDir(); err == nil {
		return filepath.Join(home, ".local", "state")
	}
	return ""
}

// StateIndex is the index file a hint builds for root outside it:
// stateHome/spool/<dir>/spool.db, the directory named after the root and
// after a hash of its absolute path, so two homes of one name (~a/.codex,
// ~b/.codex) get two. Each index has a directory of its own because its
// lock (manager.LockFile) is the one file of that name beside it: two
// indexes in one directory could not be used at once.
func StateIndex(root, stateHome string) string {
	root = absPath(root)
	name := strings.TrimLeft(filepath.Base(root), ".")
	if name == "" || name == string(filepath.Separator) {
		name = "index"
	}
	sum := sha256.Sum256([]byte(root))
	return filepath.Join(absPath(stateHome), "spool", fmt.Sprintf("%s-%x", name, sum[:4]), manager.IndexFile)
}

// absPath is path made absolute, or path when it cannot be.
func absPath(path string) string {
	if abs, err := filepath.Abs(path); err == nil {
		return abs
	}
	return path
}

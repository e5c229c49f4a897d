package manager

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/spoolhq/spool/rollout"
)

// ErrNotRoot reports an existing directory that is neither a spool root
// nor a Codex home (CheckRoot).
var ErrNotRoot = errors.New("neither a spool root nor a Codex home")

// RootMarks are the names one of which a spool root or a Codex home holds:
// spool's index, Codex's directories of rollouts and its session index, or
// the config.toml of a Codex home that has never held a thread.
var RootMarks = []string{rollout.SessionsDir, rollout.ArchivedSessionsDir, IndexFile, rollout.SessionIndexFile, "config.toml"}

// LooksLikeRoot reports whether the directory dir, whose index is the file
// index, is a spool root or a Codex home: the index is there, or dir holds
// one of RootMarks.
func LooksLikeRoot(dir, index string) bool {
	if _, err := os.Lstat(index); err == nil {
		return true
	}
	for _, name := range RootMarks {
		if _, err := os.Lstat(filepath.Join(dir, name)); err == nil {
			return true
		}
	}
	return false
}

// CheckRoot returns nil when dir, whose index is the file index, may be
// opened as a store root by a command that makes a new root where there is
// none: dir does not exist, is an empty directory, or LooksLikeRoot. An
// existing directory that holds other things was most likely named by
// mistake (~/Documents for ~/.codex), and Open would write an index and a
// lock into it; for it the error wraps ErrNotRoot and says what it lacks.
// Open does not check: a command that takes its root from a person does,
// before it writes anything.
func CheckRoot(dir, index string) error {
	d, err := os.Open(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	defer d.Close()
	if fi, err := d.Stat(); err != nil {
		return err
	} else if !fi.IsDir() {
		return fmt.Errorf("%s is not a directory", dir)
	}
	if _, err := d.Readdirnames(1); errors.Is(err, io.EOF) {
		return nil // empty: a new root
	} else if err != nil {
		return err
	}
	if LooksLikeRoot(dir, index) {
		return nil
	}
	marks := make([]string, len(RootMarks))
	for i, name := range RootMarks {
		marks[i] = name
		if name == rollout.SessionsDir || name == rollout.ArchivedSessionsDir {
			marks[i] += "/"
		}
	}
	return fmt.Errorf("%s: %w: it holds other files, and none of %s", dir, ErrNotRoot, strings.Join(marks, ", "))
}

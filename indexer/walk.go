package indexer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"github.com/spoolhq/spool/rollout"
)

// Walk returns the rollout files under root, as slash-separated paths
// relative to it, sorted: every file under sessions/ (at any depth) and
// directly in archived_sessions/ whose base name parses with
// rollout.ParseFileName. Other files, such as the side files Repair leaves,
// are ignored. Missing sessions/ or archived_sessions/ directories are
// empty; a missing root is an error.
//
// Walk holds every path in memory (O(threads)); it serves the offline
// tools Verify and Repair. Sync walks directory by directory instead.
func Walk(ctx context.Context, root string) ([]string, error) {
	var paths []string
	err := walkLayout(ctx, root, func(d layoutDir) error {
		for _, name := range d.files {
			paths = append(paths, d.rel+"/"+name)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	sort.Strings(paths)
	return paths, nil
}

// countFiles returns how many rollout files Walk would return, holding one
// directory's names at a time.
func countFiles(ctx context.Context, root string) (int, error) {
	n := 0
	err := walkLayout(ctx, root, func(d layoutDir) error {
		n += len(d.files)
		return nil
	})
	return n, err
}

// layoutDir is one directory of a root's rollout layout, as walkLayout
// found it.
type layoutDir struct {
	rel    string   // slash-separated path relative to the root; "" for the root itself
	files  []string // base names of the rollout files directly in it, sorted
	walked []string // names of its subdirectories that the walk visits as layoutDirs of their own
}

// walkLayout calls fn for each directory of the layout under root, depth
// first: the root itself (which holds no rollout files of its own), then
// sessions/ and every directory below it, then archived_sessions/ (whose
// subdirectories are not part of the layout). Only one directory's names
// are held at a time, besides the names of the directories still to visit.
// A missing sessions/ or archived_sessions/ is skipped; a missing root is
// an error.
func walkLayout(ctx context.Context, root string, fn func(layoutDir) error) error {
	fi, err := os.Stat(root)
	if err != nil {
		return fmt.Errorf("walk %s: %w", root, err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("walk %s: not a directory", root)
	}
	top := layoutDir{}
	var sessions, archived bool
	for _, name := range []string{rollout.ArchivedSessionsDir, rollout.SessionsDir} {
		ok, err := isDir(filepath.Join(root, name))
		if err != nil {
			return fmt.Errorf("walk %s: %w", root, err)
		}
		if ok {
			top.walked = append(top.walked, name)
			sessions = sessions || name == rollout.SessionsDir
			archived = archived || name == rollout.ArchivedSessionsDir
		}
	}
	if err := fn(top); err != nil {
		return err
	}
	if sessions {
		if err := walkTree(ctx, root, rollout.SessionsDir, fn); err != nil {
			return err
		}
	}
	if archived {
		d, err := readLayoutDir(ctx, root, rollout.ArchivedSessionsDir)
		if err != nil {
			return err
		}
		d.walked = nil
		return fn(d)
	}
	return nil
}

// walkTree calls fn for the directory rel and, depth first in name order,
// every directory below it.
func walkTree(ctx context.Context, root, rel string, fn func(layoutDir) error) error {
	d, err := readLayoutDir(ctx, root, rel)
	if err != nil {
		return err
	}
	if err := fn(d); err != nil {
		return err
	}
	for _, sub := range d.walked {
		if err := walkTree(ctx, root, rel+"/"+sub, fn); err != nil {
			return err
		}
	}
	return nil
}

// dirChunk is how many directory entries readLayoutDir reads at a time.
const dirChunk = 512

// readLayoutDir lists the rollout files and subdirectories of root/rel,
// each sorted. It keeps names only, not directory entries. Symbolic links
// are not followed into (a link named like a rollout file counts as one).
func readLayoutDir(ctx context.Context, root, rel string) (layoutDir, error) {
	d := layoutDir{rel: rel}
	abs := filepath.Join(root, filepath.FromSlash(rel))
	f, err := os.Open(abs)
	if err != nil {
		return d, fmt.Errorf("walk %s: %w", abs, err)
	}
	defer f.Close()
	for {
		if err := ctx.Err(); err != nil {
			return d, fmt.Errorf("walk %s: %w", abs, err)
		}
		entries, err := f.ReadDir(dirChunk)
		for _, e := range entries {
			switch {
			case e.IsDir():
				d.walked = append(d.walked, e.Name())
			case isRolloutName(e.Name()):
				d.files = append(d.files, e.Name())
			}
		}
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return d, fmt.Errorf("walk %s: %w", abs, err)
		}
	}
	sort.Strings(d.files)
	sort.Strings(d.walked)
	return d, nil
}

// isDir reports whether p is a directory (following symbolic links); a
// missing p is not an error.
func isDir(p string) (bool, error) {
	fi, err := os.Stat(p)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return fi.IsDir(), nil
}

func isRolloutName(name string) bool {
	_, _, err := rollout.ParseFileName(name)
	return err == nil
}

// isLayoutPath reports whether rel (slash separated) is where Walk finds
// rollout files: under sessions/, or directly in archived_sessions/.
func isLayoutPath(rel string) bool {
	if !isRolloutName(path.Base(rel)) {
		return false
	}
	return strings.HasPrefix(rel, rollout.SessionsDir+"/") || path.Dir(rel) == rollout.ArchivedSessionsDir
}

// rolloutFile is a rollout file chosen to index its thread.
type rolloutFile struct {
	rel string
	id  string
}

// chooseFiles picks one file per thread id. Two files with the same id (a
// copy left by an interrupted archive, say) are resolved by the paths
// alone, so that a rebuild always picks the same one: a live file (under
// sessions/) wins over an archived one, and between two of the same kind
// the smaller path wins. Each file not chosen is reported as a problem.
func chooseFiles(paths []string) ([]rolloutFile, []Problem) {
	byID := make(map[string]int) // id -> index in chosen
	var chosen []rolloutFile
	var problems []Problem
	for _, rel := range paths {
		id, _, err := rollout.ParseFileName(path.Base(rel))
		if err != nil {
			continue // Walk only returns names that parse
		}
		i, seen := byID[id]
		if !seen {
			byID[id] = len(chosen)
			chosen = append(chosen, rolloutFile{rel: rel, id: id})
			continue
		}
		loser := rel
		if preferFile(rel, chosen[i].rel) {
			loser = chosen[i].rel
			chosen[i].rel = rel
		}
		problems = append(problems, Problem{Path: loser, Kind: ProblemDuplicate, Detail: "thread " + id + " is indexed from another file"})
	}
	for i := range problems {
		id, _, _ := rollout.ParseFileName(path.Base(problems[i].Path))
		problems[i].Detail = fmt.Sprintf("thread %s is indexed from %s", id, chosen[byID[id]].rel)
	}
	return chosen, problems
}

// preferFile reports whether a should be indexed rather than b.
func preferFile(a, b string) bool {
	aLive, bLive := !IsArchivedPath(a), !IsArchivedPath(b)
	if aLive != bLive {
		return aLive
	}
	return strings.Compare(a, b) < 0
}

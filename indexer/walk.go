package indexer

import (
	"context"
	"fmt"
	"path"
	"slices"
	"sort"
	"strings"
	"syscall"

	"github.com/spoolhq/spool/rollout"
	"github.com/spoolhq/spool/rolloutfs"
)

// Walk returns the rollout files under root, as slash-separated paths
// relative to it, sorted: every file under sessions/ (at any depth) and
// directly in archived_sessions/ whose base name parses with
// rollout.ParseRolloutName: plain or compressed rollouts and revert
// segments. A compressed file beside its
// plain sibling is left out, as Codex does: the plain one is the thread's
// (Codex writes it when it appends to a compressed thread). Other files,
// such as the side files Repair leaves, are ignored. Missing sessions/ or archived_sessions/ directories are
// empty; a missing root is an error.
//
// Walk holds every path in memory (O(threads)); it serves the offline
// tools Verify and Repair. Sync walks directory by directory instead.
func Walk(ctx context.Context, fsys rolloutfs.FS) ([]string, error) {
	paths, _, err := walkFiles(ctx, fsys)
	return paths, err
}

// walkFiles is Walk, and the names that look like rollouts but are not
// regular files (a link, a FIFO, a directory), as problems.
func walkFiles(ctx context.Context, fsys rolloutfs.FS) ([]string, []Problem, error) {
	var paths []string
	var odd []Problem
	err := walkLayout(ctx, fsys, func(d layoutDir) error {
		for _, name := range d.files {
			paths = append(paths, d.rel+"/"+name)
		}
		odd = append(odd, oddProblems(d)...)
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	sort.Strings(paths)
	return paths, odd, nil
}

// oddProblems reports d's names that look like rollouts but are not
// regular files: they are not indexed.
func oddProblems(d layoutDir) []Problem {
	var out []Problem
	for _, name := range d.odd {
		out = append(out, Problem{Path: d.rel + "/" + name, Kind: ProblemError, Detail: "not a regular file (a link, FIFO, device or directory): not indexed"})
	}
	return out
}

// countFiles returns how many rollout files Walk would return, holding one
// directory's names at a time.
func countFiles(ctx context.Context, fsys rolloutfs.FS) (int, error) {
	n := 0
	err := walkLayout(ctx, fsys, func(d layoutDir) error {
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
	temps  []string // base names of files an unfinished Create left behind
	odd    []string // base names that look like rollouts but are not regular files (directories too)
	// state is the directory as it was just before it was listed; zero
	// when the FS cannot describe directories (rolloutfs.DirStater).
	state rolloutfs.FileInfo
}

// walkLayout calls fn for each directory of the layout of fsys, depth
// first: the root itself (which holds no rollout files of its own), then
// sessions/ and every directory below it, then archived_sessions/ (whose
// subdirectories are not part of the layout). Only one directory's names
// are held at a time, besides the names of the directories still to visit.
// A missing sessions/ or archived_sessions/ is skipped; a missing root is
// an error.
func walkLayout(ctx context.Context, fsys rolloutfs.FS, fn func(layoutDir) error) error {
	entries, err := fsys.ReadDir(ctx, ".")
	if err != nil {
		return fmt.Errorf("walk %v: %w", fsys, err)
	}
	top := layoutDir{}
	var sessions, archived bool
	for _, e := range entries {
		switch {
		case e.Name == rollout.ArchivedSessionsDir:
			archived = true
		case e.Name == rollout.SessionsDir:
			sessions = true
		case rolloutfs.IsTemp(e.Name) && strings.HasPrefix(e.Name, rollout.SessionIndexFile+"."):
			// A rewrite of the names (rolloutfs.FS.DropRecords) that a
			// crash cut short.
			top.temps = append(top.temps, e.Name)
			continue
		default:
			continue
		}
		if !e.IsDir() {
			// Not a directory, or a link to one that is gone (a disk not
			// mounted): walking on would find no file and take every
			// thread for deleted.
			return fmt.Errorf("walk %v: %s: %w (a link whose target is missing?)", fsys, e.Name, syscall.ENOTDIR)
		}
		top.walked = append(top.walked, e.Name)
	}
	if err := fn(top); err != nil {
		return err
	}
	if sessions {
		if err := walkTree(ctx, fsys, rollout.SessionsDir, fn); err != nil {
			return err
		}
	}
	if archived {
		d, err := readLayoutDir(ctx, fsys, rollout.ArchivedSessionsDir)
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
func walkTree(ctx context.Context, fsys rolloutfs.FS, rel string, fn func(layoutDir) error) error {
	d, err := readLayoutDir(ctx, fsys, rel)
	if err != nil {
		return err
	}
	if err := fn(d); err != nil {
		return err
	}
	for _, sub := range d.walked {
		if err := walkTree(ctx, fsys, rel+"/"+sub, fn); err != nil {
			return err
		}
	}
	return nil
}

// readLayoutDir lists the rollout files and subdirectories of rel, each
// sorted. It keeps names only. Symbolic links are neither followed into
// nor read: a link, FIFO, device or directory named like a rollout is odd.
func readLayoutDir(ctx context.Context, fsys rolloutfs.FS, rel string) (layoutDir, error) {
	d := layoutDir{rel: rel}
	if ds, ok := fsys.(rolloutfs.DirStater); ok {
		// Before the listing: a name added after it changes the mtime
		// recorded here.
		if st, err := ds.StatDir(ctx, rel); err == nil {
			d.state = st
		}
	}
	entries, err := fsys.ReadDir(ctx, rel)
	if err != nil {
		return d, fmt.Errorf("walk %s: %w", rel, err)
	}
	for _, e := range entries {
		switch {
		case e.IsDir() && isRolloutName(e.Name):
			d.odd = append(d.odd, e.Name) // not walked: no layout's folder is named so
		case e.IsDir():
			d.walked = append(d.walked, e.Name)
		case rolloutfs.IsTemp(e.Name):
			d.temps = append(d.temps, e.Name)
		case !isRolloutName(e.Name):
		case e.IsRegular():
			d.files = append(d.files, e.Name)
		default:
			d.odd = append(d.odd, e.Name)
		}
	}
	d.files = dropHiddenCompressed(d.files)
	return d, nil
}

// dropHiddenCompressed removes from names (sorted base names of one
// directory) each compressed rollout whose plain name is also there.
func dropHiddenCompressed(names []string) []string {
	if !slices.ContainsFunc(names, rollout.IsCompressed) {
		return names
	}
	plain := make(map[string]bool, len(names))
	for _, n := range names {
		if !rollout.IsCompressed(n) {
			plain[n] = true
		}
	}
	kept := make([]string, 0, len(names))
	for _, n := range names {
		if rollout.IsCompressed(n) && plain[rollout.PlainName(n)] {
			continue
		}
		kept = append(kept, n)
	}
	return kept
}

func isRolloutName(name string) bool {
	_, _, _, err := rollout.ParseRolloutName(name)
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
	// created: its row was written by the Hold's owner, from the bytes it
	// wrote, while this sync waited (decideAfterCreator).
	created bool
}

// chooseFiles picks one file per thread id. Two files with the same id (a
// copy left by an interrupted archive, say) are resolved by the paths
// alone, so that a rebuild always picks the same one: a live file (under
// sessions/) wins over an archived one, then one where the layout puts a
// file of its name over one elsewhere, then the smaller path. Each file
// not chosen is reported as a problem.
func chooseFiles(paths []string) ([]rolloutFile, []Problem) {
	byID := make(map[string]int) // id -> index in chosen
	var chosen []rolloutFile
	var problems []Problem
	for _, rel := range paths {
		id, _, _, err := rollout.ParseRolloutName(path.Base(rel))
		if err != nil {
			continue // Walk only returns names that parse
		}
		i, seen := byID[id]
		if !seen {
			byID[id] = len(chosen)
			chosen = append(chosen, rolloutFile{rel: rel, id: id})
			continue
		}
		if laterFile(rel, chosen[i].rel) {
			// A thread in several files (revert segments) is indexed from
			// its newest, which reads the others through the index.
			chosen[i].rel = rel
			continue
		}
		if laterFile(chosen[i].rel, rel) {
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
		id, _, _, _ := rollout.ParseRolloutName(path.Base(problems[i].Path))
		problems[i].Detail = fmt.Sprintf("thread %s is indexed from %s", id, chosen[byID[id]].rel)
	}
	return chosen, problems
}

// laterFile reports whether a and b are two different files of one thread
// (its first file and revert segments, by name) and a is the newer: the
// thread is indexed from a, and b is not a duplicate.
func laterFile(a, b string) bool {
	na, nb := path.Base(a), path.Base(b)
	return na != nb && rollout.NewerFile(na, nb)
}

// preferFile reports whether a should be indexed rather than b.
func preferFile(a, b string) bool {
	aLive, bLive := !IsArchivedPath(a), !IsArchivedPath(b)
	if aLive != bLive {
		return aLive
	}
	// The file where Codex writes and finds it beats a copy elsewhere (an
	// old backup in another day's directory, or in a folder of its own).
	if aPlaced, bPlaced := atItsPlace(a), atItsPlace(b); aPlaced != bPlaced {
		return aPlaced
	}
	return strings.Compare(a, b) < 0
}

// atItsPlace reports whether rollout rel is where the layout puts a file
// of its name: sessions/<the name's date>/ when live, archived_sessions/.
func atItsPlace(rel string) bool {
	if IsArchivedPath(rel) {
		return path.Dir(rel) == rollout.ArchivedSessionsDir
	}
	live, err := rollout.SessionPath(path.Base(rel))
	return err == nil && live == rel
}

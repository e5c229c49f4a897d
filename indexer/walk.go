package indexer

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"spool/rollout"
)

// Walk returns the rollout files under root, as slash-separated paths
// relative to it, sorted: every file under sessions/ (at any depth) and
// directly in archived_sessions/ whose base name parses with
// rollout.ParseFileName. Other files, such as the side files Repair leaves,
// are ignored. Missing sessions/ or archived_sessions/ directories are
// empty; a missing root is an error.
func Walk(ctx context.Context, root string) ([]string, error) {
	fi, err := os.Stat(root)
	if err != nil {
		return nil, fmt.Errorf("walk %s: %w", root, err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("walk %s: not a directory", root)
	}
	var paths []string
	sessions := filepath.Join(root, rollout.SessionsDir)
	err = filepath.WalkDir(sessions, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if p == sessions && errors.Is(err, fs.ErrNotExist) {
				return filepath.SkipDir
			}
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if d.IsDir() || !isRolloutName(d.Name()) {
			return nil
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		paths = append(paths, filepath.ToSlash(rel))
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("walk %s: %w", sessions, err)
	}

	archived := filepath.Join(root, rollout.ArchivedSessionsDir)
	entries, err := os.ReadDir(archived)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("walk %s: %w", archived, err)
	}
	for _, e := range entries {
		if !e.IsDir() && isRolloutName(e.Name()) {
			paths = append(paths, path.Join(rollout.ArchivedSessionsDir, e.Name()))
		}
	}
	sort.Strings(paths)
	return paths, nil
}

func isRolloutName(name string) bool {
	_, _, err := rollout.ParseFileName(name)
	return err == nil
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

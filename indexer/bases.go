package indexer

import (
	"bufio"
	"context"
	"fmt"
	"strings"

	"github.com/spoolhq/spool/rollout"
	"github.com/spoolhq/spool/rolloutfs"
)

// Kinds of problem a history's base can have. The file is not indexed and
// nothing is deleted; the message names the chain.
const (
	ProblemDanglingBase = "dangling-base" // the chain of bases ends at a thread that is not indexed
	ProblemCyclicBase   = "cyclic-base"   // the chain of bases comes back to a thread already in it
)

// readBases returns the base thread of each of files whose history
// continues another thread's, read from its first meta, keyed by path. A
// revert segment names its own thread and is left out.
func readBases(ctx context.Context, fsys rolloutfs.FS, files []rolloutFile) map[string]string {
	bases := make(map[string]string, len(files))
	for _, f := range files {
		if base, ok := BaseOf(ctx, fsys, f.rel); ok && base != f.id {
			bases[f.rel] = base
		}
	}
	return bases
}

// explainBases says why each file of failed, whose history continues a
// base that could not be found (ErrBaseMissing), is broken: its chain of
// bases (baseByPath, as readBases gives them) either ends at a thread that
// is not among them (dangling: not indexed; inRoot tells whether a file of
// it is in the root nonetheless) or comes back on itself (cyclic). It
// returns a problem per file with a base, keyed by thread id; a revert
// segment's scan error says what is wrong with it.
func explainBases(failed []rolloutFile, baseByPath map[string]string, inRoot func(id string) bool) map[string]Problem {
	bases := make(map[string]string, len(failed))
	rels := make(map[string]string, len(failed))
	for _, f := range failed {
		if base, ok := baseByPath[f.rel]; ok {
			bases[f.id], rels[f.id] = base, f.rel
		}
	}
	out := make(map[string]Problem, len(bases))
	for id := range bases {
		chain := []string{id}
		seen := map[string]bool{id: true}
		for cur := id; ; {
			next, inSet := bases[cur]
			if !inSet {
				where := "neither indexed nor in the root"
				if inRoot(cur) {
					where = "in the root but not indexed"
				}
				out[id] = Problem{Path: rels[id], Kind: ProblemDanglingBase, Detail: fmt.Sprintf(
					"history base chain %s ends at %s, which is %s: not indexed, nothing deleted",
					strings.Join(chain, " -> "), cur, where)}
				break
			}
			chain = append(chain, next)
			if seen[next] {
				out[id] = Problem{Path: rels[id], Kind: ProblemCyclicBase, Detail: fmt.Sprintf(
					"history base chain %s is a cycle: not indexed, nothing deleted", strings.Join(chain, " -> "))}
				break
			}
			seen[next] = true
			cur = next
		}
	}
	return out
}

// BaseOf reads what the history_base of rel's first meta names: a
// thread's id, or a revert segment's uuid where it names one of a reverted
// thread's later files. ok is false when rel cannot be read or its first
// meta names no base.
func BaseOf(ctx context.Context, fsys rolloutfs.FS, rel string) (string, bool) {
	base, err := ReadBase(ctx, fsys, rel)
	return base, err == nil && base != ""
}

// ReadBase is BaseOf that tells a file whose first meta names no base
// ("", nil) from one it cannot read: the open's error (fs.ErrNotExist for
// a missing file), or ErrNoMeta when it does not start with a whole
// session_meta line (an empty file its writer has yet to write).
func ReadBase(ctx context.Context, fsys rolloutfs.FS, rel string) (string, error) {
	f, err := OpenRollout(ctx, fsys, rel)
	if err != nil {
		return "", err
	}
	defer f.Close()
	r := bufio.NewReader(scanRange(rel, f, f.Size()))
	line, err := r.ReadBytes('\n')
	if err != nil {
		return "", fmt.Errorf("%s: %w", rel, ErrNoMeta)
	}
	meta, err := rollout.ParseSessionMeta(line[:len(line)-1])
	if err != nil {
		return "", fmt.Errorf("%s: %w: %v", rel, ErrNoMeta, err)
	}
	if meta.HistoryBase == nil {
		return "", nil
	}
	return normalizeID(meta.HistoryBase.ThreadID), nil
}

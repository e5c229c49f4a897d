package indexer

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spoolhq/spool/rollout"
	"github.com/spoolhq/spool/rolloutfs"
)

// referenceFork returns the file of a reference fork id whose history
// continues base's before end.
func referenceFork(t *testing.T, ts, id, base string, end int64) string {
	t.Helper()
	ord := int64(1)
	meta := rollout.SessionMeta{ID: id, ForkedFromID: base, Timestamp: ts, Cwd: "/src", Source: "cli",
		HistoryMode: rollout.HistoryPaginated, ForkedFromOrdinalExclusive: &ord,
		HistoryBase: &rollout.HistoryBase{ThreadID: base, EndOrdinalExclusive: ord, EndByteOffset: end}}
	line, err := rollout.NewSessionMetaLine(ts, rollout.MetaPayload{SessionMeta: meta})
	if err == nil {
		line, err = rollout.WithOrdinal(line, 0)
	}
	if err != nil {
		t.Fatal(err)
	}
	return string(line)
}

// TestBrokenBasesAreProblems: reindex and verify report a reference fork
// whose chain of bases ends at a thread that is not there (dangling, also
// behind another fork) or comes back on itself (cyclic) as a problem that
// names the chain; such files are not indexed and nothing is deleted.
func TestBrokenBasesAreProblems(t *testing.T) {
	const (
		ts      = "2026-11-20T10:00:00.000Z"
		missing = "019dab90-0000-7000-8000-00000000dead"
		x       = "019dab90-0000-7000-8000-0000000000a1" // base: missing
		y       = "019dab90-0000-7000-8000-0000000000a2" // base: x
		a       = "019dab90-0000-7000-8000-0000000000b1" // base: b
		b       = "019dab90-0000-7000-8000-0000000000b2" // base: a
	)
	root := t.TempDir()
	created := time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)
	rels := map[string]string{}
	for id, base := range map[string]string{x: missing, y: x, a: b, b: a} {
		rel, err := rollout.SessionPath(rollout.FileName(created, id))
		if err != nil {
			t.Fatal(err)
		}
		rels[id] = rel
		writeRollout(t, root, rel, referenceFork(t, ts, id, base, 100))
	}
	want := map[string]struct{ kind, chain string }{
		x: {ProblemDanglingBase, x + " -> " + missing},
		y: {ProblemDanglingBase, y + " -> " + x + " -> " + missing},
		a: {ProblemCyclicBase, a + " -> " + b + " -> " + a},
		b: {ProblemCyclicBase, b + " -> " + a + " -> " + b},
	}
	check := func(t *testing.T, problems []Problem) {
		t.Helper()
		byPath := map[string]Problem{}
		for _, p := range problems {
			byPath[p.Path] = p
		}
		for id, w := range want {
			p, ok := byPath[rels[id]]
			if !ok || p.Kind != w.kind || !strings.Contains(p.Detail, w.chain) || !strings.Contains(p.Detail, "nothing deleted") {
				t.Errorf("problem of %s = %+v, want %s naming %s", id, p, w.kind, w.chain)
			}
		}
	}

	st := openStore(t)
	sum := mustSync(t, st, root, SyncOptions{Full: true})
	t.Run("reindex", func(t *testing.T) { check(t, sum.Problems) })
	if sum.Failed != len(want) {
		t.Errorf("reindex failed %d files, want %d", sum.Failed, len(want))
	}
	rep, err := Verify(t.Context(), st, rolloutfs.Local{Root: root})
	if err != nil {
		t.Fatal(err)
	}
	t.Run("verify", func(t *testing.T) { check(t, rep.Problems) })
	for id, rel := range rels {
		if _, err := os.Stat(filepath.Join(root, filepath.FromSlash(rel))); err != nil {
			t.Errorf("file of %s after reindex and verify: %v, want it kept", id, err)
		}
	}
}

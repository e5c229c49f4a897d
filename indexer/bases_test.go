package indexer

import (
	"database/sql"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/spoolhq/spool/rollout"
	"github.com/spoolhq/spool/rolloutfs"
	"github.com/spoolhq/spool/store"
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

// TestVerifyNamesABaseWhoseRowIsGone: verify of an index where the row of
// a base was deleted by hand (the sqlite3 shell) reported its reference
// forks' chain as ending at a thread "neither indexed nor in the root",
// though the base's file is there: the base is in the root, not indexed,
// and a reindex indexes it and its forks.
func TestVerifyNamesABaseWhoseRowIsGone(t *testing.T) {
	const (
		ts     = "2026-11-20T10:00:00.000Z"
		parent = "019dab90-0000-7000-8000-0000000000e1"
		fork   = "019dab90-0000-7000-8000-0000000000e2"
		forkOf = "019dab90-0000-7000-8000-0000000000e3" // a reference fork of fork
	)
	ctx := t.Context()
	root := t.TempDir()
	created := time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)
	meta, err := rollout.NewSessionMetaLine(ts, rollout.MetaPayload{SessionMeta: rollout.SessionMeta{
		ID: parent, Timestamp: ts, Cwd: "/src", Source: "cli", HistoryMode: rollout.HistoryPaginated,
	}})
	if err != nil {
		t.Fatal(err)
	}
	data := slices.Concat(mustOrdinal(t, string(meta), 0), mustOrdinal(t, userLine(ts, "first"), 1),
		mustOrdinal(t, userLine(ts, "second"), 2), mustOrdinal(t, userLine(ts, "third"), 3))
	writeForkChain(t, root, created, data, parent, fork, forkOf)
	dbPath := filepath.Join(t.TempDir(), "spool.db")
	st, err := store.Open(ctx, dbPath)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	mustSync(t, st, root, SyncOptions{Full: true})
	db, err := sql.Open("sqlite", dbPath+"?_pragma=busy_timeout(5000)") // foreign keys off, as in the sqlite3 shell
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.ExecContext(ctx, `DELETE FROM threads WHERE id = ?`, parent); err != nil {
		t.Fatal(err)
	}

	rep, err := Verify(ctx, st, rolloutfs.Local{Root: root})
	if err != nil {
		t.Fatal(err)
	}
	var dangling []Problem
	for _, p := range rep.Problems {
		if p.Kind == ProblemDanglingBase {
			dangling = append(dangling, p)
		}
	}
	if len(dangling) == 0 {
		t.Fatalf("problems = %v, want the forks' chains named", rep.Problems)
	}
	for _, p := range dangling {
		if strings.Contains(p.Detail, "nor in the root") || !strings.Contains(p.Detail, parent+", which is in the root but not indexed") {
			t.Errorf("problem of %s: %q, want it to say that %s is in the root but not indexed", p.Path, p.Detail, parent)
		}
	}
	mustSync(t, st, root, SyncOptions{Full: true})
	mustVerifyClean(t, st, root)
}

// TestReindexNamesABaseThatFailsToIndex: a reindex whose base file is in
// the root but cannot be indexed (its first line is no meta) said the
// forks' chain ended at a thread "neither indexed nor in the root".
func TestReindexNamesABaseThatFailsToIndex(t *testing.T) {
	const (
		ts   = "2026-11-20T10:00:00.000Z"
		base = "019dab90-0000-7000-8000-0000000000f1"
		fork = "019dab90-0000-7000-8000-0000000000f2"
	)
	root := t.TempDir()
	created := time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)
	baseRel, _ := rollout.SessionPath(rollout.FileName(created, base))
	writeRollout(t, root, baseRel, "not a meta line\n")
	forkRel, _ := rollout.SessionPath(rollout.FileName(created.Add(time.Minute), fork))
	writeRollout(t, root, forkRel, referenceFork(t, ts, fork, base, 10))
	sum := mustSync(t, openStore(t), root, SyncOptions{Full: true})
	for _, p := range sum.Problems {
		if p.Path != forkRel {
			continue
		}
		if p.Kind != ProblemDanglingBase || !strings.Contains(p.Detail, base+", which is in the root but not indexed") {
			t.Fatalf("problem of the fork = %+v, want %s saying that %s is in the root but not indexed", p, ProblemDanglingBase, base)
		}
		return
	}
	t.Fatalf("problems = %v, want one of the fork %s", sum.Problems, forkRel)
}

// TestReferenceForkOfAGoneParentTakesItsBasesAncestry: a reference fork
// whose parent is not indexed (deleted) and whose history_base names
// another thread (the cut lay in what the parent inherited) has the
// parent, then the base and the base's own ancestors, as its ancestry.
// Only such a fork reads its base's ancestors where it reads the base's
// messages; a fork of its base reads them once, as its parent's.
func TestReferenceForkOfAGoneParentTakesItsBasesAncestry(t *testing.T) {
	const (
		ts     = "2026-11-20T10:00:00.000Z"
		root0  = "019dab90-0000-7000-8000-0000000000c1" // the base's parent
		base   = "019dab90-0000-7000-8000-0000000000c2" // a fork of root0
		parent = "019dab90-0000-7000-8000-0000000000c3" // not in the root
		fork   = "019dab90-0000-7000-8000-0000000000c4" // forked from parent, its history base
	)
	root := t.TempDir()
	created := time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)
	rels := map[string]string{}
	for i, id := range []string{root0, base, fork} {
		rel, err := rollout.SessionPath(rollout.FileName(created.Add(time.Duration(i)*time.Minute), id))
		if err != nil {
			t.Fatal(err)
		}
		rels[id] = rel
	}
	writeRollout(t, root, rels[root0], metaLine(ts, root0, ""), userLine(ts, "first"))
	writeRollout(t, root, rels[base], metaLine(ts, base, root0), userLine(ts, "second"), userLine(ts, "third"))
	ord := int64(1)
	meta, err := rollout.NewSessionMetaLine(ts, rollout.MetaPayload{SessionMeta: rollout.SessionMeta{
		ID: fork, ForkedFromID: parent, Timestamp: ts, Cwd: "/src", Source: "cli",
		HistoryMode: rollout.HistoryPaginated, ForkedFromOrdinalExclusive: &ord,
		HistoryBase: &rollout.HistoryBase{ThreadID: base, EndOrdinalExclusive: ord, EndByteOffset: fileSize(t, root, rels[base])}}})
	if err != nil {
		t.Fatal(err)
	}
	writeRollout(t, root, rels[fork], string(meta), userLine(ts, "fourth"))

	want := []string{parent, base, root0}
	st := openStore(t)
	mustSync(t, st, root, SyncOptions{Full: true})
	if got := ancestorIDs(t, st, base); !slices.Equal(got, []string{root0}) {
		t.Fatalf("ancestors of the base = %v, want [%s]", got, root0)
	}
	if got := ancestorIDs(t, st, fork); !slices.Equal(got, want) {
		t.Errorf("ancestors of the fork after a full sync = %v, want %v", got, want)
	}
	rec, _, err := ScanFileWith(t.Context(), rolloutfs.Local{Root: root}, rels[fork], StoreBases{Store: st, ParentsMayBeMissing: true})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(rec.Ancestors, want) {
		t.Errorf("ancestors of the fork's scan = %v, want %v", rec.Ancestors, want)
	}
	if rec.Thread.BaseID != base || rec.Thread.InheritedMessages != 2 {
		t.Errorf("fork's base = %s with %d inherited messages, want %s with 2", rec.Thread.BaseID, rec.Thread.InheritedMessages, base)
	}
}

// TestUnindexedProblems: the problems a command that checks a root fails
// for are the files the index cannot hold: unreadable or unindexable ones
// and reference forks with a dangling or cyclic chain of bases; not an
// empty file or a problem inside a file that is indexed.
func TestUnindexedProblems(t *testing.T) {
	tests := []struct {
		kind string
		want bool
	}{
		{ProblemError, true},
		{ProblemDanglingBase, true},
		{ProblemCyclicBase, true},
		{ProblemEmpty, false},
		{ProblemMalformed, false},
		{ProblemTorn, false},
		{ProblemDuplicate, false},
	}
	for _, tt := range tests {
		t.Run(tt.kind, func(t *testing.T) {
			if got := (Problem{Kind: tt.kind}).Unindexed(); got != tt.want {
				t.Fatalf("Problem{Kind: %q}.Unindexed() = %t, want %t", tt.kind, got, tt.want)
			}
		})
	}
}

package indexer

import (
	"context"
	"errors"
	"fmt"
	"path"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/spoolhq/spool/rollout"
	"github.com/spoolhq/spool/rolloutfs"
	"github.com/spoolhq/spool/store"
)

// DriftKind names a way the index disagrees with the files.
type DriftKind string

// The kinds of drift Verify reports.
const (
	DriftMissing  DriftKind = "missing"  // a rollout file whose thread has no row
	DriftStale    DriftKind = "stale"    // a row whose file is gone (or is not a thread)
	DriftField    DriftKind = "field"    // thread columns differ from what the file says
	DriftMessages DriftKind = "messages" // counted user messages (offsets, lines, ordinals, previews) differ
	DriftLineage  DriftKind = "lineage"  // the ancestry or the spawn edge differs from what the file says
	DriftSegments DriftKind = "segments" // a reverted thread's earlier files differ from the ones recorded
)

// Drift is one disagreement between the index and the files.
type Drift struct {
	Kind     DriftKind `json:"kind"`
	ThreadID string    `json:"thread_id"`
	Path     string    `json:"path"`
	Detail   string    `json:"detail"`
}

// String formats d for people.
func (d Drift) String() string {
	return fmt.Sprintf("%s: thread %s (%s): %s", d.Kind, d.ThreadID, d.Path, d.Detail)
}

// VerifyReport is what Verify found. Problems (torn tails, malformed lines,
// duplicates, unreadable files) are not drift: the index may be right
// about such files, but a person should know about them.
type VerifyReport struct {
	Files    int           `json:"files"`   // rollout files found
	Threads  int           `json:"threads"` // rows in the index
	Drifts   []Drift       `json:"drifts"`
	Problems []Problem     `json:"problems"`
	Duration time.Duration `json:"duration_ns"`
}

// Clean reports whether the index agrees with the files.
func (r VerifyReport) Clean() bool { return len(r.Drifts) == 0 }

// VerifyOptions configure Verify.
type VerifyOptions struct {
	// Workers is how many files are parsed in parallel; default
	// runtime.GOMAXPROCS(0).
	Workers int
}

// Verify recomputes the record of every rollout file under root, as Sync
// would index it, and compares it with the index without writing anything:
// every thread column the file determines (all but FileMtime, and
// ArchivedAt, which records when the archive happened rather than anything
// in the file), the counted user messages, the ancestry and the spawn
// edge, and a reverted thread's earlier files, whose rows must run from its
// first file to its own (store.LostChains). Drifts are sorted by path, then
// kind.
func Verify(ctx context.Context, st *store.Store, fsys rolloutfs.FS) (VerifyReport, error) {
	return VerifyWith(ctx, st, fsys, VerifyOptions{})
}

// VerifyWith is Verify with options.
func VerifyWith(ctx context.Context, st *store.Store, fsys rolloutfs.FS, opts VerifyOptions) (VerifyReport, error) {
	start := time.Now()
	var rep VerifyReport
	names, err := readNames(ctx, fsys)
	if err != nil {
		return rep, fmt.Errorf("verify %v: %w", fsys, err)
	}
	paths, odd, err := walkFiles(ctx, fsys)
	if err != nil {
		return rep, fmt.Errorf("verify %v: %w", fsys, err)
	}
	files, dups := chooseFiles(paths)
	earlier := earlierFiles(paths, files)
	rep.Files = len(paths)
	rep.Problems = append(append(rep.Problems, dups...), odd...)
	states, err := st.FileStates(ctx)
	if err != nil {
		return rep, fmt.Errorf("verify %v: %w", fsys, err)
	}
	rep.Threads = len(states)
	indexedAt := make(map[string]bool, len(states)) // rollout paths rows name
	for _, s := range states {
		indexedAt[s.RolloutPath] = true
	}

	type verifyResult struct {
		file   rolloutFile
		thread bool // the file is a thread (a row for it is expected)
		// baseMissing: the file continues a base that is not indexed.
		baseMissing bool
		drifts      []Drift
		problems    []Problem
		err         error
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	results := runWorkers(ctx, files, opts.Workers, func(f rolloutFile) verifyResult {
		res := verifyResult{file: f}
		rec, problems, err := scanWithNames(ctx, fsys, StoreBases{Store: st, ParentsMayBeMissing: true}, f.rel, names)
		res.problems = problems
		if err != nil {
			p := scanProblem(ctx, fsys, f.rel, err)
			res.problems = append(res.problems, p)
			// A file that is not a thread expects no row; one that could
			// not be read is left out of the comparison. So is a row's own
			// file emptied to be written anew, which a sync keeps the row
			// of (see emptied).
			res.thread = !errors.Is(err, ErrNoMeta) && !errors.Is(err, ErrIDMismatch) ||
				p.Kind == ProblemEmpty && indexedAt[f.rel]
			res.baseMissing = errors.Is(err, ErrBaseMissing)
			return res
		}
		res.thread = true
		firstFileFacts(ctx, fsys, StoreBases{Store: st, ParentsMayBeMissing: true}, &rec, false)
		res.drifts, res.err = compareRecord(ctx, st, rec, earlier[f.id])
		return res
	})

	present := make(map[string]bool, len(files))
	var firstErr error
	var baseless []rolloutFile // files whose base is not indexed
	baselessProblems := map[string][]Problem{}
	for res := range results {
		if res.err != nil && firstErr == nil {
			firstErr = res.err
			cancel()
		}
		if res.thread {
			present[res.file.id] = true
		}
		rep.Drifts = append(rep.Drifts, res.drifts...)
		if res.baseMissing {
			baseless = append(baseless, res.file)
			baselessProblems[res.file.id] = res.problems
			continue
		}
		rep.Problems = append(rep.Problems, res.problems...)
	}
	// A base whose file is in the root has no row (deleted by hand) or
	// cannot be read: the chain ends at a thread that is there.
	inRoot := make(map[string]bool, len(files))
	for _, f := range files {
		inRoot[f.id] = true
	}
	why := explainBases(baseless, readBases(ctx, fsys, baseless), func(id string) bool { return inRoot[id] })
	for _, f := range baseless {
		if p, ok := why[f.id]; ok {
			rep.Problems = append(rep.Problems, p)
			continue
		}
		rep.Problems = append(rep.Problems, baselessProblems[f.id]...)
	}
	if firstErr != nil {
		return rep, fmt.Errorf("verify %v: %w", fsys, firstErr)
	}
	if err := ctx.Err(); err != nil {
		return rep, fmt.Errorf("verify %v: %w", fsys, err)
	}
	if rep.Drifts, err = lostChainDrifts(ctx, st, states, present, rep.Drifts); err != nil {
		return rep, fmt.Errorf("verify %v: %w", fsys, err)
	}
	for _, s := range states {
		if !present[s.ID] {
			rep.Drifts = append(rep.Drifts, Drift{Kind: DriftStale, ThreadID: s.ID, Path: s.RolloutPath, Detail: "indexed, but no rollout file holds it"})
		}
	}
	sort.SliceStable(rep.Drifts, func(i, j int) bool {
		a, b := rep.Drifts[i], rep.Drifts[j]
		if a.Path != b.Path {
			return a.Path < b.Path
		}
		return a.Kind < b.Kind
	})
	sort.SliceStable(rep.Problems, func(i, j int) bool {
		a, b := rep.Problems[i], rep.Problems[j]
		if a.Path != b.Path {
			return a.Path < b.Path
		}
		return a.Offset < b.Offset
	})
	rep.Duration = time.Since(start)
	return rep, nil
}

// lostChainDrifts adds to drifts a segments drift for each reverted thread
// of the files whose rows no longer record the files its history runs
// through (store.LostChains), unless one was found: the scan of its newest
// file reads through those rows, and finds no fault in a history that
// starts at a revert segment, its first file's row gone.
func lostChainDrifts(ctx context.Context, st *store.Store, states []store.FileState, present map[string]bool, drifts []Drift) ([]Drift, error) {
	lost, err := st.LostChains(ctx)
	if err != nil || len(lost) == 0 {
		return drifts, err
	}
	reported := make(map[string]bool)
	for _, d := range drifts {
		if d.Kind == DriftSegments {
			reported[d.ThreadID] = true
		}
	}
	isLost := make(map[string]bool, len(lost))
	for _, id := range lost {
		isLost[id] = present[id] && !reported[id]
	}
	for _, s := range states {
		if isLost[s.ID] {
			drifts = append(drifts, Drift{Kind: DriftSegments, ThreadID: s.ID, Path: s.RolloutPath,
				Detail: "the index no longer records the files its history runs through (thread_segments rows deleted by hand?): reindex --repair reads them again"})
		}
	}
	return drifts, nil
}

// earlierFiles returns, by thread id, the files of paths that are earlier
// files of a thread in several (revert segments) whose newest is in chosen,
// each at its place (a copy elsewhere is a duplicate, not a file of it).
func earlierFiles(paths []string, chosen []rolloutFile) map[string][]string {
	newest := make(map[string]string, len(chosen))
	for _, f := range chosen {
		newest[f.id] = f.rel
	}
	earlier := map[string][]string{}
	for _, rel := range paths {
		id, _, _, err := rollout.ParseRolloutName(path.Base(rel))
		if err == nil && laterFile(newest[id], rel) && atItsPlace(rel) {
			earlier[id] = append(earlier[id], rel)
		}
	}
	return earlier
}

// compareRecord compares what the file says with the index; earlier are
// the thread's earlier files in the root.
// firstFileFacts sets the columns of a reverted thread's record that its
// row takes from its first file (its start, parent and fork point) as a
// scan of that file gives them: the scan of its newest file (a revert
// segment) copies them from the row, the very row verify checks. A first
// file that cannot be scanned leaves them; the segments' check reports it.
//
// With ancestry, the record's ancestors are the first file's too (empty
// for a fork whose file names only its parent: the store then gives it its
// parent's indexed ancestry, as it gave the first file). Verify leaves
// them, compared as the index holds them.
func firstFileFacts(ctx context.Context, fsys rolloutfs.FS, bases Bases, rec *store.Record, ancestry bool) {
	th := &rec.Thread
	if th.BaseID != th.ID || len(rec.Segments) == 0 || !rec.Segments[0].InChain() {
		return
	}
	first, _, err := ScanFileWith(ctx, fsys, rec.Segments[0].RolloutPath, bases)
	if err != nil || first.Thread.ID != th.ID {
		return
	}
	th.CreatedAt, th.ParentID = first.Thread.CreatedAt, first.Thread.ParentID
	th.ForkUserMessage, th.ForkOffset = first.Thread.ForkUserMessage, first.Thread.ForkOffset
	if ancestry {
		rec.Ancestors = first.Ancestors
	}
}

func compareRecord(ctx context.Context, st *store.Store, want store.Record, earlier []string) ([]Drift, error) {
	id, rel := want.Thread.ID, want.Thread.RolloutPath
	got, err := st.Get(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return []Drift{{Kind: DriftMissing, ThreadID: id, Path: rel, Detail: "rollout file has no index row"}}, nil
	}
	if err != nil {
		return nil, err
	}
	var drifts []Drift
	if diffs := threadDiffs(want.Thread, got); len(diffs) > 0 {
		drifts = append(drifts, Drift{Kind: DriftField, ThreadID: id, Path: rel, Detail: strings.Join(diffs, "; ")})
	}

	msgs, err := st.UserMessages(ctx, id)
	if err != nil {
		return nil, err
	}
	wantMsgs := want.Messages
	if first := want.Thread.FirstOwnMessage(); first > 0 {
		// What a reference fork inherits, as its base holds it now.
		inherited, err := st.UserMessagesBefore(ctx, want.Thread.BaseID, want.Thread.BaseSize)
		if err != nil {
			return nil, err
		}
		wantMsgs = append(inherited[:min(first, len(inherited))], want.Messages...)
	}
	if d := messageDiff(wantMsgs, msgs); d != "" {
		drifts = append(drifts, Drift{Kind: DriftMessages, ThreadID: id, Path: rel, Detail: d})
	}

	rels, err := st.Ancestors(ctx, id)
	if err != nil {
		return nil, err
	}
	ancestors := make([]string, len(rels))
	for i, r := range rels {
		ancestors[i] = r.ID
	}
	if !slices.Equal(ancestors, want.Ancestors) {
		drifts = append(drifts, Drift{Kind: DriftLineage, ThreadID: id, Path: rel,
			Detail: fmt.Sprintf("ancestors %v, file says %v", ancestors, want.Ancestors)})
	}
	spawner, err := st.SpawnParent(ctx, id)
	if err != nil {
		return nil, err
	}
	if spawner != want.SpawnParentID {
		drifts = append(drifts, Drift{Kind: DriftLineage, ThreadID: id, Path: rel,
			Detail: fmt.Sprintf("spawned by %q, file says %q", spawner, want.SpawnParentID)})
	}
	segs, err := st.Segments(ctx, id)
	if err != nil {
		return nil, err
	}
	if d := segmentDiff(want.Segments, segs, earlier); d != "" {
		drifts = append(drifts, Drift{Kind: DriftSegments, ThreadID: id, Path: rel, Detail: d})
	}
	return drifts, nil
}

// segmentDiff describes the first difference between a thread's segments
// as its newest file reads them (want), as the index records them (got)
// and as the root holds them (files: the thread's earlier files); "" when
// they agree. The links of the history chain must agree in order; a file
// out of the history is only to be recorded, as every earlier file is,
// for the newest file may not name it (Codex's revert before the first
// turn starts a segment without a base, its first file still the
// thread's).
func segmentDiff(want, got []store.Segment, files []string) string {
	key := func(s store.Segment) store.Segment { s.ThreadID, s.Seq = "", 0; return s }
	wantChain, gotChain := chainLinks(want), chainLinks(got)
	for i := range min(len(wantChain), len(gotChain)) {
		if w, g := key(wantChain[i]), key(gotChain[i]); w != g {
			return fmt.Sprintf("segment %d: index %+v, file %+v", i, g, w)
		}
	}
	if len(wantChain) != len(gotChain) {
		return fmt.Sprintf("index has %d earlier files in the history, the newest file reads %d", len(gotChain), len(wantChain))
	}
	recorded := make(map[string]bool, len(got))
	for _, s := range got {
		recorded[s.RolloutPath] = true
		if !slices.Contains(files, s.RolloutPath) {
			return fmt.Sprintf("earlier file %s is gone", s.RolloutPath)
		}
	}
	for _, f := range files {
		if !recorded[f] {
			return fmt.Sprintf("earlier file %s is not recorded", f)
		}
	}
	return ""
}

// chainLinks returns the segments of segs in the history chain, in order.
func chainLinks(segs []store.Segment) []store.Segment {
	var links []store.Segment
	for _, sg := range segs {
		if sg.InChain() {
			links = append(links, sg)
		}
	}
	return links
}

// threadDiffs lists the columns of got that differ from want, as
// "column: index X, file Y".
func threadDiffs(want, got store.Thread) []string {
	var diffs []string
	add := func(column string, g, w any) {
		if g != w {
			diffs = append(diffs, fmt.Sprintf("%s: index %v, file %v", column, quoteIfString(g), quoteIfString(w)))
		}
	}
	add("rollout_path", got.RolloutPath, want.RolloutPath)
	add("created_at", got.CreatedAt, want.CreatedAt)
	add("updated_at", got.UpdatedAt, ClampUpdatedAt(want.UpdatedAt, want.FileMtime))
	add("cwd", got.Cwd, want.Cwd)
	add("source", got.Source, want.Source)
	add("originator", got.Originator, want.Originator)
	add("cli_version", got.CLIVersion, want.CLIVersion)
	add("model_provider", got.ModelProvider, want.ModelProvider)
	add("git_commit", got.GitCommit, want.GitCommit)
	add("git_branch", got.GitBranch, want.GitBranch)
	add("git_origin", got.GitOrigin, want.GitOrigin)
	add("name", got.Name, want.Name)
	add("preview", got.Preview, want.Preview)
	if want.Preview != "" {
		add("preview_offset", got.PreviewOffset, want.PreviewOffset)
	}
	add("archived", got.Archived, want.Archived)
	add("parent_id", got.ParentID, want.ParentID)
	add("fork_user_message", got.ForkUserMessage, want.ForkUserMessage)
	add("fork_offset", got.ForkOffset, want.ForkOffset)
	add("line_count", got.LineCount, want.LineCount)
	add("user_message_count", got.UserMessageCount, want.UserMessageCount)
	add("indexed_size", got.IndexedSize, want.IndexedSize)
	if got.TailSum != 0 { // 0: unknown, a row written before tail sums or by a writer that does not know the bytes
		add("tail_sum", got.TailSum, want.TailSum)
	}
	add("file_size", got.FileSize, want.FileSize)
	add("history_mode", got.HistoryMode, want.HistoryMode)
	add("base_id", got.BaseID, want.BaseID)
	add("base_size", got.BaseSize, want.BaseSize)
	add("inherited_messages", got.InheritedMessages, want.InheritedMessages)
	return diffs
}

func quoteIfString(v any) any {
	if s, ok := v.(string); ok {
		return fmt.Sprintf("%q", s)
	}
	return v
}

// messageDiff describes the first difference between the counted user
// messages of the file and of the index ("" when they agree).
func messageDiff(want, got []store.UserMessage) string {
	for i := range min(len(want), len(got)) {
		w, g := want[i], got[i]
		if w.Ordinal != g.Ordinal || w.Offset != g.Offset || w.Line != g.Line || w.Preview != g.Preview || w.Cut() != g.Cut() {
			return fmt.Sprintf("message %d: index (ordinal %d, offset %d, cut %d, line %d, %q), file (ordinal %d, offset %d, cut %d, line %d, %q)",
				i, g.Ordinal, g.Offset, g.Cut(), g.Line, g.Preview, w.Ordinal, w.Offset, w.Cut(), w.Line, w.Preview)
		}
	}
	if len(want) != len(got) {
		return fmt.Sprintf("index has %d user messages, file has %d", len(got), len(want))
	}
	return ""
}

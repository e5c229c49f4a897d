// Package indexer turns rollout files into index rows: it scans a whole
// file into a store.Record, catches a thread up from its indexed offset,
// and rebuilds, verifies or repairs a whole root. It is the one place that
// knows both the rollout format and the store.
package indexer

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/spoolhq/spool/rollout"
	"github.com/spoolhq/spool/rolloutfs"
	"github.com/spoolhq/spool/store"
)

// PreviewRunes is how many runes of a user message a preview keeps.
const PreviewRunes = 200

// PreviewCutAway is the PreviewOffset of a preview whose line a revert cut
// away: the thread keeps the preview, as Codex shows it, but no fork's
// history holds that line, so no fork keeps it.
const PreviewCutAway = math.MaxInt64

// Problem kinds.
const (
	ProblemMalformed = "malformed" // a complete line that is not a JSON object, or a bad session_meta
	ProblemTorn      = "torn"      // a last line without its newline
	ProblemDuplicate = "duplicate" // a second file holding an id already indexed from another file
	ProblemError     = "error"     // a file that could not be indexed at all
	ProblemEmpty     = "empty"     // a rollout file with nothing in it yet: its writer may be creating it
)

// scanProblem is the problem a file that could not be scanned (err) makes:
// ProblemEmpty for an empty file (no session_meta yet: Codex creates a
// revert segment before it writes it), else ProblemError.
func scanProblem(ctx context.Context, fsys rolloutfs.FS, rel string, err error) Problem {
	kind := ProblemError
	if errors.Is(err, ErrNoMeta) {
		if info, serr := fsys.Stat(ctx, rel); serr == nil && info.Size == 0 {
			kind = ProblemEmpty
		}
	}
	return Problem{Path: rel, Kind: kind, Detail: err.Error()}
}

// ctxCheckLines is how many lines a scan reads between context checks.
const ctxCheckLines = 256

// Preview shortens a text for the threads.preview column (a preview as
// rollout.Preview gives it) and the user_messages.preview column (a user
// message's text): surrounding white space is trimmed and at most
// PreviewRunes runes are kept (never cutting a rune in half). Codex never
// shortens a thread's preview: spool does, so that a page of a list stays
// bounded. The result is a copy when it is shorter than text: a slice
// would keep all of text in memory for as long as the row that holds it.
func Preview(text string) string {
	trimmed := strings.TrimSpace(text)
	runes := 0
	for i := range trimmed {
		if runes == PreviewRunes {
			trimmed = strings.TrimRightFunc(trimmed[:i], isSpace)
			break
		}
		runes++
	}
	if len(trimmed) < len(text) {
		return strings.Clone(trimmed)
	}
	return text
}

func isSpace(r rune) bool { return r == ' ' || r == '\t' || r == '\n' || r == '\r' }

// Problem is a line the indexer could not use: malformed, or a torn tail.
type Problem struct {
	Path   string `json:"path"`
	Offset int64  `json:"offset"`
	Line   int64  `json:"line"` // 0-based, as the index counts lines; String says it 1-based
	Kind   string `json:"kind"` // "malformed" or "torn" (Sync adds "duplicate" and "error")
	Detail string `json:"detail"`
}

// Unindexed reports whether p is a file the index cannot hold at all: one
// that could not be read or indexed (ProblemError), or a reference fork
// whose chain of bases is dangling or cyclic. A command that checks a root
// fails for these; an empty file, which its writer may be creating, and a
// problem inside a file that is indexed are not among them.
func (p Problem) Unindexed() bool {
	switch p.Kind {
	case ProblemError, ProblemDanglingBase, ProblemCyclicBase:
		return true
	}
	return false
}

// String formats p for people, "path: offset N (line L): kind: detail",
// with L counted from 1, as an editor counts lines.
func (p Problem) String() string {
	return fmt.Sprintf("%s: offset %d (line %d): %s: %s", p.Path, p.Offset, p.Line+1, p.Kind, p.Detail)
}

// ScanFile reads the whole rollout file at root/relPath (relPath slash
// separated) and returns the record the index should hold for it: the
// thread from its first session_meta, its counted user messages, its
// ancestry from the chain of leading session_meta lines (a fork file starts
// with its own meta, then its parent's, and so on), the thread that spawned
// it as a sub-agent (SessionMeta.SpawnParentID), the name from
// thread_name_updated events, and sizes. A file without a session_meta
// line, or whose meta id disagrees with the id in its name, is an error
// wrapping ErrNoMeta or ErrIDMismatch. Malformed lines and a torn tail are
// returned as problems, not errors.
//
// A compressed rollout (rollout.IsCompressed) is decompressed as it is
// read; its offsets and sizes are those of the decompressed lines, and
// FileSize is the compressed file's size (its identity on disk).
//
// UpdatedAt is the newest envelope timestamp in the file (CreatedAt when
// none parses). An archived file (under archived_sessions/) gets its
// modification time as ArchivedAt.
func ScanFile(ctx context.Context, fsys rolloutfs.FS, relPath string) (store.Record, []Problem, error) {
	return ScanFileWith(ctx, fsys, relPath, nil)
}

// Bases looks up the base of a history that continues another thread's (a
// Codex reference fork): a thread already indexed.
type Bases interface {
	// Base returns thread id's row, its ancestors (nearest first) and its
	// user messages at positions below end in its history. An id that is
	// not indexed is an error wrapping store.ErrNotFound.
	Base(ctx context.Context, id string, end int64) (store.Thread, []string, []store.UserMessage, error)
	// Row returns thread id's row alone, as Base does.
	Row(ctx context.Context, id string) (store.Thread, error)
	// MessagesBelow returns thread id's user messages at positions below
	// end alone, as Base does (none for end <= 0).
	MessagesBelow(ctx context.Context, id string, end int64) ([]store.UserMessage, error)
	// RolledBackBelow returns the user messages of thread id at positions
	// below end that a rollback at or after end dropped, with their text
	// (store.Store.RolledBackBelow): a fork cut at end inherits them.
	RolledBackBelow(ctx context.Context, id string, end int64) ([]store.UserMessage, error)
}

// StoreBases finds bases in an index.
type StoreBases struct {
	Store *store.Store
	// ParentsMayBeMissing lets a reference fork whose parent is not
	// indexed (deleted) be indexed with the parent alone as its ancestry;
	// otherwise it waits for its parent (ErrBaseMissing).
	ParentsMayBeMissing bool
	// Waiting holds the ids of files still to be indexed: a parent among
	// them is not missing, and its forks wait for it all the same.
	Waiting map[string]bool
	// earlierFilesWait, set by a Sync's rounds, makes a revert segment
	// without history_base (Codex's revert before the first turn) of a
	// thread not indexed yet fail with ErrBaseMissing: a later round reads
	// it after the thread's first file, whose preview it keeps.
	earlierFilesWait bool
	// waitsFor, when set, reports whether a reference fork of base (as
	// its history_base names it) is not to be read now: its scan stops at
	// its meta line with errWaits (a full Sync's, see syncer.scan).
	waitsFor func(base string) bool
}

// errWaits is the error of a scan that stopped at a reference fork's meta
// line because StoreBases.waitsFor said so.
var errWaits = errors.New("reference fork waits for its base")

// parentsOptional reports whether parent, not indexed, may be left out of
// a fork's ancestry.
func parentsOptional(b Bases, parent string) bool {
	sb, ok := b.(StoreBases)
	return ok && sb.ParentsMayBeMissing && !sb.Waiting[parent]
}

// Base implements Bases.
func (b StoreBases) Base(ctx context.Context, id string, end int64) (store.Thread, []string, []store.UserMessage, error) {
	th, err := b.Row(ctx, id)
	if err != nil {
		return store.Thread{}, nil, nil, err
	}
	rel, err := b.Store.Ancestors(ctx, id)
	if err != nil {
		return store.Thread{}, nil, nil, err
	}
	ancestors := make([]string, len(rel))
	for i, r := range rel {
		ancestors[i] = r.ID
	}
	below, err := b.MessagesBelow(ctx, id, end)
	if err != nil {
		return store.Thread{}, nil, nil, err
	}
	return th, ancestors, below, nil
}

// Row implements Bases.
func (b StoreBases) Row(ctx context.Context, id string) (store.Thread, error) {
	return b.Store.Get(ctx, id)
}

// MessagesBelow implements Bases.
func (b StoreBases) MessagesBelow(ctx context.Context, id string, end int64) ([]store.UserMessage, error) {
	if end <= 0 {
		return nil, nil
	}
	return b.Store.UserMessagesBefore(ctx, id, end)
}

// RolledBackBelow implements Bases.
func (b StoreBases) RolledBackBelow(ctx context.Context, id string, end int64) ([]store.UserMessage, error) {
	return b.Store.RolledBackBelow(ctx, id, end)
}

// ScanFileWith is ScanFile for a file whose history may continue another
// thread's (a meta with history_base): bases finds that thread, whose
// messages before the cut the thread inherits. The history's positions
// start with the base's: the file's own bytes come after BaseSize bytes.
// Without bases (nil), or when the base is not indexed, such a file fails
// with an error wrapping ErrBaseMissing.
func ScanFileWith(ctx context.Context, fsys rolloutfs.FS, relPath string, bases Bases) (store.Record, []Problem, error) {
	nameID, _, nameCreated, err := rollout.ParseRolloutName(path.Base(relPath))
	if err != nil {
		return store.Record{}, nil, fmt.Errorf("scan %s: %w", relPath, err)
	}
	// Stat before opening: bytes appended while we read make the file
	// look changed next time instead of being skipped.
	fi, err := fsys.Stat(ctx, relPath)
	if err != nil {
		return store.Record{}, nil, fmt.Errorf("scan %s: %w", relPath, err)
	}
	f, err := OpenRollout(ctx, fsys, relPath)
	if err != nil {
		return store.Record{}, nil, fmt.Errorf("scan %s: %w", relPath, err)
	}
	defer f.Close()

	var (
		problems []Problem
		meta     *rollout.SessionMeta
		metaEnd  int64 // end of the first meta line
		chain    rollout.Ancestry
		hist     history
		tr       = NewTracker(store.Thread{ID: nameID})
		r        = rollout.NewReader(scanRange(relPath, f, fi.Size), 0, 0)
	)
	for r.Next() {
		l := r.Line()
		if l.Number%ctxCheckLines == 0 {
			if err := ctx.Err(); err != nil {
				return store.Record{}, nil, fmt.Errorf("scan %s: %w", relPath, err)
			}
		}
		if l.Err != nil {
			problems = append(problems, malformed(relPath, l, l.Err))
			chain.End()
			continue
		}
		tr.Observe(l)
		if l.Type != rollout.TypeSessionMeta {
			chain.End()
			continue
		}
		if meta != nil && chain.Ended() {
			continue // a later meta (settings change, copied history): nothing to index
		}
		m, err := rollout.ParseSessionMeta(l.Raw)
		if err != nil {
			problems = append(problems, malformed(relPath, l, err))
			chain.End()
			continue
		}
		if meta == nil {
			id, err := rollout.ParseID(m.ID)
			if err != nil || id != nameID {
				return store.Record{}, nil, fmt.Errorf("scan %s: meta id %q: %w", relPath, m.ID, ErrIDMismatch)
			}
			if err := startHistory(ctx, tr, &hist, relPath, m, l, bases); err != nil {
				return store.Record{}, nil, fmt.Errorf("scan %s: %w", relPath, err)
			}
			meta = &m
			metaEnd = l.End()
			chain.Start(m)
			continue
		}
		chain.Observe(m)
	}
	if err := r.Err(); err != nil {
		return store.Record{}, nil, fmt.Errorf("scan %s: %w", relPath, err)
	}
	if meta == nil {
		return store.Record{}, nil, fmt.Errorf("scan %s: %w", relPath, ErrNoMeta)
	}
	if p, ok := tornProblem(relPath, r, f); ok {
		problems = append(problems, p)
	}

	indexedSize, lineCount := r.End()
	th := threadFromMeta(*meta, nameID, nameCreated)
	ancestors := chain.IDs()
	th.RolloutPath = relPath
	th.HistoryMode = string(meta.HistoryMode)
	if hist.segment {
		// A revert segment continues its own thread: the thread's start,
		// lineage and fork point are those its earlier file gave it.
		prior := hist.prior
		th.BaseID, th.BaseSize = hist.baseID, hist.baseSize
		th.CreatedAt, th.ParentID = prior.CreatedAt, prior.ParentID
		th.ForkUserMessage, th.ForkOffset = prior.ForkUserMessage, prior.ForkOffset
		th.Name = prior.Name
		ancestors = hist.ancestors
	} else if hist.baseID != "" {
		th.BaseID, th.BaseSize = hist.baseID, hist.baseSize
		th.ForkOffset = hist.baseSize
		if meta.ForkPoint == nil {
			th.ForkUserMessage = hist.inherited
		}
		if th.ParentID != "" {
			if ancestors, err = referenceAncestry(ctx, bases, th.ParentID, hist); err != nil {
				return store.Record{}, nil, fmt.Errorf("scan %s: %w", relPath, err)
			}
		}
	}
	if !hist.segment {
		// What the files no longer name (a deleted ancestor's meta or row)
		// the fork's own meta may: the ancestry its maker had.
		ancestors = meta.ForkPoint.AncestryOf(ancestors)
	}
	p := tr.Progress()
	th.NextOrdinal, th.TurnOffset, th.TurnID = p.NextOrdinal, p.TurnOffset, p.TurnID
	th.IndexedSize = indexedSize
	if !rollout.IsCompressed(relPath) { // never caught up: it needs none
		if th.TailSum, err = tailSumAt(f, indexedSize); err != nil {
			return store.Record{}, nil, fmt.Errorf("scan %s: %w", relPath, err)
		}
	}
	th.LineCount = lineCount
	th.FileSize = fi.Size
	th.FileMtime = fi.ModTime.UnixNano()
	th.UpdatedAt = th.CreatedAt
	if tr.newest != 0 {
		th.UpdatedAt = tr.newest
	}
	if tr.name != nil {
		th.Name = *tr.name
	}
	th.InheritedMessages = inheritedMessages(th.ParentID, meta.ForkPoint, hist, tr, metaEnd)
	th.UserMessageCount = tr.UserMessageCount()
	th.Preview, th.PreviewOffset = tr.preview, tr.previewAt
	if IsArchivedPath(relPath) {
		th.Archived = true
		th.ArchivedAt = fi.ModTime.UnixMilli()
	}
	return store.Record{Thread: th, Messages: tr.pending, Ancestors: ancestors, SpawnParentID: meta.SpawnParentID,
		Segments: hist.segments, RolledBack: tr.rolledBack, StatedKey: statedKey(meta.CreationKey)}, problems, nil
}

// referenceAncestry returns the ancestry of a reference fork of parent:
// its file holds no copy of its ancestors' metas, so it is its parent's,
// from the index. A parent the index lacks fails with ErrBaseMissing
// unless bases allows it (parentsOptional); then, if the fork's base hist
// names is not the parent (the cut lay in what the parent inherited), the
// base and its own ancestry follow the parent.
func referenceAncestry(ctx context.Context, bases Bases, parent string, hist history) ([]string, error) {
	ancestors := []string{parent}
	_, above, _, err := bases.Base(ctx, parent, 0)
	switch {
	case err == nil:
		ancestors = append(ancestors, above...)
	case !errors.Is(err, store.ErrNotFound):
		return nil, err
	case !parentsOptional(bases, parent):
		return nil, fmt.Errorf("parent %s: %w", parent, ErrBaseMissing)
	case hist.baseID != parent:
		ancestors = append(ancestors, hist.baseID)
		ancestors = append(ancestors, hist.ancestors...)
	}
	return ancestors, nil
}

// inheritedMessages returns how many of a thread's user messages are its
// parent's: for a reference fork (hist names a base), those of its base it
// keeps through its own rollbacks, which resolve through the base; for a
// copy fork cut at fp, the copies before the cut (the store keeps their
// search text only while the parent is not indexed, as store.InsertFork
// does), whose rolled-back copies it clears the text of, as the fork's row
// did not hold it. A thread that is no fork inherits none.
func inheritedMessages(parent string, fp *rollout.ForkPoint, hist history, tr *Tracker, metaEnd int64) int {
	switch {
	case hist.baseID != "":
		return tr.keep
	case fp == nil || parent == "":
		return 0
	}
	n := 0
	for _, m := range tr.pending {
		if !fp.Copied(m.Line, m.Offset, metaEnd) {
			break
		}
		n++
	}
	for i, m := range tr.rolledBack {
		if fp.Copied(m.Line, m.Offset, metaEnd) {
			tr.rolledBack[i].Text = ""
		}
	}
	return n
}

// statedKey returns k, the idempotency key a file's meta states, as the
// index records it (nil for none).
func statedKey(k *rollout.CreationKey) *store.CreationKey {
	if k == nil {
		return nil
	}
	hash, err := hex.DecodeString(k.RequestSHA256)
	if err != nil {
		return nil // rollout.ParseSessionMeta reads only hex
	}
	return &store.CreationKey{Scope: k.Scope, Key: k.Key, RequestHash: hash, CreatedAt: k.CreatedAt, ExpiresAt: k.ExpiresAt}
}

// history is what the first meta of a file says of the history it holds.
type history struct {
	baseID    string   // the thread whose history this one continues, "" for none
	baseSize  int64    // bytes of history before the file
	inherited int      // user messages the thread inherits from its base (a revert segment: its first file's)
	ancestors []string // the base's ancestors, nearest first (a reference fork: only if its parent is another thread)

	// A revert segment (a base naming the thread itself): the thread's
	// row before this file, its files other than this one, and the
	// messages it keeps.
	segment  bool
	prior    store.Thread
	segments []store.Segment
	messages []store.UserMessage
}

// startHistory reads the history the first meta m (on line l) starts and
// tells tr: the mode, and for a reference fork or revert segment its base.
func startHistory(ctx context.Context, tr *Tracker, h *history, relPath string, m rollout.SessionMeta, l *rollout.Line, bases Bases) error {
	var metaOrdinal int64
	if n, ok, err := rollout.LineOrdinal(l.Raw); err == nil && ok {
		metaOrdinal = n
	}
	hb := m.HistoryBase
	if hb == nil {
		tr.setHistory(m.Mode(), metaOrdinal, 0, 0)
		if bases != nil && isSegmentFile(relPath) {
			return startBaseless(ctx, tr, h, relPath, bases)
		}
		return nil
	}
	baseID := normalizeID(hb.ThreadID)
	if bases == nil {
		return fmt.Errorf("base %s: %w", baseID, ErrBaseMissing)
	}
	if sb, ok := bases.(StoreBases); ok && sb.waitsFor != nil && baseID != tr.id && !isSegmentFile(relPath) && sb.waitsFor(baseID) {
		return fmt.Errorf("base %s: %w", baseID, errWaits)
	}
	var base store.Thread
	var err error
	if baseID != tr.id { // a revert segment's thread: startSegment reads it
		base, err = bases.Row(ctx, baseID)
	}
	var named store.Segment // the file hb names by its segment's uuid
	if errors.Is(err, store.ErrNotFound) {
		var owner string
		var found bool
		if owner, named, found, err = segmentNamed(ctx, bases, baseID, tr.id, normalizeID(m.ForkedFromID)); err != nil {
			return err
		}
		if found {
			baseID = owner
			base, err = bases.Row(ctx, baseID)
		} else {
			err = store.ErrNotFound
		}
	}
	if baseID == tr.id {
		if err := startSegment(ctx, h, relPath, baseID, hb, named.RolloutPath, bases); err != nil {
			return err
		}
		// A revert segment: the messages of the earlier files before the
		// cut are the thread's own rows, after those its first file
		// inherits from another thread, if any (the thread's row counts
		// them as inherited_messages, as a reference fork's does).
		tr.setHistory(m.Mode(), metaOrdinal, h.baseSize, h.inherited)
		// A revert does not take the preview back, as Codex shows it
		// (docs/CODEX.md, Previews): the thread keeps its earlier file's.
		// A row read from this very file (a rescan) keeps only what it
		// had from before the file: its own lines give the rest again.
		prior := h.prior
		switch {
		case prior.Preview == "":
		case prior.PreviewOffset < h.baseSize || prior.PreviewOffset == PreviewCutAway:
			tr.preview, tr.previewAt = prior.Preview, prior.PreviewOffset
		case !sameFile(prior.RolloutPath, relPath):
			tr.preview, tr.previewAt = prior.Preview, PreviewCutAway
		}
		for _, msg := range h.messages {
			msg.ThreadID = tr.id
			tr.pending = append(tr.pending, msg)
		}
		return nil
	}
	// The base's own file starts after its base: history_base's offset is
	// in the base's file.
	if errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("base %s: %w", baseID, ErrBaseMissing)
	}
	if err != nil {
		return err
	}
	size := base.BaseSize + hb.EndByteOffset
	switch {
	case named.RolloutPath != "":
		// A file of a reverted base, named by its segment's uuid.
		if hb.EndByteOffset < 0 || hb.EndByteOffset > named.Length {
			return fmt.Errorf("base %s: offset %d past the %d bytes of its file %s: %w", baseID, hb.EndByteOffset, named.Length, named.RolloutPath, ErrBrokenBase)
		}
		size = named.BaseSize + hb.EndByteOffset
	case base.BaseID == base.ID:
		// A reverted base spans several files: the ordinal names the one
		// the offset is in.
		if size, err = revertedBasePosition(ctx, base, hb, bases); err != nil {
			return err
		}
	}
	// The scan reads the base's row (above), its messages (here) and, for
	// a fork of its base, its row and ancestors as the parent's
	// (referenceAncestry), each once and in that order: a base re-indexed
	// meanwhile gives what a full lookup for each use could have. Its
	// ancestors are read here only for a parent that is not the base.
	parent := forkedFrom(m)
	var ancestors []string
	var inherited []store.UserMessage
	if parent != "" && parent != baseID {
		_, ancestors, inherited, err = bases.Base(ctx, baseID, size)
	} else {
		inherited, err = bases.MessagesBelow(ctx, baseID, size)
	}
	if err != nil {
		return err
	}
	dropped, err := bases.RolledBackBelow(ctx, baseID, size)
	if err != nil {
		return err
	}
	*h = history{baseID: baseID, baseSize: size, inherited: len(inherited), ancestors: ancestors}
	tr.setHistory(m.Mode(), metaOrdinal, size, len(inherited))
	// The history before the cut is the base's: so is the preview when
	// the line that gave it lies before the cut.
	if base.Preview != "" && base.PreviewOffset < size {
		tr.preview, tr.previewAt = base.Preview, base.PreviewOffset
	}
	tr.inherited = inherited
	// The base dropped these after the cut: the fork holds rows of its
	// own for them, as a live rollback in the base gave it.
	for _, msg := range dropped {
		msg.ThreadID = tr.id
		tr.pending = append(tr.pending, msg)
	}
	return nil
}

// isSegmentFile reports whether relPath is named as a revert segment
// (rollout.ParseRolloutName), not as a thread's first file.
func isSegmentFile(relPath string) bool {
	_, segmentID, _, err := rollout.ParseRolloutName(path.Base(relPath))
	return err == nil && segmentID != ""
}

// isFirstFile reports whether relPath is named as a thread's first file,
// not as a revert segment (rollout.ParseRolloutName).
func isFirstFile(relPath string) bool {
	_, segmentID, _, err := rollout.ParseRolloutName(path.Base(relPath))
	return err == nil && segmentID == ""
}

// IsArchivedPath reports whether relPath (slash separated, relative to a
// root) is under archived_sessions/.
func IsArchivedPath(relPath string) bool {
	return strings.HasPrefix(relPath, rollout.ArchivedSessionsDir+"/")
}

// threadFromMeta fills the thread columns that the first session_meta
// determines.
func threadFromMeta(m rollout.SessionMeta, id string, nameCreated time.Time) store.Thread {
	th := store.Thread{
		ID:              id,
		CreatedAt:       nameCreated.UnixMilli(),
		Cwd:             m.Cwd,
		Source:          m.Source,
		Originator:      m.Originator,
		CLIVersion:      m.CLIVersion,
		ModelProvider:   m.ModelProvider,
		ForkUserMessage: -1,
		ForkOffset:      -1,
	}
	if ms, ok := parseTimestamp(m.Timestamp); ok {
		th.CreatedAt = ms
	}
	th.ParentID = forkedFrom(m)
	if m.Git != nil {
		th.GitCommit = m.Git.CommitHash
		th.GitBranch = m.Git.Branch
		th.GitOrigin = m.Git.RepositoryURL
	}
	if m.ForkPoint != nil {
		th.ForkUserMessage = m.ForkPoint.UserMessage
		th.ForkOffset = m.ForkPoint.ParentOffset
	}
	return th
}

// forkedFrom returns the id of the thread m says it was forked from, as
// its row's parent_id holds it: "" for none.
func forkedFrom(m rollout.SessionMeta) string {
	if m.ForkedFromID == "" {
		return ""
	}
	if parent, err := rollout.ParseID(m.ForkedFromID); err == nil {
		return parent
	}
	return m.ForkedFromID
}

// normalizeID lower-cases a valid id and keeps anything else as is.
func normalizeID(id string) string {
	if norm, err := rollout.ParseID(id); err == nil {
		return norm
	}
	return id
}

func malformed(relPath string, l *rollout.Line, err error) Problem {
	return Problem{Path: relPath, Offset: l.Offset, Line: l.Number, Kind: ProblemMalformed, Detail: err.Error()}
}

// tornProblem reports the torn tail r ended with, if any; src holds the
// bytes r read, at the same offsets, to tell a whole record lacking only
// its newline (which is ended, not cut) from a fragment.
func tornProblem(relPath string, r *rollout.Reader, src io.ReaderAt) (Problem, bool) {
	offset, length := r.Torn()
	if length == 0 {
		return Problem{}, false
	}
	_, lines := r.End()
	detail := fmt.Sprintf("%d bytes after the last newline", length)
	if whole, err := rolloutfs.IsWholeRecord(src, offset, offset+length); err == nil && whole {
		// Not cut: the repair rule ends it with its newline, as Codex does.
		detail += ": a whole record lacking only its newline (an append or reindex --repair ends it)"
	}
	return Problem{
		Path:   relPath,
		Offset: offset,
		Line:   lines,
		Kind:   ProblemTorn,
		Detail: detail,
	}, true
}

// parseTimestamp reads a free-form envelope or meta timestamp as Unix
// milliseconds.
func parseTimestamp(s string) (int64, bool) {
	t, ok := rollout.ParseTimestamp(s)
	if !ok {
		return 0, false
	}
	return t.UnixMilli(), true
}

var timestampPrefix = []byte(`{"timestamp":"`)

// LineTimestamp returns the envelope timestamp of a well-formed line in
// Unix milliseconds: what dates a thread's last update in the index. Lines written by Codex and spool start with the
// timestamp, which is read without decoding the (possibly huge) payload.
func LineTimestamp(raw []byte) (int64, bool) {
	if rest, ok := bytes.CutPrefix(raw, timestampPrefix); ok {
		if end := bytes.IndexByte(rest, '"'); end >= 0 {
			if ms, ok := parseTimestamp(string(rest[:end])); ok {
				return ms, true
			}
		}
	}
	var env struct {
		Timestamp json.RawMessage `json:"timestamp"`
	}
	if err := json.Unmarshal(raw, &env); err != nil || len(env.Timestamp) == 0 {
		return 0, false
	}
	var s string
	if err := json.Unmarshal(env.Timestamp, &s); err != nil {
		return 0, false
	}
	return parseTimestamp(s)
}

// Tracker folds lines appended after a thread's indexed state into a
// store.Progress: counted user messages (ordinals continuing from the
// thread's count), rollbacks (which may remove indexed messages), name
// updates, the preview when the thread had none (rollout.Preview), line
// count and size.
type Tracker struct {
	id          string
	indexed     int // the thread's user-message count when tracking began
	keep        int // how many of those survive the rollbacks seen
	pending     []store.UserMessage
	name        *string
	lineCount   int64
	indexedSize int64
	updatedAt   int64 // the thread's UpdatedAt when tracking began
	newest      int64 // newest envelope timestamp observed, 0 for none

	base        int64               // bytes of history before the file: added to line offsets
	inherited   []store.UserMessage // the messages the thread inherits, when known (setHistory's caller)
	rolledBack  []store.RolledBack  // the pending messages rollbacks dropped
	drops       []store.Drop        // the rollbacks that dropped messages counted before the lines
	paginated   bool                // lines carry ordinals
	nextOrdinal int64               // paginated: the ordinal after the last one seen
	turn        rollout.OpenTurn    // the turn open at the end of what was observed
	preview     string              // the thread's preview, "" for none yet
	previewAt   int64               // the history position of the line that gave it
	previewSet  bool                // the lines observed gave the preview
}

// NewTracker starts tracking from the indexed state of t.
func NewTracker(t store.Thread) *Tracker {
	return &Tracker{
		id:          t.ID,
		indexed:     t.UserMessageCount,
		keep:        t.UserMessageCount,
		lineCount:   t.LineCount,
		indexedSize: t.IndexedSize,
		updatedAt:   max(t.UpdatedAt, t.NewestAt), // the newest read, unbounded
		base:        t.BaseSize,
		paginated:   t.HistoryMode == string(rollout.HistoryPaginated),
		nextOrdinal: t.NextOrdinal,
		turn:        rollout.OpenTurn{Offset: t.TurnOffset, ID: t.TurnID},
		preview:     t.Preview,
		previewAt:   t.PreviewOffset,
	}
}

// setHistory tells a tracker that began at a file's first line what its
// meta says: the history mode, and for a history that continues a base,
// how many bytes of it come before the file and how many of the base's
// user messages the thread inherits. Those are tracked as indexed
// messages (a rollback may drop them) and never become rows: they resolve
// through the base. The meta line itself must be the only line observed
// so far.
func (tr *Tracker) setHistory(mode rollout.HistoryMode, metaOrdinal int64, base int64, inherited int) {
	tr.paginated = mode == rollout.HistoryPaginated
	if tr.paginated {
		tr.nextOrdinal = metaOrdinal + 1
	}
	tr.base = base
	tr.indexed, tr.keep = inherited, inherited
}

// isTurnStart reports whether l starts a turn (a task_started event, or a
// turn_context naming its turn, that Codex can read) and the turn's id.
func isTurnStart(l *rollout.Line) (string, bool) {
	switch {
	case l.TooDeep(): // Codex skips it
		return "", false
	case l.Type == rollout.TypeEventMsg && l.PayloadType == "task_started":
	case l.Type == rollout.TypeTurnContext:
	default:
		return "", false
	}
	turnID, err := l.PayloadTurnID()
	if err != nil || (l.Type == rollout.TypeTurnContext && turnID == "") {
		return "", false // an older turn_context without turn_id names no turn
	}
	return turnID, true
}

// isTurnEnd reports whether l ends the open turn (and Codex can read it).
func isTurnEnd(l *rollout.Line) bool {
	return l.Type == rollout.TypeEventMsg && (l.PayloadType == "task_complete" || l.PayloadType == "turn_aborted") && !l.TooDeep()
}

// observeTurn follows turn boundaries (rollout.OpenTurn), at offsets in
// the history.
func (tr *Tracker) observeTurn(l *rollout.Line) {
	if id, ok := isTurnStart(l); ok {
		tr.turn.Start(tr.base+l.Offset, id)
	} else if isTurnEnd(l) {
		tr.turn.End()
	}
}

// Observe folds one line (read from or appended at or after t's indexed size).
func (tr *Tracker) Observe(l *rollout.Line) {
	if end := l.End(); end > tr.indexedSize {
		tr.indexedSize = end
		tr.lineCount = l.Number + 1
	}
	if l.Err != nil {
		return
	}
	if ms, ok := LineTimestamp(l.Raw); ok && ms > tr.newest {
		tr.newest = ms
	}
	if tr.paginated {
		if n, ok, err := rollout.LineOrdinal(l.Raw); err == nil && ok {
			tr.nextOrdinal = max(tr.nextOrdinal, n+1)
		}
	}
	tr.observeTurn(l)
	if tr.preview == "" {
		if text, ok := rollout.Preview(l); ok {
			tr.preview, tr.previewAt, tr.previewSet = Preview(text), tr.base+l.Offset, true
		}
	}
	c := rollout.Classify(l)
	switch c.Kind {
	case rollout.KindUserMessage:
		msg := store.UserMessage{
			ThreadID: tr.id,
			Ordinal:  tr.keep + len(tr.pending),
			Offset:   tr.base + l.Offset,
			Line:     l.Number,
			Preview:  Preview(c.Text),
			Text:     c.Text,
		}
		msg.CutOffset, msg.TurnID = tr.turn.UserMessage()
		tr.pending = append(tr.pending, msg)
	case rollout.KindRollback:
		tr.rollBack(max(c.RollbackTurns, 0), tr.base+l.Offset)
		tr.turn.End()
	case rollout.KindNameUpdate:
		// A fork holds its parent's rename events: they name the parent.
		if c.ThreadID != "" && normalizeID(c.ThreadID) != tr.id {
			break
		}
		name := c.Name
		tr.name = &name
	}
}

// rollBack drops the last n counted user messages, the pending ones
// first, for a rollback line at history position at, and remembers what
// it dropped: a pending message whole; one counted before the lines as a
// store.Drop, or whole when it is an inherited message the tracker knows.
func (tr *Tracker) rollBack(n int, at int64) {
	popped := min(n, len(tr.pending))
	for _, m := range tr.pending[len(tr.pending)-popped:] {
		tr.rolledBack = append(tr.rolledBack, store.RolledBack{UserMessage: m, At: at})
	}
	tr.pending = tr.pending[:len(tr.pending)-popped]
	keep := max(tr.keep-(n-popped), 0)
	if keep == tr.keep {
		return
	}
	if tr.keep <= len(tr.inherited) {
		for _, m := range tr.inherited[keep:tr.keep] {
			m.ThreadID = tr.id
			tr.rolledBack = append(tr.rolledBack, store.RolledBack{UserMessage: m, At: at})
		}
	} else {
		tr.drops = append(tr.drops, store.Drop{Keep: keep, At: at})
	}
	tr.keep = keep
}

// UserMessageCount returns the thread's counted user messages after the
// lines observed so far.
func (tr *Tracker) UserMessageCount() int { return tr.keep + len(tr.pending) }

// Progress returns the update to apply; FileSize and FileMtime are left
// for the caller to fill in. UpdatedAt is the newest envelope timestamp
// observed when it is newer than the thread's, else the thread's; the
// caller may override it.
func (tr *Tracker) Progress() store.Progress {
	p := store.Progress{
		ID:               tr.id,
		KeepUserMessages: tr.keep,
		NewMessages:      append([]store.UserMessage(nil), tr.pending...),
		Name:             tr.name,
		LineCount:        tr.lineCount,
		IndexedSize:      tr.indexedSize,
		UpdatedAt:        max(tr.updatedAt, tr.newest),
		NextOrdinal:      tr.nextOrdinal,
		TurnOffset:       tr.turn.Offset,
		TurnID:           tr.turn.ID,
		Drops:            slices.Clone(tr.drops),
		RolledBack:       slices.Clone(tr.rolledBack),
	}
	if tr.previewSet {
		preview := tr.preview
		p.Preview, p.PreviewOffset = &preview, tr.previewAt
	}
	return p
}

// CatchUp reads root/t.RolloutPath from t.IndexedSize on and returns the
// progress to apply, plus problems met (a torn tail is reported, not read).
// When the file is now shorter than t.IndexedSize it returns ErrShrunk, and
// when the byte before t.IndexedSize is no longer a newline, or the file
// has t.FileSize bytes but was modified since t.FileMtime (rewritten in
// place, as an editor saves it: nothing was appended), or a Sync found it
// emptied since (t.FileSize 0, t.IndexedSize not), it returns ErrChanged:
// the caller rescans the whole file. FileSize and FileMtime are filled
// from the file as it was before reading, and nothing after that size is
// read. A compressed rollout is
// never caught up (it cannot be read from an offset, and Codex rewrites it
// whole): it returns ErrChanged.
func CatchUp(ctx context.Context, fsys rolloutfs.FS, t store.Thread) (store.Progress, []Problem, error) {
	if rollout.IsCompressed(t.RolloutPath) {
		return store.Progress{}, nil, fmt.Errorf("catch up %s: compressed: %w", t.RolloutPath, ErrChanged)
	}
	fi, err := fsys.Stat(ctx, t.RolloutPath)
	if err != nil {
		return store.Progress{}, nil, fmt.Errorf("catch up %s: %w", t.RolloutPath, err)
	}
	f, err := fsys.Open(ctx, t.RolloutPath)
	if err != nil {
		return store.Progress{}, nil, fmt.Errorf("catch up %s: %w", t.RolloutPath, err)
	}
	defer f.Close()
	// Read no further than the size stated, which the progress records:
	// bytes appended since make the file look changed next time, and a
	// file size below the indexed size would read as emptied.
	size := min(fi.Size, f.Size())
	if size < t.IndexedSize {
		return store.Progress{}, nil, fmt.Errorf("catch up %s: size %d < indexed %d: %w",
			t.RolloutPath, size, t.IndexedSize, ErrShrunk)
	}
	if Emptied(t.FileSize, t.IndexedSize) && t.FileMtime != 0 {
		// A Sync found the file emptied since it was indexed (see
		// emptied): whatever it holds now was written anew. Only size 0
		// says so: an older catch-up could leave a file size below the
		// indexed size of a file only appended to.
		return store.Progress{}, nil, fmt.Errorf("catch up %s: emptied after %d bytes were indexed: %w", t.RolloutPath, t.IndexedSize, ErrChanged)
	}
	if fi.Size == t.FileSize && t.FileMtime != 0 && fi.ModTime.UnixNano() != t.FileMtime {
		return store.Progress{}, nil, fmt.Errorf("catch up %s: %d bytes as before, modified since: %w", t.RolloutPath, fi.Size, ErrChanged)
	}
	if t.IndexedSize > 0 {
		var last [1]byte
		if _, err := f.ReadAt(last[:], t.IndexedSize-1); err != nil {
			return store.Progress{}, nil, fmt.Errorf("catch up %s: %w", t.RolloutPath, err)
		}
		if last[0] != '\n' {
			return store.Progress{}, nil, fmt.Errorf("catch up %s at %d: %w", t.RolloutPath, t.IndexedSize, ErrChanged)
		}
		// A line's end by chance: the bytes before it tell.
		same, err := tailMatches(f, t.IndexedSize, t.TailSum)
		if err != nil {
			return store.Progress{}, nil, fmt.Errorf("catch up %s: %w", t.RolloutPath, err)
		}
		if !same {
			return store.Progress{}, nil, fmt.Errorf("catch up %s: the bytes before %d are not those indexed: %w", t.RolloutPath, t.IndexedSize, ErrChanged)
		}
	}

	var problems []Problem
	tr := NewTracker(t)
	r := rollout.NewReader(io.NewSectionReader(f, t.IndexedSize, size-t.IndexedSize), t.IndexedSize, t.LineCount)
	for n := 0; r.Next(); n++ {
		if n%ctxCheckLines == 0 {
			if err := ctx.Err(); err != nil {
				return store.Progress{}, nil, fmt.Errorf("catch up %s: %w", t.RolloutPath, err)
			}
		}
		l := r.Line()
		if l.Err != nil {
			problems = append(problems, malformed(t.RolloutPath, l, l.Err))
		}
		tr.Observe(l)
	}
	if err := r.Err(); err != nil {
		return store.Progress{}, nil, fmt.Errorf("catch up %s: %w", t.RolloutPath, err)
	}
	if p, ok := tornProblem(t.RolloutPath, r, f); ok {
		problems = append(problems, p)
	}
	p := tr.Progress()
	p.IndexedSize, p.LineCount = r.End()
	if p.TailSum, err = tailSumAt(f, p.IndexedSize); err != nil {
		return store.Progress{}, nil, fmt.Errorf("catch up %s: %w", t.RolloutPath, err)
	}
	p.FileSize = fi.Size
	p.FileMtime = fi.ModTime.UnixNano()
	return p, problems, nil
}

// readNames reads the names of session_index.jsonl in fsys; a missing file
// names nothing.
func readNames(ctx context.Context, fsys rolloutfs.FS) (map[string]rollout.NameEntry, error) {
	f, err := fsys.Open(ctx, rollout.SessionIndexFile)
	if errors.Is(err, fs.ErrNotExist) {
		return map[string]rollout.NameEntry{}, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	names, err := rollout.ReadNames(ctx, io.NewSectionReader(f, 0, f.Size()))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", rollout.SessionIndexFile, err)
	}
	return names, nil
}

package indexer

import (
	"context"
	"errors"
	"fmt"
	"path"

	"github.com/spoolhq/spool/rollout"
	"github.com/spoolhq/spool/store"
)

// SegmentBases is a Bases that also knows the other files of a thread that
// spans several (revert segments).
type SegmentBases interface {
	Bases
	// Segments returns thread id's files other than its row's, in order
	// (store.Store.Segments).
	Segments(ctx context.Context, id string) ([]store.Segment, error)
	// KeptMessages returns thread id's user messages below position end,
	// with their text (store.Store.KeptMessages).
	KeptMessages(ctx context.Context, id string, end int64) ([]store.UserMessage, error)
	// SegmentOwner returns the thread one of whose files is named by
	// segmentID, or an error wrapping store.ErrNotFound
	// (store.Store.SegmentOwner).
	SegmentOwner(ctx context.Context, segmentID string) (string, error)
}

// Segments implements SegmentBases.
func (b StoreBases) Segments(ctx context.Context, id string) ([]store.Segment, error) {
	return b.Store.Segments(ctx, id)
}

// namesFile reports whether hb, naming a thread's file by the thread's
// id, may be cut in the file whose first line has ordinal first and which
// holds length bytes: the cut's ordinal lies in it, or it is the file's
// very start (offset 0 with the file's first ordinal: where the file
// before it ends, the same position).
func namesFile(first, length int64, hb *rollout.HistoryBase) bool {
	return namesOrdinal(first, hb) && hb.EndByteOffset >= 0 && hb.EndByteOffset <= length
}

// namesOrdinal reports whether hb's ordinal may lie in the file whose
// first line has ordinal first (namesFile without the length).
func namesOrdinal(first int64, hb *rollout.HistoryBase) bool {
	return first < hb.EndOrdinalExclusive || first == hb.EndOrdinalExclusive && hb.EndByteOffset == 0
}

// revertedBasePosition returns the history position of hb, a history_base
// pointing into base, a thread in several files: the offset is in the
// newest of its files in the history whose first ordinal lies below
// hb.EndOrdinalExclusive.
func revertedBasePosition(ctx context.Context, base store.Thread, hb *rollout.HistoryBase, bases Bases) (int64, error) {
	if namesFile(base.NextOrdinal-base.LineCount, base.IndexedSize, hb) {
		return base.BaseSize + hb.EndByteOffset, nil
	}
	sb, ok := bases.(SegmentBases)
	if !ok {
		return 0, fmt.Errorf("files of base %s: %w", base.ID, ErrBaseMissing)
	}
	segs, err := sb.Segments(ctx, base.ID)
	if err != nil {
		return 0, err
	}
	for i := len(segs) - 1; i >= 0; i-- {
		if s := segs[i]; s.InChain() && namesFile(s.FirstOrdinal, s.Length, hb) {
			return s.BaseSize + hb.EndByteOffset, nil
		}
	}
	return 0, fmt.Errorf("base %s (ordinal %d, offset %d) is in no file of the thread: %w", base.ID, hb.EndOrdinalExclusive, hb.EndByteOffset, ErrBrokenBase)
}

// maxSegmentOwnerDepth bounds the walk down a chain of bases in
// segmentNamed.
const maxSegmentOwnerDepth = 64

// segmentNamed finds the file a history_base names by a segment's uuid:
// Codex names a reverted thread's first file by the thread's id and each
// later file (a revert segment) by its segment's uuid, the last part of
// its name. The file is looked for among the files of thread self (a
// revert cut inside a segment) and of the thread forkedFrom and its bases
// (a fork cut inside one), then, once forkedFrom may be missing
// (parentsOptional), among those of whichever thread owns a file of that
// name (a fork of a fork cut inside what its parent inherited, that parent
// gone). It returns the thread whose file it is and the file as a Segment
// (its bytes start at BaseSize of that thread's history); found is false
// when no indexed file has that uuid, or when only the owner's files could
// have it and forkedFrom may still be indexed: the owner lookup reads
// every file name, and in a sync's strict rounds a base not found is most
// often one not indexed yet (the fork waits for it).
func segmentNamed(ctx context.Context, bases Bases, segmentID, self, forkedFrom string) (owner string, file store.Segment, found bool, err error) {
	sb, ok := bases.(SegmentBases)
	if !ok {
		return "", store.Segment{}, false, nil
	}
	for _, start := range []string{self, forkedFrom} {
		if owner, file, found, err = segmentFrom(ctx, sb, segmentID, start); found || err != nil {
			return owner, file, found, err
		}
	}
	if !parentsOptional(bases, forkedFrom) {
		return "", store.Segment{}, false, nil
	}
	start, err := sb.SegmentOwner(ctx, segmentID)
	if errors.Is(err, store.ErrNotFound) {
		return "", store.Segment{}, false, nil
	}
	if err != nil {
		return "", store.Segment{}, false, err
	}
	return segmentFrom(ctx, sb, segmentID, start)
}

// segmentFrom looks for the file named segmentID among the files of
// thread start and down its chain of bases (segmentNamed).
func segmentFrom(ctx context.Context, sb SegmentBases, segmentID, start string) (owner string, file store.Segment, found bool, err error) {
	for id, depth := start, 0; id != "" && depth < maxSegmentOwnerDepth; depth++ {
		row, err := sb.Row(ctx, id)
		if errors.Is(err, store.ErrNotFound) {
			break
		}
		if err != nil {
			return "", store.Segment{}, false, err
		}
		files, err := sb.Segments(ctx, id)
		if err != nil {
			return "", store.Segment{}, false, err
		}
		files = append(files, store.Segment{ThreadID: id, RolloutPath: row.RolloutPath, BaseID: row.BaseID, BaseSize: row.BaseSize,
			Length: row.IndexedSize, FirstOrdinal: max(row.NextOrdinal-row.LineCount, 0)})
		for _, f := range files {
			if _, sid, _, err := rollout.ParseRolloutName(path.Base(f.RolloutPath)); err == nil && sid == segmentID {
				return id, f, true, nil
			}
		}
		// On down the chain: a reverted thread's own files were all
		// looked at; what its first file continues comes next.
		id = row.BaseID
		if id == row.ID {
			id = firstFileBase(files, row.ID)
		}
	}
	return "", store.Segment{}, false, nil
}

// firstFileBase returns the base of the first of a reverted thread's files
// (its chain links come oldest first): the thread that file continues, ""
// for none.
func firstFileBase(files []store.Segment, id string) string {
	for _, f := range files {
		if f.InChain() {
			if f.BaseID == id {
				return ""
			}
			return f.BaseID
		}
	}
	return ""
}

// SegmentOwner implements SegmentBases.
func (b StoreBases) SegmentOwner(ctx context.Context, segmentID string) (string, error) {
	return b.Store.SegmentOwner(ctx, segmentID)
}

// KeptMessages implements SegmentBases.
func (b StoreBases) KeptMessages(ctx context.Context, id string, end int64) ([]store.UserMessage, error) {
	return b.Store.KeptMessages(ctx, id, end)
}

// startBaseless reads what a revert segment without a history_base (the
// file relPath) keeps of thread tr.id: Codex's revert before a thread's
// first turn starts its history afresh there. The thread keeps its
// preview still, as Codex shows it, and its earlier files (the row's own
// file, unless relPath is that file, moved or compressed, and the
// segments recorded) stay the thread's, out of its history (h.segments).
func startBaseless(ctx context.Context, tr *Tracker, h *history, relPath string, bases Bases) error {
	prior, err := bases.Row(ctx, tr.id)
	if errors.Is(err, store.ErrNotFound) {
		if sb, ok := bases.(StoreBases); ok && sb.earlierFilesWait {
			return fmt.Errorf("earlier file of thread %s: %w", tr.id, ErrBaseMissing)
		}
		return nil
	}
	if err != nil {
		return err
	}
	own := sameFile(prior.RolloutPath, relPath)
	if prior.Preview != "" && (!own || prior.PreviewOffset == PreviewCutAway) {
		tr.preview, tr.previewAt = prior.Preview, PreviewCutAway
	}
	sb, ok := bases.(SegmentBases)
	if !ok {
		return nil
	}
	segs, err := sb.Segments(ctx, tr.id)
	if err != nil {
		return err
	}
	if !own {
		segs = append(segs, store.Segment{RolloutPath: prior.RolloutPath})
	}
	for _, s := range segs {
		if sameFile(s.RolloutPath, relPath) {
			continue
		}
		// As AddSegment records a file out of the history.
		h.segments = append(h.segments, store.Segment{RolloutPath: samePlace(s.RolloutPath, relPath), Length: -1})
	}
	return nil
}

// startSegment reads the history of a revert segment of thread id (the
// file relPath, whose meta's history_base hb names the thread itself or,
// named, one of its files by its segment's uuid): the thread's files
// indexed so far, the row's own file and its segments, are the
// candidates; the base is the file named, else the newest of them whose
// first ordinal lies below hb.EndOrdinalExclusive (Codex numbers a
// thread's history without gaps, so the ordinal names the file), cut at
// hb.EndByteOffset of that file. The candidates after it leave the history. The thread's own rows
// before the cut are its messages; when its first file is a reference
// fork, the messages that file inherits stay inherited (h.inherited). The
// thread's earlier file not being indexed yet is ErrBaseMissing.
func startSegment(ctx context.Context, h *history, relPath, id string, hb *rollout.HistoryBase, named string, bases Bases) error {
	sb, ok := bases.(SegmentBases)
	if !ok {
		return fmt.Errorf("earlier file of thread %s: %w", id, ErrBaseMissing)
	}
	prior, ancestors, _, err := bases.Base(ctx, id, 0)
	if errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("earlier file of thread %s: %w", id, ErrBaseMissing)
	}
	if err != nil {
		return err
	}
	segs, err := sb.Segments(ctx, id)
	if err != nil {
		return err
	}
	var candidates, gone []store.Segment
	for _, s := range segs {
		// Codex archives and unarchives every file of a thread together:
		// the earlier files are where the newest is.
		s.RolloutPath = samePlace(s.RolloutPath, relPath)
		if s.InChain() {
			candidates = append(candidates, s)
		} else {
			gone = append(gone, s)
		}
	}
	if !sameFile(prior.RolloutPath, relPath) {
		first := max(prior.NextOrdinal-prior.LineCount, 0) // a paginated file numbers its lines without gaps
		candidates = append(candidates, store.Segment{
			RolloutPath: prior.RolloutPath, BaseID: prior.BaseID, BaseSize: prior.BaseSize,
			Length: prior.IndexedSize, FirstOrdinal: first,
		})
	}
	at := -1
	for i := len(candidates) - 1; i >= 0; i-- {
		c := candidates[i]
		fits := hb.EndByteOffset <= c.Length && hb.EndByteOffset >= 0
		if named != "" && path.Base(c.RolloutPath) == path.Base(named) {
			if fits {
				at = i
			}
			break
		}
		if named == "" && namesOrdinal(c.FirstOrdinal, hb) {
			// The newest file whose first ordinal lies below the cut's
			// holds it: an older one holds that ordinal too, but in lines
			// a revert took out of the history. An offset past what is
			// indexed of it is a file not caught up yet, or broken.
			if fits {
				at = i
			}
			break
		}
	}
	if at < 0 && len(candidates) == 0 {
		// Every reverted thread's row records its first file.
		return fmt.Errorf("revert segment of thread %s: the index records none of the thread's earlier files (thread_segments rows deleted by hand?): reindex --repair reads them again: %w",
			id, ErrBrokenBase)
	}
	if at < 0 {
		return fmt.Errorf("revert segment of thread %s: its base (ordinal %d, offset %d) is in no indexed file of the thread: %w",
			id, hb.EndOrdinalExclusive, hb.EndByteOffset, ErrBrokenBase)
	}
	chain := append([]store.Segment(nil), candidates[:at+1]...)
	chain[at].Length = hb.EndByteOffset
	for _, c := range candidates[at+1:] {
		c.Length = -1
		gone = append(gone, c)
	}
	size := chain[at].BaseSize + hb.EndByteOffset
	kept, err := sb.KeptMessages(ctx, id, size)
	if err != nil {
		return err
	}
	*h = history{baseID: id, baseSize: size, ancestors: ancestors,
		segment: true, prior: prior, segments: append(chain, gone...), messages: kept}
	if first := chain[0].BaseID; first != "" && first != id {
		// The first file is a reference fork: the messages it inherits
		// (after its own rollbacks, as the thread's row counts them) lie
		// before it, below any cut, and resolve through its base still.
		h.inherited = prior.InheritedMessages
	}
	return nil
}

// sameFile reports whether rollout paths a and b name one file: the same
// name, whether an archive moved it or Codex compressed it since.
func sameFile(a, b string) bool {
	return rollout.PlainName(path.Base(a)) == rollout.PlainName(path.Base(b))
}

// samePlace returns where file rel of a thread is when the thread's file
// like is where it is: archived_sessions/<name> beside an archived one,
// sessions/<date>/<name> beside a live one.
func samePlace(rel, like string) string {
	name := path.Base(rel)
	if IsArchivedPath(like) {
		return rollout.ArchivedPath(name)
	}
	if !IsArchivedPath(rel) {
		return rel
	}
	if live, err := rollout.SessionPath(name); err == nil {
		return live
	}
	return rel
}

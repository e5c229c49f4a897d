package manager

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"path/filepath"

	"github.com/google/uuid"

	"github.com/spoolhq/spool/codexlock"
	"github.com/spoolhq/spool/indexer"
	"github.com/spoolhq/spool/rollout"
	"github.com/spoolhq/spool/rolloutfs"
	"github.com/spoolhq/spool/store"
)

// RevertOptions say where a revert cuts the thread: before the Codex turn
// BeforeTurnID, or before counted user message *BeforeUserMessage (the
// same cut as a fork's there). Exactly one must be set.
type RevertOptions struct {
	BeforeTurnID      string
	BeforeUserMessage *int
}

// Check fails with ErrInvalidArgument unless o names exactly one cut.
func (o RevertOptions) Check() error {
	if (o.BeforeTurnID != "") == (o.BeforeUserMessage != nil) { // neither, or both
		return fmt.Errorf("%w: give one of before_turn_id and before_user_message", ErrInvalidArgument)
	}
	return nil
}

// Revert cuts thread id back to before a turn, as Codex 0.169's
// thread/revert does: it writes a new segment file of the same thread,
// sessions/<today>/rollout-<now>-<id>_<segment uuid>.jsonl, holding only
// the thread's meta, whose history_base names the thread itself and the
// cut in the file that holds it. No file is changed or removed; the
// thread's history is its history before the cut, and what is appended
// next goes to the new file, numbered on from the cut. The thread's row
// names the new file (docs/SCHEMA.md, History chains).
//
// A thread Codex has loaded (its writer lock held) fails with ErrBusy; one
// whose reference forks continue its history past the cut with a
// *ReferencedError (ErrReferenced): delete or copy them first.
// Only a paginated thread can be reverted (a segment is a paginated
// history). An unknown turn fails with ErrNotFound, a user message out of
// range with an *OutOfRangeError, a cut inside the history the thread
// inherits from another thread's (a reference fork's base) with
// ErrInvalidArgument.
func (m *Manager) Revert(ctx context.Context, id string, o RevertOptions) (Thread, error) {
	id, err := parseID("revert", id)
	if err != nil {
		return Thread{}, err
	}
	if err := o.Check(); err != nil {
		return Thread{}, fmt.Errorf("revert %s: %w", id, err)
	}
	if err := m.begin(); err != nil {
		return Thread{}, err
	}
	defer m.ops.Done()
	var row store.Thread
	err = m.withThread(ctx, id, func(lt *liveThread) error {
		switch {
		case lt.row.Archived:
			return ErrArchived
		case lt.row.HistoryMode != string(rollout.HistoryPaginated):
			return fmt.Errorf("%w: only a paginated thread can be reverted (Codex writes revert segments only for those)", ErrInvalidArgument)
		}
		// Codex appends to the file it loaded: never change the thread
		// under a running Codex (ErrBusy), and read what it wrote first.
		lock, err := codexlock.TryLock(m.opts.Root, lt.id)
		if err != nil {
			return busy(err)
		}
		// The live thread appends to the old file: the next use loads the
		// new one from the index. It is dropped after the writer lock is
		// released, or the next caller would find the lock held.
		reverted := false
		defer func() {
			if reverted {
				m.invalidate(lt)
			}
		}()
		defer lock.Unlock()
		if err := m.settle(ctx, lt, false); err != nil {
			return err
		}
		row, err = m.revert(ctx, lt, o)
		reverted = err == nil
		return err
	})
	if err != nil {
		return Thread{}, threadErr(id, err, "revert")
	}
	m.publishThread(EventReverted, row)
	return threadOf(row), nil
}

func (m *Manager) revert(ctx context.Context, lt *liveThread, o RevertOptions) (store.Thread, error) {
	cur, src, err := m.openReadHeld(ctx, lt.id)
	if err != nil {
		return store.Thread{}, err
	}
	defer src.Close()
	var cut int64
	switch {
	case o.BeforeTurnID != "":
		span, err := m.turnSpan(ctx, cur, src, o.BeforeTurnID)
		if err != nil {
			return store.Thread{}, err
		}
		cut = span.Offset
	default:
		n := *o.BeforeUserMessage
		msg, err := m.store.UserMessage(ctx, cur.ID, n)
		if n < 0 || errors.Is(err, store.ErrNotFound) {
			return store.Thread{}, &OutOfRangeError{ID: cur.ID, Requested: n, Count: cur.UserMessageCount}
		}
		if err != nil {
			return store.Thread{}, err
		}
		cut = msg.Cut()
	}
	if err := m.refuseForksPast(ctx, cur.ID, cut); err != nil {
		return store.Thread{}, err
	}
	holderStart, holderFile, err := m.fileStartOf(ctx, cur, cut)
	if err != nil {
		return store.Thread{}, err
	}
	if rollout.IsCompressed(holderFile) {
		// Codex decompresses a file to its plain name before it writes
		// to its thread again, which would leave the segment's base at a
		// path that is gone: fork the thread to continue it.
		return store.Thread{}, fmt.Errorf("revert %s: the cut is in %s: %w", cur.ID, holderFile, ErrCompressed)
	}
	ordinal, err := ordinalAt(src, cut, cur)
	if err != nil {
		return store.Thread{}, err
	}
	payload, err := m.segmentPayload(ctx, cur)
	if err != nil {
		return store.Thread{}, err
	}
	now := m.now()
	segmentID, err := uuid.NewV7()
	if err != nil {
		return store.Thread{}, err
	}
	name, err := rollout.SegmentFileName(now, cur.ID, segmentID.String())
	if err != nil {
		return store.Thread{}, err
	}
	day, err := rollout.SessionPath(rollout.FileName(now, cur.ID))
	if err != nil {
		return store.Thread{}, err
	}
	rel := path.Join(path.Dir(day), name)
	line, err := rollout.SegmentMetaLine(rollout.FormatTimestamp(now), payload,
		rollout.HistoryBase{ThreadID: rollout.BaseRef(holderFile, cur.ID), EndByteOffset: cut - holderStart, EndOrdinalExclusive: ordinal})
	if err != nil {
		return store.Thread{}, err
	}

	indexing := m.indexLock(cur.ID)
	indexing.Lock()
	defer indexing.Unlock()
	// A reference fork past the cut made since the look above would be
	// left without its history: look again where none can be made of
	// the thread's files until the segment is indexed (writeFork takes
	// its base's indexing lock), as Delete does.
	if err := m.refuseForksPast(ctx, cur.ID, cut); err != nil {
		return store.Thread{}, err
	}
	// Durable under every policy: the index is about to name the segment
	// as the thread's file, and a power loss that forgot the segment but
	// not that would hide the thread (sync=none may lose appends, never a
	// thread).
	if _, err := m.fsys.Create(context.WithoutCancel(ctx), rel, []rolloutfs.Part{rolloutfs.Bytes(line)}, true); err != nil {
		return store.Thread{}, err
	}
	// From here on the caller's going away changes nothing: the segment is
	// indexed, or removed again.
	ctx = context.WithoutCancel(ctx)
	rec, _, err := indexer.ScanFileWith(ctx, m.fsys, rel, m.bases())
	if err == nil && (rec.Thread.BaseSize != cut || rec.Thread.BaseID != cur.ID) {
		err = fmt.Errorf("segment %s reads with its base at %d, want %d: %w", rel, rec.Thread.BaseSize, cut, ErrBrokenChain)
	}
	if err == nil {
		err = m.store.Replace(ctx, []store.Record{rec})
	}
	if err != nil {
		m.undoCreate(rel)
		return store.Thread{}, err
	}
	// A Codex sharing the root resumes the thread from the file its cache
	// names: the new segment, as after Codex's own revert (docs/CODEX.md).
	if err := m.codex.Relocated(ctx, cur.ID, filepath.Join(m.opts.Root, filepath.FromSlash(rel))); err != nil {
		m.log.Warn("the revert is not in Codex's thread cache", "id", cur.ID, "err", err)
	}
	return m.store.Get(ctx, cur.ID)
}

// refuseForksPast fails with a *ReferencedError when reference forks of
// thread id continue its history past position cut: after a revert there,
// those bytes are no longer the thread's history, and the forks could not
// be read through it. Forks cut at or before it are not in the way; a
// fork that was reverted since leaves id where its first file does.
func (m *Manager) refuseForksPast(ctx context.Context, id string, cut int64) error {
	forks, err := m.store.Continuers(ctx, id)
	if err != nil {
		return err
	}
	var past []string
	for _, f := range forks {
		if f.Cut > cut {
			past = append(past, f.ID)
		}
	}
	if len(past) > 0 {
		return fmt.Errorf("reference forks continue the history past the cut at %d: %w", cut, &ReferencedError{ID: id, Forks: past})
	}
	return nil
}

// fileStartOf returns the file of thread t that holds position cut, and
// the history position where it starts: t's own file, or one of its
// earlier files when t was reverted before. A cut in the history t
// inherits from another thread (a reference fork's base) is refused: a
// revert segment's base is a file of the thread itself.
func (m *Manager) fileStartOf(ctx context.Context, t store.Thread, cut int64) (start int64, file string, err error) {
	if cut >= t.BaseSize {
		return t.BaseSize, t.RolloutPath, nil
	}
	if t.BaseID != t.ID {
		return 0, "", fmt.Errorf("%w: the cut at %d lies in the history the thread continues from %s; fork that thread instead", ErrInvalidArgument, cut, t.BaseID)
	}
	segs, err := m.store.Segments(ctx, t.ID)
	if err != nil {
		return 0, "", err
	}
	for i := len(segs) - 1; i >= 0; i-- {
		if s := segs[i]; s.InChain() && s.BaseSize <= cut && cut <= s.BaseSize+s.Length {
			return s.BaseSize, s.RolloutPath, nil
		}
	}
	return 0, "", fmt.Errorf("%w: the cut at %d lies in no file of the thread (the history it continues from another thread, or a broken chain)", ErrInvalidArgument, cut)
}

// segmentPayload is the meta of a new segment of t: the meta of t's
// newest file (as Codex copies it), with its base instructions.
func (m *Manager) segmentPayload(ctx context.Context, t store.Thread) (rollout.MetaPayload, error) {
	f, err := indexer.OpenRollout(ctx, m.fsys, t.RolloutPath)
	if err != nil {
		return rollout.MetaPayload{}, err
	}
	defer f.Close()
	line, ok, err := rollout.FirstLine(f, 0, f.Size())
	if err != nil {
		return rollout.MetaPayload{}, err
	}
	if !ok {
		return rollout.MetaPayload{}, fmt.Errorf("%s has no first line: %w", t.RolloutPath, ErrBrokenChain)
	}
	raw := line.Raw
	meta, err := rollout.ParseSessionMeta(raw)
	if err != nil {
		return rollout.MetaPayload{}, err
	}
	return rollout.MetaPayload{SessionMeta: meta, BaseInstructions: rollout.BaseInstructions(raw)}, nil
}

// linkAt returns, as a Thread holding only that file, the earlier file of
// reverted thread t that holds position cut (its start included, and its
// end: a position at the end of one file is named by it, with the ordinal
// of the next), or the first file when cut lies before it: its BaseID and
// BaseSize are the file's own base, IndexedSize the bytes of it in the
// history and NextOrdinal the ordinal at their end.
func (m *Manager) linkAt(ctx context.Context, t store.Thread, cut int64) (store.Thread, error) {
	segs, err := m.store.Segments(ctx, t.ID)
	if err != nil {
		return store.Thread{}, err
	}
	var chain []store.Segment
	for _, s := range segs {
		if s.InChain() {
			chain = append(chain, s)
		}
	}
	at := -1
	for i := len(chain) - 1; i >= 0; i-- {
		// At the start of a later file the earlier one ends: that one
		// names the position, as Codex names it.
		if s := chain[i]; s.BaseSize <= cut && cut <= s.BaseSize+s.Length && (i == 0 || s.BaseSize < cut) {
			at = i
			break
		}
	}
	if at < 0 && len(chain) > 0 && cut < chain[0].BaseSize {
		at = 0 // before the first file: in the history it continues
	}
	if at < 0 {
		return store.Thread{}, fmt.Errorf("position %d of %s: no file of the thread holds it: %w", cut, t.ID, ErrBrokenChain)
	}
	s, next := chain[at], t.NextOrdinal-t.LineCount
	if at+1 < len(chain) {
		next = chain[at+1].FirstOrdinal
	}
	link := t
	link.RolloutPath, link.BaseID, link.BaseSize, link.IndexedSize, link.NextOrdinal = s.RolloutPath, s.BaseID, s.BaseSize, s.Length, next
	return link, nil
}

// otherPlaceOf returns where file rel of a thread is found when the thread
// is archived (archived_sessions/<name>) or live (sessions/<date>/<name>).
func otherPlaceOf(rel string, archived bool) (string, error) {
	name := path.Base(rel)
	if archived {
		return rollout.ArchivedPath(name), nil
	}
	return rollout.SessionPath(name)
}

// segmentMove returns where the earlier file a thread's segment row names
// at rel is (from) and where an archive (or unarchive) puts it (to; from
// when it is there already). The row may lag behind the file: Codex moves
// a thread's files one by one, and a read between two of its moves
// records only those done.
func (m *Manager) segmentMove(ctx context.Context, rel string, archive bool) (from, to string, err error) {
	if to, err = otherPlaceOf(rel, archive); err != nil {
		return "", "", err
	}
	if to != rel {
		return rel, to, nil
	}
	back, err := otherPlaceOf(rel, !archive)
	if err != nil || m.exists(ctx, rel) || !m.exists(ctx, back) {
		return rel, rel, err
	}
	return back, to, nil
}

// openSegment opens an earlier file of a thread, at rel or, when an archive
// or unarchive (spool's, or Codex's moving every file of the thread) has
// moved it, at its other place.
func (m *Manager) openSegment(ctx context.Context, rel string) (rolloutfs.ReadFile, error) {
	f, err := indexer.OpenRollout(ctx, m.fsys, rel)
	if !errors.Is(err, fs.ErrNotExist) {
		return f, err
	}
	other, perr := otherPlaceOf(rel, !indexer.IsArchivedPath(rel))
	if perr != nil {
		return nil, err
	}
	if f, oerr := indexer.OpenRollout(ctx, m.fsys, other); oerr == nil {
		return f, nil
	}
	return nil, err
}

// removeRollout removes rollout file rel of a thread with every copy a
// sync would take for the thread again: its other form (rollout.TwinName,
// a .jsonl.zst beside the plain file or the reverse) and, of each form,
// the file at its other place (archived or live, an interrupted archive's
// copy). rel goes last: should the removal stop half way, rel still holds
// the thread.
func (m *Manager) removeRollout(ctx context.Context, rel string) error {
	var paths []string
	for _, p := range []string{rollout.TwinName(rel), rel} {
		if other, err := otherPlaceOf(p, !indexer.IsArchivedPath(p)); err == nil {
			paths = append(paths, other)
		}
		paths = append(paths, p)
	}
	for _, p := range paths {
		if err := m.fsys.Remove(ctx, p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	return nil
}

// moveSegments moves the earlier files of thread id to the archive or
// back, and records it. On failure every file moved is moved back.
func (m *Manager) moveSegments(ctx context.Context, id string, archive bool) (undo func(), err error) {
	segs, err := m.store.Segments(ctx, id)
	if err != nil {
		return nil, err
	}
	moved := map[string]string{}
	moveBack := func() {
		for from, to := range moved {
			if err := m.fsys.Move(ctx, to, from); err != nil {
				m.log.Error("move a segment back after a failed archive", "id", id, "path", to, "err", err)
			}
		}
	}
	for _, s := range segs {
		from, to, err := m.segmentMove(ctx, s.RolloutPath, archive)
		if err != nil {
			moveBack()
			return nil, err
		}
		if to == from {
			continue
		}
		if err := m.fsys.Move(ctx, from, to); err != nil {
			// A move can fail after the rename took place (its
			// directory fsync): then the file is moved back too.
			if _, statErr := m.fsys.Stat(ctx, to); statErr == nil {
				moved[from] = to
			}
			moveBack()
			return nil, err
		}
		moved[from] = to
	}
	if len(moved) == 0 {
		return func() {}, nil
	}
	if err := m.store.MoveSegments(ctx, id, moved); err != nil {
		moveBack()
		return nil, err
	}
	back := make(map[string]string, len(moved))
	for from, to := range moved {
		back[to] = from
	}
	return func() {
		moveBack()
		if err := m.store.MoveSegments(ctx, id, back); err != nil {
			m.log.Error("record segments moved back after a failed archive", "id", id, "err", err)
		}
	}, nil
}

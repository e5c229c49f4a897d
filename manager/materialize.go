package manager

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/spoolhq/spool/codexlock"
	"github.com/spoolhq/spool/indexer"
	"github.com/spoolhq/spool/rollout"
	"github.com/spoolhq/spool/rolloutfs"
	"github.com/spoolhq/spool/store"
)

// forkMaterialized creates a copy fork of a paginated parent: a
// self-contained paginated file, the child's meta (ordinal 0), the metas
// of the parent and its fork ancestors (ancestorMetas; none for a parent
// without a base), then every line of
// the parent's history before the cut, its whole chain of bases included,
// each line's ordinal renumbered so the file counts 0, 1, 2, ... as Codex
// requires. Only ordinals change; every other byte of every line is kept. The child's rows are what a rebuild of its file gives
// (whose fork point decides which copied messages keep no search text).
func (m *Manager) forkMaterialized(ctx context.Context, parent store.Thread, src rolloutfs.ReadFile, cut forkCut, o ForkOptions) (store.Thread, error) {
	ancestry, err := m.ancestorMetas(ctx, parent, parent)
	if err != nil {
		return store.Thread{}, err
	}
	// The copy's lines are renumbered, so its copies end where its meta
	// says by line, not where the parent's cut does by byte.
	copied, err := rollout.CountLines(bytes.NewReader(ancestry), io.NewSectionReader(src, 0, cut.offset))
	if err != nil {
		return store.Thread{}, fmt.Errorf("read %s: %w", parent.ID, err)
	}
	nf, err := m.newFork(ctx, parent, src, cut, o, func(meta *rollout.SessionMeta) {
		meta.HistoryMode = rollout.HistoryPaginated
		meta.ForkPoint.CopiedLines = copied
	})
	if err != nil {
		return store.Thread{}, err
	}
	child := nf.child
	indexing := m.indexLock(child.ID) // no background sync of the file before its row exists
	indexing.Lock()
	defer indexing.Unlock()
	body := rollout.Renumbered(1, bytes.NewReader(ancestry), io.NewSectionReader(src, 0, cut.offset))
	parts := []rolloutfs.Part{rolloutfs.Bytes(nf.metaLine), rolloutfs.Stream(body)}
	// Its name line follows the copied lines, numbered on from them.
	named, err := m.nameLine(store.Thread{HistoryMode: string(rollout.HistoryPaginated), NextOrdinal: 1 + copied}, nf.name)
	if err != nil {
		return store.Thread{}, err
	}
	lines := 1 + copied
	if named != nil {
		parts = append(parts, rolloutfs.Bytes(named))
		lines++
	}
	if _, _, err := m.createRollout(ctx, child.RolloutPath, parts); err != nil {
		return store.Thread{}, err
	}
	ctx = context.WithoutCancel(ctx)
	rec, err := m.scanMaterialized(ctx, child.RolloutPath)
	switch {
	case err != nil:
	case rec.Thread.UserMessageCount != cut.kept:
		err = fmt.Errorf("copy of %s holds %d user messages, want %d", parent.ID, rec.Thread.UserMessageCount, cut.kept)
	case rec.Thread.LineCount != lines:
		err = fmt.Errorf("copy of %s holds %d lines, want %d", parent.ID, rec.Thread.LineCount, lines)
	case named != nil:
		err = m.recordName(ctx, child.ID, rec.Thread.Name, rec.Thread.UpdatedAt)
	}
	if err != nil {
		m.undoCreate(child.RolloutPath)
		return store.Thread{}, err
	}
	rec.Thread.ParentID, rec.Thread.ForkUserMessage, rec.Thread.ForkOffset = parent.ID, cut.before, cut.offset
	rec.Thread.CreatedAt, rec.Thread.UpdatedAt = child.CreatedAt, child.UpdatedAt
	rec.Ancestors, rec.Key = nf.lineage, nf.key.record()
	if err := m.store.Insert(ctx, rec); err != nil {
		m.undoCreate(child.RolloutPath)
		return store.Thread{}, err
	}
	m.announceName(rec.Thread, named)
	return rec.Thread, nil
}

// scanMaterialized indexes a self-contained file written by this package
// exactly as a rebuild would, so the two agree.
func (m *Manager) scanMaterialized(ctx context.Context, rel string) (store.Record, error) {
	rec, problems, err := indexer.ScanFile(ctx, m.fsys, rel)
	if err != nil {
		return store.Record{}, err
	}
	for _, p := range problems {
		m.log.Warn("copied line kept as it is", "path", rel, "problem", p.String())
	}
	return rec, nil
}

// materialize makes thread lt's history self-contained when it continues
// a base (a reference fork): its file is replaced, atomically, by its meta
// without history_base, its ancestors' metas, then its whole history but
// its own meta, renumbered (as forkMaterialized writes a copy). The thread keeps its id, path, name,
// parent and ancestry; its base_id and base_size are cleared, and its
// messages' positions are those in the new file. A failure leaves the old
// file and row, or, when only the index update failed, puts the old file
// back. The caller holds lt.mu; lt is invalidated (its appender held the
// old file).
//
// A reverted thread (several files) is rewritten into its newest file the
// same way, its meta being its first file's (which says when the thread
// was made and where it was forked; the later files' metas stay lines of
// the history); its earlier files are removed once the index no longer
// lists them.
func (m *Manager) materialize(ctx context.Context, lt *liveThread) error {
	if lt.row.BaseID == "" {
		return nil
	}
	if err := refuseCompressed(lt.row); err != nil {
		return err
	}
	lock, err := codexlock.TryLock(m.opts.Root, lt.id)
	if err != nil {
		return busy(err)
	}
	defer lock.Unlock()
	defer m.invalidate(lt)
	if err := m.settle(ctx, lt, false); err != nil {
		return err
	}
	row, hist, err := m.openReadHeld(ctx, lt.id)
	if err != nil {
		return err
	}
	defer hist.Close()
	old, err := m.fsys.Open(ctx, row.RolloutPath) // the bytes to put back
	if err != nil {
		return err
	}
	defer old.Close()
	// Where the thread's first file, whose meta leads, starts.
	first := row.BaseSize
	var segs []store.Segment
	if row.BaseID == row.ID {
		if segs, err = m.store.Segments(ctx, row.ID); err != nil {
			return err
		}
		if len(segs) == 0 || !segs[0].InChain() {
			return fmt.Errorf("first file of reverted thread %s: %w", row.ID, ErrBrokenChain)
		}
		first = segs[0].BaseSize
	}
	metaLine, err := firstLine(io.NewSectionReader(hist, first, row.HistorySize()-first))
	if err != nil {
		return err
	}
	meta, err := rollout.WithoutHistoryBase(metaLine)
	if err == nil {
		meta, err = rollout.Renumber(nil, meta, 0)
	}
	if err != nil {
		return fmt.Errorf("meta of %s: %w", lt.id, err)
	}
	var ancestry []byte
	if parent, err := m.store.Get(ctx, row.ParentID); err == nil {
		ancestry, err = m.ancestorMetas(ctx, parent, row)
		if err != nil {
			return err
		}
	} else if !errors.Is(err, store.ErrNotFound) {
		return err
	}
	ancestors, err := m.ancestorIDs(ctx, row.ID)
	if err != nil {
		return err
	}
	if meta, err = withCopiedLines(meta, metaLine, ancestry, hist, first, row, ancestors); err != nil {
		return fmt.Errorf("meta of %s: %w", lt.id, err)
	}
	rest := first + int64(len(metaLine))
	body := rollout.Renumbered(1, bytes.NewReader(ancestry),
		io.NewSectionReader(hist, 0, first),
		io.NewSectionReader(hist, rest, row.HistorySize()-rest))
	indexing := m.indexLock(lt.id)
	indexing.Lock()
	defer indexing.Unlock()
	// Readers resolve the row to the file under the place lock: none may
	// pair the old row with the new file between the replace and the
	// index commit.
	place := m.placeLock(lt.id)
	place.Lock()
	defer place.Unlock()
	// Durable under every policy: the parent's removal that follows a
	// purge is durable, and a power loss that kept it but forgot this
	// file's new content would lose history long on disk.
	parts := []rolloutfs.Part{rolloutfs.Bytes(meta), rolloutfs.Stream(body)}
	if _, err := m.fsys.Replace(ctx, row.RolloutPath, parts, true); err != nil {
		return err
	}
	if m.materializedFile != nil {
		m.materializedFile(lt.id)
	}
	// From here on the file is the new one: finish, or put the old back.
	ctx = context.WithoutCancel(ctx)
	err = m.indexMaterialized(ctx, row)
	if err != nil {
		restore := []rolloutfs.Part{rolloutfs.Range(old, 0, row.IndexedSize)}
		if _, rerr := m.fsys.Replace(ctx, row.RolloutPath, restore, true); rerr != nil {
			return errors.Join(err, fmt.Errorf("put the old file back: %w", rerr))
		}
		if row.Archived {
			m.keepArchiveTime(ctx, row)
		}
		return err
	}
	// The index no longer lists the earlier files: a file left behind
	// here is one Sync adds back as out of the history, and delete finds.
	for _, s := range segs {
		if err := m.removeRollout(ctx, s.RolloutPath); err != nil {
			m.log.Error("remove an earlier file of a thread made self-contained", "id", lt.id, "path", s.RolloutPath, "err", err)
		}
	}
	// A Codex sharing the root projects the thread again from its new
	// file: it would read on from where it left off in the old layout.
	if err := m.codex.Rewritten(context.WithoutCancel(ctx), lt.id); err != nil {
		m.log.Warn("the rewrite is not in Codex's projection", "id", lt.id, "err", err)
	}
	return nil
}

// withCopiedLines returns meta, the new meta line of a thread made
// self-contained from its first file's, metaLine at position first of
// history hist, with its fork point's CopiedLines set to the lines of the
// new file that are copies: the ancestors' metas laid out after it, then
// what the first file continues (a reference fork's inheritance), or else
// the lines that file was made with. A reference fork whose meta has no
// fork point (Codex writes none) is given row's, where the index cut it:
// its new file no longer tells by its base. Any other meta without a fork
// point (no fork) is returned as it is. The fork point states ancestors,
// the thread's ancestry in the index: the new file can copy the metas of
// its ancestors only up to the first deleted one, and a rebuild reads the
// rest there (rollout.ForkPoint.AncestryOf).
func withCopiedLines(meta, metaLine, ancestry []byte, hist io.ReaderAt, first int64, row store.Thread, ancestors []string) ([]byte, error) {
	old, err := rollout.ParseSessionMeta(metaLine)
	if err != nil {
		return nil, err
	}
	if old.ForkPoint == nil && old.HistoryBase != nil && row.ForkOffset >= 0 {
		old.ForkPoint = &rollout.ForkPoint{UserMessage: row.ForkUserMessage, ParentOffset: row.ForkOffset}
	}
	if old.ForkPoint == nil {
		return meta, nil
	}
	fp := *old.ForkPoint
	copied := []io.Reader{bytes.NewReader(ancestry)}
	switch own := first + int64(len(metaLine)); {
	case old.HistoryBase != nil:
		copied = append(copied, io.NewSectionReader(hist, 0, first))
	case fp.CopiedLines == 0:
		// A copy recorded by its cut: its copies are the parent's bytes
		// before it.
		copied = append(copied, io.NewSectionReader(hist, own, fp.ParentOffset))
	}
	n, err := rollout.CountLines(copied...)
	if err != nil {
		return nil, err
	}
	if old.HistoryBase == nil {
		n += fp.CopiedLines
	}
	fp.CopiedLines = n
	if len(ancestors) > 0 {
		fp.Ancestors = ancestors
	}
	return rollout.WithForkPoint(meta, fp)
}

// indexMaterialized replaces old's rows by those of its new self-contained
// file, keeping what the file does not say (name, lineage, times).
func (m *Manager) indexMaterialized(ctx context.Context, old store.Thread) error {
	if old.Archived {
		if err := m.keepArchiveTime(ctx, old); err != nil {
			return err
		}
	}
	rec, err := m.scanMaterialized(ctx, old.RolloutPath)
	if err != nil {
		return err
	}
	if rec.Thread.UserMessageCount != old.UserMessageCount {
		return fmt.Errorf("self-contained file of %s holds %d user messages, want %d", old.ID, rec.Thread.UserMessageCount, old.UserMessageCount)
	}
	if rec.Ancestors, err = m.ancestorIDs(ctx, old.ID); err != nil {
		return err
	}
	rec.Rewritten = true // every line moved: the keys' answers no longer hold
	th := &rec.Thread
	th.Name, th.ParentID, th.ForkUserMessage, th.ForkOffset = old.Name, old.ParentID, old.ForkUserMessage, old.ForkOffset
	th.CreatedAt, th.UpdatedAt, th.Archived, th.ArchivedAt = old.CreatedAt, old.UpdatedAt, old.Archived, old.ArchivedAt
	return m.store.Replace(ctx, []store.Record{rec})
}

// keepArchiveTime sets an archived file's mtime back to its archive time,
// which is how a rebuild learns it.
func (m *Manager) keepArchiveTime(ctx context.Context, row store.Thread) error {
	return m.fsys.SetModTime(ctx, row.RolloutPath, time.UnixMilli(row.ArchivedAt))
}

// ancestorMetas returns the meta lines (without history_base) of thread
// parent and of its fork ancestors, nearest first, down to the thread
// whose file starts the history of thread laidOut (the bottom of its chain
// of bases), whose meta that history itself starts with: laidOut is the
// thread whose history the new file lays out after them (parent, for a
// copy of it; the thread itself, when it is made self-contained, whose
// base need not be its parent). A copy holding them after its own meta
// starts, like a legacy copy, with its lineage: a rebuild reads its
// ancestry there (a paginated history holds its bases' metas in history
// order, where a rebuild does not look). The walk stops early at an
// ancestor that is not indexed. A parent that starts the history gives
// none.
func (m *Manager) ancestorMetas(ctx context.Context, parent, laidOut store.Thread) ([]byte, error) {
	root, err := m.holderOf(ctx, laidOut, 0)
	if err != nil {
		return nil, err
	}
	var metas []byte
	seen := map[string]bool{}
	for id := parent.ID; id != "" && id != root.ID && !seen[id] && len(seen) <= maxChain; {
		seen[id] = true
		f, err := m.openFirstFile(ctx, id)
		if errors.Is(err, ErrNotFound) || errors.Is(err, store.ErrNotFound) {
			break // a deleted ancestor ends what the file can say
		}
		if err != nil {
			return nil, err
		}
		line, ok, err := rollout.FirstLine(f, 0, f.Size())
		f.Close()
		if err == nil && !ok {
			err = errors.New("no meta line")
		}
		if err != nil {
			return nil, fmt.Errorf("ancestor %s: %w", id, err)
		}
		meta, err := rollout.ParseSessionMeta(line.Raw)
		if err != nil {
			return nil, fmt.Errorf("ancestor %s: %w", id, err)
		}
		unbased, err := rollout.WithoutHistoryBase(line.Raw)
		if err != nil {
			return nil, fmt.Errorf("ancestor %s: %w", id, err)
		}
		metas = append(metas, unbased...)
		id = meta.ForkedFromID
		if norm, err := rollout.ParseID(id); err == nil {
			id = norm
		}
	}
	return metas, nil
}

// openFirstFile opens thread id's first file: its row's, or a reverted
// thread's oldest file in its history, whose meta is the one the thread
// started with (SelfContainedMetas lays out the same one).
func (m *Manager) openFirstFile(ctx context.Context, id string) (rolloutfs.ReadFile, error) {
	place := m.placeLock(id)
	place.RLock()
	defer place.RUnlock()
	row, err := m.store.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	if row.BaseID == row.ID {
		segs, err := m.store.Segments(ctx, id)
		if err != nil {
			return nil, err
		}
		if i := slices.IndexFunc(segs, store.Segment.InChain); i >= 0 {
			row.RolloutPath = segs[i].RolloutPath
		}
	}
	return m.openRowFile(ctx, row)
}

// firstLine returns the first line of r, newline included; a first line
// without its newline (torn, or none) is an error.
func firstLine(r io.Reader) ([]byte, error) {
	line, err := bufio.NewReader(r).ReadBytes('\n')
	if err != nil {
		return nil, fmt.Errorf("no complete first line: %w", err)
	}
	return line, nil
}

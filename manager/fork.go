package manager

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/spoolhq/spool/indexer"
	"github.com/spoolhq/spool/rollout"
	"github.com/spoolhq/spool/rolloutfs"
	"github.com/spoolhq/spool/store"
)

// Fork creates a new thread from thread id, holding the parent's history up
// to the fork point (o; the whole history without one). A fork of a
// paginated thread is by default a reference fork, as Codex 0.169 makes
// them: one session_meta line (a new id, forked_from_id = id, and a
// history_base naming the parent's file and the cut), whatever the
// parent's size, its inherited messages resolved through the parent's
// index rows. A copy fork (a legacy parent, or o.Mode ForkCopy) is that
// meta line followed by the parent's bytes before the cut, copied by range
// and never parsed, with the parent's index rows shifted.
//
// A fork point outside [0, count) fails with an *OutOfRangeError that says
// how many user messages the parent has. Forking a thread that is being
// appended to copies a consistent prefix: bytes below an indexed offset
// never change.
func (m *Manager) Fork(ctx context.Context, id string, o ForkOptions) (Thread, error) {
	id, err := parseID("fork", id)
	if err != nil {
		return Thread{}, err
	}
	if err := checkName(o.Name); err != nil {
		return Thread{}, threadErr(id, err, "fork")
	}
	if err := CheckCwd(o.Cwd); err != nil {
		return Thread{}, threadErr(id, err, "fork")
	}
	if _, err := ForkSource(o.Source, ""); err != nil {
		return Thread{}, threadErr(id, err, "fork")
	}
	if err := CheckIdempotencyKey(o.IdempotencyKey); err != nil {
		return Thread{}, threadErr(id, err, "fork")
	}
	if err := m.begin(); err != nil {
		return Thread{}, err
	}
	defer m.ops.Done()
	if o.Points() > 1 {
		return Thread{}, errTurnRequest(id)
	}
	var key *creationKey
	if o.IdempotencyKey != "" {
		hash, err := m.forkRequestHash(ctx, id, o)
		if err != nil {
			return Thread{}, threadErr(id, err, "fork")
		}
		key = newCreationKey(id, o.IdempotencyKey, hash, m.now())
	}
	row, replayed, err := m.createOnce(ctx, "fork "+id, key, func() (store.Thread, error) {
		return m.forkNamed(ctx, id, o, key)
	})
	if err != nil || replayed {
		return threadResult(row, err)
	}
	return threadResult(m.announce(EventForked)(row, nil))
}

// forkRequestHash returns the request hash of fork o of thread id
// (ForkOptions.RequestHashFor the parent's history mode); a parent the
// index does not hold, as given.
func (m *Manager) forkRequestHash(ctx context.Context, id string, o ForkOptions) ([]byte, error) {
	parent, err := m.store.Get(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return o.RequestHash(), nil
	}
	if err != nil {
		return nil, err
	}
	return o.RequestHashFor(parent.HistoryMode), nil
}

// forkNamed is Fork once its request is checked: the fork, named (its
// name line ends its file), its row recorded with key when not nil.
func (m *Manager) forkNamed(ctx context.Context, id string, o ForkOptions, key *creationKey) (store.Thread, error) {
	o.key = key
	if o.BeforeTurnID != "" {
		// The turn may be one another process just wrote.
		if err := m.freshen(ctx, id); err != nil {
			return store.Thread{}, threadErr(id, err, "fork before turn %q", o.BeforeTurnID)
		}
		msg, err := m.store.UserMessageOfTurn(ctx, id, o.BeforeTurnID)
		switch {
		case err == nil:
			o.BeforeUserMessage, o.BeforeTurnID = &msg.Ordinal, ""
		case !errors.Is(err, store.ErrNotFound):
			return store.Thread{}, fmt.Errorf("fork: %w", err) // it names the turn and the thread
		}
		// Not found: a turn without a counted user message of its own,
		// which fork reads the history for (beforeTurn), or none.
	}
	for attempt := 0; ; attempt++ {
		row, err := m.fork(ctx, id, o)
		// A rollback can change the parent's user messages between reading
		// them and copying their rows: read them again.
		if errors.Is(err, store.ErrParentChanged) && attempt < 3 {
			continue
		}
		if errors.Is(err, store.ErrParentChanged) {
			// Read again each time, and each time the parent's message
			// rows disagree with its row: no rollback in flight does
			// that, a hand edit of the index does.
			err = fmt.Errorf("%w: %w", ErrIndexDrift, err)
		}
		if err != nil {
			return store.Thread{}, threadErr(id, err, "fork")
		}
		return row, nil
	}
}

func (m *Manager) fork(ctx context.Context, parentID string, o ForkOptions) (store.Thread, error) {
	parent, src, err := m.openRead(ctx, parentID)
	if err != nil {
		return store.Thread{}, err
	}
	defer src.Close()
	// The mode is refused before the point is looked at, as every backend
	// does: the request is wrong whatever the thread holds.
	reference, err := forkMode(parent, o.Mode)
	if err != nil {
		return store.Thread{}, err
	}
	before, cut, prefixLines := -1, parent.HistorySize(), parent.LineCount
	kept := parent.UserMessageCount
	switch {
	case o.BeforeTurnID != "":
		at, err := m.beforeTurn(ctx, parent, src, o.BeforeTurnID)
		if err != nil {
			return store.Thread{}, err
		}
		before, cut, kept, prefixLines = at.before, at.offset, at.kept, at.lines
	case o.LastTurnID != "":
		through, err := m.throughTurn(ctx, parent, src, o.LastTurnID)
		if err != nil {
			return store.Thread{}, err
		}
		before, cut, kept, prefixLines = through.before, through.offset, through.kept, through.lines
	case o.BeforeUserMessage != nil:
		n := *o.BeforeUserMessage
		if n < 0 || n >= parent.UserMessageCount {
			return store.Thread{}, &OutOfRangeError{ID: parentID, Requested: n, Count: parent.UserMessageCount}
		}
		msg, err := m.store.UserMessage(ctx, parentID, n)
		if errors.Is(err, store.ErrNotFound) {
			return store.Thread{}, &OutOfRangeError{ID: parentID, Requested: n, Count: parent.UserMessageCount}
		}
		if err != nil {
			return store.Thread{}, err
		}
		// Cut before the turn's start lines when the message opens its
		// turn: Codex then shows the fork with exactly the turns of its
		// own fork at that point, without an empty interrupted one.
		cut = msg.Cut()
		before, kept = n, n
		if prefixLines, err = linesBefore(src, cut, msg); err != nil {
			return store.Thread{}, err
		}
	}
	var holder store.Thread // the thread whose own file holds the cut
	if reference {
		if holder, err = m.holderOf(ctx, parent, cut); err != nil {
			return store.Thread{}, err
		}
		// A fork of a compressed rollout copies its decompressed prefix
		// (docs/CODEX.md): Codex decompresses the file to its plain name
		// before it writes to its thread again, and a reference into it
		// would point at a path that is gone.
		if rollout.IsCompressed(holder.RolloutPath) {
			if o.Mode == ForkReference {
				return store.Thread{}, fmt.Errorf("fork %s: the cut is in %s: %w (fork by copy)", parent.ID, holder.RolloutPath, ErrCompressed)
			}
			reference = false
		}
		// Codex cannot load an archived thread ("session … is archived"),
		// and shows a reference into one with no turns: a fork cut in an
		// archived file copies its history (docs/CODEX.md).
		if holder.Archived {
			if o.Mode == ForkReference {
				return store.Thread{}, fmt.Errorf("fork %s: the cut is in %s: %w: Codex cannot load it, and would show the fork without its turns (fork by copy, or unarchive %s first)", parent.ID, holder.RolloutPath, ErrArchived, holder.ID)
			}
			reference = false
		}
	}
	cutAt := forkCut{before: before, offset: cut, kept: kept, lines: prefixLines}
	switch {
	case reference:
		return m.forkReference(ctx, parent, holder, src, cutAt, o)
	case parent.HistoryMode == string(rollout.HistoryPaginated):
		return m.forkMaterialized(ctx, parent, src, cutAt, o)
	}
	return m.forkCopy(ctx, parent, src, cutAt, o)
}

// forkCopy creates a copy fork of parent: a new meta line followed by the
// parent's history before the cut, copied by range in the kernel and never
// parsed. The child's index rows are the parent's before the cut, shifted
// by the meta line.
func (m *Manager) forkCopy(ctx context.Context, parent store.Thread, src rolloutfs.ReadFile, cut forkCut, o ForkOptions) (store.Thread, error) {
	nf, err := m.newFork(ctx, parent, src, cut, o, func(*rollout.SessionMeta) {})
	if err != nil {
		return store.Thread{}, err
	}
	turn, err := m.turnAt(ctx, parent, src, cut)
	if err != nil {
		return store.Thread{}, err
	}
	shift := int64(len(nf.metaLine))
	if turn.Offset > 0 {
		turn.Offset += shift
	}
	return m.writeFork(ctx, nf, []rolloutfs.Part{rolloutfs.Bytes(nf.metaLine), rolloutfs.Range(src, 0, cut.offset)}, func(child *store.Thread) store.ForkSource {
		child.LineCount = cut.lines + 1
		child.TurnOffset, child.TurnID = turn.Offset, turn.ID
		if child.Preview != "" {
			child.PreviewOffset += shift
		}
		return store.ForkSource{ParentID: parent.ID, Messages: cut.kept, OffsetShift: shift, LineShift: 1}
	})
}

// turnAt returns the turn open at cut in parent's history src (the
// rollout.OpenTurn a reading of the history up to the cut ends with), as
// a copy cut there carries it on for the messages appended to it: the
// parent's own at its end; else what the lines from the last user message
// kept before the cut make of the turn open after that message, which its
// turn id tells (rollout.AfterUserMessage): a turn's tail and the next
// one's start lines, not the history before.
func (m *Manager) turnAt(ctx context.Context, parent store.Thread, src rolloutfs.ReadFile, cut forkCut) (rollout.OpenTurn, error) {
	if cut.offset == parent.HistorySize() {
		return rollout.OpenTurn{Offset: parent.TurnOffset, ID: parent.TurnID}, nil
	}
	from, turn := int64(0), rollout.OpenTurn{}
	if cut.kept > 0 {
		msg, err := m.store.UserMessage(ctx, parent.ID, cut.kept-1)
		if err != nil {
			return rollout.OpenTurn{}, err
		}
		from, turn = msg.Offset, rollout.AfterUserMessage(msg.TurnID)
	}
	if from >= cut.offset {
		return turn, nil
	}
	tr := indexer.NewTracker(store.Thread{TurnOffset: turn.Offset, TurnID: turn.ID})
	r := rollout.NewReader(io.NewSectionReader(src, from, cut.offset-from), from, 0)
	for first := true; r.Next(); first = false {
		if !first || cut.kept == 0 { // the message's own line is folded in already
			tr.Observe(r.Line())
		}
	}
	if err := r.Err(); err != nil {
		return rollout.OpenTurn{}, fmt.Errorf("read the turn at the cut: %w", err)
	}
	p := tr.Progress()
	return rollout.OpenTurn{Offset: p.TurnOffset, ID: p.TurnID}, nil
}

// partsEnd returns the bytes parts end with, as withName takes them: the
// last part's, up to indexer.TailBytes of a file's range (at least its
// last line when the range starts at a line), nil when they cannot be
// told (a stream, a read that fails: the row's tail is then unknown).
func partsEnd(parts []rolloutfs.Part) []byte {
	if len(parts) == 0 {
		return nil
	}
	last := parts[len(parts)-1]
	switch {
	case last.File != nil:
		if last.Offset != 0 && last.Length < indexer.TailBytes {
			return nil // its last line may begin before it
		}
		buf := make([]byte, min(last.Length, indexer.TailBytes))
		if _, err := last.File.ReadAt(buf, last.Offset+last.Length-int64(len(buf))); err != nil {
			return nil
		}
		return buf
	case last.Reader != nil:
		return nil
	}
	return last.Data
}

// newFork is what every fork starts from: the child's id, row, meta line
// (adjusted by meta before it is encoded), path and lineage.
type newFork struct {
	child    store.Thread
	metaLine []byte
	lineage  []string
	base     string       // a reference fork's base: its delete waits for the fork's row
	key      *creationKey // recorded with the row, when not nil
	name     []byte       // the line naming the child, not numbered; nil for none
}

func (m *Manager) newFork(ctx context.Context, parent store.Thread, src rolloutfs.ReadFile, cut forkCut, o ForkOptions, adjust func(*rollout.SessionMeta)) (newFork, error) {
	baseInstructions, err := readBaseInstructions(src)
	if err != nil {
		return newFork{}, err
	}
	uid, err := uuid.NewV7()
	if err != nil {
		return newFork{}, err
	}
	childID := uid.String()
	now := m.now()
	cwd := parent.Cwd
	if o.Cwd != "" {
		cwd = o.Cwd
	}
	source, err := ForkSource(o.Source, parent.Source)
	if err != nil {
		return newFork{}, err
	}
	lineage, err := m.lineageOf(ctx, parent.ID)
	if err != nil {
		return newFork{}, err
	}
	meta := rollout.SessionMeta{
		ID:            childID,
		ForkedFromID:  parent.ID,
		Timestamp:     rollout.FormatTimestamp(now),
		Cwd:           cwd,
		Originator:    parent.Originator,
		CLIVersion:    parent.CLIVersion,
		Source:        source,
		ModelProvider: parent.ModelProvider,
		Git:           gitOf(parent),
		ForkPoint:     &rollout.ForkPoint{UserMessage: cut.before, ParentOffset: cut.offset, Ancestors: lineage},
		CreationKey:   o.key.stated(),
	}
	adjust(&meta)
	metaLine, err := rollout.NewSessionMetaLine(meta.Timestamp, rollout.MetaPayload{SessionMeta: meta, BaseInstructions: baseInstructions})
	if err == nil && meta.HistoryMode == rollout.HistoryPaginated {
		metaLine, err = rollout.WithOrdinal(metaLine, meta.FirstOrdinal())
	}
	if err != nil {
		return newFork{}, err
	}
	rel, err := rollout.SessionPath(rollout.FileName(now, childID))
	if err != nil {
		return newFork{}, err
	}
	var name []byte
	if named := ForkName(o.Name, parent.Name); named != "" {
		if name, err = RenameLine(childID, named, now); err != nil {
			return newFork{}, err
		}
	}
	return newFork{child: forkRow(parent, childID, rel, cwd, source, now, cut), metaLine: metaLine, lineage: lineage, key: o.key, name: name}, nil
}

// writeFork creates the fork's file from parts, and its name line when it
// has one, and its index rows; finish completes the child's row (but its
// sizes) and says which of the parent's rows it inherits. From the file's
// creation on the caller's going away changes nothing: the file is
// followed by its index row, or removed again.
func (m *Manager) writeFork(ctx context.Context, nf newFork, parts []rolloutfs.Part, finish func(child *store.Thread) store.ForkSource) (store.Thread, error) {
	child := nf.child
	src := finish(&child)
	named, err := m.nameLine(child, nf.name)
	if err != nil {
		return store.Thread{}, err
	}
	// No background sync of the file before its row exists, and no delete
	// of the base between its check for forks and its removal (Delete).
	defer m.lockIndexes(child.ID, nf.base)()
	size, mtime, err := m.createRollout(ctx, child.RolloutPath, append(parts, rolloutfs.Bytes(named)))
	if err != nil {
		return store.Thread{}, err
	}
	if child, err = m.withName(ctx, child, partsEnd(parts), named, size, mtime); err == nil {
		rec := store.Record{Thread: child, Ancestors: nf.lineage, SpawnParentID: rollout.SpawnParent(child.Source), Key: nf.key.record()}
		err = m.store.InsertFork(context.WithoutCancel(ctx), rec, src)
	}
	if err != nil {
		m.undoCreate(child.RolloutPath)
		return store.Thread{}, err
	}
	m.announceName(child, named)
	return child, nil
}

// linesBefore returns how many lines of src lie before cut, from msg's line
// number: the lines between the cut and msg (a turn's start lines) are
// counted, not parsed.
func linesBefore(src rolloutfs.ReadFile, cut int64, msg store.UserMessage) (int64, error) {
	if cut >= msg.Offset {
		return msg.Line, nil
	}
	between := make([]byte, msg.Offset-cut)
	if _, err := src.ReadAt(between, cut); err != nil {
		return 0, fmt.Errorf("read lines before user message %d: %w", msg.Ordinal, err)
	}
	return msg.Line - int64(bytes.Count(between, []byte{'\n'})), nil
}

// forkMode reports whether a fork of parent in the requested mode is a
// reference fork (ForkByReference).
func forkMode(parent store.Thread, mode string) (reference bool, err error) {
	return ForkByReference(parent.HistoryMode, mode)
}

// ForkByReference is the rule every backend forks by: whether a fork of a
// parent in history mode parentMode, asked for in mode ("", ForkReference
// or ForkCopy), is a reference fork. A paginated parent forks by
// reference unless ForkCopy is asked for (then its chain is materialised),
// a legacy one by copy: Codex 0.169 cannot read a reference to a legacy
// rollout, so ForkReference of one fails with ErrInvalidArgument.
func ForkByReference(parentMode, mode string) (bool, error) {
	paginated := parentMode == string(rollout.HistoryPaginated)
	switch mode {
	case "":
		return paginated, nil
	case ForkReference:
		if !paginated {
			return false, fmt.Errorf("%w: a reference fork needs a paginated parent (Codex cannot read a reference to a legacy rollout); fork by copy", ErrInvalidArgument)
		}
		return true, nil
	case ForkCopy:
		return false, nil
	}
	return false, fmt.Errorf("%w: fork mode %q (want %q or %q)", ErrInvalidArgument, mode, ForkReference, ForkCopy)
}

// forkCut is where a fork is cut: before user message before (-1 for a
// whole fork), at offset in the parent's history, keeping kept messages
// and lines lines.
type forkCut struct {
	before int
	offset int64
	kept   int
	lines  int64
}

// forkReference creates a reference fork of parent, as Codex 0.169 writes
// one: a file holding only the child's meta, whose history_base points at
// the cut in the file of holder, the thread that holds it (holderOf).
// Nothing of the parent is copied: O(1) in the parent's size. The child's index rows are the
// parent's user messages before the cut, at the same positions (the two
// histories share them).
func (m *Manager) forkReference(ctx context.Context, parent, holder store.Thread, src rolloutfs.ReadFile, cut forkCut, o ForkOptions) (store.Thread, error) {
	ordinal, err := ordinalAt(src, cut.offset, holder)
	if err != nil {
		return store.Thread{}, err
	}
	nf, err := m.newFork(ctx, parent, src, cut, o, func(meta *rollout.SessionMeta) {
		meta.HistoryMode = rollout.HistoryPaginated
		meta.HistoryBase = &rollout.HistoryBase{
			ThreadID:            rollout.BaseRef(holder.RolloutPath, holder.ID),
			EndOrdinalExclusive: ordinal,
			EndByteOffset:       cut.offset - holder.BaseSize,
		}
		meta.ForkedFromOrdinalExclusive = &ordinal
	})
	if err != nil {
		return store.Thread{}, err
	}
	nf.base = holder.ID
	return m.writeFork(ctx, nf, []rolloutfs.Part{rolloutfs.Bytes(nf.metaLine)}, func(child *store.Thread) store.ForkSource {
		child.BaseID, child.BaseSize = holder.ID, cut.offset
		// The meta line carries ordinal, the cut's (SessionMeta.FirstOrdinal).
		child.HistoryMode, child.NextOrdinal, child.LineCount = string(rollout.HistoryPaginated), ordinal+1, 1
		return store.ForkSource{ParentID: parent.ID, Messages: cut.kept}
	})
}

// holderOf returns the thread whose own file holds position cut of t's
// history: t itself, or one of its bases.
func (m *Manager) holderOf(ctx context.Context, t store.Thread, cut int64) (store.Thread, error) {
	// At the start of a thread's own file the cut is named as the end of
	// the base (for a reverted thread's newest file, of its earlier file,
	// as Codex names a revert's own base): a fork cut there takes none of
	// the thread's own bytes and does not hold on to it, as in every
	// backend (pgstore's holderOf).
	for depth := 0; t.BaseID != "" && cut <= t.BaseSize; depth++ {
		if depth > maxChain {
			return store.Thread{}, fmt.Errorf("history of %s: %w", t.ID, ErrBrokenChain)
		}
		if t.BaseID == t.ID {
			// A reverted thread: the cut is in one of its earlier files.
			link, err := m.linkAt(ctx, t, cut)
			if err != nil || link.BaseSize <= cut {
				return link, err
			}
			t = link
			continue
		}
		base, err := m.store.Get(ctx, t.BaseID)
		if errors.Is(err, store.ErrNotFound) {
			return store.Thread{}, fmt.Errorf("base %s of %s: %w", t.BaseID, t.ID, ErrBrokenChain)
		}
		if err != nil {
			return store.Thread{}, err
		}
		t = base
	}
	return t, nil
}

// ordinalAt returns the ordinal of the line at position cut of src, a
// history whose position cut lies in holder's own file: the ordinal the
// line there carries, and at the end of holder's indexed file the ordinal
// Codex numbers its next line there with (codexNextOrdinal).
func ordinalAt(src rolloutfs.ReadFile, cut int64, holder store.Thread) (int64, error) {
	if cut == holder.HistorySize() {
		return codexNextOrdinal(src, holder)
	}
	line, ok, err := rollout.FirstLine(src, cut, src.Size())
	if err != nil {
		return 0, err
	}
	if !ok {
		return 0, fmt.Errorf("no line at the cut %d: %w", cut, ErrBrokenChain)
	}
	n, ok, err := rollout.LineOrdinal(line.Raw)
	if err != nil || !ok {
		return 0, fmt.Errorf("the line at the cut %d has no ordinal: %w", cut, ErrBrokenChain)
	}
	return n, nil
}

// codexNextOrdinal returns the ordinal Codex 0.169 numbers the next line
// of holder with, as the end of holder's history: one past the last line
// it reads. That is holder's next ordinal, unless the file ends in
// thread_name_updated events (spool's renames, or a name given at a start
// or fork), a line type Codex 0.169 does not know: it skips them and
// numbers its next line with the ordinal of the first of them, and its own
// whole fork there names that ordinal as end_ordinal_exclusive (with the
// file's end as end_byte_offset). A reference fork of that end that named
// the next ordinal instead included in Codex's view the first lines Codex
// later wrote to the parent, a turn of the parent run after the fork among
// them (docs/CODEX.md, "Forks, reverts, segments"). It reads the end of
// holder's own file (rollout.NextOrdinalAtEnd).
func codexNextOrdinal(src rolloutfs.ReadFile, holder store.Thread) (int64, error) {
	end := holder.HistorySize()
	return rollout.NextOrdinalAtEnd(holder.IndexedSize, holder.NextOrdinal, func(lo int64) ([]byte, error) {
		buf := make([]byte, holder.IndexedSize-lo)
		if n, err := src.ReadAt(buf, end-int64(len(buf))); err != nil && !(errors.Is(err, io.EOF) && n == len(buf)) {
			return nil, err
		}
		return buf, nil
	})
}

// lineageOf returns a new child's ancestors: parent, then the parent's.
func (m *Manager) lineageOf(ctx context.Context, parentID string) ([]string, error) {
	ancestors, err := m.ancestorIDs(ctx, parentID)
	if err != nil {
		return nil, err
	}
	return append([]string{parentID}, ancestors...), nil
}

// ancestorIDs returns the ids of thread id's ancestors in the index,
// nearest first.
func (m *Manager) ancestorIDs(ctx context.Context, id string) ([]string, error) {
	rels, err := m.store.Ancestors(ctx, id)
	if err != nil {
		return nil, err
	}
	ids := make([]string, len(rels))
	for i, r := range rels {
		ids[i] = r.ID
	}
	return ids, nil
}

// forkRow is the index row of a new fork of parent, before its sizes.
func forkRow(parent store.Thread, childID, rel, cwd, source string, now time.Time, cut forkCut) store.Thread {
	child := store.Thread{
		ID:               childID,
		RolloutPath:      rel,
		CreatedAt:        now.UnixMilli(),
		UpdatedAt:        now.UnixMilli(),
		Cwd:              cwd,
		Source:           source,
		Originator:       parent.Originator,
		CLIVersion:       parent.CLIVersion,
		ModelProvider:    parent.ModelProvider,
		GitCommit:        parent.GitCommit,
		GitBranch:        parent.GitBranch,
		GitOrigin:        parent.GitOrigin,
		ParentID:         parent.ID,
		ForkUserMessage:  cut.before,
		ForkOffset:       cut.offset,
		UserMessageCount: cut.kept,
	}
	// The history before the cut is the parent's: so is the preview when
	// the line that gave it lies before the cut (a copy fork shifts it).
	if parent.Preview != "" && parent.PreviewOffset < cut.offset {
		child.Preview, child.PreviewOffset = parent.Preview, parent.PreviewOffset
	}
	return child
}

// ForkSource returns the source a fork's meta names: source, the fork's
// own (the client that forks, as Codex's thread/fork takes its own
// process's), else its parent's (parentSource), but the default for a
// sub-agent's fork, which is no spawn (rollout.ForkSource). A fork's own
// source names a client: a JSON object (a spawn) is an error wrapping
// ErrInvalidArgument. Every backend gives its forks their source with it.
func ForkSource(source, parentSource string) (string, error) {
	switch {
	case source == "":
		return rollout.ForkSource(parentSource), nil
	case strings.HasPrefix(strings.TrimSpace(source), "{"):
		return "", fmt.Errorf("%w: a fork's source names a client (cli, vscode, exec, mcp, ...), not a spawn", ErrInvalidArgument)
	}
	return source, nil
}

// ForkName returns the name a fork gets: name, the fork's own, or without
// one its parent's (parentName) as the parent is named at the fork, as
// Codex's thread/fork names a fork. A parent's name that a rename could not
// give (white space alone, or too long: written by another program) is not
// carried over. Every backend names its forks with it.
func ForkName(name, parentName string) string {
	if name != "" || checkName(parentName) != nil {
		return name
	}
	return parentName
}

// readBaseInstructions reads the base_instructions text of the session_meta
// line that starts f (only that line is read).
func readBaseInstructions(f rolloutfs.ReadFile) (string, error) {
	line, ok, err := rollout.FirstLine(f, 0, f.Size())
	if err != nil {
		return "", err
	}
	if !ok {
		return "", errors.New("rollout has no first line")
	}
	return rollout.BaseInstructions(line.Raw), nil
}

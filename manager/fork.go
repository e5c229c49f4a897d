package manager

import (
	"context"
	"errors"
	"io"

	"github.com/google/uuid"

	"github.com/spoolhq/spool/rollout"
	"github.com/spoolhq/spool/rolloutfs"
	"github.com/spoolhq/spool/store"
)

// Fork creates a new thread from thread id. Its rollout is a new
// session_meta line (a new id, forked_from_id = id, and the fork point)
// followed by the parent's bytes [0, cut), copied by range in the kernel and
// never parsed: cut is the offset of the parent's user message
// *o.BeforeUserMessage, or the parent's indexed size for a whole copy. The
// index rows of the copied user messages are the parent's, shifted.
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
	if err := m.begin(); err != nil {
		return Thread{}, err
	}
	defer m.ops.Done()
	for attempt := 0; ; attempt++ {
		row, err := m.fork(ctx, id, o)
		// A rollback can change the parent's user messages between reading
		// them and copying their rows: read them again.
		if errors.Is(err, store.ErrParentChanged) && attempt < 3 {
			continue
		}
		if err != nil {
			return Thread{}, threadErr(id, err, "fork")
		}
		return m.nameNew(ctx, row, o.Name)
	}
}

func (m *Manager) fork(ctx context.Context, parentID string, o ForkOptions) (Thread, error) {
	parent, src, err := m.openRead(ctx, parentID)
	if err != nil {
		return Thread{}, err
	}
	defer src.Close()
	before, cut, prefixLines := -1, parent.IndexedSize, parent.LineCount
	kept := parent.UserMessageCount
	if o.BeforeUserMessage != nil {
		n := *o.BeforeUserMessage
		if n < 0 || n >= parent.UserMessageCount {
			return Thread{}, &OutOfRangeError{ID: parentID, Requested: n, Count: parent.UserMessageCount}
		}
		msg, err := m.store.UserMessage(ctx, parentID, n)
		if errors.Is(err, store.ErrNotFound) {
			return Thread{}, &OutOfRangeError{ID: parentID, Requested: n, Count: parent.UserMessageCount}
		}
		if err != nil {
			return Thread{}, err
		}
		before, cut, prefixLines, kept = n, msg.Offset, msg.Line, n
	}

	baseInstructions, err := readBaseInstructions(src)
	if err != nil {
		return Thread{}, err
	}

	uid, err := uuid.NewV7()
	if err != nil {
		return Thread{}, err
	}
	childID := uid.String()
	now := m.now()
	cwd := parent.Cwd
	if o.Cwd != "" {
		cwd = o.Cwd
	}
	meta := rollout.SessionMeta{
		ID:            childID,
		ForkedFromID:  parentID,
		Timestamp:     rollout.FormatTimestamp(now),
		Cwd:           cwd,
		Originator:    parent.Originator,
		CLIVersion:    parent.CLIVersion,
		Source:        parent.Source,
		ModelProvider: parent.ModelProvider,
		Git:           gitOf(parent),
		ForkPoint:     &rollout.ForkPoint{UserMessage: before, ParentOffset: cut},
	}
	metaLine, err := rollout.NewSessionMetaLine(meta.Timestamp, rollout.MetaPayload{SessionMeta: meta, BaseInstructions: baseInstructions})
	if err != nil {
		return Thread{}, err
	}
	rel, err := rollout.SessionPath(rollout.FileName(now, childID))
	if err != nil {
		return Thread{}, err
	}
	ancestors, err := m.store.Ancestors(ctx, parentID)
	if err != nil {
		return Thread{}, err
	}
	lineage := make([]string, 0, len(ancestors)+1)
	lineage = append(lineage, parentID)
	for _, a := range ancestors {
		lineage = append(lineage, a.ID)
	}
	// From here on the caller's going away changes nothing: the file is
	// followed by its index row, or removed again.
	indexing := m.indexLock(childID) // no background sync of the file before its row exists
	indexing.Lock()
	defer indexing.Unlock()
	size, mtime, err := m.createRollout(ctx, rel, []rolloutfs.Part{rolloutfs.Bytes(metaLine), rolloutfs.Range(src, 0, cut)})
	if err != nil {
		return Thread{}, err
	}
	child := Thread{
		ID:               childID,
		RolloutPath:      rel,
		CreatedAt:        now.UnixMilli(),
		UpdatedAt:        now.UnixMilli(),
		Cwd:              cwd,
		Source:           parent.Source,
		Originator:       parent.Originator,
		CLIVersion:       parent.CLIVersion,
		ModelProvider:    parent.ModelProvider,
		GitCommit:        parent.GitCommit,
		GitBranch:        parent.GitBranch,
		GitOrigin:        parent.GitOrigin,
		ParentID:         parentID,
		ForkUserMessage:  before,
		ForkOffset:       cut,
		LineCount:        prefixLines + 1,
		UserMessageCount: kept,
		IndexedSize:      size,
		FileSize:         size,
		FileMtime:        mtime,
	}
	if kept > 0 {
		child.Preview = parent.Preview
	}
	err = m.store.InsertFork(context.WithoutCancel(ctx), store.Record{Thread: child, Ancestors: lineage}, store.ForkSource{
		ParentID:    parentID,
		Messages:    kept,
		OffsetShift: int64(len(metaLine)),
		LineShift:   1,
	})
	if err != nil {
		m.undoCreate(rel)
		return Thread{}, err
	}
	return child, nil
}

// readBaseInstructions reads the base_instructions text of the session_meta
// line that starts f (only that line is read).
func readBaseInstructions(f rolloutfs.ReadFile) (string, error) {
	r := rollout.NewReader(io.NewSectionReader(f, 0, f.Size()), 0, 0)
	if !r.Next() {
		if err := r.Err(); err != nil {
			return "", err
		}
		return "", errors.New("rollout has no first line")
	}
	return rollout.BaseInstructions(r.Line().Raw), nil
}

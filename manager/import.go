package manager

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/spoolhq/spool/rollout"
	"github.com/spoolhq/spool/rolloutfs"
	"github.com/spoolhq/spool/store"
)

// Importer creates threads from self-contained rollouts another backend
// exported (package transfer).
type Importer interface {
	// Import creates the thread a self-contained rollout holds: its
	// session_meta first, no history_base. The thread keeps the meta's id
	// and the lineage the rollout states: its parent is the meta's
	// forked_from_id, and its ancestors are those of the parent here or,
	// when the parent is not here (shown as deleted, as a deleted parent
	// is), the chain of metas that follows its own. An id already present
	// fails with an error wrapping ErrExists.
	// The rollout is read as it is written, in pieces: a backend holds
	// no more of it at once than a chunk and its longest line. A rollout
	// that fails to read, or does not end in a newline, creates nothing.
	Import(ctx context.Context, rollout io.Reader) (Thread, error)
}

var _ Importer = (*Manager)(nil)

// Import writes a self-contained rollout as a new thread's file, where its
// meta's id and timestamp place it, and indexes it as a rebuild would. The
// rollout is copied into the file as it is read.
func (m *Manager) Import(ctx context.Context, content io.Reader) (Thread, error) {
	br := bufio.NewReader(content)
	first, err := rollout.ReadLine(nil, br)
	if err != nil && err != io.EOF {
		return Thread{}, fmt.Errorf("import: %w", err)
	}
	meta, err := importedMeta(first)
	if err != nil {
		return Thread{}, err
	}
	created, ok := rollout.ParseTimestamp(meta.Timestamp)
	if !ok {
		return Thread{}, fmt.Errorf("import: %w: meta timestamp %q", ErrInvalidArgument, meta.Timestamp)
	}
	rel, err := rollout.SessionPath(rollout.FileName(created, meta.ID))
	if err != nil {
		return Thread{}, fmt.Errorf("import %s: %w", meta.ID, err)
	}
	if err := m.begin(); err != nil {
		return Thread{}, err
	}
	defer m.ops.Done()
	if _, err := m.store.Get(ctx, meta.ID); err == nil {
		return Thread{}, fmt.Errorf("import %s: %w", meta.ID, store.ErrExists)
	}
	indexing := m.indexLock(meta.ID) // no background sync of the file before its row exists
	indexing.Lock()
	defer indexing.Unlock()
	rest := &lineEnd{r: br}
	if _, _, err := m.createRollout(ctx, rel, []rolloutfs.Part{rolloutfs.Bytes(first), rolloutfs.Stream(rest)}); err != nil {
		if errors.Is(err, errNoFinalNewline) {
			err = fmt.Errorf("%w: %w", ErrInvalidArgument, err)
		}
		return Thread{}, fmt.Errorf("import %s: %w", meta.ID, err)
	}
	ctx = context.WithoutCancel(ctx)
	// Indexed as a rebuild reads the file: a parent that stayed behind
	// stays its parent, deleted here, and the metas the file holds after
	// its own say the rest of its ancestry.
	rec, err := m.scanMaterialized(ctx, rel)
	if err == nil {
		err = m.store.Insert(ctx, rec)
	}
	if err != nil {
		m.undoCreate(rel)
		return Thread{}, fmt.Errorf("import %s: %w", meta.ID, err)
	}
	return threadOf(rec.Thread), nil
}

// importedMeta returns the meta of a self-contained rollout, its first line.
func importedMeta(first []byte) (rollout.SessionMeta, error) {
	if len(first) == 0 || first[len(first)-1] != '\n' {
		return rollout.SessionMeta{}, fmt.Errorf("import: %w: not complete lines", ErrInvalidArgument)
	}
	meta, err := rollout.ParseSessionMeta(first)
	if err != nil {
		return rollout.SessionMeta{}, fmt.Errorf("import: %w: first line: %w", ErrInvalidArgument, err)
	}
	if meta.HistoryBase != nil {
		return rollout.SessionMeta{}, fmt.Errorf("import %s: %w: its history continues %s (export makes it self-contained)", meta.ID, ErrInvalidArgument, meta.HistoryBase.ThreadID)
	}
	return meta, nil
}

var errNoFinalNewline = errors.New("the last line has no newline")

// lineEnd is r, failing at its end unless its last byte is a newline (or
// it was empty): a torn rollout is refused before its file is kept.
type lineEnd struct {
	r    io.Reader
	last byte
	read bool
}

func (l *lineEnd) Read(p []byte) (int, error) {
	n, err := l.r.Read(p)
	if n > 0 {
		l.last, l.read = p[n-1], true
	}
	if err == io.EOF && l.read && l.last != '\n' {
		err = errNoFinalNewline
	}
	return n, err
}

package pgbackend

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/spoolhq/spool/manager"
	"github.com/spoolhq/spool/pgstore"
	"github.com/spoolhq/spool/rollout"
	"github.com/spoolhq/spool/store"
)

var _ manager.Importer = (*Backend)(nil)

// Import commits a self-contained rollout (package transfer) as a thread
// with the meta's id and the lineage the rollout states
// (manager.Importer). The rollout is written in chunks as it is read, in
// one transaction (pgstore.Store.Create): a failed import leaves nothing.
func (b *Backend) Import(ctx context.Context, content io.Reader) (manager.Thread, error) {
	br := bufio.NewReader(importSource{content})
	first, err := rollout.ReadLine(nil, br)
	if err != nil && err != io.EOF {
		return manager.Thread{}, fmt.Errorf("import: %w", err)
	}
	if len(first) == 0 || first[len(first)-1] != '\n' {
		return manager.Thread{}, fmt.Errorf("import: %w: not complete lines", manager.ErrInvalidArgument)
	}
	meta, err := rollout.ParseSessionMeta(first)
	if err != nil {
		return manager.Thread{}, fmt.Errorf("import: %w: first line: %w", manager.ErrInvalidArgument, err)
	}
	if meta.HistoryBase != nil {
		return manager.Thread{}, fmt.Errorf("import %s: %w: its history continues %s", meta.ID, manager.ErrInvalidArgument, meta.HistoryBase.ThreadID)
	}
	ancestors, more, err := leadingAncestry(meta, br)
	if err != nil {
		return manager.Thread{}, fmt.Errorf("import %s: %w", meta.ID, err)
	}
	ancestors = meta.ForkPoint.AncestryOf(ancestors) // as a local index reads it

	br = bufio.NewReader(more)
	nt := pgstore.NewThread{ID: meta.ID, Cwd: meta.Cwd, Facts: factsOf(meta), Lines: first, More: br,
		SpawnParentID: meta.SpawnParentID, HistoryMode: string(meta.Mode())}
	if made, ok := rollout.ParseTimestamp(meta.Timestamp); ok {
		nt.CreatedAt = made // and updated when its newest line says, as a local index reads it
	}
	if meta.Mode() == rollout.HistoryPaginated {
		// Numbered 0, 1, 2, ... as Export lays a paginated history out,
		// whatever the lines carry: the next append goes on from there.
		if nt.Lines, nt.More, err = renumbered(first, br); err != nil {
			return manager.Thread{}, fmt.Errorf("import %s: %w: %w", meta.ID, manager.ErrInvalidArgument, err)
		}
	}
	if len(ancestors) > 0 {
		// A parent that stayed behind stays its parent, deleted here, as a
		// local index rebuilt from the file reads it; so does the fork
		// point, and the copies before it.
		nt.ParentID, nt.Ancestors = ancestors[0], ancestors
		if fp := meta.ForkPoint; fp != nil && fp.ParentOffset >= 0 {
			nt.ForkPoint = &pgstore.ForkPoint{UserMessage: fp.UserMessage, Offset: fp.ParentOffset}
			nt.CopiedBefore, nt.CopiedLines = int64(len(first))+fp.ParentOffset, fp.CopiedLines
		}
	}
	t, err := b.store.Create(ctx, nt)
	if errors.Is(err, pgstore.ErrExists) {
		return manager.Thread{}, fmt.Errorf("import %s: %w", meta.ID, store.ErrExists)
	}
	if errors.Is(err, pgstore.ErrInvalidLines) {
		return manager.Thread{}, fmt.Errorf("import: %w: %w", manager.ErrInvalidArgument, err)
	}
	if err != nil {
		return manager.Thread{}, b.mapErr(err)
	}
	return threadOf(t), nil
}

// leadingAncestry reads the session_meta lines after own's that continue
// its chain of ancestors (rollout.Ancestry: a copy fork holds its
// ancestors' metas after its own) and returns the chain, nearest first,
// and a reader of what br still yields, those lines included.
func leadingAncestry(own rollout.SessionMeta, br *bufio.Reader) ([]string, io.Reader, error) {
	var chain rollout.Ancestry
	chain.Start(own)
	var read []byte
	for !chain.Ended() {
		start := len(read)
		var err error
		read, err = rollout.ReadLine(read, br)
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, nil, err
		}
		m, err := rollout.ParseSessionMeta(read[start:])
		if err != nil {
			chain.End()
			break
		}
		chain.Observe(m)
	}
	return chain.IDs(), io.MultiReader(bytes.NewReader(read), br), nil
}

// renumbered returns first and the lines rest yields, numbered 0, 1, 2,
// ... (rollout.Renumbered): the first line, and a reader of the others
// that renumbers them as it is read. A line that is not a JSON object is
// kept without an ordinal, as everywhere (rollout.Renumbered); a torn last
// line fails the reader with pgstore.ErrInvalidLines; rest's own errors,
// marked as the source's (importSource), pass as they are.
func renumbered(first []byte, rest io.Reader) (line []byte, more io.Reader, err error) {
	src := io.MultiReader(bytes.NewReader(first), rest)
	numbered := bufio.NewReader(linesReader{rollout.Renumbered(0, src)})
	if line, err = rollout.ReadLine(nil, numbered); err != nil {
		return nil, nil, err
	}
	return line, numbered, nil
}

// linesReader is r, the lines of an import's source, whose errors but the
// source's own (*sourceError) wrap pgstore.ErrInvalidLines.
type linesReader struct{ r io.Reader }

func (l linesReader) Read(p []byte) (int, error) {
	n, err := l.r.Read(p)
	var source *sourceError
	if err != nil && err != io.EOF && !errors.As(err, &source) {
		err = fmt.Errorf("%w: %w", pgstore.ErrInvalidLines, err)
	}
	return n, err
}

// importSource is an import's rollout, whose read errors are marked as
// the source's: a source cut short (io.ErrUnexpectedEOF) is not the
// storage going away, which mapErr would answer as a retry-later.
type importSource struct{ r io.Reader }

func (s importSource) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	if err != nil && err != io.EOF {
		err = &sourceError{err}
	}
	return n, err
}

// sourceError is a read error of an import's source.
type sourceError struct{ err error }

func (e *sourceError) Error() string { return "read the rollout: " + e.err.Error() }
func (e *sourceError) Unwrap() error { return e.err }

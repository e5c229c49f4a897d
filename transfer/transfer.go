// Package transfer moves threads between backends (manager.Backend): the
// local root and the distributed database, either way. A thread leaves as
// a self-contained rollout (Export) and arrives through the target's
// manager.Importer; Copy brings its fork ancestors first, so its lineage
// holds on the other side.
package transfer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"

	"github.com/spoolhq/spool/manager"
	"github.com/spoolhq/spool/rollout"
)

// Export returns a reader of thread id's history as a self-contained
// rollout: for a thread whose history continues a base (a reference fork),
// its own session_meta (without history_base) moves first, before the
// base's lines; a paginated history is renumbered 0, 1, 2, ... as Codex
// requires (rollout.Renumbered: a line that is not a JSON object is copied
// as it is, without an ordinal). Every other byte is kept. The history is streamed from one read
// of it as the reader is read, a line at a time where it is renumbered, so
// what Export holds does not grow with the thread; close the reader when
// done. Where the meta moves to is found before the history is opened: a
// revert or a purge's rewrite of the thread in between makes Export start
// again (at most three times in all).
func Export(ctx context.Context, b manager.Backend, id string) (io.ReadCloser, error) {
	for attempt := 1; ; attempt++ {
		rc, moved, err := exportOnce(ctx, b, id)
		if !moved || attempt == maxExportAttempts {
			return rc, err
		}
	}
}

// maxExportAttempts bounds how often Export starts again after the
// thread's history changed its layout under it.
const maxExportAttempts = 3

// exportOnce is one attempt of Export. The positions it finds (where the
// thread's own meta stands) hold only in the layout it found them in: a
// revert or a purge that changed the layout before the history was opened
// makes it fail with moved set, the reader closed.
func exportOnce(ctx context.Context, b manager.Backend, id string) (rc io.ReadCloser, moved bool, err error) {
	t, err := b.Get(ctx, id)
	if err != nil {
		return nil, false, err
	}
	rc, err = exportIn(ctx, b, t)
	now, gerr := b.Get(ctx, t.ID)
	if gerr == nil && manager.LayoutOf(now) != manager.LayoutOf(t) {
		if rc != nil {
			rc.Close()
		}
		return nil, true, fmt.Errorf("export %s: %w", t.ID, errLayoutChanged)
	}
	return rc, false, err
}

// errLayoutChanged reports a thread reverted or rewritten while Export
// read it, more often than it starts again.
var errLayoutChanged = errors.New("the thread was reverted or rewritten while it was read")

// exportIn opens the export of thread t, as t says its history is laid out.
func exportIn(ctx context.Context, b manager.Backend, t manager.Thread) (io.ReadCloser, error) {
	// A thread whose history starts in another thread's bytes (a
	// reference fork, or a reverted one whose first file is) moves its own
	// meta first; one that starts with its own meta is self-contained as
	// it is, a reverted one's later metas lines of it (as a purge lays it
	// out).
	var at int64
	var meta, metas []byte
	var err error
	if t.BaseSize > 0 {
		if at, meta, metas, err = manager.SelfContainedMetas(ctx, b, t); err != nil {
			return nil, fmt.Errorf("export %s: %w", t.ID, err)
		}
	}
	rc, _, err := b.ReadAfter(ctx, t.ID, 0)
	if err != nil {
		return nil, err
	}
	var h io.Reader = rc
	if at > 0 {
		h = rollout.SelfContained(h, at, meta, metas)
	}
	if t.HistoryMode == string(rollout.HistoryPaginated) {
		h = rollout.Renumbered(0, h)
	}
	return readCloser{Reader: &errPrefix{r: h, prefix: "export " + t.ID}, Closer: rc}, nil
}

type readCloser struct {
	io.Reader
	io.Closer
}

// errPrefix is r whose errors but io.EOF name what was read.
type errPrefix struct {
	r      io.Reader
	prefix string
}

func (e *errPrefix) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if err != nil && err != io.EOF {
		err = fmt.Errorf("%s: %w", e.prefix, err)
	}
	return n, err
}

// Result says what Copy did with each thread it was asked to bring.
type Result struct {
	ID      string
	Copied  bool // false: the target had it already
	Summary manager.Thread
}

// Copy brings thread id from one backend to another, with its fork
// ancestors first (root first) when ancestry is set and from offers
// manager.Lineage. A thread the target already has is left as it is. The
// target must offer manager.Importer.
func Copy(ctx context.Context, from, to manager.Backend, id string, ancestry bool) ([]Result, error) {
	imp, ok := to.(manager.Importer)
	if !ok {
		return nil, fmt.Errorf("copy %s: import: %w", id, manager.ErrNotSupported)
	}
	ids := []string{id}
	if ancestry {
		lin, ok := from.(manager.Lineage)
		if !ok {
			return nil, fmt.Errorf("copy %s: ancestry: %w", id, manager.ErrNotSupported)
		}
		anc, err := lin.Ancestors(ctx, id)
		if err != nil {
			return nil, err
		}
		for _, a := range slices.Backward(anc) {
			if a.Thread != nil { // a deleted ancestor stays behind
				ids = slices.Insert(ids, len(ids)-1, a.ID)
			}
		}
	}
	var results []Result
	for _, tid := range ids {
		if t, err := to.Get(ctx, tid); err == nil {
			results = append(results, Result{ID: tid, Summary: t})
			continue
		} else if !errors.Is(err, manager.ErrNotFound) {
			return results, err
		}
		content, err := Export(ctx, from, tid)
		if err != nil {
			return results, err
		}
		t, err := imp.Import(ctx, content)
		content.Close()
		if err != nil {
			return results, err
		}
		results = append(results, Result{ID: tid, Copied: true, Summary: t})
	}
	return results, nil
}

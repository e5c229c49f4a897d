// Package transfer moves threads between backends (manager.Backend): the
// local root and the distributed database, either way. A thread leaves as
// a self-contained rollout (Export) and arrives through the target's
// manager.Importer; Copy brings its fork ancestors first, so its lineage
// holds on the other side.
package transfer

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"

	"github.com/spoolhq/spool/manager"
	"github.com/spoolhq/spool/rollout"
)

// Export returns thread id's history as a self-contained rollout: for a
// thread whose history continues a base (a reference fork), its own
// session_meta (without history_base) moves first, before the base's
// lines; a paginated history is renumbered 0, 1, 2, ... as Codex requires.
// Every other byte is kept.
func Export(ctx context.Context, b manager.Backend, id string) ([]byte, error) {
	t, err := b.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	rc, _, err := b.ReadAfter(ctx, t.ID, 0)
	if err != nil {
		return nil, err
	}
	h, err := io.ReadAll(rc)
	rc.Close()
	if err != nil {
		return nil, fmt.Errorf("export %s: %w", t.ID, err)
	}
	if t.BaseSize > 0 {
		own := h[t.BaseSize:]
		meta, rest, ok := bytes.Cut(own, []byte{'\n'})
		if !ok {
			return nil, fmt.Errorf("export %s: its own part holds no complete line", t.ID)
		}
		if meta, err = rollout.WithoutHistoryBase(meta); err != nil {
			return nil, fmt.Errorf("export %s: %w", t.ID, err)
		}
		out := append(bytes.TrimSuffix(meta, []byte{'\n'}), '\n')
		metas, err := ancestorMetas(ctx, b, t)
		if err != nil {
			return nil, fmt.Errorf("export %s: %w", t.ID, err)
		}
		out = append(out, metas...)
		out = append(out, h[:t.BaseSize]...)
		h = append(out, rest...)
	}
	if t.HistoryMode != string(rollout.HistoryPaginated) {
		return h, nil
	}
	out := make([]byte, 0, len(h)+len(h)/64)
	var n int64
	for line := range bytes.Lines(h) {
		if out, err = rollout.Renumber(out, line, n); err != nil {
			return nil, fmt.Errorf("export %s: line %d: %w", t.ID, n, err)
		}
		n++
	}
	return out, nil
}

// ancestorMetas returns the session_meta lines (without history_base) of
// t's fork ancestors, nearest first, down to the thread whose file starts
// t's history (whose meta is the history's first line): the layout of a
// copy fork, from which a rebuilt index reads the ancestry.
func ancestorMetas(ctx context.Context, b manager.Backend, t manager.Thread) ([]byte, error) {
	first := t
	for first.BaseID != "" {
		base, err := b.Get(ctx, first.BaseID)
		if err != nil {
			return nil, fmt.Errorf("base %s: %w", first.BaseID, err)
		}
		first = base
	}
	var metas []byte
	seen := map[string]bool{t.ID: true}
	for id := t.ParentID; id != "" && id != first.ID && !seen[id]; {
		seen[id] = true
		a, err := b.Get(ctx, id)
		if errors.Is(err, manager.ErrNotFound) {
			break // a deleted ancestor ends what the file can say
		}
		if err != nil {
			return nil, err
		}
		rc, _, err := b.ReadAfter(ctx, a.ID, a.BaseSize)
		if err != nil {
			return nil, err
		}
		line, err := bufio.NewReader(rc).ReadBytes('\n')
		rc.Close()
		if err != nil {
			return nil, fmt.Errorf("ancestor %s: %w", a.ID, err)
		}
		if line, err = rollout.WithoutHistoryBase(line); err != nil {
			return nil, fmt.Errorf("ancestor %s: %w", a.ID, err)
		}
		metas = append(metas, line...)
		id = a.ParentID
	}
	return metas, nil
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
		if err != nil {
			return results, err
		}
		results = append(results, Result{ID: tid, Copied: true, Summary: t})
	}
	return results, nil
}

package manager

import (
	"bytes"
	"context"
	"errors"
	"fmt"

	"github.com/spoolhq/spool/rollout"
)

// SelfContainedMetas returns the lines a self-contained copy of thread t's
// history puts before its base's bytes (rollout.SelfContained): meta, t's
// own session_meta without history_base, and metas, the session_metas
// (without history_base) of t's fork ancestors, nearest first, down to the
// thread whose bytes start the history: the layout of a copy fork, from
// which a rebuilt index reads the ancestry. A deleted ancestor ends the
// list. t must continue a base (t.BaseSize > 0). It reads through b, so
// both backends lay a history out the same way (transfer.Export, purge).
func SelfContainedMetas(ctx context.Context, b Backend, t Thread) (meta, metas []byte, err error) {
	if meta, err = firstLineAt(ctx, b, t.ID, t.BaseSize); err != nil {
		return nil, nil, fmt.Errorf("its own part: %w", err)
	}
	if meta, err = rollout.WithoutHistoryBase(meta); err != nil {
		return nil, nil, err
	}
	meta = append(bytes.TrimSuffix(meta, []byte{'\n'}), '\n')
	// The history starts with the meta of the thread whose bytes start
	// it: the bottom of t's chain of bases, which a reverted thread (whose
	// base is itself) reaches through its first file's base, if any.
	head, err := firstLineAt(ctx, b, t.ID, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("its history's start: %w", err)
	}
	bottom, err := rollout.ParseSessionMeta(head)
	if err != nil {
		return nil, nil, fmt.Errorf("its history's start: %w", err)
	}
	first := bottom.ID
	if id, err := rollout.ParseID(first); err == nil {
		first = id
	}
	seen := map[string]bool{t.ID: true}
	for id := t.ParentID; id != "" && id != first && !seen[id]; {
		seen[id] = true
		a, err := b.Get(ctx, id)
		if errors.Is(err, ErrNotFound) {
			break // a deleted ancestor ends what the history can say
		}
		if err != nil {
			return nil, nil, err
		}
		line, err := firstLineAt(ctx, b, a.ID, a.BaseSize)
		if err == nil {
			line, err = rollout.WithoutHistoryBase(line)
		}
		if err != nil {
			return nil, nil, fmt.Errorf("ancestor %s: %w", a.ID, err)
		}
		metas = append(metas, line...)
		id = a.ParentID
	}
	return meta, metas, nil
}

// firstLineAt returns the line that starts at position from of thread id's
// history.
func firstLineAt(ctx context.Context, b Backend, id string, from int64) ([]byte, error) {
	rc, _, err := b.ReadAfter(ctx, id, from)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	line, err := firstLine(rc)
	if err != nil {
		return nil, fmt.Errorf("at %d: %w", from, err)
	}
	return line, nil
}

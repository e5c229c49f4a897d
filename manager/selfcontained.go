package manager

import (
	"bytes"
	"context"
	"errors"
	"fmt"

	"github.com/spoolhq/spool/rollout"
)

// SelfContainedMetas returns how a self-contained copy of thread t's
// history is laid out (rollout.SelfContained): at, where t's own part of
// its history starts (its first own session_meta); meta, that line without
// history_base, which moves first; and metas, the session_metas (without
// history_base) of t's fork ancestors, nearest first, down to the thread
// whose bytes start the history: the layout of a copy fork, from which a
// rebuilt index reads the ancestry. A deleted ancestor ends the list. At
// is 0 for a history that starts with t's own meta, which is
// self-contained as it is (meta and metas are then nil). It reads through
// b, so both backends lay a history out the same way (transfer.Export,
// purge).
func SelfContainedMetas(ctx context.Context, b Backend, t Thread) (at int64, meta, metas []byte, err error) {
	at, own, err := ownMeta(ctx, b, t)
	if err != nil || at == 0 {
		return 0, nil, nil, err
	}
	if meta, err = rollout.WithoutHistoryBase(own); err != nil {
		return 0, nil, nil, err
	}
	meta = append(bytes.TrimSuffix(meta, []byte{'\n'}), '\n')
	// The history starts with the meta of the thread whose bytes start it.
	head, err := firstLineAt(ctx, b, t.ID, 0)
	if err != nil {
		return 0, nil, nil, fmt.Errorf("its history's start: %w", err)
	}
	first, err := metaID(head)
	if err != nil {
		return 0, nil, nil, fmt.Errorf("its history's start: %w", err)
	}
	seen := map[string]bool{t.ID: true}
	for id := t.ParentID; id != "" && id != first && !seen[id]; {
		seen[id] = true
		a, err := b.Get(ctx, id)
		if errors.Is(err, ErrNotFound) {
			break // a deleted ancestor ends what the history can say
		}
		if err != nil {
			return 0, nil, nil, err
		}
		_, line, err := ownMeta(ctx, b, a)
		if err == nil {
			line, err = rollout.WithoutHistoryBase(line)
		}
		if err != nil {
			return 0, nil, nil, fmt.Errorf("ancestor %s: %w", a.ID, err)
		}
		metas = append(metas, line...)
		id = a.ParentID
	}
	return at, meta, metas, nil
}

// ownMeta returns where thread t's own part of its history starts and its
// first line there, t's own session_meta: at t.BaseSize, except for a
// reverted thread (whose base is itself, and whose base_size is where its
// newest file starts), whose own part starts with its first file: found by
// reading its history to the first session_meta of its own, past the
// bytes of the base its first file continues, if any.
func ownMeta(ctx context.Context, b Backend, t Thread) (int64, []byte, error) {
	if t.BaseID != t.ID {
		line, err := firstLineAt(ctx, b, t.ID, t.BaseSize)
		if err != nil {
			return 0, nil, fmt.Errorf("its own part: %w", err)
		}
		return t.BaseSize, line, nil
	}
	rc, _, err := b.ReadAfter(ctx, t.ID, 0)
	if err != nil {
		return 0, nil, err
	}
	defer rc.Close()
	r := rollout.NewReader(rc, 0, 0)
	for r.Next() {
		if err := ctx.Err(); err != nil {
			return 0, nil, err
		}
		l := r.Line()
		if l.Type != rollout.TypeSessionMeta {
			continue
		}
		if id, err := metaID(l.Raw); err == nil && id == t.ID {
			return l.Offset, append(bytes.Clone(l.Raw), '\n'), nil
		}
	}
	if err := r.Err(); err != nil {
		return 0, nil, fmt.Errorf("its own part: %w", err)
	}
	return 0, nil, errors.New("its history holds no session_meta of its own")
}

// metaID returns the thread id a session_meta line names, normalised.
func metaID(line []byte) (string, error) {
	m, err := rollout.ParseSessionMeta(bytes.TrimSuffix(line, []byte{'\n'}))
	if err != nil {
		return "", err
	}
	if id, err := rollout.ParseID(m.ID); err == nil {
		return id, nil
	}
	return m.ID, nil
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

package rollout

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// NameEntry is one line of session_index.jsonl.
type NameEntry struct {
	ID         string `json:"id"`
	ThreadName string `json:"thread_name"`
	UpdatedAt  string `json:"updated_at"`
}

// AppendName appends e to root/session_index.jsonl (creating it), as one
// whole line, and fsyncs it. The id must be a UUID (ErrInvalidID). A torn
// last line left by a crash is first closed with a newline, so it becomes a
// malformed line (skipped by ReadNames) instead of swallowing this one.
func AppendName(ctx context.Context, root string, e NameEntry) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	id, err := ParseID(e.ID)
	if err != nil {
		return fmt.Errorf("append name: %w", err)
	}
	e.ID = id
	body, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("append name %s: %w", id, err)
	}
	line := append(body, '\n') // json.Marshal writes no raw newline
	path := filepath.Join(root, SessionIndexFile)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_APPEND|os.O_CREATE, filePerm)
	if err != nil {
		return fmt.Errorf("append name %s: %w", id, err)
	}
	defer f.Close()
	if torn, err := endsTorn(f); err != nil {
		return fmt.Errorf("append name %s to %s: %w", id, path, err)
	} else if torn {
		line = append([]byte{'\n'}, line...)
	}
	if _, err := f.Write(line); err != nil {
		return fmt.Errorf("append name %s to %s: %w", id, path, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", path, err)
	}
	return f.Close()
}

// endsTorn reports whether f is non-empty and does not end with a newline.
func endsTorn(f *os.File) (bool, error) {
	st, err := f.Stat()
	if err != nil || st.Size() == 0 {
		return false, err
	}
	var last [1]byte
	if _, err := f.ReadAt(last[:], st.Size()-1); err != nil {
		return false, err
	}
	return last[0] != '\n', nil
}

// ReadNames reads root/session_index.jsonl and returns the newest name per
// id (the last line for an id wins), keyed by lower-case id. A missing file
// is an empty map; malformed lines and lines without a valid id are
// skipped.
func ReadNames(ctx context.Context, root string) (map[string]NameEntry, error) {
	path := filepath.Join(root, SessionIndexFile)
	names := make(map[string]NameEntry)
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return names, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read names: %w", err)
	}
	defer f.Close()
	rd := NewReader(f, 0, 0)
	for rd.Next() {
		if rd.Line().Number%1024 == 0 {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
		}
		l := rd.Line()
		if l.Err != nil {
			continue
		}
		var e NameEntry
		if err := json.Unmarshal(l.Raw, &e); err != nil {
			continue
		}
		id, err := ParseID(e.ID)
		if err != nil {
			continue
		}
		e.ID = id
		names[id] = e
	}
	if err := rd.Err(); err != nil {
		return nil, fmt.Errorf("read names from %s: %w", path, err)
	}
	return names, nil
}

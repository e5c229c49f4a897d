package rollout

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
)

// NameEntry is one line of session_index.jsonl.
type NameEntry struct {
	ID         string `json:"id"`
	ThreadName string `json:"thread_name"`
	UpdatedAt  string `json:"updated_at"`
}

// EncodeNameEntry returns e as one line of session_index.jsonl, ending in
// a newline. The id must be a UUID (ErrInvalidID); it is written in
// canonical form.
func EncodeNameEntry(e NameEntry) ([]byte, error) {
	id, err := ParseID(e.ID)
	if err != nil {
		return nil, fmt.Errorf("encode name: %w", err)
	}
	e.ID = id
	body, err := json.Marshal(e)
	if err != nil {
		return nil, fmt.Errorf("encode name of %s: %w", id, err)
	}
	return append(body, '\n'), nil // json.Marshal writes no raw newline
}

// NameLineID returns the id that line, one line of session_index.jsonl
// without its newline, names, in canonical form; false for a line that
// names none (not a JSON object, or without a valid id), which ReadNames
// skips.
func NameLineID(line []byte) (string, bool) {
	var e struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal(line, &e); err != nil {
		return "", false
	}
	id, err := ParseID(e.ID)
	return id, err == nil
}

// ReadNames reads the lines of a session_index.jsonl from r and returns the
// newest name per id (the last line for an id wins), keyed by lower-case
// id. A name is read without its surrounding white space, and a line whose
// name is white space alone names nothing, as Codex lists them; an empty
// name (spool's clear) clears. Malformed lines and lines without a valid
// id are skipped.
func ReadNames(ctx context.Context, r io.Reader) (map[string]NameEntry, error) {
	names := make(map[string]NameEntry)
	rd := NewReader(r, 0, 0)
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
		if e.ThreadName != "" {
			if e.ThreadName = strings.TrimSpace(e.ThreadName); e.ThreadName == "" {
				continue
			}
		}
		e.ID = id
		names[id] = e
	}
	if err := rd.Err(); err != nil {
		return nil, fmt.Errorf("read names: %w", err)
	}
	return names, nil
}

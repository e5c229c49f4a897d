package rollout

import "context"

// NameEntry is one line of session_index.jsonl.
type NameEntry struct {
	ID         string `json:"id"`
	ThreadName string `json:"thread_name"`
	UpdatedAt  string `json:"updated_at"`
}

// AppendName appends e to root/session_index.jsonl (creating it), as one
// whole line, and fsyncs it.
func AppendName(ctx context.Context, root string, e NameEntry) error { panic("unimplemented") }

// ReadNames reads root/session_index.jsonl and returns the newest name per
// id (the last line for an id wins). A missing file is an empty map;
// malformed lines are skipped.
func ReadNames(ctx context.Context, root string) (map[string]NameEntry, error) {
	panic("unimplemented")
}

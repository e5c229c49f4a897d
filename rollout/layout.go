package rollout

import (
	"errors"
	"time"
)

// Directory names of a Codex home.
const (
	SessionsDir         = "sessions"
	ArchivedSessionsDir = "archived_sessions"
	SessionIndexFile    = "session_index.jsonl"
)

// ErrInvalidID reports an id that is not a canonical UUID, or a file name
// that does not end in one.
var ErrInvalidID = errors.New("invalid thread id")

// ParseID checks that s is a UUID in canonical form (36 characters, hex and
// hyphens; upper case accepted) and returns it in lower case. Anything else,
// including path tricks such as "../x" or "/etc", wraps ErrInvalidID.
func ParseID(s string) (string, error) { panic("unimplemented") }

// FileName returns the rollout file name of thread id created at created:
// rollout-YYYY-MM-DDThh-mm-ss-<id>.jsonl, in UTC.
func FileName(created time.Time, id string) string { panic("unimplemented") }

// ParseFileName returns the id and creation time encoded in a rollout file
// name (the base name only). The id is the 36 characters before ".jsonl",
// checked with ParseID; the time is read as UTC.
func ParseFileName(name string) (id string, created time.Time, err error) {
	panic("unimplemented")
}

// SessionPath returns the path, relative to a root and slash-separated, of
// a live rollout: sessions/YYYY/MM/DD/<name>, the date taken from the file
// name (which must parse with ParseFileName).
func SessionPath(name string) (string, error) { panic("unimplemented") }

// ArchivedPath returns the path, relative to a root, of an archived
// rollout: archived_sessions/<name>.
func ArchivedPath(name string) string { panic("unimplemented") }

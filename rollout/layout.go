package rollout

import (
	"errors"
	"fmt"
	"path"
	"strings"
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

// File name parts: rollout-YYYY-MM-DDThh-mm-ss-<id>.jsonl.
const (
	fileNamePrefix = "rollout-"
	fileNameSuffix = ".jsonl"
	fileTimeLayout = "2006-01-02T15-04-05"
	idLength       = 36
	fileNameLength = len(fileNamePrefix) + len(fileTimeLayout) + 1 + idLength + len(fileNameSuffix)
)

// CompressedSuffix ends the name of a rollout that Codex compressed with
// zstd: its plain name followed by ".zst", in the same directory
// (rollout-YYYY-MM-DDThh-mm-ss-<id>.jsonl.zst). Codex compresses cold
// files so (codex-rs/rollout/src/compression.rs) and prefers the plain file
// when both exist.
const CompressedSuffix = ".zst"

// IsCompressed reports whether name (a base name or a path) is a
// compressed rollout name: one ending in ".jsonl.zst".
func IsCompressed(name string) bool {
	return strings.HasSuffix(name, fileNameSuffix+CompressedSuffix)
}

// PlainName returns the plain name of a compressed rollout name (name
// without ".zst"), and any other name unchanged.
func PlainName(name string) string {
	if IsCompressed(name) {
		return strings.TrimSuffix(name, CompressedSuffix)
	}
	return name
}

// TwinName returns the other form of rollout name (a base name or a path):
// its compressed name for a plain one, its plain name for a compressed
// one. Codex writes one form, then removes the other, so both may exist.
func TwinName(name string) string {
	if IsCompressed(name) {
		return PlainName(name)
	}
	return name + CompressedSuffix
}

// ParseID checks that s is a UUID in canonical form (36 characters, hex and
// hyphens; upper case accepted) and returns it in lower case. Anything else,
// including path tricks such as "../x" or "/etc", wraps ErrInvalidID.
func ParseID(s string) (string, error) {
	if len(s) != idLength {
		return "", fmt.Errorf("%w: %q", ErrInvalidID, s)
	}
	var id [idLength]byte
	for i := 0; i < idLength; i++ {
		c := s[i]
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return "", fmt.Errorf("%w: %q", ErrInvalidID, s)
			}
		default:
			if !isHex(c) {
				return "", fmt.Errorf("%w: %q", ErrInvalidID, s)
			}
			if c >= 'A' && c <= 'F' {
				c += 'a' - 'A'
			}
		}
		id[i] = c
	}
	return string(id[:]), nil
}

// FileName returns the rollout file name of thread id created at created:
// rollout-YYYY-MM-DDThh-mm-ss-<id>.jsonl, in UTC.
func FileName(created time.Time, id string) string {
	return fileNamePrefix + created.UTC().Format(fileTimeLayout) + "-" + id + fileNameSuffix
}

// ParseFileName returns the id and creation time encoded in a rollout file
// name (the base name only), plain or compressed (CompressedSuffix). The id
// is the 36 characters before ".jsonl", checked with ParseID; the time is
// read as UTC. Errors wrap ErrInvalidID.
func ParseFileName(name string) (id string, created time.Time, err error) {
	name = PlainName(name)
	if len(name) != fileNameLength || strings.ContainsAny(name, `/\`) ||
		!strings.HasPrefix(name, fileNamePrefix) || !strings.HasSuffix(name, fileNameSuffix) {
		return "", time.Time{}, fmt.Errorf("%w: not a rollout file name: %q", ErrInvalidID, name)
	}
	stamp := name[len(fileNamePrefix) : len(fileNamePrefix)+len(fileTimeLayout)]
	rest := name[len(fileNamePrefix)+len(fileTimeLayout):]
	if rest[0] != '-' {
		return "", time.Time{}, fmt.Errorf("%w: not a rollout file name: %q", ErrInvalidID, name)
	}
	id, err = ParseID(strings.TrimSuffix(rest[1:], fileNameSuffix))
	if err != nil {
		return "", time.Time{}, fmt.Errorf("rollout file name %q: %w", name, err)
	}
	created, err = time.Parse(fileTimeLayout, stamp)
	if err != nil {
		return "", time.Time{}, fmt.Errorf("%w: rollout file name %q: bad time: %v", ErrInvalidID, name, err)
	}
	return id, created, nil
}

// SessionPath returns the path, relative to a root and slash-separated, of
// a live rollout: sessions/YYYY/MM/DD/<name>, the date taken from the file
// name (which must parse with ParseRolloutName: a plain rollout or a
// revert segment).
func SessionPath(name string) (string, error) {
	if _, _, _, err := ParseRolloutName(name); err != nil {
		return "", err
	}
	date := name[len(fileNamePrefix) : len(fileNamePrefix)+len("2006-01-02")]
	return path.Join(SessionsDir, date[0:4], date[5:7], date[8:10], name), nil
}

// ArchivedPath returns the path, relative to a root, of an archived
// rollout: archived_sessions/<name>. The name is not checked; callers pass
// names that went through ParseFileName.
func ArchivedPath(name string) string { return ArchivedSessionsDir + "/" + name }

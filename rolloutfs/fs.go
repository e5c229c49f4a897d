// Package rolloutfs stores rollout files. FS is the one seam under every
// file operation of spool's threads: creating a file atomically, appending
// under a sync policy, reading byte ranges, moving, deleting, cutting a
// torn tail into a side file and listing directories. Local implements it
// on a directory of the local filesystem and gets the fsync ordering right
// in one place; package faultfs wraps any FS to inject failures and power
// loss in tests.
//
// Names are slash-separated paths relative to the store's root, as
// fs.ValidPath accepts them ("sessions/2026/01/02/rollout-....jsonl").
package rolloutfs

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"strings"
	"time"
)

// Errors returned (wrapped) by FS implementations; test them with errors.Is.
// Missing and existing files wrap fs.ErrNotExist and fs.ErrExist.
var (
	// ErrInvalidName reports a name that is not a valid relative path.
	ErrInvalidName = errors.New("rolloutfs: invalid name")
	// ErrNotRegular reports a name that is not a regular file: a
	// directory, a FIFO, a device or a symbolic link (never followed, so a
	// link cannot lead outside the root).
	ErrNotRegular = errors.New("rolloutfs: not a regular file")
	// ErrNotLine reports appended bytes that are not whole lines.
	ErrNotLine = errors.New("rolloutfs: not whole newline-terminated lines")
	// ErrJournalLocked reports a journal whose lock another process held
	// for longer than AppendRecord waits (Local.LockWait).
	ErrJournalLocked = errors.New("rolloutfs: journal lock held by another process")
	// ErrInUse reports a temporary file that a Create or Replace, of this
	// process or of another sharing the root, is still writing.
	ErrInUse = errors.New("rolloutfs: temporary file in use")
)

// TempSuffix ends the name of a file Create or Replace is writing. A name
// with it is never a rollout. The writer holds an exclusive flock on it
// until the file is in place, so one found unlocked is a crash's leftover
// (RemoveTemp).
const TempSuffix = ".spool-tmp"

// IsTemp reports whether name is a temporary file of an unfinished Create.
func IsTemp(name string) bool { return strings.HasSuffix(name, TempSuffix) }

// FS stores rollout files. Implementations are safe for concurrent use.
type FS interface {
	// Create writes a new file atomically: the parts go to a temporary
	// name, which is synced, then linked into place; with durable set the
	// file and every directory Create created or changed are fsynced
	// before it returns. The file appears whole or not at all: a Create
	// that fails, its directory fsync included, leaves no file. An existing
	// name fails with an error wrapping fs.ErrExist.
	Create(ctx context.Context, name string, parts []Part, durable bool) (FileInfo, error)

	// Replace writes a file atomically over an existing one: the parts go
	// to a temporary name, which is synced and then renamed over name
	// (with durable set, name's directory is fsynced too). Readers and
	// appenders holding the old file keep the old bytes; a later Open sees
	// the new file whole. A missing name fails with an error wrapping
	// fs.ErrNotExist and creates nothing.
	Replace(ctx context.Context, name string, parts []Part, durable bool) (FileInfo, error)

	// OpenAppend opens an existing regular file for appending.
	OpenAppend(ctx context.Context, name string) (File, error)

	// Open opens an existing regular file for reading.
	Open(ctx context.Context, name string) (ReadFile, error)

	// Stat describes a regular file, without following symbolic links.
	Stat(ctx context.Context, name string) (FileInfo, error)

	// Move renames from to to, creating to's directories, and fsyncs both
	// directories: to's (and those it created) before from's name goes,
	// so that a power loss leaves the file under one name or both, never
	// under neither. An existing to fails with an error wrapping fs.ErrExist,
	// unless it is another name of from's file (a Move that a crash cut
	// short left the file under both): then the Move is finished.
	// A Move that fails before the rename is done (from cannot be removed:
	// a read-only directory) leaves the file at from only.
	Move(ctx context.Context, from, to string) error

	// Remove deletes a file and fsyncs its directory. A missing file is an
	// error wrapping fs.ErrNotExist.
	Remove(ctx context.Context, name string) error

	// RemoveTemp removes name, a temporary file (IsTemp) that a Create or
	// Replace cut short left behind, and fsyncs its directory, unless a
	// Create or Replace is still writing it, in this process or in another
	// sharing the root: then it fails with ErrInUse and removes nothing.
	RemoveTemp(ctx context.Context, name string) error

	// CutTornTail cuts the bytes after the last newline of name (a line
	// some writer did not finish). The cut bytes are first written to side
	// durably (as Create does); only then is name truncated and fsynced.
	// A file that ends with a newline, or is empty, is left alone and the
	// returned Cut has Length 0. Bytes after the last newline that are a
	// whole JSON object (IsWholeRecord) are ended with a newline, synced,
	// instead of cut (Cut.Ended).
	CutTornTail(ctx context.Context, name, side string) (Cut, error)

	// AppendRecord appends one line to a small journal file (created if
	// missing) and fsyncs it. If the file ends with an unfinished line, a
	// newline is written first, so the record is never glued to it. When
	// the write or the fsync fails, the bytes written are cut again: a
	// failed record leaves the journal as it was. Local
	// holds the journal's lock file (name + ".lock", which Codex takes for
	// session_index.jsonl) meanwhile, waiting for it a bounded time.
	AppendRecord(ctx context.Context, name string, line []byte) error

	// DropRecords rewrites a journal file as Codex's thread/delete
	// rewrites session_index.jsonl: without the lines drop selects (each
	// given without its newline), under the journal's lock as
	// AppendRecord takes it. The other lines go byte for byte to a
	// temporary file in the journal's directory, which is synced, given
	// the journal's mode and renamed over it; the directory is synced.
	// Until the rename the old file stays whole. Lines a writer that does
	// not take the lock appended to the old file meanwhile are carried
	// over to the new one (but for those drop selects). A missing
	// journal, or one without a line to drop, is left alone. It returns
	// how many lines it dropped.
	DropRecords(ctx context.Context, name string, drop func(line []byte) bool) (int, error)

	// SetModTime sets a file's modification time.
	SetModTime(ctx context.Context, name string, t time.Time) error

	// ReadDir lists a directory, sorted by name. A missing directory is an
	// error wrapping fs.ErrNotExist.
	ReadDir(ctx context.Context, dir string) ([]DirEntry, error)
}

// DirStater is implemented by an FS that can describe its directories. A
// directory's ModTime changes when a name in it is created, removed or
// renamed, not when a file in it is written: a manager compares them to
// tell whether the set of files changed while it was closed.
type DirStater interface {
	// StatDir describes the directory dir ("." for the root). A missing
	// directory is an error wrapping fs.ErrNotExist; a name that is not a
	// directory one wrapping ErrNotRegular.
	StatDir(ctx context.Context, dir string) (FileInfo, error)
}

// File is a file open for appending. It is not safe for concurrent use;
// Appender serialises its callers.
type File interface {
	// Write appends p at the end of the file.
	Write(p []byte) (int, error)
	// Truncate cuts the file to size.
	Truncate(size int64) error
	// Sync makes the file's data durable (fdatasync).
	Sync() error
	// Stat describes the file.
	Stat() (FileInfo, error)
	Close() error
}

// ReadFile is a file open for reading. ReadAt is safe for concurrent use.
type ReadFile interface {
	io.ReaderAt
	// Size is the file's size when it was opened.
	Size() int64
	Close() error
}

// FileInfo describes a file.
type FileInfo struct {
	Size    int64
	ModTime time.Time
	// ID tells files apart: the zero FileID when the FS cannot.
	ID FileID
}

// FileID identifies a regular file while it exists: its device and inode
// number where the system has them. A file renamed over another gets a
// different ID at the same name.
type FileID struct{ Dev, Ino uint64 }

// Differs reports whether id and other are known and name different
// files; an unknown (zero) FileID differs from none.
func (id FileID) Differs(other FileID) bool {
	return id != FileID{} && other != FileID{} && id != other
}

// DirEntry is one entry of a directory.
type DirEntry struct {
	Name string
	Type fs.FileMode // fs.ModeDir, 0 for a regular file, or another type bit
}

// IsDir reports whether the entry is a directory (links are not followed).
func (e DirEntry) IsDir() bool { return e.Type&fs.ModeDir != 0 }

// IsRegular reports whether the entry is a regular file.
func (e DirEntry) IsRegular() bool { return e.Type&fs.ModeType == 0 }

// Cut is a torn tail that CutTornTail removed, or ended.
type Cut struct {
	Offset int64 // where the torn bytes started: the file's new size
	Length int64 // how many bytes were cut; 0 when there was no torn tail
	// Ended says the bytes after the last newline were a whole record
	// that lacked only its newline (its writer stopped between the two,
	// or someone cut the newline): CutTornTail added the newline and
	// cut nothing, as Codex reads such a record whole and ends it before
	// its next write. Offset is then the file's new size, Length 0.
	Ended bool
}

// A Part is a piece of a new file's content for Create: Data, Length
// bytes of File from Offset, or everything Reader yields.
type Part struct {
	Data   []byte
	File   ReadFile
	Offset int64
	Length int64
	Reader io.Reader
}

// Stream is a Part holding what r yields until io.EOF: bytes made while
// the file is written (a history renumbered line by line).
func Stream(r io.Reader) Part { return Part{Reader: r} }

// Bytes is a Part holding b.
func Bytes(b []byte) Part { return Part{Data: b} }

// Range is a Part holding n bytes of f from off, copied without passing
// through user space where the system can.
func Range(f ReadFile, off, n int64) Part { return Part{File: f, Offset: off, Length: n} }

// size returns how many bytes the part holds.
func (p Part) size() int64 {
	if p.File != nil {
		return p.Length
	}
	return int64(len(p.Data))
}

// checkName refuses a name that is not a clean relative path.
func checkName(name string) error {
	if !fs.ValidPath(name) || name == "." {
		return &fs.PathError{Op: "open", Path: name, Err: ErrInvalidName}
	}
	return nil
}

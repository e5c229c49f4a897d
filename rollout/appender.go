package rollout

import (
	"context"
	"os"
)

// SyncPolicy says when an acknowledged append is on stable storage.
type SyncPolicy int

const (
	// SyncAlways fsyncs the file before Append returns.
	SyncAlways SyncPolicy = iota
	// SyncBatch makes Append wait for an fsync that covers its write, but
	// concurrent appenders sharing a GroupSyncer share fsyncs (group commit).
	SyncBatch
	// SyncNone leaves flushing to the operating system: a process crash
	// loses nothing acknowledged, a power loss may.
	SyncNone
)

// ParseSyncPolicy parses "always", "batch" or "none".
func ParseSyncPolicy(s string) (SyncPolicy, error) { panic("unimplemented") }

// String returns "always", "batch" or "none".
func (p SyncPolicy) String() string { panic("unimplemented") }

// GroupSyncer shares fsyncs among concurrent appenders (SyncBatch). A call
// to Sync returns once an fsync that started after the call has covered the
// file; while one fsync runs, the calls that arrive form the next batch.
type GroupSyncer struct {
	// fields are the implementation's
}

// NewGroupSyncer returns a GroupSyncer. Close stops it.
func NewGroupSyncer() *GroupSyncer { panic("unimplemented") }

// Sync blocks until f's written data is on stable storage or ctx is done.
func (g *GroupSyncer) Sync(ctx context.Context, f *os.File) error { panic("unimplemented") }

// Close stops the syncer; later Sync calls fsync directly.
func (g *GroupSyncer) Close() error { panic("unimplemented") }

// Appender appends whole lines to one rollout file. It is safe for
// concurrent use; appends are applied in the order they take its lock.
type Appender struct {
	// fields are the implementation's
}

// AppenderOptions configure OpenAppender.
type AppenderOptions struct {
	Policy SyncPolicy
	Group  *GroupSyncer // used with SyncBatch; nil means fsync directly
}

// TornTail describes bytes cut from the end of a file because they did not
// end with a newline.
type TornTail struct {
	Offset int64  // where the torn bytes started (the new size of the file)
	Data   []byte // the bytes that were cut
}

// OpenAppender opens path for appending. If the file ends with a torn
// line, the torn bytes are cut off (and returned, so the caller can keep
// them aside) before anything is appended. The file must exist.
func OpenAppender(ctx context.Context, path string, opts AppenderOptions) (*Appender, *TornTail, error) {
	panic("unimplemented")
}

// Append writes lines (each a complete line ending in '\n', as returned by
// EncodeItem or EncodeLine) with one write, then syncs according to the
// policy. It returns the byte offset of each line. On error, nothing of
// this call is acknowledged and the file is truncated back to its size
// before the call.
func (a *Appender) Append(ctx context.Context, lines [][]byte) ([]int64, error) {
	panic("unimplemented")
}

// Size returns the file's size: the end of the last appended line.
func (a *Appender) Size() int64 { panic("unimplemented") }

// Close syncs (unless the policy is SyncNone) and closes the file.
func (a *Appender) Close() error { panic("unimplemented") }

// CutTornTail truncates path after its last newline and returns the cut
// bytes (nil when the file ends cleanly). It never touches a complete line.
func CutTornTail(ctx context.Context, path string) (*TornTail, error) { panic("unimplemented") }

// CreateFile creates path (and its parent directories) exclusively, writes
// the line, and returns the file open for writing without O_APPEND, so the
// caller can copy byte ranges into it with copy_file_range. The caller
// fsyncs and closes it.
func CreateFile(path string, firstLine []byte) (*os.File, error) { panic("unimplemented") }

// SyncDir fsyncs a directory so that entries created or renamed in it
// survive a crash.
func SyncDir(dir string) error { panic("unimplemented") }

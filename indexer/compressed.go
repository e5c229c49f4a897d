package indexer

import (
	"context"
	"io"
	"math"

	"github.com/spoolhq/spool/rollout"
	"github.com/spoolhq/spool/rolloutfs"
)

// OpenRollout opens the rollout rel of fsys for reading its lines: a plain
// file as fsys.Open does, a compressed one (rollout.IsCompressed) through
// rolloutfs.Decompress, so offsets are those of the decompressed lines.
// Compressed rollouts are read-only: nothing appends to them or cuts them.
func OpenRollout(ctx context.Context, fsys rolloutfs.FS, rel string) (rolloutfs.ReadFile, error) {
	f, err := fsys.Open(ctx, rel)
	if err != nil {
		return nil, err
	}
	if rollout.IsCompressed(rel) {
		return rolloutfs.Decompress(f), nil
	}
	return f, nil
}

// scanRange returns what ScanFile reads of f, opened by OpenRollout: a
// plain file up to the size it had when stat'ed (bytes appended meanwhile
// are left for next time), a compressed one to the end of its stream,
// decoded once (its size is not asked for, which would decode it twice).
func scanRange(rel string, f rolloutfs.ReadFile, statSize int64) io.Reader {
	if rollout.IsCompressed(rel) {
		return io.NewSectionReader(f, 0, math.MaxInt64)
	}
	return io.NewSectionReader(f, 0, min(statSize, f.Size()))
}

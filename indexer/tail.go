package indexer

import (
	"bytes"
	"context"
	"fmt"
	"hash/crc32"
	"io"

	"github.com/spoolhq/spool/rollout"
	"github.com/spoolhq/spool/rolloutfs"
)

// TailBytes is how many bytes, at most, a thread's tail sum covers
// (store.Thread.TailSum).
const TailBytes = 256

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// TailSumOf returns the tail sum of a thread whose indexed part ends with
// end: the CRC-32C of the last line of end (from after its last newline
// but the final one), or of its last TailBytes when that line is longer,
// with their count; 0 for no bytes. end must hold that line whole or at
// least TailBytes bytes: the sum is then the same whoever makes it, the
// writer of the line or a reader of the file.
func TailSumOf(end []byte) int64 {
	if len(end) > TailBytes {
		end = end[len(end)-TailBytes:]
	}
	if len(end) == 0 {
		return 0
	}
	if i := bytes.LastIndexByte(end[:len(end)-1], '\n'); i >= 0 {
		end = end[i+1:]
	}
	return int64(len(end))<<32 | int64(crc32.Checksum(end, castagnoli))
}

// TailSumOfLines returns the tail sum of a file that ends with lines, each
// with its newline.
func TailSumOfLines(lines [][]byte) int64 {
	if len(lines) == 0 {
		return 0
	}
	return TailSumOf(lines[len(lines)-1])
}

// tailSumAt returns the tail sum of r's bytes before end.
func tailSumAt(r io.ReaderAt, end int64) (int64, error) {
	buf := make([]byte, min(end, TailBytes))
	if _, err := r.ReadAt(buf, end-int64(len(buf))); err != nil {
		return 0, fmt.Errorf("read the %d bytes before %d: %w", len(buf), end, err)
	}
	return TailSumOf(buf), nil
}

// tailMatches reports whether r still holds, before end, the bytes whose
// tail sum is sum (0, unknown, always matches).
func tailMatches(r io.ReaderAt, end, sum int64) (bool, error) {
	if sum == 0 {
		return true, nil
	}
	got, err := tailSumAt(r, end)
	return got == sum, err
}

// Emptied reports whether a thread's file of fileSize bytes, of which the
// index holds indexedSize, was emptied by another program to write it anew
// (most programs save a file in place so): it holds nothing yet, and
// neither a catch-up nor a scan can read it until it is written. The
// index keeps the thread meanwhile, with a file size of 0 (see emptied).
func Emptied(fileSize, indexedSize int64) bool { return fileSize == 0 && indexedSize > 0 }

// FileTailMatches reports whether rollout file rel still holds, before
// end, the bytes whose tail sum is sum: a file indexed to end whose size
// and time are as indexed may have been rewritten within the clock's
// tick. A compressed file (Codex rewrites it whole, under a new name) or
// an unknown sum (0) is taken as matching.
func FileTailMatches(ctx context.Context, fsys rolloutfs.FS, rel string, end, sum int64) (bool, error) {
	if sum == 0 || rollout.IsCompressed(rel) {
		return true, nil
	}
	f, err := fsys.Open(ctx, rel)
	if err != nil {
		return false, err
	}
	defer f.Close()
	same, err := tailMatches(f, end, sum)
	if err != nil {
		return false, fmt.Errorf("check %s: %w", rel, err)
	}
	return same, nil
}

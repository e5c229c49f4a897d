package indexer

import "time"

// MaxClockSkew is how far past its file's modification time a line's
// timestamp may be and still count as the thread's updated time.
const MaxClockSkew = time.Minute

// ClampUpdatedAt bounds a thread's updated time (Unix ms, the newest
// envelope timestamp) by its file's modification time (Unix ns) plus
// MaxClockSkew. A line cannot have been written after its file last
// changed, so a timestamp beyond that is a wrong clock or a forged item;
// unbounded, it would pin its thread at the top of every list. The bound
// is read from the file, so a rebuild gives the same value (as long as
// the file keeps its mtime). A zero mtime (unknown) bounds nothing.
func ClampUpdatedAt(updatedAt, fileMtime int64) int64 {
	if fileMtime <= 0 {
		return updatedAt
	}
	return min(updatedAt, time.Unix(0, fileMtime).Add(MaxClockSkew).UnixMilli())
}

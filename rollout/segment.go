package rollout

import (
	"fmt"
	"path"
	"strings"
	"time"
)

// segmentNameLength is the length of rollout-<ts>-<thread>_<segment>.jsonl.
const segmentNameLength = fileNameLength + 1 + idLength

// SegmentFileName returns the file name of a later segment of thread
// threadID, created at created (UTC) by a Codex revert:
// rollout-YYYY-MM-DDThh-mm-ss-<thread id>_<segment id>.jsonl. The segment's
// history_base points into the thread's earlier file. Both ids must be
// UUIDs (ErrInvalidID); they are written in lower case.
func SegmentFileName(created time.Time, threadID, segmentID string) (string, error) {
	thread, err := ParseID(threadID)
	if err != nil {
		return "", fmt.Errorf("segment file name thread: %w", err)
	}
	segment, err := ParseID(segmentID)
	if err != nil {
		return "", fmt.Errorf("segment file name segment: %w", err)
	}
	return fileNamePrefix + created.UTC().Format(fileTimeLayout) + "-" + thread + "_" + segment + fileNameSuffix, nil
}

// ParseSegmentFileName returns the thread id, segment id and creation time
// (read as UTC) encoded in a segment file name (base name only), plain or
// compressed (CompressedSuffix: Codex compresses a cold segment as it does
// any rollout). A plain rollout name, without a segment, is not a segment
// name. Errors wrap ErrInvalidID.
func ParseSegmentFileName(name string) (threadID, segmentID string, created time.Time, err error) {
	name = PlainName(name)
	if len(name) != segmentNameLength || strings.ContainsAny(name, `/\`) ||
		!strings.HasPrefix(name, fileNamePrefix) || !strings.HasSuffix(name, fileNameSuffix) {
		return "", "", time.Time{}, fmt.Errorf("%w: not a segment file name: %q", ErrInvalidID, name)
	}
	ids := strings.TrimSuffix(name[len(fileNamePrefix)+len(fileTimeLayout):], fileNameSuffix)
	// ids is "-<thread>_<segment>".
	if ids[0] != '-' || ids[1+idLength] != '_' {
		return "", "", time.Time{}, fmt.Errorf("%w: not a segment file name: %q", ErrInvalidID, name)
	}
	if threadID, err = ParseID(ids[1 : 1+idLength]); err != nil {
		return "", "", time.Time{}, fmt.Errorf("segment file name %q thread: %w", name, err)
	}
	if segmentID, err = ParseID(ids[2+idLength:]); err != nil {
		return "", "", time.Time{}, fmt.Errorf("segment file name %q segment: %w", name, err)
	}
	stamp := name[len(fileNamePrefix) : len(fileNamePrefix)+len(fileTimeLayout)]
	if created, err = time.Parse(fileTimeLayout, stamp); err != nil {
		return "", "", time.Time{}, fmt.Errorf("%w: segment file name %q: bad time: %v", ErrInvalidID, name, err)
	}
	return threadID, segmentID, created, nil
}

// BaseRef returns how a history_base names file rel (slash separated) of
// thread threadID, as Codex 0.169 names it: a thread's first file by the
// thread's id, a later file (a revert segment) by its segment's uuid. A
// fork or a revert whose cut lies in a segment must name the segment:
// Codex reads a thread's id as its first file.
func BaseRef(rel, threadID string) string {
	if _, segmentID, _, err := ParseRolloutName(path.Base(rel)); err == nil && segmentID != "" {
		return segmentID
	}
	return threadID
}

// ParseRolloutName reads a plain rollout name (ParseFileName; segmentID
// "") or a segment name (ParseSegmentFileName): the two kinds of file that
// hold a thread. Errors wrap ErrInvalidID.
func ParseRolloutName(name string) (threadID, segmentID string, created time.Time, err error) {
	threadID, created, err = ParseFileName(name)
	if err == nil {
		return threadID, "", created, nil
	}
	if tid, sid, c, serr := ParseSegmentFileName(name); serr == nil {
		return tid, sid, c, nil
	}
	return "", "", time.Time{}, err
}

// NewerFile reports whether the file named a (a plain rollout or segment
// name of some thread) was created after the file named b: a segment is
// newer than its thread's plain file; segments compare by creation time,
// then by segment id (UUID v7, ordered in time). Names that do not parse
// are never newer.
func NewerFile(a, b string) bool {
	_, sa, ca, err := ParseRolloutName(a)
	if err != nil {
		return false
	}
	_, sb, cb, err := ParseRolloutName(b)
	if err != nil {
		return true
	}
	switch {
	case sa == "":
		return false
	case sb == "":
		return true
	case !ca.Equal(cb):
		return ca.After(cb)
	}
	return sa > sb
}

// SegmentMetaLine returns the session_meta line that opens a revert
// segment of thread p.ID, as Codex 0.169's thread/revert writes it: the
// thread's own meta (timestamp ts, paginated) whose history_base names the
// file of the thread that holds the cut (base.ThreadID, BaseRef; "" names
// the thread's first file) and the cut (base.EndByteOffset in that file,
// base.EndOrdinalExclusive the ordinal of the line there), and whose
// top-level ordinal is base.EndOrdinalExclusive: the segment numbers its
// lines on from the cut.
func SegmentMetaLine(ts string, p MetaPayload, base HistoryBase) ([]byte, error) {
	if base.ThreadID == "" {
		base.ThreadID = p.ID
	}
	p.Timestamp = ts
	p.HistoryMode = HistoryPaginated
	p.HistoryBase = &base
	p.ForkPoint = nil
	line, err := NewSessionMetaLine(ts, p)
	if err != nil {
		return nil, fmt.Errorf("segment meta: %w", err)
	}
	return WithOrdinal(line, p.FirstOrdinal())
}

package indexer

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/spoolhq/spool/rollout"
	"github.com/spoolhq/spool/rolloutfs"
	"github.com/spoolhq/spool/store"
)

// TornSuffix starts the extension of the side file that keeps the bytes
// Repair cut from a rollout: <rollout name>.torn-<unix nanoseconds>. Such a
// name does not parse as a rollout name, so Walk ignores it.
const TornSuffix = ".torn-"

// Cut is a torn tail that Repair removed from a rollout file.
type Cut struct {
	Path     string `json:"path"`      // the rollout, relative to the root
	Offset   int64  `json:"offset"`    // where the torn bytes started: the file's new size
	Length   int64  `json:"length"`    // how many bytes were cut
	SideFile string `json:"side_file"` // where they are kept, relative to the root
}

// RepairReport is what Repair did.
type RepairReport struct {
	Cuts []Cut   `json:"cuts"`
	Sync Summary `json:"sync"`
}

// Repair cuts the torn tail (the bytes after the last newline) off every
// rollout file of fsys, keeping the cut bytes in a side file next to it
// (<name>.torn-<unix nanoseconds>, written durably before the cut), and
// then brings the index up to date with an incremental Sync. It never
// touches a complete line. Nobody may append to the files meanwhile: hold
// the root's lock.
func Repair(ctx context.Context, st *store.Store, fsys rolloutfs.FS, opts SyncOptions) (RepairReport, error) {
	var rep RepairReport
	paths, err := Walk(ctx, fsys)
	if err != nil {
		return rep, fmt.Errorf("repair %v: %w", fsys, err)
	}
	for _, rel := range paths {
		cut, err := CutTornTail(ctx, fsys, rel, time.Now())
		if err != nil {
			return rep, fmt.Errorf("repair %v: %w", fsys, err)
		}
		if cut.Length > 0 {
			rep.Cuts = append(rep.Cuts, cut)
		}
	}
	rep.Sync, err = Sync(ctx, st, fsys, opts)
	if err != nil {
		return rep, fmt.Errorf("repair %v: %w", fsys, err)
	}
	return rep, nil
}

// SideFile is the name of the side file that keeps the torn tail of the
// rollout rel cut at time at.
func SideFile(rel string, at time.Time) string {
	return rel + TornSuffix + strconv.FormatInt(at.UnixNano(), 10)
}

// CutTornTail cuts the torn tail of the rollout rel, if it has one, into
// the side file SideFile(rel, at), written durably before the cut. The
// returned Cut has Length 0 when the file ends cleanly. A compressed
// rollout is never cut (its last byte is no line's end): Length is 0.
func CutTornTail(ctx context.Context, fsys rolloutfs.FS, rel string, at time.Time) (Cut, error) {
	if rollout.IsCompressed(rel) {
		return Cut{Path: rel}, nil
	}
	side := SideFile(rel, at)
	c, err := fsys.CutTornTail(ctx, rel, side)
	if err != nil {
		return Cut{}, fmt.Errorf("cut torn tail of %s: %w", rel, err)
	}
	if c.Length == 0 {
		return Cut{Path: rel, Offset: c.Offset}, nil
	}
	return Cut{Path: rel, Offset: c.Offset, Length: c.Length, SideFile: side}, nil
}

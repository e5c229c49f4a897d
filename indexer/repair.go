package indexer

import (
	"context"
	"errors"
	"fmt"
	"path"
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
	// Ended: the tail was a whole record lacking only its newline, which
	// was added; nothing was cut (rolloutfs.Cut.Ended).
	Ended bool `json:"ended,omitempty"`
}

// RepairReport is what Repair did.
type RepairReport struct {
	Cuts []Cut `json:"cuts"`
	// Left are the torn tails it did not cut: their writer may still be
	// finishing them.
	Left []LeftTail `json:"left,omitempty"`
	// Failed are the files whose end could not be read or cut (a file
	// its owner cannot read, say); Repair goes on with the others.
	Failed []Problem `json:"failed,omitempty"`
	Sync   Summary   `json:"sync"`
}

// LeftTail is a torn tail Repair left, and why: ErrWriterActive wrapped
// with the writer lock's holder, or with how young the tail is.
type LeftTail struct {
	Path string `json:"path"` // the rollout, relative to the root
	// RetryAfter is when the tail will be old enough to cut, for a young
	// one (0 for a held lock: once its holder lets go).
	RetryAfter time.Duration `json:"retry_after"`
	Err        error         `json:"-"`
	Reason     string        `json:"reason"` // Err's text
}

// ErrWriterActive is why a torn tail was left: a writer may still finish
// the line.
var ErrWriterActive = errors.New("a writer may still be finishing the last line")

// TailRule is when a torn tail may be cut, the one rule of every cut
// (Repair's, and an append's in package manager): only while holding the
// thread's writer lock, so that no writer that takes it (Codex) is
// finishing the line, and only once the tail is Grace old, for one that
// takes none.
type TailRule struct {
	// Grace is how old (by the file's mtime) a torn tail must be.
	Grace time.Duration
	// Lock takes the writer lock of thread id for a cut, failing while
	// another holds it; nil takes none.
	Lock func(id string) (unlock func(), err error)
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Repair cuts the torn tail (the bytes after the last newline) off every
// rollout file of fsys that rule allows, keeping the cut bytes in a side
// file next to it (<name>.torn-<unix nanoseconds>, written durably before
// the cut), and then brings the index up to date with an incremental Sync.
// A tail that is a whole record lacking only its newline is ended with one
// instead (Cut.Ended). It never touches a complete line. A file whose end
// cannot be read or cut is reported (Failed) and the others are repaired. The tails rule forbids are left and
// reported. Hold the root's lock: no spool may append meanwhile.
func Repair(ctx context.Context, st *store.Store, fsys rolloutfs.FS, rule TailRule, opts SyncOptions) (RepairReport, error) {
	var rep RepairReport
	paths, err := Walk(ctx, fsys)
	if err != nil {
		return rep, fmt.Errorf("repair %v: %w", fsys, err)
	}
	for _, rel := range paths {
		cut, left, err := rule.cut(ctx, fsys, rel)
		if ctx.Err() != nil {
			return rep, fmt.Errorf("repair %v: %w", fsys, ctx.Err())
		}
		if err != nil {
			rep.Failed = append(rep.Failed, Problem{Path: rel, Kind: ProblemError, Detail: err.Error()})
			continue
		}
		switch {
		case left != nil:
			rep.Left = append(rep.Left, *left)
		case cut.Length > 0 || cut.Ended:
			rep.Cuts = append(rep.Cuts, cut)
		}
	}
	if !opts.Full { // a full Sync deletes them itself
		if _, err := st.DeleteOrphans(ctx); err != nil {
			return rep, fmt.Errorf("repair %v: %w", fsys, err)
		}
	}
	rep.Sync, err = Sync(ctx, st, fsys, opts)
	if err != nil {
		return rep, fmt.Errorf("repair %v: %w", fsys, err)
	}
	return rep, nil
}

// cut cuts the torn tail of rollout rel when the rule allows it, and
// otherwise says why it left it.
func (r TailRule) cut(ctx context.Context, fsys rolloutfs.FS, rel string) (Cut, *LeftTail, error) {
	if rollout.IsCompressed(rel) {
		return Cut{Path: rel}, nil, nil
	}
	if torn, err := endsTorn(ctx, fsys, rel); err != nil || !torn {
		return Cut{Path: rel}, nil, err
	}
	if r.Lock != nil {
		id, _, _, err := rollout.ParseRolloutName(path.Base(rel))
		if err != nil {
			return Cut{}, nil, err
		}
		unlock, err := r.Lock(id)
		if err != nil {
			err = fmt.Errorf("%w: %w", ErrWriterActive, err)
			return Cut{}, &LeftTail{Path: rel, Err: err, Reason: err.Error()}, nil
		}
		defer unlock()
	}
	// Under the lock: the age is the tail's as it is cut.
	info, err := fsys.Stat(ctx, rel)
	if err != nil {
		return Cut{}, nil, err
	}
	if wait := r.Wait(info.ModTime); wait > 0 {
		err := fmt.Errorf("%w: written under %v ago", ErrWriterActive, r.Grace)
		return Cut{}, &LeftTail{Path: rel, RetryAfter: wait, Err: err, Reason: err.Error()}, nil
	}
	cut, err := CutTornTail(ctx, fsys, rel, r.now())
	return cut, nil, err
}

// Wait returns how long a torn tail of a file last written at mtime must
// still wait before it may be cut (0: it may be, given the lock).
func (r TailRule) Wait(mtime time.Time) time.Duration {
	return max(r.Grace-r.now().Sub(mtime), 0)
}

func (r TailRule) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

// endsTorn reports whether rollout rel ends in a torn tail: bytes after
// its last newline.
func endsTorn(ctx context.Context, fsys rolloutfs.FS, rel string) (bool, error) {
	f, err := fsys.Open(ctx, rel)
	if err != nil {
		return false, err
	}
	defer f.Close()
	if f.Size() == 0 {
		return false, nil
	}
	last := make([]byte, 1)
	if _, err := f.ReadAt(last, f.Size()-1); err != nil {
		return false, fmt.Errorf("read the end of %s: %w", rel, err)
	}
	return last[0] != '\n', nil
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
		return Cut{Path: rel, Offset: c.Offset, Ended: c.Ended}, nil
	}
	return Cut{Path: rel, Offset: c.Offset, Length: c.Length, SideFile: side}, nil
}

// Package faultfs wraps a rolloutfs.Local to make its operations fail on
// demand and to simulate a power loss, for tests of spool's durability
// promises. It is a test double: real bytes go to a real directory, and
// faultfs keeps beside them a model of what a disk would still hold after
// the power went out (what LazyFS does for real filesystems).
//
// The model: a file's content is durable as of its last Sync (or of a
// durable Create, a CutTornTail, an AppendRecord); a directory entry is
// durable once a durable Create, a Move, a Remove or an AppendRecord made
// it so. PowerLoss rewrites the directory to that state and kills every
// open handle. Files the FS never touched are left as they are.
package faultfs

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"sync"
	"syscall"
	"time"

	"github.com/spoolhq/spool/rolloutfs"
)

// Op names a point where faultfs can inject a failure.
type Op string

// The fault points. Each is consulted once per call of the operation it
// names; a failure there leaves the state described.
const (
	OpCreate      Op = "create"       // Create: nothing created
	OpReplace     Op = "replace"      // Replace: the old file stays
	OpReplaceSync Op = "replace-sync" // Replace: replaced, but the error is returned (its directory fsync)
	OpWrite       Op = "write"        // File.Write: half the bytes written, then the error
	OpSync        Op = "sync"         // File.Sync: the data stays volatile
	OpTruncate    Op = "truncate"     // File.Truncate: nothing cut
	OpRename      Op = "rename"       // Move: nothing moved
	OpDirSync     Op = "dirsync"      // Move: moved, but the error is returned
	OpRemove      Op = "remove"       // Remove: nothing removed
	OpCutSide     Op = "cut-side"     // CutTornTail: no side file, nothing cut
	OpCutTruncate Op = "cut-truncate" // CutTornTail: side file written (none for a whole record), nothing cut or ended
	OpRecord      Op = "record"       // AppendRecord: nothing appended
	OpDropRecords Op = "drop-records" // DropRecords: the old file stays
	OpSetTime     Op = "settime"      // SetModTime: unchanged
)

// ErrPowerLost is returned by every handle opened before a PowerLoss.
var ErrPowerLost = errors.New("faultfs: power lost")

// Point is one consulted fault point.
type Point struct {
	Seq  int // 1-based, counting every point consulted since the last Reset
	Op   Op
	Name string
}

// FS is a rolloutfs.FS with injectable failures and simulated power loss.
// It is safe for concurrent use.
type FS struct {
	base rolloutfs.Local

	mu      sync.Mutex
	seq     int                // guarded by mu: points consulted
	points  []Point            // guarded by mu: every point consulted
	inject  func(Point) error  // guarded by mu
	objects map[string]*object // guarded by mu: by current name
	epoch   int                // guarded by mu: bumped by PowerLoss
}

// object is the model of one file.
type object struct {
	name         string
	durable      []byte // content as of the last sync
	entryDurable bool   // its directory entry survives a power loss
}

var _ rolloutfs.FS = (*FS)(nil)

// New returns an FS over base with no faults.
func New(base rolloutfs.Local) *FS {
	return &FS{base: base, objects: make(map[string]*object)}
}

// Inject sets the function consulted at every fault point; a non-nil error
// fails that point. nil removes it. The function may be called
// concurrently and may block.
func (f *FS) Inject(fn func(Point) error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.inject = fn
}

// FailAt fails the point with sequence number seq with err.
func (f *FS) FailAt(seq int, err error) {
	f.Inject(func(p Point) error {
		if p.Seq == seq {
			return err
		}
		return nil
	})
}

// Reset clears the injected faults and restarts point numbering.
func (f *FS) Reset() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.seq, f.points, f.inject = 0, nil, nil
}

// Points returns the points consulted since the last Reset.
func (f *FS) Points() []Point {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]Point(nil), f.points...)
}

// point consults the fault point op for name.
func (f *FS) point(op Op, name string) error {
	f.mu.Lock()
	f.seq++
	p := Point{Seq: f.seq, Op: op, Name: name}
	f.points = append(f.points, p)
	inject := f.inject
	f.mu.Unlock()
	// The hook runs without f.mu, so it may block (to hold a caller at a
	// point) while other calls go on.
	if inject == nil {
		return nil
	}
	if err := inject(p); err != nil {
		return &fs.PathError{Op: string(op), Path: name, Err: err}
	}
	return nil
}

// obj returns the model of name, taking the file as it is on disk as
// durable when the model has not seen it yet. f.mu must be held.
func (f *FS) obj(name string) *object {
	if o, ok := f.objects[name]; ok {
		return o
	}
	data, _ := os.ReadFile(f.path(name))
	o := &object{name: name, durable: data, entryDurable: true}
	f.objects[name] = o
	return o
}

func (f *FS) path(name string) string {
	return filepath.Join(f.base.Root, filepath.FromSlash(name))
}

// snapshot makes o's current content on disk its durable content. f.mu
// must be held.
func (f *FS) snapshot(o *object) {
	data, err := os.ReadFile(f.path(o.name))
	if err == nil {
		o.durable = data
	}
}

// PowerLoss simulates a power loss: every handle opened before it fails
// from now on, and the directory is rewritten to what the model says a
// disk would hold: files whose entry was never made durable are gone, the
// others hold their content as of their last sync.
func (f *FS) PowerLoss() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.epoch++
	names := make([]string, 0, len(f.objects))
	for name := range f.objects {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		o := f.objects[name]
		p := f.path(name)
		if !o.entryDurable {
			if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return err
			}
			delete(f.objects, name)
			continue
		}
		if err := os.WriteFile(p, o.durable, f.filePerm()); err != nil {
			return fmt.Errorf("power loss: %w", err)
		}
	}
	return nil
}

func (f *FS) filePerm() fs.FileMode {
	if f.base.FilePerm == 0 {
		return rolloutfs.DefaultFilePerm
	}
	return f.base.FilePerm
}

// Create implements rolloutfs.FS.
func (f *FS) Create(ctx context.Context, name string, parts []rolloutfs.Part, durable bool) (rolloutfs.FileInfo, error) {
	return f.write(ctx, OpCreate, name, parts, durable, f.base.Create)
}

// Replace implements rolloutfs.FS.
func (f *FS) Replace(ctx context.Context, name string, parts []rolloutfs.Part, durable bool) (rolloutfs.FileInfo, error) {
	return f.write(ctx, OpReplace, name, parts, durable, f.base.Replace)
}

// write runs fault point op, then put (the base's Create or Replace) with
// parts read through the base's handles, and records name as a new object,
// durable as put made it.
func (f *FS) write(ctx context.Context, op Op, name string, parts []rolloutfs.Part, durable bool,
	put func(context.Context, string, []rolloutfs.Part, bool) (rolloutfs.FileInfo, error)) (rolloutfs.FileInfo, error) {
	if err := f.point(op, name); err != nil {
		return rolloutfs.FileInfo{}, err
	}
	parts = slices.Clone(parts) // the caller's parts stay as they were
	for i, p := range parts {
		if h, ok := p.File.(*readFile); ok {
			if err := f.alive(h.epoch); err != nil {
				return rolloutfs.FileInfo{}, err
			}
			parts[i].File = h.ReadFile
		}
	}
	var before *object
	if op == OpReplace && !durable {
		before = f.durableView(name)
	}
	info, err := put(ctx, name, parts, durable)
	if err != nil {
		return info, err
	}
	f.mu.Lock()
	o := &object{name: name, entryDurable: durable}
	switch {
	case durable:
		f.snapshot(o)
	case before != nil:
		// The rename over the old file is not durable: a power loss
		// leaves the old file as it was last made durable.
		o.entryDurable, o.durable = before.entryDurable, before.durable
	}
	f.objects[name] = o
	f.mu.Unlock()
	if op == OpReplace {
		if err := f.point(OpReplaceSync, name); err != nil {
			return rolloutfs.FileInfo{}, err
		}
	}
	return info, nil
}

// durableView returns what a power loss would leave of the file name now:
// its object's durable state, or, for a file the model has not seen
// (there before the FS), the file as it is; nil for none.
func (f *FS) durableView(name string) *object {
	f.mu.Lock()
	old, ok := f.objects[name]
	f.mu.Unlock()
	if ok {
		return &object{entryDurable: old.entryDurable, durable: old.durable}
	}
	data, err := os.ReadFile(f.path(name))
	if err != nil {
		return nil
	}
	return &object{entryDurable: true, durable: data}
}

// OpenAppend implements rolloutfs.FS.
func (f *FS) OpenAppend(ctx context.Context, name string) (rolloutfs.File, error) {
	h, err := f.base.OpenAppend(ctx, name)
	if err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return &file{fs: f, File: h, obj: f.obj(name), epoch: f.epoch}, nil
}

// Open implements rolloutfs.FS.
func (f *FS) Open(ctx context.Context, name string) (rolloutfs.ReadFile, error) {
	h, err := f.base.Open(ctx, name)
	if err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return &readFile{ReadFile: h, fs: f, epoch: f.epoch}, nil
}

// Stat implements rolloutfs.FS.
func (f *FS) Stat(ctx context.Context, name string) (rolloutfs.FileInfo, error) {
	return f.base.Stat(ctx, name)
}

// Move implements rolloutfs.FS.
func (f *FS) Move(ctx context.Context, from, to string) error {
	if err := f.point(OpRename, from); err != nil {
		return err
	}
	f.mu.Lock()
	_, known := f.objects[from]
	o := f.obj(from)
	f.mu.Unlock()
	if err := f.base.Move(ctx, from, to); err != nil {
		if !known {
			// Not a file the model knew: forget it again, or a missing
			// from would be recreated empty by PowerLoss.
			f.mu.Lock()
			if f.objects[from] == o {
				delete(f.objects, from)
			}
			f.mu.Unlock()
		}
		return err
	}
	f.mu.Lock()
	delete(f.objects, from)
	o.name, o.entryDurable = to, true
	f.objects[to] = o
	f.mu.Unlock()
	return f.point(OpDirSync, to)
}

// Remove implements rolloutfs.FS.
func (f *FS) Remove(ctx context.Context, name string) error {
	if err := f.point(OpRemove, name); err != nil {
		return err
	}
	if err := f.base.Remove(ctx, name); err != nil {
		return err
	}
	f.mu.Lock()
	delete(f.objects, name)
	f.mu.Unlock()
	return nil
}

// RemoveTemp implements rolloutfs.FS. It fails where a Remove of name
// would (OpRemove).
func (f *FS) RemoveTemp(ctx context.Context, name string) error {
	if err := f.point(OpRemove, name); err != nil {
		return err
	}
	if err := f.base.RemoveTemp(ctx, name); err != nil {
		return err
	}
	f.mu.Lock()
	delete(f.objects, name)
	f.mu.Unlock()
	return nil
}

// CutTornTail implements rolloutfs.FS.
func (f *FS) CutTornTail(ctx context.Context, name, side string) (rolloutfs.Cut, error) {
	if err := f.point(OpCutSide, name); err != nil {
		return rolloutfs.Cut{}, err
	}
	rf, err := f.base.Open(ctx, name)
	if err != nil {
		return rolloutfs.Cut{}, err
	}
	cut, err := rolloutfs.TornStart(ctx, rf, rf.Size())
	size := rf.Size()
	if err != nil || cut == size {
		rf.Close()
		return rolloutfs.Cut{Offset: cut}, err
	}
	whole, err := rolloutfs.IsWholeRecord(rf, cut, size)
	if err != nil || whole {
		rf.Close()
		if err != nil {
			return rolloutfs.Cut{}, err
		}
		return f.endRecord(ctx, name, size)
	}
	_, err = f.Create(ctx, side, []rolloutfs.Part{rolloutfs.Range(rf, cut, size-cut)}, true)
	rf.Close()
	if err != nil {
		return rolloutfs.Cut{}, err
	}
	if err := f.point(OpCutTruncate, name); err != nil {
		return rolloutfs.Cut{}, err
	}
	h, err := f.base.OpenAppend(ctx, name)
	if err != nil {
		return rolloutfs.Cut{}, err
	}
	err = errors.Join(h.Truncate(cut), h.Sync(), h.Close())
	if err != nil {
		return rolloutfs.Cut{}, err
	}
	f.mu.Lock()
	f.snapshot(f.obj(name))
	f.mu.Unlock()
	return rolloutfs.Cut{Offset: cut, Length: size - cut}, nil
}

// endRecord is CutTornTail of a whole record that lacks its newline: the
// newline is written and synced at fault point OpCutTruncate.
func (f *FS) endRecord(ctx context.Context, name string, size int64) (rolloutfs.Cut, error) {
	if err := f.point(OpCutTruncate, name); err != nil {
		return rolloutfs.Cut{}, err
	}
	h, err := f.base.OpenAppend(ctx, name)
	if err != nil {
		return rolloutfs.Cut{}, err
	}
	_, werr := h.Write([]byte{'\n'})
	if err := errors.Join(werr, h.Sync(), h.Close()); err != nil {
		return rolloutfs.Cut{}, err
	}
	f.mu.Lock()
	f.snapshot(f.obj(name))
	f.mu.Unlock()
	return rolloutfs.Cut{Offset: size + 1, Ended: true}, nil
}

// AppendRecord implements rolloutfs.FS.
func (f *FS) AppendRecord(ctx context.Context, name string, line []byte) error {
	if err := f.point(OpRecord, name); err != nil {
		return err
	}
	if err := f.base.AppendRecord(ctx, name, line); err != nil {
		return err
	}
	f.mu.Lock()
	o := f.obj(name)
	o.entryDurable = true
	f.snapshot(o)
	f.mu.Unlock()
	return nil
}

// DropRecords implements rolloutfs.FS: the new file is durable, content
// and entry, once it returns.
func (f *FS) DropRecords(ctx context.Context, name string, drop func(line []byte) bool) (int, error) {
	if err := f.point(OpDropRecords, name); err != nil {
		return 0, err
	}
	dropped, err := f.base.DropRecords(ctx, name, drop)
	if err != nil || dropped == 0 {
		return dropped, err
	}
	f.mu.Lock()
	o := f.obj(name)
	o.entryDurable = true
	f.snapshot(o)
	f.mu.Unlock()
	return dropped, nil
}

// SetModTime implements rolloutfs.FS.
func (f *FS) SetModTime(ctx context.Context, name string, t time.Time) error {
	if err := f.point(OpSetTime, name); err != nil {
		return err
	}
	return f.base.SetModTime(ctx, name, t)
}

// ReadDir implements rolloutfs.FS.
func (f *FS) ReadDir(ctx context.Context, dir string) ([]rolloutfs.DirEntry, error) {
	return f.base.ReadDir(ctx, dir)
}

// file is a handle for appending, with fault points.
type file struct {
	rolloutfs.File
	fs    *FS
	obj   *object
	epoch int
}

// alive reports ErrPowerLost for a handle opened in an epoch before the
// last power loss.
func (f *FS) alive(epoch int) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if epoch != f.epoch {
		return ErrPowerLost
	}
	return nil
}

// dead reports ErrPowerLost for a handle opened before a power loss.
func (h *file) dead() error { return h.fs.alive(h.epoch) }

func (h *file) Write(p []byte) (int, error) {
	if err := h.dead(); err != nil {
		return 0, err
	}
	if err := h.fs.point(OpWrite, h.obj.name); err != nil {
		n, _ := h.File.Write(p[:len(p)/2])
		return n, err
	}
	return h.File.Write(p)
}

func (h *file) Sync() error {
	if err := h.dead(); err != nil {
		return err
	}
	if err := h.fs.point(OpSync, h.obj.name); err != nil {
		return err
	}
	if err := h.File.Sync(); err != nil {
		return err
	}
	h.fs.mu.Lock()
	h.fs.snapshot(h.obj)
	h.fs.mu.Unlock()
	return nil
}

func (h *file) Truncate(size int64) error {
	if err := h.dead(); err != nil {
		return err
	}
	if err := h.fs.point(OpTruncate, h.obj.name); err != nil {
		return err
	}
	return h.File.Truncate(size)
}

func (h *file) Close() error {
	err := h.File.Close()
	if derr := h.dead(); derr != nil {
		return derr
	}
	return err
}

// readFile is a handle for reading; Create unwraps it, so a Range part
// from it is copied as the base FS copies its own.
type readFile struct {
	rolloutfs.ReadFile
	fs    *FS
	epoch int
}

func (h *readFile) ReadAt(p []byte, off int64) (int, error) {
	if err := h.fs.alive(h.epoch); err != nil {
		return 0, err
	}
	return h.ReadFile.ReadAt(p, off)
}

func (h *readFile) Close() error {
	err := h.ReadFile.Close()
	if derr := h.fs.alive(h.epoch); derr != nil {
		return derr
	}
	return err
}

// errno helpers for tests.
var (
	EIO    error = syscall.EIO
	ENOSPC error = syscall.ENOSPC
)

// String returns the base's root.
func (f *FS) String() string { return f.base.Root }

// Flush makes everything written so far durable, as the kernel's
// writeback would given time: every known file's content and entry.
func (f *FS) Flush() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, o := range f.objects {
		o.entryDurable = true
		f.snapshot(o)
	}
}

func (h *file) Stat() (rolloutfs.FileInfo, error) {
	if err := h.dead(); err != nil {
		return rolloutfs.FileInfo{}, err
	}
	return h.File.Stat()
}

package rolloutfs

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/spoolhq/spool/internal/flock"
)

// Default permissions of what Local creates: rollouts hold conversations,
// so they are private to their owner.
const (
	DefaultFilePerm fs.FileMode = 0o600
	DefaultDirPerm  fs.FileMode = 0o700
)

// Local is an FS on a directory of the local filesystem. The zero
// permissions mean DefaultFilePerm and DefaultDirPerm. Symbolic links are
// never followed at the last element of a name, and only regular files are
// opened (a FIFO named like a rollout fails instead of blocking). The one
// exception: a link directly in the root to a directory is taken for that
// directory (sessions/ moved to another disk and linked back, which Codex
// follows too), and a link directly in the root to a regular file is read,
// described and appended to as that file (session_index.jsonl kept with
// one's dotfiles, which Codex follows too); links further down are not
// followed.
type Local struct {
	Root     string
	FilePerm fs.FileMode
	DirPerm  fs.FileMode
	// LockWait bounds how long AppendRecord waits for a journal's lock
	// (see lockJournal); 0 means DefaultLockWait.
	LockWait time.Duration
}

// DefaultLockWait is how long AppendRecord waits at most for a journal's
// lock that another process holds (a Codex suspended while it held
// session_index.jsonl.lock would otherwise stall every rename).
const DefaultLockWait = 10 * time.Second

var _ FS = Local{}

func (l Local) filePerm() fs.FileMode {
	if l.FilePerm == 0 {
		return DefaultFilePerm
	}
	return l.FilePerm
}

func (l Local) dirPerm() fs.FileMode {
	if l.DirPerm == 0 {
		return DefaultDirPerm
	}
	return l.DirPerm
}

// abs returns the file path of name, or an error for an invalid name.
func (l Local) abs(name string) (string, error) {
	if err := checkName(name); err != nil {
		return "", err
	}
	return filepath.Join(l.Root, filepath.FromSlash(name)), nil
}

// openRegular opens name with flag, never following a link at the last
// element and never blocking on a FIFO, and fails with ErrNotRegular for
// anything but a regular file. It returns the file's information as of
// the open.
func (l Local) openRegular(name string, flag int, perm fs.FileMode) (*os.File, fs.FileInfo, error) {
	p, err := l.abs(name)
	if err != nil {
		return nil, nil, err
	}
	f, err := os.OpenFile(p, flag|noFollow(name)|syscall.O_NONBLOCK, perm)
	if err != nil {
		return nil, nil, openError(p, name, err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	if !st.Mode().IsRegular() {
		f.Close()
		return nil, nil, &fs.PathError{Op: "open", Path: p, Err: ErrNotRegular}
	}
	return f, st, nil
}

// openError returns the error of a failed open of p: ErrNotRegular when
// the open failed on the kind of file, which it does for some kinds: a
// link (ELOOP), a FIFO without a reader opened for writing (ENXIO), a
// directory opened for writing (EISDIR).
func openError(p, name string, err error) error {
	stat := os.Lstat
	if inRoot(name) {
		stat = os.Stat // a link in the root is followed: a dangling one is missing
	}
	if st, lerr := stat(p); errors.Is(err, syscall.ELOOP) || lerr == nil && !st.Mode().IsRegular() {
		return &fs.PathError{Op: "open", Path: p, Err: ErrNotRegular}
	}
	return err
}

// Create implements FS: name is written through a temporary file (synced
// when durable) and linked into place, then, when durable, the directories
// it created or changed are synced.
func (l Local) Create(ctx context.Context, name string, parts []Part, durable bool) (FileInfo, error) {
	if err := ctx.Err(); err != nil {
		return FileInfo{}, err
	}
	final, err := l.abs(name)
	if err != nil {
		return FileInfo{}, err
	}
	created, err := l.mkdirs(path.Dir(name))
	if err != nil {
		return FileInfo{}, err
	}
	f, tmp, err := l.createTemp(final)
	if err != nil {
		return FileInfo{}, err
	}
	// f is closed, and its lock released, once tmp's name is gone.
	info, err := fill(ctx, f, parts, durable)
	linked := false
	if err == nil {
		// A link fails on an existing name, where a rename would replace it.
		err = os.Link(tmp, final)
		linked = err == nil
	}
	if rerr := os.Remove(tmp); err == nil && rerr != nil {
		err = rerr
	}
	if cerr := f.Close(); err == nil && cerr != nil {
		err = cerr
	}
	if err == nil && durable {
		err = l.syncDirs(created, path.Dir(name))
	}
	if err != nil && linked {
		os.Remove(final) // whole or not at all: a failed Create made nothing
	}
	if err != nil {
		return FileInfo{}, err
	}
	return info, nil
}

// Replace implements FS.
func (l Local) Replace(ctx context.Context, name string, parts []Part, durable bool) (FileInfo, error) {
	if err := ctx.Err(); err != nil {
		return FileInfo{}, err
	}
	final, err := l.abs(name)
	if err != nil {
		return FileInfo{}, err
	}
	if st, err := os.Lstat(final); err != nil {
		return FileInfo{}, err
	} else if !st.Mode().IsRegular() {
		return FileInfo{}, &fs.PathError{Op: "replace", Path: final, Err: ErrNotRegular}
	}
	f, tmp, err := l.createTemp(final)
	if err != nil {
		return FileInfo{}, err
	}
	// f is closed, and its lock released, once tmp's name is gone.
	info, err := fill(ctx, f, parts, durable)
	if err == nil {
		err = os.Rename(tmp, final)
	}
	if err != nil {
		os.Remove(tmp)
	}
	if cerr := f.Close(); err == nil && cerr != nil {
		err = cerr // the file is replaced; its bytes were synced when durable
	}
	if err != nil {
		return FileInfo{}, err
	}
	if durable {
		if err := l.syncDirs(nil, path.Dir(name)); err != nil {
			return FileInfo{}, err
		}
	}
	return info, nil
}

// createTemp creates a new file named final, a random part and
// TempSuffix, and takes an exclusive flock on it, which its writer holds
// until the name is gone (RemoveTemp leaves a locked one). The name is its
// own, so concurrent Creates of one name never write into or remove each
// other's temporary file.
func (l Local) createTemp(final string) (*os.File, string, error) {
	for range 10 {
		tmp := final + "." + strconv.FormatUint(rand.Uint64(), 36) + TempSuffix
		f, err := os.OpenFile(tmp, os.O_CREATE|os.O_EXCL|os.O_WRONLY|syscall.O_NOFOLLOW, l.filePerm())
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		if err != nil {
			return nil, "", err
		}
		held, err := holdTemp(f, tmp)
		if held {
			return f, tmp, nil
		}
		if err != nil {
			os.Remove(tmp) // the name is this call's alone
			f.Close()
			return nil, "", err
		}
		f.Close()
		// A RemoveTemp took the name between its creation and the lock.
	}
	return nil, "", &fs.PathError{Op: "create", Path: final + TempSuffix, Err: fs.ErrExist}
}

// holdTemp locks f, just created as tmp, and reports whether tmp still
// names it: a RemoveTemp may have removed it before the lock was taken.
// The name is compared, not f's link count: NFS renames a removed file
// that is still open (.nfsXXXX) rather than unlinking it.
func holdTemp(f *os.File, tmp string) (bool, error) {
	if err := lockTemp(f); err != nil {
		return false, &fs.PathError{Op: "lock", Path: tmp, Err: err}
	}
	return flock.StillAt(f, tmp)
}

// lockTemp takes a writer's lock on its temporary file f; a variable for
// tests.
var lockTemp = lockTempFile

func lockTempFile(f *os.File) error { return flock.Flock(f, unix.LOCK_EX) }

// RemoveTemp implements FS. A temporary file's writer holds a flock on it;
// one that can be locked has none. A name of another kind (a link, a
// FIFO) is removed as it is: no Create writes through one.
func (l Local) RemoveTemp(ctx context.Context, name string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if !IsTemp(path.Base(name)) {
		return &fs.PathError{Op: "remove temporary file", Path: name, Err: ErrInvalidName}
	}
	p, err := l.abs(name)
	if err != nil {
		return err
	}
	st, err := os.Lstat(p)
	if err != nil {
		return err
	}
	if st.Mode().IsRegular() {
		f, err := os.OpenFile(p, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := flock.Flock(f, unix.LOCK_EX|unix.LOCK_NB); err == unix.EWOULDBLOCK {
			return &fs.PathError{Op: "remove", Path: p, Err: ErrInUse}
		} else if err != nil {
			return &fs.PathError{Op: "lock", Path: p, Err: err}
		}
	}
	if err := os.Remove(p); err != nil {
		return err
	}
	return syncDir(filepath.Dir(p))
}

// fill writes parts to f (opened without O_APPEND, so ranges copy in the
// kernel), syncs it when durable, and describes it.
func fill(ctx context.Context, f *os.File, parts []Part, durable bool) (FileInfo, error) {
	parts = expandConcat(parts)
	var wb writeback
	if durable {
		wb.f = f
	}
	var off int64
	for _, p := range parts {
		if err := ctx.Err(); err != nil {
			return FileInfo{}, err
		}
		var err error
		size := p.size()
		switch {
		case p.Reader != nil:
			size, err = io.Copy(&writebackWriter{f: f, off: off, wb: &wb}, p.Reader)
		case p.File == nil:
			// At off, not at the file offset: a range before it was
			// copied with explicit offsets and left the file offset alone.
			_, err = f.WriteAt(p.Data, off)
		default:
			err = copyRange(ctx, f, off, p.File, p.Offset, p.Length, &wb)
		}
		if err != nil {
			return FileInfo{}, err
		}
		off += size
		wb.wrote(off)
	}
	if durable {
		if err := f.Sync(); err != nil {
			return FileInfo{}, err
		}
	}
	st, err := f.Stat()
	if err != nil {
		return FileInfo{}, err
	}
	return FileInfo{Size: st.Size(), ModTime: st.ModTime(), ID: fileID(st)}, nil
}

// writebackChunk is how many bytes a durable fill writes before it hands
// them to the disk, and how many a range copies at a time.
const writebackChunk = 32 << 20

// writeback has the disk write what a durable fill wrote, writebackChunk
// bytes at a time, while the fill goes on: the fsync that ends the fill
// then finds little left to write (a 1 GiB copy fork's fsync was most of
// its time), and a large copy's dirty pages do not pile up in memory. The
// zero value, for a fill that is not synced, does nothing.
type writeback struct {
	f    *os.File // nil: off
	from int64    // where the bytes not yet handed to the disk start
}

// wrote says f's bytes before off are written.
func (w *writeback) wrote(off int64) {
	if w.f == nil || off-w.from < writebackChunk {
		return
	}
	startWriteback(w.f, w.from, off-w.from)
	w.from = off
}

// writebackWriter writes to f from off on, telling wb of each write.
type writebackWriter struct {
	f   *os.File
	off int64
	wb  *writeback
}

func (w *writebackWriter) Write(p []byte) (int, error) {
	n, err := w.f.WriteAt(p, w.off)
	w.off += int64(n)
	w.wb.wrote(w.off)
	return n, err
}

// startWriteback is startFileWriteback; a variable for tests.
var startWriteback = startFileWriteback

// expandConcat replaces Range parts of a Concat file by the ranges of its
// segments, so each is copied in the kernel.
func expandConcat(parts []Part) []Part {
	var out []Part
	for _, p := range parts {
		if c, ok := p.File.(*concatFile); ok {
			out = append(out, c.ranges(p.Offset, p.Length)...)
			continue
		}
		out = append(out, p)
	}
	return out
}

// copyRange copies n bytes of src from srcOff to dst at dstOff,
// writebackChunk bytes at a time, telling wb of each.
func copyRange(ctx context.Context, dst *os.File, dstOff int64, src ReadFile, srcOff, n int64, wb *writeback) error {
	for n > 0 {
		if err := ctx.Err(); err != nil {
			return err
		}
		c := min(n, writebackChunk)
		if err := copyChunk(dst, dstOff, src, srcOff, c); err != nil {
			return err
		}
		dstOff, srcOff, n = dstOff+c, srcOff+c, n-c
		wb.wrote(dstOff)
	}
	return nil
}

// copyChunk copies n bytes of src from srcOff to dst at dstOff: in the
// kernel where it can, through user space otherwise.
func copyChunk(dst *os.File, dstOff int64, src ReadFile, srcOff, n int64) error {
	if lf, ok := src.(*localReadFile); ok {
		done, err := copyFileRange(dst, dstOff, lf, srcOff, n)
		if err != nil {
			return err
		}
		dstOff, srcOff, n = dstOff+done, srcOff+done, n-done
	}
	if n == 0 {
		return nil
	}
	copied, err := io.Copy(io.NewOffsetWriter(dst, dstOff), io.NewSectionReader(src, srcOff, n))
	if err == nil && copied != n {
		err = fmt.Errorf("copy range: %w", io.ErrUnexpectedEOF)
	}
	return err
}

// mkdirs creates dir and its missing parents and returns the created ones,
// outermost first.
func (l Local) mkdirs(dir string) ([]string, error) {
	var missing []string
	for d := dir; d != "."; d = path.Dir(d) {
		p := filepath.Join(l.Root, filepath.FromSlash(d))
		st, err := lstatDir(p, d)
		if err == nil {
			if !st.IsDir() {
				return nil, &fs.PathError{Op: "mkdir", Path: p, Err: syscall.ENOTDIR}
			}
			break
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
		missing = append(missing, d)
	}
	var created []string
	for i := len(missing) - 1; i >= 0; i-- {
		p := filepath.Join(l.Root, filepath.FromSlash(missing[i]))
		if err := os.Mkdir(p, l.dirPerm()); err != nil && !errors.Is(err, fs.ErrExist) {
			return created, err
		}
		created = append(created, missing[i])
	}
	return created, nil
}

// syncDirs fsyncs the directories dirsToSync names.
func (l Local) syncDirs(created []string, changed ...string) error {
	for _, d := range dirsToSync(created, changed) {
		if err := syncDir(filepath.Join(l.Root, filepath.FromSlash(d))); err != nil {
			return err
		}
	}
	return nil
}

// dirsToSync returns, once each, the directories whose entries changed:
// each of changed, each of created and the parent of each of created (a
// new directory's entry is in its parent). A directory that was there
// before and whose entries did not change is not among them.
func dirsToSync(created, changed []string) []string {
	var dirs []string
	add := func(d string) {
		if !slices.Contains(dirs, d) {
			dirs = append(dirs, d)
		}
	}
	for _, d := range changed {
		add(d)
	}
	for _, d := range created {
		add(d)
		add(path.Dir(d))
	}
	return dirs
}

// syncDir fsyncs the directory p; a variable for tests, which cannot cut
// the power between two fsyncs.
var syncDir = func(p string) error {
	d, err := os.Open(p)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("sync dir %s: %w", p, err)
	}
	return nil
}

// OpenAppend implements FS.
func (l Local) OpenAppend(ctx context.Context, name string) (File, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	f, _, err := l.openRegular(name, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return nil, err
	}
	return &localFile{f: f}, nil
}

// Open implements FS.
func (l Local) Open(ctx context.Context, name string) (ReadFile, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	p, err := l.abs(name)
	if err != nil {
		return nil, err
	}
	var fd int
	for {
		// Never blocking on a FIFO: only a regular file is read.
		fd, err = syscall.Open(p, syscall.O_RDONLY|noFollow(name)|syscall.O_NONBLOCK|syscall.O_CLOEXEC, 0)
		if err != syscall.EINTR {
			break
		}
	}
	if err != nil {
		return nil, openError(p, name, &fs.PathError{Op: "open", Path: p, Err: err})
	}
	var st syscall.Stat_t
	err = syscall.Fstat(fd, &st)
	for err == syscall.EINTR {
		err = syscall.Fstat(fd, &st)
	}
	if err != nil {
		syscall.Close(fd)
		return nil, &fs.PathError{Op: "stat", Path: p, Err: err}
	}
	if st.Mode&syscall.S_IFMT != syscall.S_IFREG {
		syscall.Close(fd)
		return nil, &fs.PathError{Op: "open", Path: p, Err: ErrNotRegular}
	}
	rf := &localReadFile{fd: fd, name: p, size: st.Size}
	// A file dropped without Close does not keep its descriptor, as an
	// *os.File would not.
	rf.cleanup = runtime.AddCleanup(rf, func(fd int) { syscall.Close(fd) }, fd)
	return rf, nil
}

// Stat implements FS.
func (l Local) Stat(ctx context.Context, name string) (FileInfo, error) {
	if err := ctx.Err(); err != nil {
		return FileInfo{}, err
	}
	p, err := l.abs(name)
	if err != nil {
		return FileInfo{}, err
	}
	stat := os.Lstat
	if inRoot(name) {
		stat = os.Stat
	}
	st, err := stat(p)
	if err != nil {
		return FileInfo{}, err
	}
	if !st.Mode().IsRegular() {
		return FileInfo{}, &fs.PathError{Op: "stat", Path: p, Err: ErrNotRegular}
	}
	return FileInfo{Size: st.Size(), ModTime: st.ModTime(), ID: fileID(st)}, nil
}

// StatDir implements DirStater, without following symbolic links (but
// for a link directly in the root, see Local).
func (l Local) StatDir(ctx context.Context, dir string) (FileInfo, error) {
	if err := ctx.Err(); err != nil {
		return FileInfo{}, err
	}
	p := l.Root
	if dir != "." && dir != "" {
		var err error
		if p, err = l.abs(dir); err != nil {
			return FileInfo{}, err
		}
	}
	st, err := lstatDir(p, dir)
	if err != nil {
		return FileInfo{}, err
	}
	if !st.IsDir() {
		return FileInfo{}, &fs.PathError{Op: "stat", Path: p, Err: ErrNotRegular}
	}
	return FileInfo{Size: st.Size(), ModTime: st.ModTime()}, nil
}

// lstatDir describes p, the directory name of the root, without following
// a link unless name is directly in the root (Local's one exception).
func lstatDir(p, name string) (fs.FileInfo, error) {
	st, err := os.Lstat(p)
	if err == nil && st.Mode()&fs.ModeSymlink != 0 && inRoot(name) {
		return os.Stat(p)
	}
	return st, err
}

// noFollow returns the open flag that keeps a link at the last element of
// name from being followed: O_NOFOLLOW, but for an entry directly in the
// root (see Local).
func noFollow(name string) int {
	if inRoot(name) {
		return 0
	}
	return syscall.O_NOFOLLOW
}

// inRoot reports whether name is an entry directly in the root.
func inRoot(name string) bool { return name != "." && name != "" && !strings.Contains(name, "/") }

// Move implements FS.
func (l Local) Move(ctx context.Context, from, to string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	src, err := l.abs(from)
	if err != nil {
		return err
	}
	dst, err := l.abs(to)
	if err != nil {
		return err
	}
	created, err := l.mkdirs(path.Dir(to))
	if err != nil {
		return err
	}
	err = link(src, dst)
	if errors.Is(err, fs.ErrExist) && linkedAlready(src, dst) {
		// A Move cut short between its link and its remove (a crash) left
		// the file under both names: finish it.
		err = nil
	}
	if errors.Is(err, syscall.EXDEV) {
		// sessions/ and archived_sessions/ on two file systems (one of
		// them linked in from another disk): copy, then remove.
		return l.moveAcross(ctx, from, to, created)
	}
	if err != nil {
		return err
	}
	// The new name is durable before the old one goes: a power loss
	// between the two leaves the file under both names (which a Move
	// finishes), never under neither.
	if err := l.syncDirs(created, path.Dir(to)); err != nil {
		if undo := os.Remove(dst); undo != nil {
			return errors.Join(err, fmt.Errorf("remove the new name again: %w", undo))
		}
		return err
	}
	if err := removeSource(src, dst); err != nil {
		return err
	}
	return l.syncDirs(nil, path.Dir(from))
}

// link is os.Link; a variable for tests, which cannot count on two file
// systems.
var link = os.Link

// linkedAlready reports whether dst, found in the way of a Move's link, is
// another name of src's file: the link of a Move that a crash stopped
// before it removed src. (Two names that reach one directory entry, through
// a linked directory, are one link: that file is not linked already.)
func linkedAlready(src, dst string) bool {
	if src == dst {
		return false
	}
	a, err := os.Lstat(src)
	if err != nil || !a.Mode().IsRegular() {
		return false
	}
	b, err := os.Lstat(dst)
	if err != nil || !os.SameFile(a, b) {
		return false
	}
	st, ok := a.Sys().(*syscall.Stat_t)
	return ok && st.Nlink >= 2
}

// remove is os.Remove for the source of a Move; a variable for tests,
// which run as root, whom a read-only directory does not stop.
var remove = os.Remove

// removeSource removes src, the source of a Move already linked or copied
// to dst. If it cannot (a read-only directory: EACCES, EPERM, EROFS), the
// file is still at src: dst is removed again, so that a failed Move leaves
// the file under its old name only, not under both (where a rebuild would
// find the thread twice).
func removeSource(src, dst string) error {
	err := remove(src)
	if err == nil {
		return nil
	}
	if _, statErr := os.Lstat(src); statErr != nil {
		return err // gone after all (someone else removed it): dst is the file now
	}
	if undo := os.Remove(dst); undo != nil {
		return errors.Join(err, fmt.Errorf("remove the new name again: %w", undo))
	}
	return err
}

// moveAcross is Move between two file systems: to is created durably with
// from's bytes and modification time, then from is removed and its
// directory synced. A crash in between leaves both, which the indexer
// resolves as it does the two names of an interrupted link-and-remove.
func (l Local) moveAcross(ctx context.Context, from, to string, created []string) error {
	src, err := l.Open(ctx, from)
	if err != nil {
		return err
	}
	defer src.Close()
	info, err := l.Stat(ctx, from)
	if err != nil {
		return err
	}
	p, err := l.abs(from)
	if err != nil {
		return err
	}
	q, err := l.abs(to)
	if err != nil {
		return err
	}
	if _, err := l.Create(ctx, to, []Part{Range(src, 0, src.Size())}, true); err != nil {
		return err
	}
	err = l.SetModTime(ctx, to, info.ModTime)
	if err == nil {
		// Create synced to's directory; the entries of the directories
		// Move created for it are in their parents.
		err = l.syncDirs(created)
	}
	if err != nil {
		// The file stays at from only: a copy left at to would hold the
		// thread twice, where no Move takes it for the same file.
		if undo := os.Remove(q); undo != nil {
			return errors.Join(err, fmt.Errorf("remove the copy again: %w", undo))
		}
		return err
	}
	if err := removeSource(p, q); err != nil {
		return err
	}
	return l.syncDirs(nil, path.Dir(from))
}

// Remove implements FS.
func (l Local) Remove(ctx context.Context, name string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	p, err := l.abs(name)
	if err != nil {
		return err
	}
	if err := os.Remove(p); err != nil {
		return err
	}
	return syncDir(filepath.Dir(p))
}

// CutTornTail implements FS.
func (l Local) CutTornTail(ctx context.Context, name, side string) (Cut, error) {
	if err := ctx.Err(); err != nil {
		return Cut{}, err
	}
	f, st, err := l.openRegular(name, os.O_RDWR, 0)
	if err != nil {
		return Cut{}, err
	}
	defer f.Close()
	rf := &osReadFile{File: f, size: st.Size()}
	cut, err := TornStart(ctx, rf, rf.size)
	if err != nil || cut == rf.size {
		return Cut{Offset: cut}, err
	}
	if whole, err := IsWholeRecord(rf, cut, rf.size); err != nil {
		return Cut{}, err
	} else if whole {
		if _, err := f.WriteAt([]byte{'\n'}, rf.size); err != nil {
			return Cut{}, err
		}
		if err := fdatasync(f); err != nil {
			return Cut{}, err
		}
		return Cut{Offset: rf.size + 1, Ended: true}, f.Close()
	}
	if _, err := l.Create(ctx, side, []Part{Range(rf, cut, rf.size-cut)}, true); err != nil {
		return Cut{}, fmt.Errorf("keep torn tail of %s: %w", name, err)
	}
	if err := f.Truncate(cut); err != nil {
		return Cut{}, err
	}
	if err := fdatasync(f); err != nil {
		return Cut{}, err
	}
	return Cut{Offset: cut, Length: rf.size - cut}, f.Close()
}

// maxWholeRecord bounds the tail IsWholeRecord reads: a longer one is not
// taken for a whole record (and is cut as torn).
const maxWholeRecord = 64 << 20

// IsWholeRecord reports whether bytes [from, to) of r, the bytes after a
// file's last newline, are a whole JSON object: a record whose writer
// wrote all of it but the newline. Codex reads such a record as complete
// and writes the newline before its next record.
func IsWholeRecord(r io.ReaderAt, from, to int64) (bool, error) {
	n := to - from
	if n < 2 || n > maxWholeRecord {
		return false, nil
	}
	var ends [1]byte
	if _, err := r.ReadAt(ends[:], to-1); err != nil {
		return false, err
	}
	if ends[0] != '}' {
		return false, nil // the cheap test: most torn lines stop mid-way
	}
	tail := make([]byte, n)
	if _, err := r.ReadAt(tail, from); err != nil {
		return false, err
	}
	return tail[0] == '{' && json.Valid(tail), nil
}

// tailChunk is how far back TornStart reads at a time.
const tailChunk = 64 << 10

// TornStart returns the offset just past the last newline of r's first
// size bytes (0 when there is none): where a torn tail starts, or size
// when the bytes end with a newline.
func TornStart(ctx context.Context, r io.ReaderAt, size int64) (int64, error) {
	buf := make([]byte, min(tailChunk, size))
	for end := size; end > 0; {
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		start := max(end-tailChunk, 0)
		chunk := buf[:end-start]
		if _, err := r.ReadAt(chunk, start); err != nil {
			return 0, err
		}
		if i := bytes.LastIndexByte(chunk, '\n'); i >= 0 {
			return start + int64(i) + 1, nil
		}
		end = start
	}
	return 0, nil
}

// journalLockPoll is how often lockJournal tries a lock another process
// holds.
const journalLockPoll = 10 * time.Millisecond

// lockJournal takes the exclusive flock(2) on the journal's companion lock
// file, name + ".lock", waiting while another process holds it, until ctx
// is done or l.LockWait has passed (then ErrJournalLocked). Codex 0.169
// holds session_index.jsonl.lock while it appends a name and while its
// thread/delete replaces session_index.jsonl by a copy without the
// thread's lines: a line appended meanwhile to the file it replaces would
// be lost. The returned func releases the lock.
func (l Local) lockJournal(ctx context.Context, name string) (unlock func(), err error) {
	p, err := l.abs(name + ".lock")
	if err != nil {
		return nil, err
	}
	wait := l.LockWait
	if wait <= 0 {
		wait = DefaultLockWait
	}
	giveUp := time.NewTimer(wait)
	defer giveUp.Stop()
	for {
		f, err := flock.TryExclusive(p, l.filePerm())
		if err == nil {
			return func() { f.Close() }, nil
		}
		if !errors.Is(err, flock.ErrHeld) {
			return nil, fmt.Errorf("journal lock: %w", err)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-giveUp.C:
			// Named in the root: the message may reach a client, which
			// must not learn the server's paths.
			return nil, fmt.Errorf("%w: %s, after %v", ErrJournalLocked, name+".lock", wait)
		case <-time.After(journalLockPoll):
		}
	}
}

// AppendRecord implements FS.
func (l Local) AppendRecord(ctx context.Context, name string, line []byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := checkLines([][]byte{line}); err != nil {
		return err
	}
	_, statErr := l.Stat(ctx, name)
	isNew := errors.Is(statErr, fs.ErrNotExist)
	created, err := l.mkdirs(path.Dir(name))
	if err != nil {
		return err
	}
	unlock, err := l.lockJournal(ctx, name)
	if err != nil {
		return err
	}
	defer unlock()
	f, st, err := l.openRegular(name, os.O_RDWR|os.O_APPEND|os.O_CREATE, l.filePerm())
	if err != nil {
		return err
	}
	defer f.Close()
	size := st.Size()
	if size > 0 {
		var last [1]byte
		if _, err := f.ReadAt(last[:], size-1); err != nil {
			return err
		}
		if last[0] != '\n' {
			line = append([]byte{'\n'}, line...)
		}
	}
	n, err := writeJournal(f, line)
	if err == nil {
		err = syncJournal(f)
	}
	if err != nil {
		return cutRecord(f, size, int64(n), err)
	}
	if isNew {
		if err := l.syncDirs(created, path.Dir(name)); err != nil {
			return err
		}
	}
	return f.Close()
}

// cutRecord cuts from the journal f the written bytes of a record whose
// write or sync failed (cause), which start at size: a record AppendRecord
// reports as failed must not be read as one (a name Codex would show, and
// a rebuilt index take, for a rename that failed). Bytes another writer
// that does not take the journal's lock appended after them are not this
// record's to cut: then the file is left as it is.
func cutRecord(f *os.File, size, written int64, cause error) error {
	st, err := f.Stat()
	if err == nil && st.Size() != size+written {
		return cause
	}
	if err == nil {
		err = f.Truncate(size)
	}
	if err == nil {
		err = fdatasync(f)
	}
	if err != nil {
		return errors.Join(cause, fmt.Errorf("cut the failed record back to %d: %w", size, err))
	}
	return cause
}

// DropRecords implements FS. A journal linked into the root (see Local)
// is rewritten where the link leads, and the link stays.
func (l Local) DropRecords(ctx context.Context, name string, drop func(line []byte) bool) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	if _, err := l.Stat(ctx, name); errors.Is(err, fs.ErrNotExist) {
		return 0, nil // nothing to drop, and no lock file to leave behind
	}
	unlock, err := l.lockJournal(ctx, name)
	if err != nil {
		return 0, err
	}
	defer unlock()
	f, st, err := l.openRegular(name, os.O_RDONLY, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	defer f.Close()
	data, err := io.ReadAll(f)
	if err != nil {
		return 0, err
	}
	kept, dropped := keepLines(data, drop)
	if dropped == 0 {
		return 0, nil
	}
	final, err := l.abs(name)
	if err != nil {
		return 0, err
	}
	if inRoot(name) {
		// The journal itself, where a link in the root leads.
		if final, err = filepath.EvalSymlinks(final); err != nil {
			return 0, err
		}
	}
	tf, tmp, err := l.createTemp(final)
	if err != nil {
		return 0, err
	}
	// tf is closed, and its lock released, once tmp's name is gone.
	_, err = writeJournal(tf, kept)
	if err == nil {
		err = tf.Chmod(st.Mode().Perm())
	}
	if err == nil {
		err = tf.Sync()
	}
	if err == nil {
		err = os.Rename(tmp, final)
		if err == nil {
			err = carryOver(f, tf, data, kept, drop)
		}
	}
	if err != nil {
		os.Remove(tmp) // the old journal stays whole
	}
	if cerr := tf.Close(); err == nil && cerr != nil {
		err = cerr
	}
	if err == nil {
		err = syncDir(filepath.Dir(final))
	}
	if err != nil {
		return 0, err
	}
	return dropped, nil
}

// carryOver appends to tf, the journal's new file, what was appended to
// old, the file it replaced, since data was read from it: a writer that
// does not take the lock (an older Codex, another tool) appends to the
// file it opened, which no one reads once it is replaced. The lines drop
// selects stay out; the end of a line torn when data was read goes where
// its start went (kept, the new file's content so far, or dropped). A
// line appended after this look is lost, as it is to Codex's own delete.
func carryOver(old, tf *os.File, data, kept []byte, drop func(line []byte) bool) error {
	st, err := old.Stat()
	if err != nil || st.Size() <= int64(len(data)) {
		return err
	}
	late := make([]byte, st.Size()-int64(len(data)))
	if _, err := old.ReadAt(late, int64(len(data))); err != nil {
		return err
	}
	var tornEnd []byte
	if len(data) > 0 && data[len(data)-1] != '\n' {
		end := bytes.IndexByte(late, '\n') + 1
		if end == 0 {
			end = len(late)
		}
		if len(kept) > 0 && kept[len(kept)-1] != '\n' {
			tornEnd = late[:end]
		}
		late = late[end:]
	}
	more, _ := keepLines(late, drop)
	if _, err := writeJournal(tf, append(tornEnd, more...)); err != nil {
		return err
	}
	return fdatasync(tf)
}

// writeJournal writes a rewritten journal's lines; a variable for tests,
// which cannot fill a disk.
var writeJournal = (*os.File).Write

// syncJournal makes a journal's appended record durable; a variable for
// tests, which cannot make a disk fail.
var syncJournal = fdatasync

// keepLines returns data without the lines drop selects, and how many it
// dropped. A last line without its newline is given to drop as it is, and
// kept so.
func keepLines(data []byte, drop func(line []byte) bool) (kept []byte, dropped int) {
	kept = make([]byte, 0, len(data))
	for line := range bytes.Lines(data) {
		if drop(bytes.TrimSuffix(line, []byte{'\n'})) {
			dropped++
			continue
		}
		kept = append(kept, line...)
	}
	return kept, dropped
}

// SetModTime implements FS.
func (l Local) SetModTime(ctx context.Context, name string, t time.Time) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	p, err := l.abs(name)
	if err != nil {
		return err
	}
	st, err := os.Lstat(p)
	if err != nil {
		return err
	}
	if !st.Mode().IsRegular() {
		return &fs.PathError{Op: "chtimes", Path: p, Err: ErrNotRegular}
	}
	// AT_SYMLINK_NOFOLLOW: a link swapped in since the Lstat gets its own
	// times set, never its target's.
	ts := []unix.Timespec{unix.NsecToTimespec(t.UnixNano()), unix.NsecToTimespec(t.UnixNano())}
	if err := unix.UtimesNanoAt(unix.AT_FDCWD, p, ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return &fs.PathError{Op: "chtimes", Path: p, Err: err}
	}
	return nil
}

// ReadDir implements FS.
func (l Local) ReadDir(ctx context.Context, dir string) ([]DirEntry, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	p := l.Root
	if dir != "." && dir != "" {
		var err error
		if p, err = l.abs(dir); err != nil {
			return nil, err
		}
	}
	d, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	defer d.Close()
	var out []DirEntry
	for {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		entries, err := d.ReadDir(512)
		for _, e := range entries {
			typ := e.Type()
			if typ&fs.ModeSymlink != 0 && p == l.Root {
				if st, err := os.Stat(filepath.Join(p, e.Name())); err == nil && st.IsDir() {
					typ = fs.ModeDir // Local's one exception
				}
			}
			out = append(out, DirEntry{Name: e.Name(), Type: typ})
		}
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// localFile is a Local file open for appending.
type localFile struct {
	f *os.File

	// dev and devErr are device(f), read once: an open file does not
	// change filesystems, and a GroupSyncer asks at every sync it shares.
	devOnce sync.Once
	dev     uint64
	devErr  error
}

func (lf *localFile) Write(p []byte) (int, error) { return lf.f.Write(p) }
func (lf *localFile) Truncate(size int64) error   { return lf.f.Truncate(size) }
func (lf *localFile) Sync() error                 { return fdatasync(lf.f) }
func (lf *localFile) Close() error                { return lf.f.Close() }
func (lf *localFile) Stat() (FileInfo, error) {
	st, err := lf.f.Stat()
	if err != nil {
		return FileInfo{}, err
	}
	return FileInfo{Size: st.Size(), ModTime: st.ModTime(), ID: fileID(st)}, nil
}

// device and syncFilesystem let a GroupSyncer flush many files of one
// filesystem with one call.
func (lf *localFile) device() (uint64, error) {
	lf.devOnce.Do(func() { lf.dev, lf.devErr = device(lf.f) })
	return lf.dev, lf.devErr
}
func (lf *localFile) syncFilesystem() error { return syncfs(lf.f) }
func (lf *localFile) checkWriteback() error { return checkWriteback(lf.f) }

// localReadFile is a Local file open for reading: its bare descriptor,
// read with pread. An *os.File would first try to register a regular file
// with the runtime's poller (in vain) and set a finalizer: a third of the
// cost of opening a file for a short read, and a history read opens one
// per thread of its chain. It is safe for concurrent use.
type localReadFile struct {
	name string
	size int64

	mu      sync.RWMutex // guards fd: Close waits for reads in flight
	fd      int          // -1 once closed
	cleanup runtime.Cleanup
}

// maxRead bounds one pread, as os.File bounds one read.
const maxRead = 1 << 30

// ReadAt implements io.ReaderAt.
func (rf *localReadFile) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, &fs.PathError{Op: "read", Path: rf.name, Err: errors.New("negative offset")}
	}
	rf.mu.RLock()
	defer rf.mu.RUnlock()
	if rf.fd < 0 {
		return 0, &fs.PathError{Op: "read", Path: rf.name, Err: fs.ErrClosed}
	}
	n := 0
	for len(p) > 0 {
		// As os.File does: some kernels (darwin) refuse a read of 2 GiB
		// or more with EINVAL.
		m, err := syscall.Pread(rf.fd, p[:min(len(p), maxRead)], off)
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return n, &fs.PathError{Op: "read", Path: rf.name, Err: err}
		}
		if m == 0 {
			return n, io.EOF
		}
		n, p, off = n+m, p[m:], off+int64(m)
	}
	return n, nil
}

func (rf *localReadFile) Size() int64 { return rf.size }

// Close closes the descriptor; a second Close fails with fs.ErrClosed.
func (rf *localReadFile) Close() error {
	rf.mu.Lock()
	defer rf.mu.Unlock()
	if rf.fd < 0 {
		return &fs.PathError{Op: "close", Path: rf.name, Err: fs.ErrClosed}
	}
	rf.cleanup.Stop()
	err := syscall.Close(rf.fd)
	rf.fd = -1
	if err != nil {
		return &fs.PathError{Op: "close", Path: rf.name, Err: err}
	}
	return nil
}

// osReadFile is an *os.File read as a ReadFile of the given size.
type osReadFile struct {
	*os.File
	size int64
}

func (rf *osReadFile) Size() int64 { return rf.size }

// String returns the root, so errors can name the store.
func (l Local) String() string { return l.Root }

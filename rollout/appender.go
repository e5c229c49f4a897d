package rollout

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"

	"golang.org/x/sys/unix"
)

// Permissions of the files and directories this package creates: rollouts
// hold conversations, so they are private to their owner.
const (
	filePerm = 0o600
	dirPerm  = 0o700
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
func ParseSyncPolicy(s string) (SyncPolicy, error) {
	switch s {
	case "always":
		return SyncAlways, nil
	case "batch":
		return SyncBatch, nil
	case "none":
		return SyncNone, nil
	}
	return 0, fmt.Errorf("unknown sync policy %q (want always, batch or none)", s)
}

// String returns "always", "batch" or "none".
func (p SyncPolicy) String() string {
	switch p {
	case SyncAlways:
		return "always"
	case SyncBatch:
		return "batch"
	case SyncNone:
		return "none"
	}
	return fmt.Sprintf("SyncPolicy(%d)", int(p))
}

// GroupSyncer shares fsyncs among concurrent appenders (SyncBatch). A call
// to Sync returns once an fsync that started after the call has covered the
// file; while one fsync runs, the calls that arrive form the next batch.
//
// A batch of one file is flushed with fdatasync. A batch covering several
// files flushes each filesystem they share with one syncfs, which is what
// lets many writers on many files share one flush.
type GroupSyncer struct {
	mu      sync.Mutex
	pending []syncRequest // guarded by mu: the next batch
	closed  bool          // guarded by mu

	wake chan struct{} // buffered(1): pending is non-empty
	stop chan struct{} // closed by Close
	done chan struct{} // closed when the loop has exited

	closeOnce sync.Once
}

type syncRequest struct {
	f      *os.File
	result chan error // buffered(1)
}

// NewGroupSyncer returns a GroupSyncer. Close stops it.
func NewGroupSyncer() *GroupSyncer {
	g := &GroupSyncer{
		wake: make(chan struct{}, 1),
		stop: make(chan struct{}),
		done: make(chan struct{}),
	}
	go g.loop()
	return g
}

// Sync blocks until f's written data is on stable storage or ctx is done.
func (g *GroupSyncer) Sync(ctx context.Context, f *os.File) error {
	req := syncRequest{f: f, result: make(chan error, 1)}
	g.mu.Lock()
	if g.closed {
		g.mu.Unlock()
		return fdatasync(f)
	}
	g.pending = append(g.pending, req)
	g.mu.Unlock()
	select {
	case g.wake <- struct{}{}:
	default: // the loop is already due to run
	}
	select {
	case err := <-req.result:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Close stops the syncer; later Sync calls fsync directly. Requests already
// queued are flushed before Close returns.
func (g *GroupSyncer) Close() error {
	g.closeOnce.Do(func() {
		g.mu.Lock()
		g.closed = true
		g.mu.Unlock()
		close(g.stop)
	})
	<-g.done
	return nil
}

func (g *GroupSyncer) loop() {
	defer close(g.done)
	for {
		select {
		case <-g.wake:
			g.flush()
		case <-g.stop:
			g.flush() // requests queued before Close was called
			return
		}
	}
}

// flush takes the pending batch and syncs it.
func (g *GroupSyncer) flush() {
	g.mu.Lock()
	batch := g.pending
	g.pending = nil
	g.mu.Unlock()
	if len(batch) > 0 {
		syncBatch(batch)
	}
}

// syncBatch makes every file of batch durable and answers each request.
func syncBatch(batch []syncRequest) {
	files := make(map[*os.File]error, len(batch))
	for _, req := range batch {
		files[req.f] = nil
	}
	if len(files) == 1 {
		for f := range files {
			files[f] = fdatasync(f)
		}
	} else {
		byDevice := make(map[uint64][]*os.File)
		for f := range files {
			dev, err := device(f)
			if err != nil {
				files[f] = fdatasync(f)
				continue
			}
			byDevice[dev] = append(byDevice[dev], f)
		}
		for _, group := range byDevice {
			if len(group) == 1 {
				files[group[0]] = fdatasync(group[0])
				continue
			}
			err := syncfs(group[0])
			for _, f := range group {
				files[f] = err
			}
		}
	}
	for _, req := range batch {
		req.result <- files[req.f]
	}
}

// control runs fn with f's descriptor, keeping it open meanwhile.
func control(f *os.File, fn func(fd int) error) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var opErr error
	if err := rc.Control(func(fd uintptr) { opErr = fn(int(fd)) }); err != nil {
		return err
	}
	return opErr
}

func fdatasync(f *os.File) error {
	err := control(f, func(fd int) error {
		for {
			err := unix.Fdatasync(fd)
			if err != unix.EINTR {
				return err
			}
		}
	})
	if err != nil {
		return fmt.Errorf("fdatasync %s: %w", f.Name(), err)
	}
	return nil
}

func syncfs(f *os.File) error {
	err := control(f, func(fd int) error {
		for {
			err := unix.Syncfs(fd)
			if err != unix.EINTR {
				return err
			}
		}
	})
	if err != nil {
		return fmt.Errorf("syncfs %s: %w", f.Name(), err)
	}
	return nil
}

func device(f *os.File) (uint64, error) {
	var st unix.Stat_t
	err := control(f, func(fd int) error { return unix.Fstat(fd, &st) })
	return uint64(st.Dev), err // Dev's integer type varies by platform
}

// Appender appends whole lines to one rollout file. It is safe for
// concurrent use; appends are applied in the order they take its lock.
// It assumes it is the file's only writer (spool holds a lock on its root).
type Appender struct {
	policy SyncPolicy
	group  *GroupSyncer

	mu     sync.Mutex
	f      *os.File // guarded by mu for writes and truncation
	size   int64    // guarded by mu: end of the last appended line
	failed error    // guarded by mu: a sync failure that poisons the file
	closed bool     // guarded by mu
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
	torn, err := CutTornTail(ctx, path)
	if err != nil {
		return nil, nil, fmt.Errorf("open appender: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("open appender: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("open appender: stat %s: %w", path, err)
	}
	return &Appender{policy: opts.Policy, group: opts.Group, f: f, size: st.Size()}, torn, nil
}

// checkLines verifies that each element is exactly one line ending in '\n'.
func checkLines(lines [][]byte) (int, error) {
	total := 0
	for i, l := range lines {
		if len(l) == 0 || l[len(l)-1] != '\n' {
			return 0, fmt.Errorf("line %d of %d does not end with a newline: %w", i, len(lines), ErrRawNewline)
		}
		if j := bytes.IndexByte(l[:len(l)-1], '\n'); j >= 0 {
			return 0, fmt.Errorf("line %d of %d has a newline at byte %d: %w", i, len(lines), j, ErrRawNewline)
		}
		total += len(l)
	}
	return total, nil
}

// Append writes lines (each a complete line ending in '\n', as returned by
// EncodeItem or EncodeLine) with one write, then syncs according to the
// policy. It returns the byte offset of each line. On error, nothing of
// this call is acknowledged and the file is truncated back to its size
// before the call. A line that is not exactly one newline-terminated line
// fails with ErrRawNewline and nothing is written.
//
// Once its bytes are written, Append waits for their sync even if ctx is
// done, so that the outcome is definite. If a sync fails the Appender
// refuses further appends: after a failed fsync the file's state on disk is
// unknown and the caller must reopen it.
func (a *Appender) Append(ctx context.Context, lines [][]byte) ([]int64, error) {
	total, err := checkLines(lines)
	if err != nil {
		return nil, fmt.Errorf("append to %s: %w", a.f.Name(), err)
	}
	if len(lines) == 0 {
		return nil, nil
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	buf := lines[0]
	if len(lines) > 1 {
		buf = make([]byte, 0, total)
		for _, l := range lines {
			buf = append(buf, l...)
		}
	}

	a.mu.Lock()
	start, err := a.write(buf)
	end := start + int64(total)
	if err == nil && a.policy == SyncAlways {
		if err = fdatasync(a.f); err != nil {
			a.poison(start, end, err)
		}
	}
	a.mu.Unlock()
	if err != nil {
		return nil, fmt.Errorf("append to %s: %w", a.f.Name(), err)
	}

	if a.policy == SyncBatch {
		if err := a.syncBatch(context.WithoutCancel(ctx)); err != nil {
			a.mu.Lock()
			a.poison(start, end, err)
			a.mu.Unlock()
			return nil, fmt.Errorf("append to %s: %w", a.f.Name(), err)
		}
	}

	offsets := make([]int64, len(lines))
	off := start
	for i, l := range lines {
		offsets[i] = off
		off += int64(len(l))
	}
	return offsets, nil
}

// write appends buf under a.mu and returns its offset. On failure the file
// is truncated back to its previous size.
func (a *Appender) write(buf []byte) (int64, error) {
	if a.closed {
		return 0, os.ErrClosed
	}
	if a.failed != nil {
		return 0, fmt.Errorf("earlier sync failed: %w", a.failed)
	}
	start := a.size
	n, err := a.f.Write(buf)
	if err == nil && n != len(buf) {
		err = io.ErrShortWrite
	}
	if err != nil {
		if terr := a.f.Truncate(start); terr != nil {
			a.failed = terr
			return 0, errors.Join(err, fmt.Errorf("truncate back to %d: %w", start, terr))
		}
		return 0, err
	}
	// With O_APPEND the write landed at the true end of the file; take the
	// offsets from there should anything else have grown the file.
	if end, err := a.f.Seek(0, io.SeekCurrent); err == nil {
		start = end - int64(n)
	}
	a.size = start + int64(n)
	return start, nil
}

// poison records a sync failure (under a.mu) and truncates the unsynced
// append [start, end) away when nothing was appended after it.
func (a *Appender) poison(start, end int64, err error) {
	if a.failed == nil {
		a.failed = err
	}
	if a.size != end {
		return
	}
	if terr := a.f.Truncate(start); terr == nil {
		a.size = start
	}
}

func (a *Appender) syncBatch(ctx context.Context) error {
	if a.group == nil {
		return fdatasync(a.f)
	}
	return a.group.Sync(ctx, a.f)
}

// Size returns the file's size: the end of the last appended line.
func (a *Appender) Size() int64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.size
}

// Close syncs (unless the policy is SyncNone) and closes the file.
func (a *Appender) Close() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed {
		return nil
	}
	a.closed = true
	var syncErr error
	if a.policy != SyncNone {
		syncErr = fdatasync(a.f)
	}
	if err := a.f.Close(); err != nil {
		return errors.Join(syncErr, fmt.Errorf("close %s: %w", a.f.Name(), err))
	}
	return syncErr
}

// cutChunk is how far back CutTornTail reads at a time looking for the
// last newline.
const cutChunk = 64 << 10

// CutTornTail truncates path after its last newline and returns the cut
// bytes (nil when the file ends cleanly). It never touches a complete line.
func CutTornTail(ctx context.Context, path string) (*TornTail, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return nil, fmt.Errorf("cut torn tail: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("cut torn tail: stat %s: %w", path, err)
	}
	size := st.Size()
	if size == 0 {
		return nil, nil
	}
	cut, err := tornStart(ctx, f, size)
	if err != nil {
		return nil, fmt.Errorf("cut torn tail of %s: %w", path, err)
	}
	if cut == size {
		return nil, nil
	}
	data := make([]byte, size-cut)
	if _, err := f.ReadAt(data, cut); err != nil {
		return nil, fmt.Errorf("cut torn tail of %s: read: %w", path, err)
	}
	if err := f.Truncate(cut); err != nil {
		return nil, fmt.Errorf("cut torn tail of %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		return nil, fmt.Errorf("cut torn tail of %s: sync: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return nil, fmt.Errorf("cut torn tail of %s: %w", path, err)
	}
	return &TornTail{Offset: cut, Data: data}, nil
}

// tornStart returns the offset just past the last newline of f (0 when it
// has none), reading backwards from size.
func tornStart(ctx context.Context, f *os.File, size int64) (int64, error) {
	buf := make([]byte, cutChunk)
	end := size
	for end > 0 {
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		n := int64(len(buf))
		if n > end {
			n = end
		}
		chunk := buf[:n]
		if _, err := f.ReadAt(chunk, end-n); err != nil {
			return 0, err
		}
		if i := bytes.LastIndexByte(chunk, '\n'); i >= 0 {
			return end - n + int64(i) + 1, nil
		}
		end -= n
	}
	return 0, nil
}

// CreateFile creates path (and its parent directories) exclusively, writes
// the line, and returns the file open for writing without O_APPEND, so the
// caller can copy byte ranges into it with copy_file_range. The caller
// fsyncs and closes it. The line must be one line ending in '\n'
// (ErrRawNewline); an existing file fails with an error wrapping
// fs.ErrExist.
func CreateFile(path string, firstLine []byte) (*os.File, error) {
	if _, err := checkLines([][]byte{firstLine}); err != nil {
		return nil, fmt.Errorf("create %s: %w", path, err)
	}
	if err := os.MkdirAll(filepath.Dir(path), dirPerm); err != nil {
		return nil, fmt.Errorf("create %s: %w", path, err)
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, filePerm)
	if err != nil {
		return nil, fmt.Errorf("create rollout: %w", err)
	}
	if _, err := f.Write(firstLine); err != nil {
		f.Close()
		os.Remove(path)
		return nil, fmt.Errorf("create %s: write first line: %w", path, err)
	}
	return f, nil
}

// SyncDir fsyncs a directory so that entries created or renamed in it
// survive a crash.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sync dir: %w", err)
	}
	if err := d.Sync(); err != nil {
		d.Close()
		return fmt.Errorf("sync dir %s: %w", dir, err)
	}
	if err := d.Close(); err != nil {
		return fmt.Errorf("sync dir %s: %w", dir, err)
	}
	return nil
}

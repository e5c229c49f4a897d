package rolloutfs

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"time"
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

// Durable reports whether the policy syncs before acknowledging.
func (p SyncPolicy) Durable() bool { return p != SyncNone }

// GroupSyncer shares fsyncs among concurrent appenders (SyncBatch). A call
// to Sync returns once an fsync that started after the call has covered the
// file; while one fsync runs, the calls that arrive form the next batch.
//
// A batch of one file is flushed with its own Sync. A batch covering
// several local files flushes each filesystem they share with one syncfs,
// which is what lets many writers on many files share one flush; then
// each file's own handle is asked for a failed writeback of its data,
// which the kernel reports to a syncfs through another handle only if
// that handle was opened before the failure and has not been told yet.
type GroupSyncer struct {
	mu      sync.Mutex
	pending []syncRequest // guarded by mu: the next batch
	started chan struct{} // guarded by mu: closed when the next batch's sync begins
	closed  bool          // guarded by mu

	wake chan struct{} // buffered(1): pending is non-empty
	stop chan struct{} // closed by Close
	done chan struct{} // closed when the loop has exited

	closeOnce sync.Once

	syncs, requests, busyNanos atomic.Int64 // what Stats reports
}

// SyncStats counts a GroupSyncer's work since it was made. Requests per
// sync is how many appends shared each flush; Busy against the wall time
// that passed says how much of it a flush was running, so whether the
// flushes themselves bound the throughput.
type SyncStats struct {
	Syncs    int64         // flushes run (one syncfs per filesystem, or one fsync per file)
	Requests int64         // Sync calls those flushes answered
	Busy     time.Duration // time spent in flushes
}

// Stats returns what g has done so far. It is safe to call at any time.
func (g *GroupSyncer) Stats() SyncStats {
	return SyncStats{
		Syncs:    g.syncs.Load(),
		Requests: g.requests.Load(),
		Busy:     time.Duration(g.busyNanos.Load()),
	}
}

type syncRequest struct {
	f      File
	result chan error // buffered(1)
	// record, when set, is told the result first, by the syncer, in the
	// order the syncs ran (see Appender.Begin).
	record func(error)
}

// fsSyncer is a File whose whole filesystem can be flushed at once.
type fsSyncer interface {
	device() (uint64, error)
	syncFilesystem() error
	// checkWriteback reports a failed writeback of the file's data
	// since its handle last looked, without flushing anything: after a
	// syncfs through another file's handle, which reports it to that
	// handle once (or not at all, to one opened after it), this one's
	// bytes may be lost though the syncfs succeeded.
	checkWriteback() error
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
func (g *GroupSyncer) Sync(ctx context.Context, f File) error {
	result, _ := g.request(f, nil)
	select {
	case err := <-result:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// request queues f for the next batch and returns the channel its result
// comes on (once) and one closed when the batch's sync begins. record,
// when not nil, is called with the result before it is sent, by the
// syncer, so in the order the syncs of f ran whoever reads the results
// first. After Close it syncs f itself, once the batch Close flushes is
// done.
func (g *GroupSyncer) request(f File, record func(error)) (result <-chan error, started <-chan struct{}) {
	req := syncRequest{f: f, result: make(chan error, 1), record: record}
	g.mu.Lock()
	if g.closed {
		// The batch Close flushes holds requests made before this one,
		// of bytes written before these: it is synced and recorded
		// first. Then, under mu, syncs after Close run one at a time,
		// in order.
		g.mu.Unlock()
		<-g.done
		g.mu.Lock()
		req.answer(f.Sync())
		g.mu.Unlock()
		return req.result, closedChan
	}
	g.pending = append(g.pending, req)
	if g.started == nil {
		g.started = make(chan struct{})
	}
	started = g.started
	g.mu.Unlock()
	select {
	case g.wake <- struct{}{}:
	default: // the loop is already due to run
	}
	return req.result, started
}

// closedChan is a channel that is always closed.
var closedChan = func() chan struct{} {
	c := make(chan struct{})
	close(c)
	return c
}()

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
	batch, started := g.pending, g.started
	g.pending, g.started = nil, nil
	g.mu.Unlock()
	if started != nil {
		close(started)
	}
	if len(batch) == 0 {
		return
	}
	start := time.Now()
	results := syncFiles(batch)
	// Counted before the answers, so that a caller who has its answer
	// finds its sync in Stats.
	g.busyNanos.Add(int64(time.Since(start)))
	g.syncs.Add(1)
	g.requests.Add(int64(len(batch)))
	answer(batch, results)
}

// syncBatch makes every file of batch durable and answers each request.
func syncBatch(batch []syncRequest) { answer(batch, syncFiles(batch)) }

// answer sends each request of batch its file's result.
func answer(batch []syncRequest, results map[File]error) {
	for _, req := range batch {
		req.answer(results[req.f])
	}
}

// answer records err (record) and sends it.
func (req syncRequest) answer(err error) {
	if req.record != nil {
		req.record(err)
	}
	req.result <- err
}

// syncFiles makes every file of batch durable and returns each file's
// result.
func syncFiles(batch []syncRequest) map[File]error {
	results := make(map[File]error, len(batch))
	for _, req := range batch {
		results[req.f] = nil
	}
	byDevice := make(map[uint64][]File)
	for f := range results {
		fss, ok := f.(fsSyncer)
		if !ok || len(results) == 1 {
			results[f] = f.Sync()
			continue
		}
		dev, err := fss.device()
		if err != nil {
			results[f] = f.Sync()
			continue
		}
		byDevice[dev] = append(byDevice[dev], f)
	}
	for _, group := range byDevice {
		if len(group) == 1 {
			results[group[0]] = group[0].Sync()
			continue
		}
		err := group[0].(fsSyncer).syncFilesystem()
		for _, f := range group {
			if err == nil {
				results[f] = f.(fsSyncer).checkWriteback()
			} else {
				results[f] = err
			}
		}
	}
	return results
}

// ErrFileChanged reports that an Appender's file is no longer the size its
// last append left: another process wrote to it or cut it. Nothing was
// appended; the caller reopens the file and looks at what changed.
var ErrFileChanged = errors.New("rolloutfs: file changed by someone else")

// Appender appends whole lines to one file. It is safe for concurrent use;
// appends are applied in the order they take its lock. It assumes it is
// the file's only writer while it is open.
type Appender struct {
	fsys     FS
	policy   SyncPolicy
	group    *GroupSyncer
	onHandle func(delta int) // told when the file handle opens (+1) or closes (-1)

	mu       sync.Mutex
	name     string // guarded by mu: where the file is (Move changes it)
	f        File   // guarded by mu; nil while released
	id       FileID // guarded by mu: the file f is open on
	size     int64  // guarded by mu: end of the last appended line
	syncedTo int64  // guarded by mu: end of what a successful sync covered
	failed   error  // guarded by mu: a failure that poisons the file
	closed   bool   // guarded by mu
	waiting  int    // guarded by mu: appends waiting for a batch sync

	syncing sync.WaitGroup // appends waiting for a batch sync; Close waits
	syncMu  sync.Mutex     // orders the direct syncs of SyncBatch without a GroupSyncer
}

// AppenderOptions configure OpenAppender.
type AppenderOptions struct {
	Policy SyncPolicy
	Group  *GroupSyncer // used with SyncBatch; nil means fsync directly
	// OnHandle, when set, is called with +1 each time the Appender opens
	// its file and -1 each time it closes it, so a caller can bound the
	// descriptors its appenders hold (see Release).
	OnHandle func(delta int)
}

// OpenAppender opens name in fsys for appending. The file must exist and
// should end with a newline (a torn tail is the caller's to cut first).
func OpenAppender(ctx context.Context, fsys FS, name string, opts AppenderOptions) (*Appender, error) {
	f, err := fsys.OpenAppend(ctx, name)
	if err != nil {
		return nil, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	a := &Appender{fsys: fsys, name: name, policy: opts.Policy, group: opts.Group, onHandle: opts.OnHandle, f: f, id: st.ID, size: st.Size, syncedTo: st.Size}
	a.handle(+1)
	return a, nil
}

func (a *Appender) handle(delta int) {
	if a.onHandle != nil {
		a.onHandle(delta)
	}
}

// Release closes the file handle of an idle Appender, so idle appenders
// hold no descriptor; the next Append opens the file again (and fails with
// ErrFileChanged if someone else changed its size meanwhile). It reports
// whether it released the handle: not while an append waits for its sync.
// Every acknowledged append is already as durable as the policy promises,
// so releasing loses nothing.
func (a *Appender) Release() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.f == nil || a.closed || a.waiting > 0 {
		return false
	}
	a.f.Close() // nothing written is pending on this handle
	a.f = nil
	a.handle(-1)
	return true
}

// Moved tells the Appender that its file was renamed to name (an archive),
// so that it reopens it there after a Release.
func (a *Appender) Moved(name string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.name = name
}

// Holds reports whether info, a Stat of the Appender's name, describes
// the file it appends to: false when another file was renamed over the
// name since the Appender opened it (an editor's save, a copy put back),
// whose writes would land in the replaced file that no name leads to any
// more. A released Appender opens the name again on its next append, so
// it holds whatever is there.
func (a *Appender) Holds(info FileInfo) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.f == nil || !a.id.Differs(info.ID)
}

// reopen opens a released file again (under a.mu).
func (a *Appender) reopen() error {
	f, err := a.fsys.OpenAppend(context.Background(), a.name)
	if err != nil {
		return err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return err
	}
	a.f, a.id = f, st.ID
	a.handle(+1)
	return nil
}

// checkLines verifies that each element is exactly one line ending in '\n'.
func checkLines(lines [][]byte) error {
	for i, l := range lines {
		if len(l) == 0 || l[len(l)-1] != '\n' {
			return fmt.Errorf("line %d of %d does not end with a newline: %w", i, len(lines), ErrNotLine)
		}
		if j := bytes.IndexByte(l[:len(l)-1], '\n'); j >= 0 {
			return fmt.Errorf("line %d of %d has a newline at byte %d: %w", i, len(lines), j, ErrNotLine)
		}
	}
	return nil
}

// Append writes lines (each a complete line ending in '\n') with one write,
// then syncs according to the policy, and returns the byte offset of each
// line. On error nothing of this call is acknowledged and the file is
// truncated back to its size before the call. Lines that are not exactly
// one newline-terminated line each fail with ErrNotLine, nothing written.
//
// Once its bytes are written, Append waits for their sync even if ctx is
// done, so that the outcome is definite. After a failed write or sync the
// Appender refuses further appends: the file's state on disk is unknown
// and the caller must reopen it.
func (a *Appender) Append(ctx context.Context, lines [][]byte) ([]int64, error) {
	p, err := a.Begin(ctx, lines)
	if err != nil {
		return nil, err
	}
	if err := p.Wait(); err != nil {
		return nil, err
	}
	return p.Offsets, nil
}

// PendingAppend is an append whose lines are written and whose sync may
// still be under way (SyncBatch): the caller may do other work, such as
// indexing the lines, before it waits. Until Wait returns the lines are
// not acknowledged; the Appender keeps its file open meanwhile, and Close
// waits for Wait.
type PendingAppend struct {
	// Offsets are the byte offsets of the lines in the file.
	Offsets []int64

	a       *Appender
	end     int64
	result  <-chan error    // nil when Begin already did what the policy asks
	started <-chan struct{} // closed once the sync Wait waits for has begun
	waited  bool            // Wait has run; err is its result
	err     error
}

// Begin writes lines as Append does and, under SyncBatch, asks for their
// sync without waiting for it; under SyncAlways the sync is done before
// Begin returns. An error from Begin means nothing was written. Otherwise
// the caller must call Wait on the result: Close blocks until it has, so
// the caller must not close the Appender before.
func (a *Appender) Begin(ctx context.Context, lines [][]byte) (*PendingAppend, error) {
	if err := checkLines(lines); err != nil {
		return nil, fmt.Errorf("append to %s: %w", a.name, err)
	}
	if len(lines) == 0 {
		return &PendingAppend{a: a}, nil
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	a.mu.Lock()
	start, end, err := a.write(lines)
	if err == nil && a.policy == SyncAlways {
		err = a.f.Sync()
		a.synced(end, err)
	}
	batch := err == nil && a.policy == SyncBatch
	if batch {
		// Release and Close leave f open until Wait.
		a.syncing.Add(1)
		a.waiting++
	}
	f := a.f
	a.mu.Unlock()
	if err != nil {
		return nil, fmt.Errorf("append to %s: %w", a.name, err)
	}
	var result <-chan error
	started := (<-chan struct{})(closedChan)
	// A sync's result is recorded (synced) as the sync returns, in the
	// order the syncs ran, not when a caller waits: a failed sync covered
	// the bytes of every append written before it, and a later sync that
	// succeeds (Linux reports a writeback error to one fsync) must not
	// acknowledge them because its caller waited first.
	record := func(err error) {
		a.mu.Lock()
		a.synced(end, err)
		a.mu.Unlock()
	}
	if batch && a.group != nil {
		result, started = a.group.request(f, record)
	} else if batch {
		a.syncMu.Lock()
		err := f.Sync()
		record(err)
		a.syncMu.Unlock()
		direct := make(chan error, 1)
		direct <- err
		result = direct
	}
	offsets := make([]int64, len(lines))
	off := start
	for i, l := range lines {
		offsets[i] = off
		off += int64(len(l))
	}
	return &PendingAppend{Offsets: offsets, a: a, end: end, result: result, started: started}, nil
}

// SyncStarted returns a channel that is closed once the sync Wait waits
// for has begun (at once when there is none): from then on the lines of
// the appends that share that sync are all written. A caller that batches
// work over those appends, such as their index updates, can wait for it to
// gather them.
func (p *PendingAppend) SyncStarted() <-chan struct{} {
	if p.started == nil {
		return closedChan
	}
	return p.started
}

// Wait returns once the lines are as durable as the policy promises, or
// the error that says they are not: then none of them is acknowledged,
// they are cut from the file when possible, and the Appender refuses
// further appends. Later calls return the same result at once. Wait is
// not safe for concurrent use.
func (p *PendingAppend) Wait() error {
	if !p.waited {
		p.err = p.wait()
		p.waited = true
	}
	return p.err
}

func (p *PendingAppend) wait() error {
	if p.result == nil {
		return nil
	}
	a := p.a
	err := <-p.result // recorded already (Begin)
	a.mu.Lock()
	a.waiting--
	if err == nil && a.syncedTo < p.end {
		// Another append's failed sync covered these bytes: they are cut
		// away, or, if the cut failed too, follow bytes that may be lost.
		err = fmt.Errorf("earlier failure: %w", a.failed)
	}
	a.mu.Unlock()
	a.syncing.Done()
	if err != nil {
		return fmt.Errorf("append to %s: %w", a.name, err)
	}
	return nil
}

// Undo cuts p's lines from the file again, after Wait returned nil, when
// a step that had to follow the write failed (the index could not record
// them): the append is then not acknowledged and the file is as it was
// before it, so a retry writes the lines once. p must be the Appender's
// last append. Under SyncAlways and SyncBatch the cut is synced before
// Undo returns. If the cut fails the Appender refuses further appends
// (the file's state is unknown) and the error says so. If the file no
// longer ends where p's lines do (someone else appended after them), it
// cuts nothing and fails with ErrFileChanged: their bytes are not p's to
// take away.
func (p *PendingAppend) Undo() error {
	if len(p.Offsets) == 0 {
		return nil
	}
	a := p.a
	start := p.Offsets[0]
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.size != p.end {
		return fmt.Errorf("undo an append to %s: it ends at %d, the file at %d", a.name, p.end, a.size)
	}
	if a.f == nil {
		if err := a.reopen(); err != nil {
			return fmt.Errorf("undo an append to %s: %w", a.name, err)
		}
	}
	if st, err := a.f.Stat(); err != nil {
		return fmt.Errorf("undo an append to %s: %w", a.name, err)
	} else if st.Size != p.end {
		return fmt.Errorf("undo an append to %s: size %d, its lines end at %d: %w", a.name, st.Size, p.end, ErrFileChanged)
	}
	err := a.f.Truncate(start)
	if err == nil && a.policy.Durable() {
		err = a.f.Sync()
	}
	if err != nil {
		if a.failed == nil {
			a.failed = err
		}
		return fmt.Errorf("undo an append to %s: truncate back to %d: %w", a.name, start, err)
	}
	a.size = start
	a.syncedTo = min(a.syncedTo, start)
	return nil
}

// write appends lines under a.mu and returns the offsets where they start
// and end. On failure the file is truncated back to its previous size.
func (a *Appender) write(lines [][]byte) (start, end int64, err error) {
	if a.closed {
		return 0, 0, os.ErrClosed
	}
	if a.failed != nil {
		return 0, 0, fmt.Errorf("earlier failure: %w", a.failed)
	}
	if a.f == nil {
		if err := a.reopen(); err != nil {
			return 0, 0, err
		}
	}
	start = a.size
	// With O_APPEND a write lands at the true end of the file: make sure
	// that is where the offsets say, or the line would be glued onto bytes
	// nobody has read.
	if st, err := a.f.Stat(); err != nil {
		return 0, 0, err
	} else if st.Size != start {
		return 0, 0, fmt.Errorf("size %d, expected %d: %w", st.Size, start, ErrFileChanged)
	}
	n, err := writeLines(a.f, lines)
	if err != nil {
		a.failed = err
		if terr := a.f.Truncate(start); terr != nil {
			return 0, 0, errors.Join(err, fmt.Errorf("truncate back to %d: %w", start, terr))
		}
		return 0, 0, err
	}
	a.size = start + n
	return start, a.size, nil
}

// writeLines writes lines to w in one write and returns how many bytes
// that is: one O_APPEND write lands whole, never interleaved with another
// process's append to the file. Lines that lie one after the other in one
// array (a single line, or the manager's encoding of an append) are
// written from where they are; others are joined first.
func writeLines(w io.Writer, lines [][]byte) (int64, error) {
	buf, ok := adjacent(lines)
	if !ok {
		buf = bytes.Join(lines, nil)
	}
	n, err := w.Write(buf)
	if err == nil && n != len(buf) {
		err = io.ErrShortWrite
	}
	return int64(len(buf)), err
}

// adjacent returns the bytes of lines as one slice when each line starts
// where the one before it ends, in one array.
func adjacent(lines [][]byte) ([]byte, bool) {
	total := 0
	for _, l := range lines {
		total += len(l)
	}
	first := lines[0]
	if cap(first) < total {
		return nil, false
	}
	whole := first[:total]
	at := 0
	for _, l := range lines {
		if len(l) > 0 && &whole[at] != &l[0] {
			return nil, false
		}
		at += len(l)
	}
	return whole, true
}

// synced records the outcome of a sync that covered the file up to end
// (under a.mu). After a failure the state of every byte not covered by an
// earlier successful sync is unknown and none of them was acknowledged:
// they are cut away, and the Appender refuses further appends.
func (a *Appender) synced(end int64, err error) {
	if err == nil {
		if a.failed == nil {
			a.syncedTo = max(a.syncedTo, end)
		}
		return
	}
	if a.failed == nil {
		a.failed = err
	}
	if a.size > a.syncedTo {
		if terr := a.f.Truncate(a.syncedTo); terr == nil {
			a.size = a.syncedTo
		}
	}
}

// Size returns the end of the last appended line.
func (a *Appender) Size() int64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.size
}

// Close syncs (unless the policy is SyncNone or an append failed) and
// closes the file.
func (a *Appender) Close() error {
	a.mu.Lock()
	if a.closed {
		a.mu.Unlock()
		return nil
	}
	a.closed = true // new appends fail from here on
	a.mu.Unlock()
	a.syncing.Wait() // appends whose batch sync is under way finish first

	a.mu.Lock()
	defer a.mu.Unlock()
	if a.f == nil {
		return nil // released: nothing open, nothing unsynced
	}
	var syncErr error
	if a.policy != SyncNone && a.failed == nil {
		syncErr = a.f.Sync()
	}
	err := a.f.Close()
	a.f = nil
	a.handle(-1)
	if err != nil {
		return errors.Join(syncErr, fmt.Errorf("close %s: %w", a.name, err))
	}
	return syncErr
}

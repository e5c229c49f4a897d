package indexer

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"time"

	"spool/rollout"
	"spool/store"
)

// DefaultBatchSize is how many scanned records Sync writes per transaction.
const DefaultBatchSize = 256

// SyncOptions configure Sync.
type SyncOptions struct {
	// Full rescans every file instead of skipping unchanged ones and
	// catching grown ones up.
	Full bool
	// Workers is how many files are parsed in parallel; default
	// runtime.GOMAXPROCS(0).
	Workers int
	// BatchSize is how many scanned records go into one store.Replace
	// transaction; default DefaultBatchSize.
	BatchSize int
	// Progress, when set, is called after each file from a single
	// goroutine (calls never overlap).
	Progress func(SyncProgress)
}

// SyncProgress is how far a Sync has come.
type SyncProgress struct {
	FilesDone  int   `json:"files_done"`
	FilesTotal int   `json:"files_total"`
	BytesRead  int64 `json:"bytes_read"`
}

// Summary reports what a Sync did. Lines, UserMessages and BytesRead count
// what this run read (a full sync reads everything; an incremental one
// only what changed).
type Summary struct {
	Files        int           `json:"files"`         // rollout files found
	Skipped      int           `json:"skipped"`       // unchanged since indexed
	Scanned      int           `json:"scanned"`       // read whole and replaced
	CaughtUp     int           `json:"caught_up"`     // read from their indexed size on
	Moved        int           `json:"moved"`         // same thread, unchanged file, new path (archive, unarchive)
	Renamed      int           `json:"renamed"`       // names taken from session_index.jsonl for otherwise unchanged threads
	Deleted      int           `json:"deleted"`       // index rows whose file is gone
	Failed       int           `json:"failed"`        // files that could not be indexed (see Problems)
	Lines        int64         `json:"lines"`         // lines read
	UserMessages int64         `json:"user_messages"` // counted user messages in what was read
	BytesRead    int64         `json:"bytes_read"`
	Duration     time.Duration `json:"duration_ns"`
	MBPerSec     float64       `json:"mb_per_sec"`
	Problems     []Problem     `json:"problems"`
}

// Sync brings the index st up to date with the rollout files under root.
//
// By default it is incremental: a file whose size and modification time
// match its row is skipped; a file that grew is read only from its indexed
// size on; a file that shrank or was rewritten is rescanned; a new file is
// scanned; a thread whose unchanged file moved (archived or unarchived) gets
// its new path; rows whose file is gone are deleted. With opts.Full every
// file is rescanned. Names in root/session_index.jsonl (newest line per id)
// override names from the rollouts. When two files hold the same thread id,
// the rule of chooseFiles picks one (a live file over an archived one, then
// the smaller path) and the other is reported as a duplicate problem.
//
// Files are parsed by opts.Workers goroutines; one writer applies their
// results, batching scanned records into store.Replace transactions. A file
// that cannot be indexed is a problem, not an error; its row, if any, is
// deleted only when the file is not a thread (no session_meta, or an id
// that disagrees with its name). Errors are the store's, the walk's, or
// ctx's.
func Sync(ctx context.Context, st *store.Store, root string, opts SyncOptions) (Summary, error) {
	start := time.Now()
	var sum Summary
	names, err := rollout.ReadNames(ctx, root)
	if err != nil {
		return sum, fmt.Errorf("sync %s: %w", root, err)
	}
	paths, err := Walk(ctx, root)
	if err != nil {
		return sum, fmt.Errorf("sync %s: %w", root, err)
	}
	files, dups := chooseFiles(paths)
	sum.Files = len(paths)
	sum.Problems = append(sum.Problems, dups...)

	states, err := st.FileStates(ctx)
	if err != nil {
		return sum, fmt.Errorf("sync %s: %w", root, err)
	}
	stateByID := make(map[string]store.FileState, len(states))
	for _, s := range states {
		stateByID[s.ID] = s
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	results := runWorkers(ctx, files, opts.Workers, func(f rolloutFile) syncResult {
		var state *store.FileState
		if s, ok := stateByID[f.id]; ok {
			state = &s
		}
		return syncFile(ctx, st, root, f, state, names, opts.Full)
	})

	w := syncWriter{st: st, batchSize: opts.BatchSize, sum: &sum}
	if w.batchSize <= 0 {
		w.batchSize = DefaultBatchSize
	}
	present := make(map[string]bool, len(files))
	done := 0
	for res := range results {
		if err := w.apply(ctx, res); err != nil {
			cancel()
			for range results { // let the workers finish
			}
			return sum, fmt.Errorf("sync %s: %w", root, err)
		}
		if !res.notThread {
			present[res.file.id] = true
		}
		done++
		if opts.Progress != nil {
			opts.Progress(SyncProgress{FilesDone: done, FilesTotal: len(files), BytesRead: sum.BytesRead})
		}
	}
	if err := ctx.Err(); err != nil {
		return sum, fmt.Errorf("sync %s: %w", root, err)
	}
	if err := w.flush(ctx); err != nil {
		return sum, fmt.Errorf("sync %s: %w", root, err)
	}
	for _, s := range states {
		if present[s.ID] {
			continue
		}
		if err := st.Delete(ctx, s.ID); err != nil && !errors.Is(err, store.ErrNotFound) {
			return sum, fmt.Errorf("sync %s: delete %s: %w", root, s.ID, err)
		}
		sum.Deleted++
	}
	sum.Duration = time.Since(start)
	sum.MBPerSec = mbPerSec(sum.BytesRead, sum.Duration)
	return sum, nil
}

func mbPerSec(bytes int64, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(bytes) / 1e6 / d.Seconds()
}

// runWorkers calls work for each file on up to workers goroutines and
// returns the results in completion order. The channel is closed when
// every file is done or ctx is cancelled.
func runWorkers[R any](ctx context.Context, files []rolloutFile, workers int, work func(rolloutFile) R) <-chan R {
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	workers = max(min(workers, len(files)), 1)
	jobs := make(chan rolloutFile)
	results := make(chan R, workers)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for f := range jobs {
				results <- work(f)
			}
		})
	}
	go func() {
		defer close(jobs)
		for _, f := range files {
			select {
			case jobs <- f:
			case <-ctx.Done():
				return
			}
		}
	}()
	go func() {
		wg.Wait()
		close(results)
	}()
	return results
}

// action is what Sync does with one file.
type action int

const (
	actSkip    action = iota // unchanged
	actScan                  // replace with record
	actCatchUp               // advance with progress
	actMove                  // unchanged file at a new path
	actFailed                // could not be indexed
)

type syncResult struct {
	file      rolloutFile
	action    action
	record    store.Record   // actScan
	progress  store.Progress // actCatchUp
	grew      bool           // actCatchUp: new lines were read (else only the file state changes)
	archiveAt int64          // actMove
	setName   *string        // a name from session_index.jsonl differs from the row's
	updatedAt int64          // the row's updated time, kept by setName
	problems  []Problem
	notThread bool // the file is not a thread: its row goes
	bytesRead int64
	lines     int64
	messages  int64
}

// syncFile decides what to do with one file and reads what it must. It
// only reads the store.
func syncFile(ctx context.Context, st *store.Store, root string, f rolloutFile, state *store.FileState, names map[string]rollout.NameEntry, full bool) syncResult {
	res := syncResult{file: f}
	fi, err := os.Stat(filepath.Join(root, filepath.FromSlash(f.rel)))
	if err != nil {
		return res.fail(err)
	}
	size, mtime := fi.Size(), fi.ModTime().UnixNano()
	unchanged := state != nil && size == state.FileSize && mtime == state.FileMtime
	switch {
	case full || state == nil:
		return scanResult(ctx, root, f, names, res)
	case state.RolloutPath != f.rel:
		if !unchanged {
			return scanResult(ctx, root, f, names, res)
		}
		res.action = actMove
		res.archiveAt = fi.ModTime().UnixMilli()
		return res.withName(ctx, st, names)
	case unchanged:
		res.action = actSkip
		return res.withName(ctx, st, names)
	case size < state.IndexedSize || size == state.FileSize:
		// Shrunk, or rewritten in place: only a rescan can tell what changed.
		return scanResult(ctx, root, f, names, res)
	}

	t, err := st.Get(ctx, f.id)
	if err != nil {
		return res.fail(err)
	}
	p, problems, err := CatchUp(ctx, root, t)
	if errors.Is(err, ErrShrunk) || errors.Is(err, ErrChanged) {
		return scanResult(ctx, root, f, names, res)
	}
	if err != nil {
		return res.fail(err)
	}
	if e, ok := names[f.id]; ok && e.ThreadName != t.Name {
		name := e.ThreadName
		p.Name = &name
	} else if ok {
		p.Name = nil // the rollout's own renames lose to session_index.jsonl
	}
	res.action = actCatchUp
	res.progress = p
	res.problems = problems
	res.grew = p.IndexedSize != t.IndexedSize || p.Name != nil
	res.bytesRead = size - t.IndexedSize
	res.lines = p.LineCount - t.LineCount
	res.messages = int64(len(p.NewMessages))
	return res
}

func scanResult(ctx context.Context, root string, f rolloutFile, names map[string]rollout.NameEntry, res syncResult) syncResult {
	rec, problems, err := scanWithNames(ctx, root, f.rel, names)
	if err != nil {
		res = res.fail(err)
		res.notThread = errors.Is(err, ErrNoMeta) || errors.Is(err, ErrIDMismatch)
		return res
	}
	res.action = actScan
	res.record = rec
	res.problems = problems
	res.bytesRead = rec.Thread.FileSize
	res.lines = rec.Thread.LineCount
	res.messages = int64(len(rec.Messages))
	return res
}

// scanWithNames scans a file and applies its name from session_index.jsonl.
func scanWithNames(ctx context.Context, root, rel string, names map[string]rollout.NameEntry) (store.Record, []Problem, error) {
	rec, problems, err := ScanFile(ctx, root, rel)
	if err != nil {
		return rec, problems, err
	}
	if e, ok := names[rec.Thread.ID]; ok {
		rec.Thread.Name = e.ThreadName
	}
	return rec, problems, nil
}

// withName checks an unread thread's name against session_index.jsonl.
func (res syncResult) withName(ctx context.Context, st *store.Store, names map[string]rollout.NameEntry) syncResult {
	e, ok := names[res.file.id]
	if !ok {
		return res
	}
	t, err := st.Get(ctx, res.file.id)
	if err != nil {
		return res.fail(err)
	}
	if t.Name != e.ThreadName {
		name := e.ThreadName
		res.setName = &name
		res.updatedAt = t.UpdatedAt
	}
	return res
}

func (res syncResult) fail(err error) syncResult {
	res.action = actFailed
	res.problems = append(res.problems, Problem{Path: res.file.rel, Kind: ProblemError, Detail: err.Error()})
	return res
}

// syncWriter applies results to the store from one goroutine.
type syncWriter struct {
	st        *store.Store
	batchSize int
	batch     []store.Record
	sum       *Summary
}

func (w *syncWriter) apply(ctx context.Context, res syncResult) error {
	w.sum.Problems = append(w.sum.Problems, res.problems...)
	w.sum.BytesRead += res.bytesRead
	w.sum.Lines += res.lines
	w.sum.UserMessages += res.messages
	switch res.action {
	case actSkip:
		w.sum.Skipped++
	case actFailed:
		w.sum.Failed++
	case actScan:
		w.sum.Scanned++
		w.batch = append(w.batch, res.record)
		if len(w.batch) >= w.batchSize {
			if err := w.flush(ctx); err != nil {
				return err
			}
		}
	case actCatchUp:
		w.sum.CaughtUp++
		p := res.progress
		if res.grew {
			if err := w.st.Advance(ctx, p); err != nil {
				return fmt.Errorf("advance %s: %w", res.file.rel, err)
			}
		} else if err := w.st.SetFileState(ctx, p.ID, p.FileSize, p.FileMtime); err != nil {
			return fmt.Errorf("set file state of %s: %w", res.file.rel, err)
		}
	case actMove:
		w.sum.Moved++
		archived := IsArchivedPath(res.file.rel)
		archivedAt := int64(0)
		if archived {
			archivedAt = res.archiveAt
		}
		if err := w.st.SetArchived(ctx, res.file.id, archived, res.file.rel, archivedAt); err != nil {
			return fmt.Errorf("move %s: %w", res.file.rel, err)
		}
	}
	if res.setName != nil {
		w.sum.Renamed++
		if err := w.st.SetName(ctx, res.file.id, *res.setName, res.updatedAt); err != nil {
			return fmt.Errorf("rename %s: %w", res.file.id, err)
		}
	}
	return nil
}

func (w *syncWriter) flush(ctx context.Context) error {
	if len(w.batch) == 0 {
		return nil
	}
	if err := w.st.Replace(ctx, w.batch); err != nil {
		return fmt.Errorf("replace %d threads: %w", len(w.batch), err)
	}
	w.batch = w.batch[:0]
	return nil
}

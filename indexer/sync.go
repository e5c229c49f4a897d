package indexer

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"math/rand/v2"
	"path"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/spoolhq/spool/rollout"
	"github.com/spoolhq/spool/rolloutfs"
	"github.com/spoolhq/spool/store"
)

// DefaultBatchSize is how many scanned records Sync writes per transaction.
const DefaultBatchSize = 256

// SyncOptions configure Sync.
type SyncOptions struct {
	// Full rescans every file instead of skipping unchanged ones and
	// catching grown ones up.
	Full bool
	// FirstIndex lets a sync into an index with no thread write its rows
	// without the list indexes and build those at its end
	// (store.DeferListIndexes): for the walk at a start and for reindex,
	// not for the periodic syncs of a watcher, which on an empty root
	// would drop and build them at every turn.
	FirstIndex bool
	// Workers is how many files are parsed in parallel; default
	// runtime.GOMAXPROCS(0).
	Workers int
	// BatchSize is how many scanned records go into one store.Replace
	// transaction; default DefaultBatchSize.
	BatchSize int
	// Progress, when set, is called after each file from a single
	// goroutine (calls never overlap), and once more at the end when the
	// files that waited for their base were read then: the last call's
	// BytesRead is the Summary's. Setting it costs Sync one more walk
	// of the directories (names only) to count the files first.
	Progress func(SyncProgress)
	// RemoveTemps removes the temporary files of creates a crash cut
	// short (rolloutfs.IsTemp names): those no writer holds
	// (rolloutfs.FS.RemoveTemp). A create under way, of this process or of
	// another sharing the root, is left alone.
	RemoveTemps bool
	// TempsBefore, when set, limits RemoveTemps to temporary files last
	// modified before it: a process that serves while it syncs may have
	// creates under way.
	TempsBefore time.Time
	// Hold, when set, is called by the writer before it changes the index
	// row of thread id (a caught-up, moved, renamed, scanned or deleted
	// thread). With skip true the change is dropped (counted as skipped):
	// someone else, such as a live thread in a running manager, owns the
	// row. Otherwise the writer applies the change, deciding it again from
	// the file if the row changed since it was decided, then calls
	// release. A new thread's scan is batched under the hold and written
	// later only if the thread is still not indexed then; if it is, the
	// file is held and decided again from the row. SyncPaths also holds
	// a thread with no row a moment before it decides its file, so that a
	// thread being created by the holder is decided from the row it
	// writes. Hold lets a sync run beside writers of the same index.
	Hold func(id string) (release func(), skip bool)
	// Shuffle, when set, makes Sync apply the parsed files in an order
	// drawn from it rather than in the order the workers finish: the
	// index must come out the same whatever the order, and tests use it
	// to check that. Sync then holds every file's result in memory.
	Shuffle *rand.Rand
	// Dir, when set, is called by Sync for each directory of the layout it
	// lists (sessions/ and every directory below it, archived_sessions/),
	// with the directory's state read just before it was listed: a name
	// added or removed later changes its ModTime. The state is zero when
	// the FS cannot describe directories (rolloutfs.DirStater). Calls may
	// come from another goroutine than Sync's, never two at once.
	Dir func(rel string, state rolloutfs.FileInfo)
}

// SyncProgress is how far a Sync has come. FilesTotal counts the rollout
// files found by a first walk, duplicates included; files created during
// the sync may take FilesDone past it, and FilesTotal follows.
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
	TempsRemoved int           `json:"temps_removed"` // leftovers of a Create cut short by a crash
	Lines        int64         `json:"lines"`         // lines read
	UserMessages int64         `json:"user_messages"` // counted user messages in what was read
	BytesRead    int64         `json:"bytes_read"`
	Duration     time.Duration `json:"duration_ns"`
	MBPerSec     float64       `json:"mb_per_sec"`
	Problems     []Problem     `json:"problems"`
	// Rewritten are the ids of the threads whose file another writer cut
	// or rewrote at its place, rather than only appended to, and that
	// were read again whole: positions found in their history before name
	// other bytes now. A file whose size stayed but whose modification
	// time changed counts as rewritten.
	Rewritten []string `json:"rewritten,omitempty"`
}

// Sync brings the index st up to date with the rollout files under root.
//
// By default it is incremental: a file whose size and modification time
// match its row is skipped; a file that grew is read only from its indexed
// size on; a file that shrank or was rewritten is rescanned; a new file is
// scanned; a thread whose unchanged file moved (archived or unarchived) gets
// its new path; rows whose file is gone are deleted. With opts.Full every
// file is rescanned. A reverted thread whose rows no longer record the
// files its history runs through (store.LostChains: rows deleted by hand)
// is read again from its first file, as with opts.Full. Names in
// root/session_index.jsonl (newest line per id) override names from the
// rollouts. When two files hold the same thread id, the rule of
// chooseFiles picks one (a live file over an archived one, then the
// smaller path) and the other is reported as a duplicate problem.
//
// Files are parsed by opts.Workers goroutines; one writer applies their
// results, batching scanned records into store.Replace transactions. A file
// that cannot be indexed is a problem, not an error; its row, if any, is
// deleted only when the file is not a thread (no session_meta, or an id
// that disagrees with its name). Errors are the store's, the walk's, or
// ctx's.
//
// Memory does not grow with the number of threads: Sync walks one
// directory at a time (its file names, sorted) and merges them with that
// directory's index rows, read in pages by rollout path; index rows are
// read for nothing else except threads that changed. What it keeps across
// directories is bounded by what changed or went wrong: the ids of
// contested or unindexable files, the duplicate problems, and rows whose
// file moved away. The names of session_index.jsonl are read into memory
// whole (one entry per named thread).
//
// With opts.FirstIndex, a sync into an index with no thread yet writes its
// rows without the indexes that only order lists and builds those at its
// end (store.DeferListIndexes), whether it succeeds or not.
func Sync(ctx context.Context, st *store.Store, fsys rolloutfs.FS, opts SyncOptions) (sum Summary, err error) {
	if !opts.FirstIndex {
		return syncAll(ctx, st, fsys, opts)
	}
	start := time.Now()
	deferred, err := st.DeferListIndexes(ctx)
	if err != nil || !deferred {
		if err != nil {
			return sum, fmt.Errorf("sync %v: %w", fsys, err)
		}
		return syncAll(ctx, st, fsys, opts)
	}
	sum, err = syncAll(ctx, st, fsys, opts)
	if _, rerr := st.RestoreListIndexes(context.WithoutCancel(ctx)); rerr != nil {
		err = errors.Join(err, fmt.Errorf("sync %v: %w", fsys, rerr))
	}
	sum.Duration = time.Since(start)
	sum.MBPerSec = mbPerSec(sum.BytesRead, sum.Duration)
	return sum, err
}

// syncAll is Sync with the list indexes as they are.
func syncAll(ctx context.Context, st *store.Store, fsys rolloutfs.FS, opts SyncOptions) (Summary, error) {
	start := time.Now()
	var sum Summary
	names, err := readNames(ctx, fsys)
	if err != nil {
		return sum, fmt.Errorf("sync %v: %w", fsys, err)
	}
	total := 0
	if opts.Progress != nil {
		if total, err = countFiles(ctx, fsys); err != nil {
			return sum, fmt.Errorf("sync %v: %w", fsys, err)
		}
	}
	if opts.Full {
		// A thread row deleted by hand, foreign keys off, left rows
		// that would fail its new ones.
		if _, err := st.DeleteOrphans(ctx); err != nil {
			return sum, fmt.Errorf("sync %v: %w", fsys, err)
		}
	}
	workers := opts.Workers
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	s := &syncer{st: st, fsys: fsys, names: names, full: opts.Full, removeTemps: opts.RemoveTemps, tempsBefore: opts.TempsBefore, hold: opts.Hold, dir: opts.Dir,
		workers: workers, shuffle: opts.Shuffle}
	lost, err := st.LostChains(ctx)
	if err != nil {
		return sum, fmt.Errorf("sync %v: %w", fsys, err)
	}
	s.lostChains = make(map[string]bool, len(lost))
	for _, id := range lost {
		s.lostChains[id] = true
	}

	w, err := newSyncWriter(ctx, s, opts.BatchSize, &sum)
	if err != nil {
		return sum, fmt.Errorf("sync %v: %w", fsys, err)
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	jobs := make(chan syncJob, 4*workers)
	var walkErr error // set before jobs is closed, read after results is
	go func() {
		defer close(jobs)
		walkErr = s.list(ctx, jobs)
	}()
	results := runJobs(ctx, jobs, workers, func(j syncJob) syncResult { return s.do(ctx, j) })
	if opts.Shuffle != nil {
		results = shuffled(results, opts.Shuffle)
	}

	done := 0
	var reported int64 // BytesRead as the last progress update gave it
	for res := range results {
		if err := w.apply(ctx, res); err != nil {
			cancel()
			for range results { // let the walker and the workers finish
			}
			return sum, fmt.Errorf("sync %v: %w", fsys, err)
		}
		if !res.isFile() {
			continue
		}
		done++
		if opts.Progress != nil {
			opts.Progress(SyncProgress{FilesDone: done, FilesTotal: max(total, done), BytesRead: sum.BytesRead})
			reported = sum.BytesRead
		}
	}
	if walkErr != nil {
		return sum, fmt.Errorf("sync %v: %w", fsys, walkErr)
	}
	if err := ctx.Err(); err != nil {
		return sum, fmt.Errorf("sync %v: %w", fsys, err)
	}
	if err := w.finish(ctx); err != nil {
		return sum, fmt.Errorf("sync %v: %w", fsys, err)
	}
	if err := w.forgetGoneForks(ctx, nil); err != nil {
		return sum, fmt.Errorf("sync %v: %w", fsys, err)
	}
	if opts.Progress != nil && sum.BytesRead != reported {
		// finish read the files that waited for their base (and took back
		// what others indexed meanwhile): a last update counts them, so
		// that it agrees with the summary.
		opts.Progress(SyncProgress{FilesDone: done, FilesTotal: max(total, done), BytesRead: sum.BytesRead})
	}
	sum.Problems = append(append(sum.Problems, s.odd...), s.tempErrs...)
	sum.TempsRemoved = s.tempsGone
	sum.Duration = time.Since(start)
	sum.MBPerSec = mbPerSec(sum.BytesRead, sum.Duration)
	return sum, nil
}

// SyncPaths brings the index up to date with the rollout files at rels
// (slash paths relative to the root) only, deciding each as Sync does: a
// new file is indexed, a grown one caught up, a moved one recorded at its
// new place, a rewritten one rescanned. A path whose file is gone drops
// the row at that path, unless the thread's file is at its other place
// (archived or live), which is then synced instead. Paths that are not
// rollout files in the layout are ignored. Names in session_index.jsonl
// apply as in Sync. Only opts.Hold is used.
func SyncPaths(ctx context.Context, st *store.Store, fsys rolloutfs.FS, rels []string, opts SyncOptions) (Summary, error) {
	start := time.Now()
	var sum Summary
	names, err := readNames(ctx, fsys)
	if err != nil {
		return sum, fmt.Errorf("sync %v: %w", fsys, err)
	}
	s := &syncer{st: st, fsys: fsys, names: names, hold: opts.Hold, eventDriven: true}
	w, err := newSyncWriter(ctx, s, opts.BatchSize, &sum)
	if err != nil {
		return sum, fmt.Errorf("sync %v: %w", fsys, err)
	}
	seen := make(map[string]bool, len(rels))
	for i := 0; i < len(rels); i++ {
		rel := rels[i]
		if seen[rel] || !isLayoutPath(rel) {
			continue
		}
		seen[rel] = true
		id, _, _, err := rollout.ParseRolloutName(path.Base(rel))
		if err != nil {
			continue
		}
		f := rolloutFile{rel: rel, id: id}
		var res syncResult
		_, statErr := fsys.Stat(ctx, rel)
		switch {
		case errors.Is(statErr, fs.ErrNotExist):
			rows, err := st.IndexedFilesByID(ctx, []string{id})
			if err != nil {
				return sum, fmt.Errorf("sync %v: %w", fsys, err)
			}
			if len(rows) == 0 || rows[0].RolloutPath != rel {
				// An earlier file of a reverted thread that went while
				// its other form is there (Codex compressed it): that
				// file's job moves the segment.
				if twin := rollout.TwinName(rel); s.exists(twin) {
					if sg, err := st.SegmentByPath(ctx, rel); err == nil && sg.ThreadID == id {
						rels = append(rels, twin)
					}
				}
				continue
			}
			res = s.orphan(rows[0])
			switch res.action {
			case actDeferDelete:
				rels = append(rels, OtherForms(rel)...)
			case actDelete:
				// A reverted thread whose newest file went is indexed
				// again from the files of it that are left, if any.
				segs, err := st.Segments(ctx, id)
				if err != nil {
					return sum, fmt.Errorf("sync %v: %w", fsys, err)
				}
				for _, sg := range segs {
					rels = append(rels, sg.RolloutPath)
				}
			}
		default:
			res = s.decideAfterCreator(ctx, f)
		}
		if err := w.apply(ctx, res); err != nil {
			return sum, fmt.Errorf("sync %v: %w", fsys, err)
		}
	}
	if err := w.finish(ctx); err != nil {
		return sum, fmt.Errorf("sync %v: %w", fsys, err)
	}
	if err := w.forgetGoneForks(ctx, seen); err != nil {
		return sum, fmt.Errorf("sync %v: %w", fsys, err)
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
	return runJobs(ctx, jobs, workers, work)
}

// resultBuffer is how many parsed files may wait for the writer.
const resultBuffer = 256

// shuffled returns a channel of what results gives, all of it received
// first, in an order drawn from rng: the same order for the same files
// and seed, whatever order the workers finished in.
func shuffled(results <-chan syncResult, rng *rand.Rand) <-chan syncResult {
	out := make(chan syncResult)
	go func() {
		defer close(out)
		var all []syncResult
		for r := range results {
			all = append(all, r)
		}
		slices.SortStableFunc(all, func(a, b syncResult) int {
			return cmp.Or(strings.Compare(a.file.rel, b.file.rel), strings.Compare(a.file.id, b.file.id), cmp.Compare(a.action, b.action))
		})
		rng.Shuffle(len(all), func(i, j int) { all[i], all[j] = all[j], all[i] })
		for _, r := range all {
			out <- r
		}
	}()
	return out
}

// runJobs calls work for each job received on up to workers goroutines
// and returns the results in completion order. The channel is closed once
// jobs is closed and every job received is done; jobs received after ctx
// is cancelled are dropped.
func runJobs[J, R any](ctx context.Context, jobs <-chan J, workers int, work func(J) R) <-chan R {
	workers = max(workers, 1)
	// A deep buffer lets the workers keep parsing while the writer commits
	// a batch; with a shallow one they stall for every commit.
	results := make(chan R, resultBuffer)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for j := range jobs {
				if ctx.Err() != nil {
					continue
				}
				results <- work(j)
			}
		})
	}
	go func() {
		wg.Wait()
		close(results)
	}()
	return results
}

// syncer holds what the walker, the workers and the writer of one Sync
// share. Its fields do not change during the Sync.
type syncer struct {
	st    *store.Store
	fsys  rolloutfs.FS
	names map[string]rollout.NameEntry
	full  bool
	// lostChains are the reverted threads whose rows no longer record the
	// files their history runs through (store.LostChains), found before
	// the Sync starts, full or not: it reads each again from its first
	// file (rereads).
	lostChains map[string]bool

	removeTemps bool
	// workers is how many goroutines parse files, in the walk and in each
	// round of waiting files (one round at a time: serially with 1).
	workers int
	shuffle *rand.Rand // SyncOptions.Shuffle, for the rounds too
	// inRounds, roundIDs, firstFiles, lenient, waitingIDs and lastRound
	// are set by the writer between the rounds of waiting files, while no
	// worker runs: inRounds once the walk's files are all in, roundIDs to
	// the threads of the files of the round under way (see waitsForBase)
	// and firstFiles to those whose first file is among them (see
	// segmentWaits), lenient for the last rounds, waitingIDs in those the
	// files still waiting (StoreBases.Waiting), and lastRound for the
	// round that waits for nothing.
	inRounds    bool
	roundIDs    map[string]bool
	firstFiles  map[string]bool
	lenient     bool
	waitingIDs  map[string]bool
	lastRound   bool
	tempsBefore time.Time
	hold        func(id string) (release func(), skip bool)
	dir         func(rel string, state rolloutfs.FileInfo) // SyncOptions.Dir, called by the walker
	// firstSegments is set with roundIDs: by thread, the earliest revert
	// segment among the files of the round under way (see segmentWaits).
	firstSegments map[string]string
	// eventDriven: SyncPaths, of files something happened to, whose tail
	// sums are checked even when their size and time are as indexed.
	eventDriven bool

	mu        sync.Mutex // guards the fields below, written by the walker
	odd       []Problem  // rollout names that are not regular files
	tempsGone int        // temporary files removed
	tempErrs  []Problem  // temporary files that could not be removed
}

// noteOdd records d's odd entries as problems and, with RemoveTemps,
// removes the temporary files of Creates a crash cut short.
func (s *syncer) noteOdd(ctx context.Context, d layoutDir) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.odd = append(s.odd, oddProblems(d)...)
	for _, name := range d.temps {
		if !s.removeTemps {
			break
		}
		rel := path.Join(d.rel, name) // the root's rel is ""
		if !s.tempsBefore.IsZero() {
			if fi, err := s.fsys.Stat(ctx, rel); err != nil || !fi.ModTime.Before(s.tempsBefore) {
				continue
			}
		}
		err := s.fsys.RemoveTemp(ctx, rel)
		if errors.Is(err, rolloutfs.ErrInUse) || errors.Is(err, fs.ErrNotExist) {
			// A create under way, of another process sharing the root, or
			// one that completed since the directory was read.
			continue
		}
		if err != nil {
			s.tempErrs = append(s.tempErrs, Problem{Path: rel, Kind: ProblemError, Detail: "remove temporary file: " + err.Error()})
			continue
		}
		s.tempsGone++
	}
}

// syncJob is a rollout file to sync, or an index row whose file is gone.
type syncJob struct {
	file   rolloutFile
	row    *store.IndexedFile // the thread's row, at file.rel or elsewhere; nil when not indexed
	orphan *store.IndexedFile // when set, the job is this row, not a file
}

// lookupChunk is how many files without a row at their path list looks up
// by id in one query.
const lookupChunk = 256

// list walks the layout one directory at a time, merging the directory's
// sorted file names with its index rows (in rollout path order), and sends
// a job for each file (with its thread's row) and for each row left
// without a file. Files with no row at their path are looked up by id a
// chunk at a time: they are new, or moved, or duplicates.
func (s *syncer) list(ctx context.Context, jobs chan<- syncJob) error {
	send := func(j syncJob) error {
		select {
		case jobs <- j:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	var unplaced []rolloutFile // files with no row at their path, to look up by id
	sendUnplaced := func() error {
		if len(unplaced) == 0 {
			return nil
		}
		ids := make([]string, len(unplaced))
		for i, f := range unplaced {
			ids[i] = f.id
		}
		rows, err := s.st.IndexedFilesByID(ctx, ids)
		if err != nil {
			return err
		}
		byID := make(map[string]*store.IndexedFile, len(rows))
		for i := range rows {
			byID[rows[i].ID] = &rows[i]
		}
		for _, f := range unplaced {
			if err := send(syncJob{file: f, row: byID[f.id]}); err != nil {
				return err
			}
		}
		unplaced = unplaced[:0]
		return nil
	}
	return walkLayout(ctx, s.fsys, func(d layoutDir) error {
		if s.dir != nil && d.rel != "" {
			s.dir(d.rel, d.state)
		}
		s.noteOdd(ctx, d)
		rows := newRowCursor(s.st, ownedRanges(d))
		for _, name := range d.files {
			rel := d.rel + "/" + name
			id, _, _, _ := rollout.ParseRolloutName(name) // the walk only lists names that parse
			var atPath *store.IndexedFile
			for {
				row, err := rows.peek(ctx)
				if err != nil {
					return err
				}
				if row == nil || row.RolloutPath > rel {
					break
				}
				r := *row
				rows.pop()
				if r.RolloutPath == rel && r.ID == id {
					atPath = &r
					break
				}
				if err := send(syncJob{orphan: &r}); err != nil {
					return err
				}
			}
			if atPath == nil {
				unplaced = append(unplaced, rolloutFile{rel: rel, id: id})
				if len(unplaced) >= lookupChunk {
					if err := sendUnplaced(); err != nil {
						return err
					}
				}
				continue
			}
			if err := send(syncJob{file: rolloutFile{rel: rel, id: id}, row: atPath}); err != nil {
				return err
			}
		}
		for {
			row, err := rows.peek(ctx)
			if err != nil {
				return err
			}
			if row == nil {
				return sendUnplaced()
			}
			r := *row
			rows.pop()
			if err := send(syncJob{orphan: &r}); err != nil {
				return err
			}
		}
	})
}

// action is what Sync does with one file or orphan row.
type action int

const (
	actSkip        action = iota // unchanged
	actScan                      // replace with record
	actCatchUp                   // advance with progress
	actMove                      // unchanged file at a new path
	actFailed                    // could not be indexed
	actDuplicate                 // another file holds the thread (winner)
	actDelete                    // an orphan row: delete it
	actDeferDelete               // an orphan row whose file may have moved: delete it at the end if still there
	actAddSegment                // an earlier file of a thread the index does not know: record it
	actMoveSegment               // an earlier file compressed or decompressed (rollout.TwinName): the segment at twin is now at the file
	actWait                      // a full Sync's reference fork, not read: a later round reads it (see waitsForBase)
	actEmptied                   // the row's own file, found empty: the row stays, its file state marks it unread (see emptied)
)

type syncResult struct {
	file   rolloutFile // for actDelete and actDeferDelete, the orphan row's path and id
	action action
	// base is the rollout path of the thread's row that the decision
	// assumed ("" for none); the writer redoes a decision the index has
	// moved on from.
	base      string
	baseState store.FileState // the row's file state the decision assumed
	// contest: the row is at base, another existing file of the same id,
	// and this file is preferred over it.
	contest   bool
	winner    string         // actDuplicate: the preferred file
	record    store.Record   // actScan
	progress  store.Progress // actCatchUp
	grew      bool           // actCatchUp: new lines were read (else only the file state changes)
	archiveAt int64          // actMove
	twin      string         // actMoveSegment: where the index has the segment
	preview   string         // actAddSegment: the preview the file gives, "" for none (see earlierPreview)
	setName   *string        // a name from session_index.jsonl differs from the row's
	updatedAt int64          // the row's updated time, kept by setName
	problems  []Problem
	notThread bool  // the file is not a thread: its row goes
	rewritten bool  // actScan or actEmptied of the row's file, which another writer cut or rewrote rather than only appended to
	mtime     int64 // actEmptied: the empty file's modification time
	needsBase bool  // the file continues a thread not indexed yet, or one read again (it waits)
	// baseMissing: its base is not indexed (ErrBaseMissing), which
	// explainBases explains once it has waited for it.
	baseMissing bool
	bytesRead   int64
	lines       int64
	messages    int64
}

func (res syncResult) isFile() bool {
	return res.action != actDelete && res.action != actDeferDelete
}

// do runs one job on a worker.
func (s *syncer) do(ctx context.Context, j syncJob) syncResult {
	if j.orphan != nil {
		return s.orphan(*j.orphan)
	}
	return s.decide(ctx, j.file, j.row)
}

// orphan decides what to do with a row whose file was not found where it
// says. If the same file name exists at its other place in the layout
// (archived, or live), the thread probably moved: the file's own job
// moves the row, and the row is deleted at the end only if it is still
// here. Otherwise the row goes now.
func (s *syncer) orphan(row store.IndexedFile) syncResult {
	res := syncResult{file: rolloutFile{rel: row.RolloutPath, id: row.ID}, action: actDelete}
	name := path.Base(row.RolloutPath)
	if id, _, _, err := rollout.ParseRolloutName(name); err != nil || id != row.ID {
		return res
	}
	for _, other := range OtherForms(row.RolloutPath) {
		if other != row.RolloutPath && !s.absent(other) {
			res.action = actDeferDelete
			break
		}
	}
	return res
}

// OtherForms returns the paths in the layout a thread's file at rel may be
// at (rel among them when it is in the layout): live and archived (an
// archive by spool or by Codex), plain and compressed (rollout.TwinName:
// Codex compresses a cold rollout beside itself, and writes it again from
// its plain name). A name that is not a rollout name has only rel.
func OtherForms(rel string) []string {
	live, err := rollout.SessionPath(rollout.PlainName(path.Base(rel)))
	if err != nil {
		return []string{rel}
	}
	archived := rollout.ArchivedPath(path.Base(live))
	return []string{live, archived, rollout.TwinName(live), rollout.TwinName(archived)}
}

// exists reports whether the rollout file rel exists.
func (s *syncer) exists(rel string) bool {
	_, err := s.fsys.Stat(context.Background(), rel)
	return err == nil
}

// absent reports whether the rollout file rel is known not to exist: a
// file whose stat fails otherwise (EIO, EACCES) may be there, and no row
// is dropped for it.
func (s *syncer) absent(rel string) bool {
	_, err := s.fsys.Stat(context.Background(), rel)
	return errors.Is(err, fs.ErrNotExist)
}

// placed reports whether the rollout file rel exists at its place or at its
// other place (archived or live).
func (s *syncer) placed(rel string) bool {
	return s.exists(rel) || s.exists(otherPlace(rel))
}

// isCompetitor reports whether rel is another rollout file of thread id
// that the walk finds, so that the two are duplicates.
func (s *syncer) isCompetitor(rel, id string) bool {
	if !isLayoutPath(rel) {
		return false
	}
	if nameID, _, _, err := rollout.ParseRolloutName(path.Base(rel)); err != nil || nameID != id {
		return false
	}
	if rollout.IsCompressed(rel) && s.exists(rollout.PlainName(rel)) {
		return false // the walk does not find it: its plain form stands for it
	}
	return s.exists(rel)
}

// preferredCopy returns the live file at the layout's place for f's name
// when it exists and is preferred over f (f is an archived or misplaced
// copy), or "". This catches the usual duplicate, a copy left by an
// interrupted archive, from the files alone, whatever the order in which
// the two are synced.
func (s *syncer) preferredCopy(f rolloutFile) string {
	live, err := rollout.SessionPath(path.Base(f.rel))
	if err != nil || live == f.rel || !preferFile(live, f.rel) || !s.exists(live) {
		return ""
	}
	return live
}

// knownSegment reports whether the index records file rel, at its place
// or at its other place (archived or live), as a segment of its thread.
func (s *syncer) knownSegment(ctx context.Context, rel string) (bool, error) {
	for _, at := range []string{rel, otherPlace(rel)} {
		_, err := s.st.SegmentByPath(ctx, at)
		if err == nil {
			return true, nil
		}
		if !errors.Is(err, store.ErrNotFound) {
			return false, err
		}
	}
	return false, nil
}

// segmentTwin returns the path of the segment of f's thread that the
// index records at f's other form (rollout.TwinName), or "": the same earlier
// file of a reverted thread, compressed or decompressed since (Codex
// compresses cold rollouts, and a reverted thread's earlier files are
// cold).
func (s *syncer) segmentTwin(ctx context.Context, f rolloutFile) (string, error) {
	twin := rollout.TwinName(f.rel)
	sg, err := s.st.SegmentByPath(ctx, twin)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return "", nil
	case err != nil:
		return "", err
	case sg.ThreadID != f.id:
		return "", nil
	}
	return twin, nil
}

// otherPlace returns where file rel would be after an archive (or an
// unarchive of an archived one); rel when that cannot be told.
func otherPlace(rel string) string {
	if IsArchivedPath(rel) {
		return samePlace(rel, rollout.SessionsDir+"/x")
	}
	return rollout.ArchivedPath(path.Base(rel))
}

// decideFresh looks the thread's row up and decides what to do with f.
func (s *syncer) decideFresh(ctx context.Context, f rolloutFile) syncResult {
	rows, err := s.st.IndexedFilesByID(ctx, []string{f.id})
	if err != nil {
		return syncResult{file: f}.fail(err)
	}
	if len(rows) == 0 {
		return s.decide(ctx, f, nil)
	}
	return s.decide(ctx, f, &rows[0])
}

// decideAfterCreator is decideFresh for a file a watcher saw appear. A
// writer beside the sync holds a thread it creates from its file's link
// to its row (a fork, an import: SyncOptions.Hold), so a thread with no
// row yet is held a moment first: then its file is decided from the row
// its creator wrote, not read whole only to find that row there (a copy
// fork of a 1 GiB thread was read whole by the watcher's sync).
func (s *syncer) decideAfterCreator(ctx context.Context, f rolloutFile) syncResult {
	rows, err := s.st.IndexedFilesByID(ctx, []string{f.id})
	if err != nil {
		return syncResult{file: f}.fail(err)
	}
	if len(rows) > 0 {
		return s.decide(ctx, f, &rows[0])
	}
	if s.hold != nil {
		if release, skip := s.hold(f.id); !skip {
			release()
		}
		f.created = true
	}
	return s.decideFresh(ctx, f)
}

// decide decides what to do with one file and reads what it must. It only
// reads the store. row is the thread's index row (at f.rel or elsewhere),
// nil when the thread is not indexed.
func (s *syncer) decide(ctx context.Context, f rolloutFile, row *store.IndexedFile) syncResult {
	res := syncResult{file: f}
	var state store.IndexedFile
	if row != nil {
		state = *row
		res.base = row.RolloutPath
		res.baseState = row.FileState
	}
	if s.segmentWaits(f, res.base) {
		res.action = actWait
		return res
	}
	if res.base != "" && laterFile(res.base, f.rel) && s.placed(res.base) && atItsPlace(f.rel) {
		// f is an earlier file of a thread indexed from a later one (a
		// revert segment), which reads f through its segments; one the
		// index does not know yet (the later file was indexed first) is
		// recorded, so that delete finds it. When the later file is gone
		// (and not moved), f is scanned as the thread's newest file left;
		// a copy of an earlier file away from its place (a backup) is no
		// file of the thread, and goes to the duplicate rules below.
		res.action = actSkip
		if s.rereads(f.id) && isFirstFile(f.rel) {
			// A full rescan reads a reverted thread again from its
			// first file, as a rebuild reads it, and its later files
			// through that (they wait for it: segmentWaits): the
			// messages before a cut are its earlier files', which the
			// thread's rows may hold by older rules, or inherited from
			// a base this rescan changes. Any Sync does so for a
			// thread whose rows lost the files its history runs
			// through (lostChains): its later files cannot be read
			// through them.
			return s.scan(ctx, f, res)
		}
		known, err := s.knownSegment(ctx, f.rel)
		if err != nil {
			return res.fail(err)
		}
		if known {
			return res
		}
		twin, err := s.segmentTwin(ctx, f)
		switch {
		case err != nil:
			return res.fail(err)
		case twin == "":
			res.action = actAddSegment
			if res.preview, err = filePreview(ctx, s.fsys, f.rel); err != nil {
				return res.fail(err)
			}
		case !s.exists(twin) || !rollout.IsCompressed(f.rel):
			// The file the index names went (Codex compressed it, or
			// decompressed it), or f is its plain form beside it (the
			// plain file wins, as for Codex and Walk).
			res.action = actMoveSegment
			res.twin = twin
		}
		return res
	}
	later := res.base != "" && laterFile(f.rel, res.base) // a new revert segment of the thread
	if res.base != f.rel && !later {
		if w := s.preferredCopy(f); w != "" {
			return res.duplicateOf(w)
		}
		if res.base != "" && s.isCompetitor(res.base, f.id) {
			if preferFile(res.base, f.rel) {
				return res.duplicateOf(res.base)
			}
			res.contest = true
		}
	}

	fi, err := s.fsys.Stat(ctx, f.rel)
	switch {
	case errors.Is(err, fs.ErrNotExist) && res.base == f.rel:
		// Gone since the walk listed it (a delete, a move): its row is an
		// orphan now.
		return s.orphan(*row)
	case errors.Is(err, fs.ErrNotExist):
		res.action = actSkip // gone, and no row of it here: nothing to do
		return res
	case err != nil:
		return res.fail(err)
	}
	size, mtime := fi.Size, fi.ModTime.UnixNano()
	unchanged := res.base != "" && size == state.FileSize && mtime == state.FileMtime
	switch {
	case res.base == f.rel && Emptied(size, state.IndexedSize):
		return emptied(res, state.FileState, mtime)
	case s.full || res.base == "" || res.contest || later:
		return s.scan(ctx, f, res)
	case res.base != f.rel:
		if !unchanged {
			return s.scan(ctx, f, res)
		}
		res.action = actMove
		res.archiveAt = fi.ModTime.UnixMilli()
		return s.withName(res, state)
	case unchanged && s.eventDriven && !f.created:
		// Something happened to the file yet its size and time are as
		// indexed: a rewrite within the clock's tick may keep both.
		same, err := FileTailMatches(ctx, s.fsys, f.rel, state.IndexedSize, state.TailSum)
		if err != nil {
			return res.fail(err)
		}
		if !same {
			res.rewritten = true
			return s.scan(ctx, f, res)
		}
		res.action = actSkip
		return s.withName(res, state)
	case unchanged:
		res.action = actSkip
		return s.withName(res, state)
	case size < state.IndexedSize || size == state.FileSize:
		// Shrunk, or rewritten in place: only a rescan can tell what changed.
		res.rewritten = true
		return s.scan(ctx, f, res)
	}

	t, err := s.st.Get(ctx, f.id)
	if err != nil {
		return res.fail(err)
	}
	if t.RolloutPath != f.rel { // moved since the listing
		return s.decide(ctx, f, &store.IndexedFile{FileState: store.FileState{ID: t.ID, RolloutPath: t.RolloutPath,
			IndexedSize: t.IndexedSize, LineCount: t.LineCount, FileSize: t.FileSize, FileMtime: t.FileMtime, TailSum: t.TailSum},
			Name: t.Name, UpdatedAt: t.UpdatedAt})
	}
	p, problems, err := CatchUp(ctx, s.fsys, t)
	if errors.Is(err, ErrShrunk) || errors.Is(err, ErrChanged) {
		res.rewritten = true
		return s.scan(ctx, f, res)
	}
	if err != nil {
		return res.fail(err)
	}
	if e, ok := s.names[f.id]; ok && e.ThreadName != t.Name {
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

func (s *syncer) scan(ctx context.Context, f rolloutFile, res syncResult) syncResult {
	bases := StoreBases{Store: s.st, ParentsMayBeMissing: s.lenient, Waiting: s.waitingIDs}
	scanBases := bases // not for firstFileFacts: a reverted fork's first file is read whole
	scanBases.earlierFilesWait = !s.lenient
	if s.full {
		scanBases.waitsFor = s.waitsFor
	}
	rec, problems, err := scanWithNames(ctx, s.fsys, scanBases, f.rel, s.names)
	if errors.Is(err, errWaits) {
		// A reference fork whose scan would wait for a later round
		// (waitsForBase), which reads it again: read no further.
		res.action = actWait
		return res
	}
	if err == nil && s.full {
		// A full rescan does not take a reverted thread's start, parent,
		// fork point and ancestry from its row, which an edit may have
		// changed, but from its first file, as a rebuild from nothing does.
		firstFileFacts(ctx, s.fsys, bases, &rec, true)
	}
	if err != nil {
		res = res.fail(err)
		res.problems[len(res.problems)-1] = scanProblem(ctx, s.fsys, f.rel, err)
		// A revert segment read through a row whose file is gone may find
		// its base cut short by that file's revert: it waits for the row
		// to go, or to move to the file it continues.
		staleRow := res.base != "" && res.base != f.rel && !s.placed(res.base)
		// So may a history read through a thread whose first file this
		// Sync reads again (lostChains): its later files, and the
		// forks cut in them, wait for that.
		// And so may a revert segment: in the rounds an earlier segment
		// of its thread it continues may be read again in the same round,
		// and in any Sync its cut may lie past what is indexed of the
		// file it continues, which the Sync catches up.
		reread := len(s.lostChains) > 0 || isSegmentFile(f.rel)
		res.baseMissing = errors.Is(err, ErrBaseMissing)
		res.needsBase = res.baseMissing || (staleRow || reread) && errors.Is(err, ErrBrokenBase)
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

// emptied decides for a thread's own file found empty: another program
// truncated it to write it anew (as most editors and Codex's
// migrate-rollouts save a file in place), and this Sync ran before it
// wrote. An empty file is not yet a thread (ProblemEmpty), but neither is
// it a sign the thread went: the row stays, so the thread keeps its place
// in lists and lineage while its writer writes. Its file state becomes
// size 0, below the size indexed, which CatchUp refuses: the file is read
// whole once it has lines, whatever its bytes at the old end. The first
// Sync to find it empty counts the thread as rewritten (its followers'
// positions name bytes that are gone); a Sync that finds it as that one
// left it skips it.
func emptied(res syncResult, state store.FileState, mtime int64) syncResult {
	f := res.file
	res.problems = append(res.problems, Problem{Path: f.rel, Kind: ProblemEmpty,
		Detail: fmt.Sprintf("empty, %d bytes indexed: the thread is kept until its file has lines again", state.IndexedSize)})
	if state.FileSize == 0 && state.FileMtime == mtime {
		res.action = actSkip
		return res
	}
	res.action = actEmptied
	res.rewritten = state.FileSize > 0
	res.mtime = mtime
	return res
}

// scanWithNames scans a file and applies its name from session_index.jsonl.
func scanWithNames(ctx context.Context, fsys rolloutfs.FS, bases Bases, rel string, names map[string]rollout.NameEntry) (store.Record, []Problem, error) {
	rec, problems, err := ScanFileWith(ctx, fsys, rel, bases)
	if err != nil {
		return rec, problems, err
	}
	if e, ok := names[rec.Thread.ID]; ok {
		rec.Thread.Name = e.ThreadName
	}
	return rec, problems, nil
}

// waitsFor reports whether a full Sync's reference fork of base, as its
// history_base names it, waits for a later round (waitsForBase): every
// fork met in the walk, and in the rounds a fork of a thread of the round
// under way. A base named by a revert segment's id is not told here: the
// fork is read, and its record tells.
func (s *syncer) waitsFor(base string) bool {
	return !s.inRounds || s.roundIDs[base]
}

// rereads reports whether this Sync reads reverted thread id again from
// its first file, and its later files through that, as a rebuild reads
// them: a full one reads every reverted thread so, an incremental one
// those whose rows lost the files their history runs through
// (lostChains), whose later files cannot be read through the rows.
func (s *syncer) rereads(id string) bool {
	return s.full || s.lostChains[id]
}

// segmentWaits reports whether f, a revert segment (a later file of a
// reverted thread) whose thread's row is at base, is not to be read now in
// a Sync that reads its thread again (rereads) from its first file (see
// decide), and f's history runs through that file's rows, as a rebuild
// reads it. In the walk every such segment waits; in the rounds one waits
// until the thread's row is at an earlier file than f (its first file, or
// a segment before f, written by this Sync) and neither its first file
// nor an earlier segment of it is in the round under way: read one a
// round, each segment is read through the one before it, not through an
// older file its cut's ordinal fits too (a cut in the segment before
// read through the first file alone cut that file instead). A thread whose first file is not read again (gone,
// or failed) leaves its segments to the last round, which reads them
// through the rows as they are. A segment of a thread with no row is read:
// it waits for its earlier files by failing (ErrBaseMissing).
func (s *syncer) segmentWaits(f rolloutFile, base string) bool {
	if !s.rereads(f.id) || s.lastRound || base == "" || !isSegmentFile(f.rel) {
		return false
	}
	earlier := s.firstSegments[f.id]
	return !s.inRounds || !laterFile(f.rel, base) || s.firstFiles[f.id] || earlier != "" && laterFile(f.rel, earlier)
}

// withName checks an unread thread's indexed name against
// session_index.jsonl.
func (s *syncer) withName(res syncResult, row store.IndexedFile) syncResult {
	if e, ok := s.names[res.file.id]; ok && e.ThreadName != row.Name {
		name := e.ThreadName
		res.setName = &name
		res.updatedAt = row.UpdatedAt
	}
	return res
}

func (res syncResult) fail(err error) syncResult {
	res.action = actFailed
	res.problems = append(res.problems, Problem{Path: res.file.rel, Kind: ProblemError, Detail: err.Error()})
	return res
}

func (res syncResult) duplicateOf(winner string) syncResult {
	res.action = actDuplicate
	res.winner = winner
	return res
}

// syncWriter applies results to the store from one goroutine.
//
// Results arrive in completion order, and the workers decided on what the
// index said when they looked. The writer keeps the outcome independent
// of that order: a result that assumed a row the index has since moved on
// from is decided again, and when two files hold one thread id the
// preferred one wins whichever comes first (claims remembers the winner).
type syncWriter struct {
	s         *syncer
	batchSize int
	batch     []store.Record
	pending   map[string]string // thread id -> rollout path, for the records in batch
	// claims maps a thread id to the file that holds it in this run, for
	// ids that two files contested and ids held by a file that could not
	// be indexed. It grows with problems, not with threads.
	claims  map[string]string
	dupAt   map[string]int // path -> index in sum.Problems of its duplicate report
	touched *idFilter      // the thread ids written or deleted so far
	// deferred are orphan rows to delete at the end if still there.
	deferred []rolloutFile
	// waiting are files whose base was not indexed when they were read;
	// finishing is set for their last round, which reports them.
	waiting   []rolloutFile
	finishing bool
	// fresh are the scans of new files in batch that apply did not look
	// up (see isFresh), in order, and their ids: flush writes them only
	// if their threads are still not indexed. Their problems are counted
	// once they are written.
	fresh    []syncResult
	freshIDs map[string]bool
	taken    []syncResult // fresh scans someone else indexed first, for redoTaken
	// written are the fresh scans flush wrote, for redoTaken to check
	// that their files are still there: their threads were not held
	// between the decision and the write, when their holders may have
	// indexed and deleted them.
	written []rolloutFile
	// forks are the unindexed forks recorded in the index (path -> base),
	// as this writer left them; forksMet are those of its paths it applied
	// a result for.
	forks    map[string]string
	forksMet map[string]bool
	sum      *Summary
}

// newSyncWriter returns a writer for s, reading the unindexed forks
// recorded in its index.
func newSyncWriter(ctx context.Context, s *syncer, batchSize int, sum *Summary) (*syncWriter, error) {
	if batchSize <= 0 {
		batchSize = DefaultBatchSize
	}
	recorded, err := s.st.UnindexedForks(ctx, nil)
	if err != nil {
		return nil, err
	}
	forks := make(map[string]string, len(recorded))
	for _, f := range recorded {
		forks[f.RolloutPath] = f.Base
	}
	return &syncWriter{
		s:         s,
		batchSize: batchSize,
		pending:   make(map[string]string),
		claims:    make(map[string]string),
		dupAt:     make(map[string]int),
		touched:   newIDFilter(),
		freshIDs:  make(map[string]bool),
		forks:     forks,
		forksMet:  make(map[string]bool),
		sum:       sum,
	}, nil
}

func (w *syncWriter) apply(ctx context.Context, res syncResult) error {
	if w.waitsForBase(res) {
		w.waiting = append(w.waiting, res.file)
		return nil
	}
	if err := w.applyOne(ctx, res); err != nil {
		return err
	}
	return w.redoTaken(ctx)
}

// waitsForBase reports whether res, a full Sync's scan of a file that
// continues another thread's history (a reference fork), may have read
// that thread's rows as they were before this Sync rewrote them: the
// messages the fork inherits are its base's, and a rescan that changes
// the base (an index an older release counted by other rules) must change
// them too. A worker's scan may predate any write, so the file waits for
// the rounds; there it is read once its base is written (a chain of forks
// a round per link). By then every thread whose file was read is written
// but those waiting, so a fork waits only while its base is in the same
// round. A base that is never written (its file is gone, or could not be
// read) leaves the fork to the last round, which indexes it as before.
// A fork that would wait is read no further than its first line
// (syncer.scan answers actWait), unless in a round its history_base names
// its base by a revert segment's id (syncer.waitsFor).
func (w *syncWriter) waitsForBase(res syncResult) bool {
	if res.action == actWait {
		return true // a reference fork not read (syncer.scan)
	}
	if !w.s.full || w.finishing || res.action != actScan {
		return false
	}
	base := res.record.Thread.BaseID
	return base != "" && base != res.file.id && w.s.waitsFor(base)
}

func (w *syncWriter) applyOne(ctx context.Context, res syncResult) error {
	if w.s.hold == nil || res.action == actSkip && res.setName == nil || res.action == actDuplicate {
		return w.applyHeld(ctx, res)
	}
	release, skip := w.s.hold(res.file.id)
	if skip {
		if res.isFile() {
			w.sum.Files++
			w.sum.Skipped++
		}
		return nil
	}
	defer release()
	if w.isFresh(res) {
		// The lookup below, once per file, cost a fifth of the writer's
		// time in a first index: flush makes it for the whole batch.
		w.fresh = append(w.fresh, res)
		w.freshIDs[res.file.id] = true
		res.problems = nil
		return w.applyHeld(ctx, res)
	}
	return w.applyChecked(ctx, res)
}

// isFresh reports whether res, a scan decided under SyncOptions.Hold, is
// of a file whose thread had no row and that this writer has not met:
// its row is looked up at flush, with the batch's.
func (w *syncWriter) isFresh(res syncResult) bool {
	if res.action != actScan || res.base != "" || res.contest || w.freshIDs[res.file.id] || w.touched.mayHold(res.file.id) {
		return false
	}
	_, claimed := w.claims[res.file.id]
	return !claimed
}

// applyChecked applies res, held, after checking the thread's row against
// the one the decision assumed.
func (w *syncWriter) applyChecked(ctx context.Context, res syncResult) error {
	if res.isFile() && res.action != actFailed {
		// The row may have changed since the decision (a manager wrote
		// it): decide again from what is there now.
		if err := w.flushIfPending(ctx, res.file.id); err != nil {
			return err
		}
		rows, err := w.s.st.IndexedFilesByID(ctx, []string{res.file.id})
		if err != nil {
			return err
		}
		var now *store.IndexedFile
		if len(rows) > 0 {
			now = &rows[0]
		}
		if (now == nil) != (res.base == "") || now != nil && now.FileState != res.baseState {
			res = w.s.decide(ctx, res.file, now)
		}
	}
	if err := w.applyHeld(ctx, res); err != nil {
		return err
	}
	if res.action == actScan && res.base != "" {
		// A rescanned row must be in the index before release: the holder
		// may write it next. A new thread's row has no other writer (its
		// creator, if any, held the thread while it wrote the row), so new
		// files stay batched.
		return w.flush(ctx)
	}
	return nil
}

// applyHeld applies res; with SyncOptions.Hold set, the caller holds the
// thread.
func (w *syncWriter) applyHeld(ctx context.Context, res syncResult) error {
	switch res.action {
	case actDelete:
		return w.deleteOrphan(ctx, res.file.id, res.file.rel)
	case actDeferDelete:
		w.deferred = append(w.deferred, res.file)
		return nil
	}
	f := res.file
	w.sum.Files++
	if c, ok := w.claims[f.id]; ok && beats(c, f.rel) {
		w.duplicate(f.rel)
		return nil
	}
	res, err := w.redecide(ctx, res)
	if err != nil {
		return err
	}
	if res.action == actWait {
		// Decided again: a reference fork, for a later round.
		w.sum.Files--
		w.waiting = append(w.waiting, f)
		return nil
	}
	if res.action == actDuplicate {
		w.claim(f.id, res.winner)
		w.duplicate(f.rel)
		return nil
	}
	if res.contest {
		w.claim(f.id, f.rel)
		w.duplicate(res.base)
	}
	w.sum.Problems = append(w.sum.Problems, res.problems...)
	w.sum.BytesRead += res.bytesRead
	w.sum.Lines += res.lines
	w.sum.UserMessages += res.messages
	switch res.action {
	case actSkip:
		w.sum.Skipped++
	case actFailed:
		if res.needsBase && !w.finishing {
			// Its base may be in this Sync's later files or batches:
			// try again once everything else is in.
			w.sum.Files--
			w.sum.Problems = w.sum.Problems[:len(w.sum.Problems)-len(res.problems)]
			w.waiting = append(w.waiting, f)
			return nil
		}
		err = w.applyFailed(ctx, res)
	case actScan:
		err = w.applyScan(ctx, res)
	case actCatchUp:
		err = w.applyCatchUp(ctx, res)
	case actEmptied:
		err = w.applyEmptied(ctx, res)
	case actAddSegment:
		w.sum.Skipped++
		if w.s.hold != nil && !w.s.exists(f.rel) {
			// Its holder removed it after the decision (a purge's
			// materialize removes the earlier files it no longer
			// lists), leaving the row as it was: the index must not
			// list a file that is gone.
			return nil
		}
		err = w.applyAddSegment(ctx, res)
	case actMoveSegment:
		err = w.applyMoveSegment(ctx, res)
	case actMove:
		err = w.applyMove(ctx, res)
	}
	if err == nil {
		err = w.noteFork(ctx, res)
	}
	if err != nil || res.setName == nil {
		return err
	}
	w.sum.Renamed++
	w.touched.add(f.id)
	if err := w.flushIfPending(ctx, f.id); err != nil {
		return err
	}
	if err := w.s.st.SetName(ctx, f.id, *res.setName, res.updatedAt); err != nil {
		return fmt.Errorf("rename %s: %w", f.id, err)
	}
	return nil
}

// redecide returns res, or the decision made again when the row res
// assumed has changed since: it can only have changed by this writer's
// own writes to the thread, so those are flushed first.
func (w *syncWriter) redecide(ctx context.Context, res syncResult) (syncResult, error) {
	f := res.file
	if res.action == actSkip || res.action == actDuplicate || !w.touched.mayHold(f.id) {
		return res, nil
	}
	cur, err := w.pathOf(ctx, f.id)
	if err != nil || cur == res.base {
		return res, err
	}
	if err := w.flush(ctx); err != nil {
		return res, err
	}
	return w.s.decideFresh(ctx, f), nil
}

// noteFork keeps the index's record of unindexed forks (store.UnindexedFork)
// for res's file, which is held or needs no hold: a file that could not be
// indexed and whose first meta names a history_base is recorded with that
// base (a delete of the base reads it: the file still holds it, as Codex
// counts it). An indexed file loses its record, and so does a failed one
// whose first meta names no base, or its own thread (a revert segment); a
// failed one whose first line cannot be read now (its writer emptied it to
// write it anew) keeps it. A record is written only when it changes.
func (w *syncWriter) noteFork(ctx context.Context, res syncResult) error {
	f := res.file
	recorded, had := w.forks[f.rel]
	if !had && res.action != actFailed {
		return nil
	}
	base := ""
	if res.action == actFailed {
		var err error
		if base, err = ReadBase(ctx, w.s.fsys, f.rel); err != nil {
			return nil // a file gone meanwhile is forgotten at the end (forgetGoneForks)
		}
	}
	w.forksMet[f.rel] = true
	switch {
	case base == "" || base == f.id:
		if !had {
			return nil
		}
		delete(w.forks, f.rel)
		return w.s.st.ForgetUnindexedFork(ctx, f.rel)
	case had && recorded == base:
		return nil
	}
	w.forks[f.rel] = base
	return w.s.st.SetUnindexedFork(ctx, store.UnindexedFork{RolloutPath: f.rel, ThreadID: f.id, Base: base})
}

// forgetGoneForks removes the records of unindexed forks whose files are
// known to be gone, among those this writer met no result for: every one, or with
// only set, those of its paths.
func (w *syncWriter) forgetGoneForks(ctx context.Context, only map[string]bool) error {
	for rel := range w.forks {
		if w.forksMet[rel] || only != nil && !only[rel] || !w.s.absent(rel) {
			continue
		}
		delete(w.forks, rel)
		if err := w.s.st.ForgetUnindexedFork(ctx, rel); err != nil {
			return err
		}
	}
	return nil
}

// applyFailed counts a file that could not be indexed.
func (w *syncWriter) applyFailed(ctx context.Context, res syncResult) error {
	f := res.file
	w.sum.Failed++
	w.claim(f.id, f.rel)
	// Only the row's own file, no longer a thread, takes the row with
	// it: another file of the id that is not (yet) a thread, such as
	// a revert segment created but not written, leaves it alone.
	if res.notThread && res.base == f.rel {
		return w.deleteAt(ctx, f.id, res.base)
	}
	return nil
}

// applyScan queues the record of a file scanned whole for the batch.
func (w *syncWriter) applyScan(ctx context.Context, res syncResult) error {
	f := res.file
	w.sum.Scanned++
	if res.rewritten {
		w.sum.Rewritten = append(w.sum.Rewritten, f.id)
	}
	w.batch = append(w.batch, res.record)
	w.pending[f.id] = f.rel
	w.touched.add(f.id)
	if len(w.batch) >= w.batchSize {
		return w.flush(ctx)
	}
	return nil
}

// applyCatchUp records what a file grew by, or only its new size and
// time when no complete line was added.
func (w *syncWriter) applyCatchUp(ctx context.Context, res syncResult) error {
	f := res.file
	w.sum.CaughtUp++
	w.touched.add(f.id)
	if err := w.flushIfPending(ctx, f.id); err != nil {
		return err
	}
	p := res.progress
	if res.grew {
		if err := w.s.st.Advance(ctx, p); err != nil {
			return fmt.Errorf("advance %s: %w", f.rel, err)
		}
	} else if err := w.s.st.SetFileState(ctx, p.ID, p.FileSize, p.FileMtime); err != nil {
		return fmt.Errorf("set file state of %s: %w", f.rel, err)
	}
	return nil
}

// applyEmptied marks the row of a thread whose file was emptied (see
// emptied) as holding nothing read from the file: size 0.
func (w *syncWriter) applyEmptied(ctx context.Context, res syncResult) error {
	f := res.file
	w.sum.Failed++
	w.claim(f.id, f.rel)
	if res.rewritten {
		w.sum.Rewritten = append(w.sum.Rewritten, f.id)
	}
	w.touched.add(f.id)
	if err := w.flushIfPending(ctx, f.id); err != nil {
		return err
	}
	if err := w.s.st.SetFileState(ctx, f.id, 0, res.mtime); err != nil {
		return fmt.Errorf("set file state of %s: %w", f.rel, err)
	}
	return nil
}

// applyAddSegment records a thread's earlier file the index lacks.
func (w *syncWriter) applyAddSegment(ctx context.Context, res syncResult) error {
	f := res.file
	if err := w.flushIfPending(ctx, f.id); err != nil {
		return err
	}
	preview, err := w.s.earlierPreview(ctx, f, res.preview)
	if err != nil {
		return err
	}
	return w.s.st.AddSegment(ctx, f.id, f.rel, preview, PreviewCutAway)
}

// earlierPreview returns the preview thread f.id takes from f, an earlier
// file of it the index did not know, read after a later one (a rebuild's
// order, files copied in any order), whose first line that gives a
// preview gives text: no revert takes a preview back, so the first such
// line ever written is the thread's preview, wherever a later revert cut
// the history. It is nil when text is "" or the thread's preview came from
// a file before f (or cannot be told apart from one).
func (s *syncer) earlierPreview(ctx context.Context, f rolloutFile, text string) (*string, error) {
	if text == "" {
		return nil, nil
	}
	row, err := s.st.Get(ctx, f.id)
	if err != nil {
		return nil, err
	}
	if row.Preview == "" {
		return &text, nil
	}
	from, err := s.previewFile(ctx, row)
	if err != nil || from == "" || !laterFile(from, f.rel) {
		return nil, err
	}
	return &text, nil
}

// previewFile returns the file of thread row's own whose line gave its
// preview: the row's file, or the chain link of its history that holds the
// preview's position; "" when it is none of them (a base thread's line) or
// a cut took it away (PreviewCutAway).
func (s *syncer) previewFile(ctx context.Context, row store.Thread) (string, error) {
	at := row.PreviewOffset
	switch {
	case at == PreviewCutAway:
		return "", nil
	case at >= row.BaseSize:
		return row.RolloutPath, nil
	}
	segs, err := s.st.Segments(ctx, row.ID)
	if err != nil {
		return "", err
	}
	for _, sg := range segs {
		if sg.InChain() && at >= sg.BaseSize && at < sg.BaseSize+sg.Length {
			return sg.RolloutPath, nil
		}
	}
	return "", nil
}

// filePreview returns the preview the first line of file rel that gives
// one gives (rollout.Preview), shortened (Preview); "" for none.
func filePreview(ctx context.Context, fsys rolloutfs.FS, rel string) (string, error) {
	f, err := OpenRollout(ctx, fsys, rel)
	if err != nil {
		return "", err
	}
	defer f.Close()
	rd := rollout.NewReader(scanRange(rel, f, math.MaxInt64), 0, 0)
	for rd.Next() {
		if text, ok := rollout.Preview(rd.Line()); ok {
			return Preview(text), nil
		}
	}
	return "", rd.Err()
}

// applyMoveSegment records that a thread's earlier file moved.
func (w *syncWriter) applyMoveSegment(ctx context.Context, res syncResult) error {
	f := res.file
	w.sum.Moved++
	if err := w.flushIfPending(ctx, f.id); err != nil {
		return err
	}
	return w.s.st.MoveSegments(ctx, f.id, map[string]string{res.twin: f.rel})
}

// applyMove records that a thread's newest file moved (archived or
// unarchived), its earlier files with it.
func (w *syncWriter) applyMove(ctx context.Context, res syncResult) error {
	f := res.file
	w.sum.Moved++
	w.touched.add(f.id)
	if err := w.flushIfPending(ctx, f.id); err != nil {
		return err
	}
	archived := IsArchivedPath(f.rel)
	archivedAt := int64(0)
	if archived {
		archivedAt = res.archiveAt
	}
	if err := w.s.st.SetArchived(ctx, f.id, archived, f.rel, archivedAt); err != nil {
		return fmt.Errorf("move %s: %w", f.rel, err)
	}
	return w.moveSegmentsWith(ctx, f)
}

// moveSegmentsWith records that the earlier files of f's thread moved
// where its newest file f did, those that are there and gone from where
// the index has them: Codex archives and unarchives every file of a
// thread together.
func (w *syncWriter) moveSegmentsWith(ctx context.Context, f rolloutFile) error {
	segs, err := w.s.st.Segments(ctx, f.id)
	if err != nil {
		return fmt.Errorf("move %s: %w", f.rel, err)
	}
	moved := map[string]string{}
	for _, sg := range segs {
		to := samePlace(sg.RolloutPath, f.rel)
		if to != sg.RolloutPath && w.s.exists(to) && !w.s.exists(sg.RolloutPath) {
			moved[sg.RolloutPath] = to
		}
	}
	if len(moved) == 0 {
		return nil
	}
	return w.s.st.MoveSegments(ctx, f.id, moved)
}

// indexWaiting indexes the files that waited for their bases, in rounds
// while a round indexes something (a chain of forks needs a round per
// link); then, in rounds again, those whose parent is not in the root (a
// fork of one waits for it); what is left last has a base that is not in
// the root, or a parent stuck behind one, and is indexed as it can be.
func (w *syncWriter) indexWaiting(ctx context.Context) error {
	w.s.inRounds = true
	if err := w.indexRounds(ctx, func() {}); err != nil {
		return err
	}
	// Then the forks whose parents are gone, a round per link again: a
	// fork of one of them waits until its parent is in.
	w.s.lenient = true
	if err := w.indexRounds(ctx, func() { w.s.waitingIDs = waitingIDs(w.waiting) }); err != nil {
		return err
	}
	w.finishing = true
	w.s.roundIDs, w.s.firstFiles, w.s.firstSegments, w.s.waitingIDs = nil, nil, nil, nil // the last decisions wait for nothing (scan)
	w.s.lastRound = true
	// A reverted thread's first file before its segments: where it is
	// read again, they are read through it (segmentWaits).
	slices.SortStableFunc(w.waiting, func(a, b rolloutFile) int {
		return cmp.Compare(firstFileRank(a), firstFileRank(b))
	})
	bases := readBases(ctx, w.s.fsys, w.waiting)
	w.waiting = basesFirst(w.waiting, bases)
	// A base in the root that is not indexed by now failed to index
	// (applyFailed claims its id).
	why := explainBases(w.waiting, bases, func(id string) bool { _, ok := w.claims[id]; return ok })
	read := map[string]bool{} // threads of this round's files not yet written
	for _, f := range w.waiting {
		if read[bases[f.rel]] {
			// Its base was read in this round: written first, or the
			// fork finds no base.
			if err := w.flushAll(ctx); err != nil {
				return err
			}
			clear(read)
		}
		res := w.s.decideFresh(ctx, f)
		if p, ok := why[f.id]; ok && res.baseMissing {
			res.problems = []Problem{p}
		}
		if err := w.apply(ctx, res); err != nil {
			return err
		}
		read[f.id] = true
	}
	w.waiting = nil
	return w.flushAll(ctx)
}

// basesFirst orders the files left for the last round so that a reference
// fork comes after the first file of its base's thread when that file is
// among them: a chain of forks left waiting together (their base's thread
// kept in the rounds by a segment of its own) is read base first, else a
// fork read before its base finds none. Files keep their order otherwise;
// a cycle of bases is left as it is (its files fail as cyclic). bases
// holds each file's base thread by path (readBases).
func basesFirst(files []rolloutFile, bases map[string]string) []rolloutFile {
	first := make(map[string]int, len(files)) // thread id: index of its first file in files
	for i, f := range files {
		if !isSegmentFile(f.rel) {
			first[f.id] = i
		}
	}
	const (
		unseen = iota
		visiting
		placed
	)
	state := make([]int, len(files))
	out := make([]rolloutFile, 0, len(files))
	var place func(i int)
	place = func(i int) {
		if state[i] != unseen {
			return
		}
		state[i] = visiting
		if j, ok := first[bases[files[i].rel]]; ok {
			place(j)
		}
		state[i] = placed
		out = append(out, files[i])
	}
	for i := range files {
		place(i)
	}
	return out
}

// indexRounds indexes the waiting files in rounds, calling before ahead
// of each, while a round indexes something.
func (w *syncWriter) indexRounds(ctx context.Context, before func()) error {
	for len(w.waiting) > 0 {
		before()
		round := w.waiting
		w.waiting = nil
		w.s.roundIDs = waitingIDs(round)
		w.s.firstFiles = firstFileIDs(round)
		w.s.firstSegments = firstSegments(round)
		if err := w.applyRound(ctx, round); err != nil {
			return err
		}
		if err := w.flushAll(ctx); err != nil {
			return err
		}
		if len(w.waiting) == len(round) {
			break
		}
	}
	return nil
}

// applyRound decides the files of a round of waiting files and applies
// them. With more than one worker the files are read in parallel, as in
// the walk, and applied in the order they are read (in SyncOptions.Shuffle's
// order when set): a file whose base is in the round waits for the next
// one whatever it read (waitsForBase), and every other base was written
// before the round began.
func (w *syncWriter) applyRound(ctx context.Context, round []rolloutFile) error {
	if w.s.workers <= 1 {
		for _, f := range round {
			if err := w.apply(ctx, w.s.decideFresh(ctx, f)); err != nil {
				return err
			}
		}
		return nil
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	results := runWorkers(ctx, round, w.s.workers, func(f rolloutFile) syncResult { return w.s.decideFresh(ctx, f) })
	if w.s.shuffle != nil {
		results = shuffled(results, w.s.shuffle)
	}
	for res := range results {
		if err := w.apply(ctx, res); err != nil {
			cancel()
			for range results { // let the workers finish
			}
			return err
		}
	}
	return ctx.Err() // a cancelled round drops files
}

// firstFileIDs returns the thread ids of those of files that are a
// thread's first file.
func firstFileIDs(files []rolloutFile) map[string]bool {
	ids := make(map[string]bool)
	for _, f := range files {
		if isFirstFile(f.rel) {
			ids[f.id] = true
		}
	}
	return ids
}

// firstSegments returns, by thread id, the earliest of the revert
// segments among files.
func firstSegments(files []rolloutFile) map[string]string {
	first := make(map[string]string)
	for _, f := range files {
		if at, ok := first[f.id]; isSegmentFile(f.rel) && (!ok || laterFile(at, f.rel)) {
			first[f.id] = f.rel
		}
	}
	return first
}

// firstFileRank orders a thread's first file (0) before its revert
// segments (1).
func firstFileRank(f rolloutFile) int {
	if isFirstFile(f.rel) {
		return 0
	}
	return 1
}

// waitingIDs returns the thread ids of files.
func waitingIDs(files []rolloutFile) map[string]bool {
	ids := make(map[string]bool, len(files))
	for _, f := range files {
		ids[f.id] = true
	}
	return ids
}

// pathOf returns the rollout path of thread id as it will be once the
// batch is written ("" for none).
func (w *syncWriter) pathOf(ctx context.Context, id string) (string, error) {
	if p, ok := w.pending[id]; ok {
		return p, nil
	}
	return w.s.st.RolloutPathOf(ctx, id)
}

// claim records that rel holds thread id, unless a preferred file already
// does.
func (w *syncWriter) claim(id, rel string) {
	if c, ok := w.claims[id]; ok && beats(c, rel) {
		return
	}
	w.claims[id] = rel
}

// beats reports whether file c, claimed for a thread, wins over rel, a
// copy of it (the same name elsewhere). Two files of a thread with other
// names (its first file and a revert segment) are no copies: decide tells
// which holds the thread.
func beats(c, rel string) bool {
	return c != rel && path.Base(c) == path.Base(rel) && preferFile(c, rel)
}

// duplicate reports rel as a duplicate, once; finish fills in the winner.
func (w *syncWriter) duplicate(rel string) {
	if _, ok := w.dupAt[rel]; ok {
		return
	}
	w.dupAt[rel] = len(w.sum.Problems)
	w.sum.Problems = append(w.sum.Problems, Problem{Path: rel, Kind: ProblemDuplicate})
}

// deleteAt deletes thread id if its row is still at rel.
func (w *syncWriter) deleteAt(ctx context.Context, id, rel string) error {
	if err := w.flushIfPending(ctx, id); err != nil {
		return err
	}
	w.touched.add(id)
	deleted, err := w.s.st.DeleteAt(ctx, id, rel)
	if err != nil {
		return err
	}
	if deleted {
		w.sum.Deleted++
	}
	return nil
}

// deleteOrphan deletes thread id, whose row at rel had no file when the
// sync decided it, unless that file may be there now, at rel or at another
// of its forms (OtherForms): its creator, holding the thread as
// SyncOptions.Hold does, wrote the file and then the row after the walk
// listed the directory, or the file moved and could not be read where it
// went (a stat or read that failed other than with ENOENT). The caller
// holds the thread.
func (w *syncWriter) deleteOrphan(ctx context.Context, id, rel string) error {
	if nameID, _, _, err := rollout.ParseRolloutName(path.Base(rel)); err == nil && nameID == id {
		for _, p := range append([]string{rel}, OtherForms(rel)...) {
			if !w.s.absent(p) {
				return nil
			}
		}
	}
	return w.deleteAt(ctx, id, rel)
}

// deleteHeld is deleteOrphan under SyncOptions.Hold, when set.
func (w *syncWriter) deleteHeld(ctx context.Context, id, rel string) error {
	if w.s.hold != nil {
		release, skip := w.s.hold(id)
		if skip {
			return nil
		}
		defer release()
	}
	return w.deleteOrphan(ctx, id, rel)
}

// flushIfPending writes the batch if it holds a record of thread id, so a
// direct write to that thread lands after it.
func (w *syncWriter) flushIfPending(ctx context.Context, id string) error {
	if _, ok := w.pending[id]; !ok {
		return nil
	}
	return w.flush(ctx)
}

func (w *syncWriter) flush(ctx context.Context) error {
	if len(w.batch) == 0 {
		return nil
	}
	taken, err := w.s.st.ReplaceUnlessIndexed(ctx, w.batch, w.freshIDs)
	if err != nil {
		return fmt.Errorf("replace %d threads: %w", len(w.batch), err)
	}
	clear(w.batch) // drop the records' messages now, not when overwritten
	w.batch = w.batch[:0]
	clear(w.pending)
	fresh := w.fresh
	w.fresh = nil
	clear(w.freshIDs)
	if len(fresh) == 0 {
		return nil
	}
	isTaken := make(map[string]bool, len(taken))
	for _, id := range taken {
		isTaken[id] = true
	}
	for _, res := range fresh {
		if !isTaken[res.file.id] {
			w.sum.Problems = append(w.sum.Problems, res.problems...)
			w.written = append(w.written, res.file)
			continue
		}
		// Someone indexed the thread since the decision: take back what
		// applyHeld counted; redoTaken decides it again from the row.
		w.sum.Files--
		w.sum.Scanned--
		w.sum.BytesRead -= res.bytesRead
		w.sum.Lines -= res.lines
		w.sum.UserMessages -= res.messages
		w.taken = append(w.taken, res)
	}
	return nil
}

// redoTaken applies again, each under its hold, the fresh scans whose
// threads someone else indexed before their batch was written, and drops
// again the rows written for fresh scans whose files went meanwhile. It
// runs after apply released its hold (flush may run under one, and holds
// are not reentrant).
func (w *syncWriter) redoTaken(ctx context.Context) error {
	for len(w.written) > 0 {
		f := w.written[0]
		w.written = w.written[1:]
		// A holder may have indexed the thread and deleted it (file and
		// row) after the decision and before the batch was written,
		// which then wrote the row again: a row without a file.
		if err := w.dropIfGone(ctx, f); err != nil {
			return err
		}
	}
	for len(w.taken) > 0 {
		res := w.taken[0]
		w.taken = w.taken[1:]
		err := func() error {
			release, skip := w.s.hold(res.file.id)
			if skip {
				w.sum.Files++
				w.sum.Skipped++
				return nil
			}
			defer release()
			return w.applyChecked(ctx, res)
		}()
		if err != nil {
			return err
		}
	}
	return nil
}

// dropIfGone deletes the row just written for f's fresh scan if, under
// the hold, f is neither at its place nor at its other place.
func (w *syncWriter) dropIfGone(ctx context.Context, f rolloutFile) error {
	if w.s.placed(f.rel) {
		return nil
	}
	release, skip := w.s.hold(f.id)
	if skip {
		return nil // live: its owner found the file gone, or will
	}
	defer release()
	if w.s.placed(f.rel) {
		return nil
	}
	return w.deleteAt(ctx, f.id, f.rel)
}

// flushAll writes the batch and applies again what it left out, until
// both are empty. Its caller holds no thread.
func (w *syncWriter) flushAll(ctx context.Context) error {
	for {
		if err := w.flush(ctx); err != nil {
			return err
		}
		if len(w.taken) == 0 && len(w.written) == 0 {
			return nil
		}
		if err := w.redoTaken(ctx); err != nil {
			return err
		}
	}
}

// finish writes the last batch, deletes the deferred orphan rows that no
// file claimed, and names the winner in each duplicate problem.
func (w *syncWriter) finish(ctx context.Context) error {
	if err := w.flushAll(ctx); err != nil {
		return err
	}
	if err := w.indexWaiting(ctx); err != nil {
		return err
	}
	for _, o := range w.deferred {
		if err := w.deleteHeld(ctx, o.id, o.rel); err != nil {
			return err
		}
	}
	if err := w.flushAll(ctx); err != nil {
		return err
	}
	for rel, i := range w.dupAt {
		id, _, _, _ := rollout.ParseRolloutName(path.Base(rel))
		w.sum.Problems[i].Detail = fmt.Sprintf("thread %s is indexed from %s", id, w.claims[id])
	}
	return nil
}

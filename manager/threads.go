package manager

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/spoolhq/spool/codexlock"
	"github.com/spoolhq/spool/indexer"
	"github.com/spoolhq/spool/rollout"
	"github.com/spoolhq/spool/rolloutfs"
	"github.com/spoolhq/spool/store"
)

// threadErr says which call on thread id failed: "<what> <id>: <err>", or
// "<what>: <err>" when err already names the thread (the index's
// not-found errors do), or err itself when it starts "<what> <id>:", so
// that no message names a thread, or the call, twice.
func threadErr(id string, err error, format string, args ...any) error {
	what := fmt.Sprintf(format, args...)
	msg := err.Error()
	switch {
	case strings.HasPrefix(msg, what+" "+id+":"):
		return err
	case strings.Contains(msg, id):
		return fmt.Errorf("%s: %w", what, err)
	}
	return fmt.Errorf("%s %s: %w", what, id, err)
}

// busy is the error of a failed take of a thread's writer lock: ErrBusy
// when another process holds it (a running Codex), else err itself, a
// failure of the storage (a full disk, a lock directory that is not one).
func busy(err error) error {
	if errors.Is(err, codexlock.ErrHeld) {
		return fmt.Errorf("%w: %w", ErrBusy, err)
	}
	return err
}

// parseID checks an id given by a caller before it reaches the index or a
// path.
func parseID(op, id string) (string, error) {
	canon, err := rollout.ParseID(id)
	if err != nil {
		return "", fmt.Errorf("%s: %w", op, err) // err quotes id
	}
	return canon, nil
}

// Start creates a thread: its rollout file holding the first session_meta
// line (a new UUID v7 id), and its index row. With o.Name set, the name is
// recorded as Rename does. It returns the new thread, whose RolloutPath and
// CreatedAt are the counterpart of Codex's SessionConfigured.
func (m *Manager) Start(ctx context.Context, o StartOptions) (Thread, error) {
	if err := checkName(o.Name); err != nil {
		return Thread{}, fmt.Errorf("start thread: %w", err)
	}
	if err := CheckCwd(o.Cwd); err != nil {
		return Thread{}, fmt.Errorf("start thread: %w", err)
	}
	if err := CheckIdempotencyKey(o.IdempotencyKey); err != nil {
		return Thread{}, fmt.Errorf("start thread: %w", err)
	}
	source, err := normalizeSource(o.Source)
	if err != nil {
		return Thread{}, fmt.Errorf("start thread: %w", err)
	}
	if o.ModelProvider == "" {
		o.ModelProvider = DefaultModelProvider
	}
	uid, err := uuid.NewV7()
	if err != nil {
		return Thread{}, fmt.Errorf("start thread: %w", err)
	}
	id := uid.String()
	now := m.now()
	mode, err := startMode(o.HistoryMode)
	if err != nil {
		return Thread{}, fmt.Errorf("start thread: %w", err)
	}
	key := newCreationKey("", o.IdempotencyKey, o.RequestHash(), now)
	meta := rollout.SessionMeta{
		ID:            id,
		Timestamp:     rollout.FormatTimestamp(now),
		Cwd:           o.Cwd,
		Originator:    o.Originator,
		CLIVersion:    o.CLIVersion,
		Source:        source,
		ModelProvider: o.ModelProvider,
		Git:           o.Git,
		CreationKey:   key.stated(),
		HistoryMode:   mode,
	}
	line, err := rollout.NewSessionMetaLine(meta.Timestamp, rollout.MetaPayload{SessionMeta: meta, BaseInstructions: o.BaseInstructions})
	if err == nil && mode == rollout.HistoryPaginated {
		line, err = rollout.WithOrdinal(line, 0)
	}
	var name []byte // the line naming the thread, written with its meta
	if err == nil && o.Name != "" {
		name, err = RenameLine(id, o.Name, now)
	}
	if err != nil {
		return Thread{}, fmt.Errorf("start thread: %w: %w", ErrInvalidArgument, err)
	}
	rel, err := rollout.SessionPath(rollout.FileName(now, id))
	if err != nil {
		return Thread{}, fmt.Errorf("start thread: %w", err)
	}
	if err := m.begin(); err != nil {
		return Thread{}, err
	}
	defer m.ops.Done()
	if err := ctx.Err(); err != nil {
		return Thread{}, fmt.Errorf("start thread: %w", err)
	}
	row, replayed, err := m.createOnce(ctx, "start thread", key, func() (store.Thread, error) {
		return m.startFile(ctx, id, rel, line, name, now, o, source, mode, key)
	})
	if err != nil || replayed {
		return threadResult(row, err)
	}
	return threadResult(m.announce(EventCreated)(row, nil))
}

// startFile creates a new thread's file holding meta, and name (the line
// naming it; nil for none), and its index row, with key when not nil.
func (m *Manager) startFile(ctx context.Context, id, rel string, meta, name []byte, now time.Time, o StartOptions, source string, mode rollout.HistoryMode, key *creationKey) (store.Thread, error) {
	row := store.Thread{
		ID:              id,
		RolloutPath:     rel,
		CreatedAt:       now.UnixMilli(),
		UpdatedAt:       now.UnixMilli(),
		Cwd:             o.Cwd,
		Source:          source,
		Originator:      o.Originator,
		CLIVersion:      o.CLIVersion,
		ModelProvider:   o.ModelProvider,
		ForkUserMessage: -1,
		ForkOffset:      -1,
		LineCount:       1,
		HistoryMode:     string(mode),
	}
	if mode == rollout.HistoryPaginated {
		row.NextOrdinal = 1
	}
	setGit(&row, o.Git)
	named, err := m.nameLine(row, name)
	if err != nil {
		return store.Thread{}, fmt.Errorf("start thread %s: %w", id, err)
	}
	// A background sync must not index the file before its row exists.
	indexing := m.indexLock(id)
	indexing.Lock()
	defer indexing.Unlock()
	size, mtime, err := m.createRollout(ctx, rel, []rolloutfs.Part{rolloutfs.Bytes(meta), rolloutfs.Bytes(named)})
	if err != nil {
		return store.Thread{}, fmt.Errorf("start thread %s: %w", id, err)
	}
	if row, err = m.withName(ctx, row, meta, named, size, mtime); err == nil {
		err = m.store.Insert(context.WithoutCancel(ctx), store.Record{Thread: row, SpawnParentID: rollout.SpawnParent(row.Source), Key: key.record()})
	}
	if err != nil {
		m.undoCreate(rel)
		return store.Thread{}, fmt.Errorf("start thread %s: %w", id, err)
	}
	m.announceName(row, named)
	return row, nil
}

// nameLine returns name, the line naming a thread being created (nil for
// none), numbered as the next line of row's file: the last line the file
// is created with, so that no crash or failure leaves the thread without
// the name it was asked for.
func (m *Manager) nameLine(row store.Thread, name []byte) ([]byte, error) {
	if name == nil {
		return nil, nil
	}
	lines, err := m.numbered(row, [][]byte{name})
	if err != nil {
		return nil, err
	}
	return lines[0], nil
}

// withName returns row, a thread just created, as its file (size bytes,
// modified at mtime) holds it: ending in end (the bytes before named, at
// least its last line or indexer.TailBytes of them; nil when unknown),
// then named, its name line (nil for none), folded in as the index reads
// it once the name is recorded (session_index.jsonl, Codex's cache). On
// error the caller removes the file: nothing is created.
func (m *Manager) withName(ctx context.Context, row store.Thread, end, named []byte, size, mtime int64) (store.Thread, error) {
	unnamed := size - int64(len(named))
	row.IndexedSize, row.FileSize, row.FileMtime = unnamed, unnamed, mtime
	row.TailSum = indexer.TailSumOf(end)
	if named == nil {
		return row, nil
	}
	p := observe(row, [][]byte{named}, []int64{unnamed})
	p.FileSize, p.FileMtime = size, mtime
	row = advanced(row, p)
	// From the file's creation on, the caller's going away changes nothing.
	return row, m.recordName(context.WithoutCancel(ctx), row.ID, row.Name, row.UpdatedAt)
}

// observe returns the progress of row's file once lines, written at
// (file) offsets after the part row covers, are read: UpdatedAt is the
// newest envelope timestamp, as a rebuild reads it. The sizes and mtime
// are the caller's to fill in.
func observe(row store.Thread, lines [][]byte, offsets []int64) store.Progress {
	tracker := indexer.NewTracker(row)
	for i, line := range lines {
		tracker.Observe(rollout.NewLine(line[:len(line)-1], offsets[i], row.LineCount+int64(i)))
	}
	p := tracker.Progress()
	p.TailSum = indexer.TailSumOfLines(lines)
	return p
}

// advanced returns row as the index holds it after store.Advance(p): the
// newest timestamp read kept, and UpdatedAt bounded by the file's mtime.
// The next append's tracker starts from the newest, or a bounded value
// would stand in for it and the row would stop following the file.
func advanced(row store.Thread, p store.Progress) store.Thread {
	after := applyProgress(row, p)
	after.NewestAt = after.UpdatedAt
	after.UpdatedAt = indexer.ClampUpdatedAt(after.UpdatedAt, p.FileMtime)
	return after
}

// startMode returns the history mode of a new thread: paginated, as Codex
// 0.169 starts threads, unless the caller asks for legacy.
func startMode(name string) (rollout.HistoryMode, error) {
	if name == "" {
		return rollout.HistoryPaginated, nil
	}
	mode, err := rollout.ParseHistoryMode(name)
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrInvalidArgument, err)
	}
	return mode, nil
}

// CheckCwd refuses a working directory that is not an absolute path,
// POSIX or Windows (a thread's cwd is read as given: a relative one names
// another directory for every process that reads it). Empty is allowed:
// none is recorded.
func CheckCwd(cwd string) error {
	if cwd == "" || path.IsAbs(cwd) || isWindowsAbs(cwd) {
		return nil
	}
	return fmt.Errorf("%w: cwd %q is not an absolute path", ErrInvalidArgument, cwd)
}

// isWindowsAbs reports whether p is an absolute Windows path: a drive
// letter and a separator (C:\ or C:/), or a UNC path (\\server\share).
func isWindowsAbs(p string) bool {
	if strings.HasPrefix(p, `\\`) {
		return true
	}
	return len(p) >= 3 && p[1] == ':' && (p[2] == '\\' || p[2] == '/') &&
		('a' <= p[0]|0x20 && p[0]|0x20 <= 'z')
}

// checkName refuses a name too long to keep, or one of white space alone.
// The length is that of the name as kept: without its surrounding white
// space (see RenameLine).
func checkName(name string) error {
	kept := strings.TrimSpace(name)
	switch {
	case len(kept) > maxNameBytes:
		return fmt.Errorf("%w: a name is at most %d bytes", ErrInvalidArgument, maxNameBytes)
	case name != "" && kept == "":
		// Codex refuses one ("thread name must not be empty") and shows
		// a thread named so as unnamed.
		return fmt.Errorf("%w: a name must not be only white space", ErrInvalidArgument)
	}
	return nil
}

// normalizeSource returns the source as the index holds it: a plain name,
// or an object source as compact JSON (as rollout.ParseSessionMeta reads it).
func normalizeSource(source string) (string, error) {
	switch {
	case source == "":
		return "vscode", nil
	case strings.HasPrefix(strings.TrimSpace(source), "{"):
		var buf bytes.Buffer
		if err := json.Compact(&buf, []byte(source)); err != nil {
			return "", fmt.Errorf("%w: source is not a JSON object: %v", ErrInvalidArgument, err)
		}
		return buf.String(), nil
	default:
		return source, nil
	}
}

func setGit(row *store.Thread, g *rollout.GitInfo) {
	if g == nil {
		return
	}
	row.GitCommit, row.GitBranch, row.GitOrigin = g.CommitHash, g.Branch, g.RepositoryURL
}

func gitOf(row store.Thread) *rollout.GitInfo {
	if row.GitCommit == "" && row.GitBranch == "" && row.GitOrigin == "" {
		return nil
	}
	return &rollout.GitInfo{CommitHash: row.GitCommit, Branch: row.GitBranch, RepositoryURL: row.GitOrigin}
}

// createRollout writes a new rollout file at rel from parts, atomically
// (durably unless the policy is SyncNone), and returns its size and mtime
// (Unix ns). The caller's going away does not cut it short: a file that
// exists is always followed by its index row, or removed again.
func (m *Manager) createRollout(ctx context.Context, rel string, parts []rolloutfs.Part) (size, mtime int64, err error) {
	info, err := m.fsys.Create(context.WithoutCancel(ctx), rel, parts, m.opts.Sync.Durable())
	if err != nil {
		return 0, 0, err
	}
	return info.Size, info.ModTime.UnixNano(), nil
}

// undoCreate removes a rollout whose index row could not be written, so a
// failed start or fork leaves nothing behind. A file that cannot be
// removed is logged: the next open indexes it as a thread of its own.
func (m *Manager) undoCreate(rel string) {
	if err := m.fsys.Remove(context.Background(), rel); err != nil {
		m.log.Error("remove rollout of a failed start or fork", "path", rel, "err", err)
	}
}

// Append encodes items (stamping a timestamp where an item has none) and
// appends them to thread id in order, as one write. The index learns new
// user messages, rollback markers, name changes and the new size in the
// same call. An item that cannot be encoded fails the whole call with an
// error wrapping ErrInvalidItem, and nothing is written.
func (m *Manager) Append(ctx context.Context, id string, items []rollout.Item) (AppendResult, error) {
	return m.AppendWith(ctx, id, items, AppendOptions{})
}

// AppendWith is Append with preconditions (see AppendOptions).
func (m *Manager) AppendWith(ctx context.Context, id string, items []rollout.Item, o AppendOptions) (AppendResult, error) {
	id, err := parseID("append to", id)
	if err != nil {
		return AppendResult{}, err
	}
	if len(items) == 0 {
		return AppendResult{}, fmt.Errorf("append to %s: %w: no items", id, ErrInvalidItem)
	}
	now := m.now()
	checked := make([]rollout.CheckedItem, len(items))
	for i, it := range items {
		if checked[i], err = rollout.CheckItem(it, now); err != nil {
			return AppendResult{}, fmt.Errorf("append to %s: %w", id, itemError(i, err))
		}
	}
	if o.IdempotencyKey != "" {
		o.fingerprint = fingerprintItems(items)
	}
	// The lines are made under the writer lock, where the ordinals are
	// known: one copy of each payload, held for the write and the index.
	return m.appendRendered(ctx, id, o, func(row store.Thread) ([][]byte, error) { return encodeChecked(row, checked, itemError) })
}

// itemError is the error for item i of an append that cannot be encoded.
func itemError(i int, err error) error {
	return fmt.Errorf("item %d: %w: %w", i, ErrInvalidItem, err)
}

// checkedLine is an item or a line of an append, checked before the
// writer lock and encoded under it, where its ordinal is known.
type checkedLine interface {
	Size() int
	AppendLine(dst []byte) ([]byte, error)
	AppendLineWithOrdinal(dst []byte, n int64) ([]byte, error)
}

// encodeChecked makes the lines of an append to the thread of row: each
// with the next ordinal for a paginated thread (a rollback marker is
// refused there), as it is for a legacy one. The lines lie one after the
// other in one buffer, which the Appender writes as it is (one copy of
// the append, not one per line and one joined); each keeps the buffer's
// capacity past its end, so nothing may append to one. invalid makes the
// error for entry i that cannot be encoded.
func encodeChecked[T checkedLine](row store.Thread, checked []T, invalid func(i int, err error) error) ([][]byte, error) {
	paginated := row.HistoryMode == string(rollout.HistoryPaginated)
	size := 0
	for _, c := range checked {
		size += c.Size() + 32 // room for an ordinal
	}
	buf := make([]byte, 0, size)
	lines := make([][]byte, len(checked))
	for i, c := range checked {
		start := len(buf)
		var err error
		if paginated {
			buf, err = c.AppendLineWithOrdinal(buf, row.NextOrdinal+int64(i))
		} else {
			buf, err = c.AppendLine(buf)
		}
		if err != nil {
			return nil, invalid(i, err)
		}
		lines[i] = buf[start:]
		if paginated && rollout.IsRollbackLine(lines[i]) {
			return nil, &LineError{Line: i + 1, Err: ErrPaginatedRollback}
		}
	}
	return lines, nil
}

// AppendLines appends complete lines given by the caller, each validated
// with rollout.EncodeLine (kept byte for byte, a timestamp inserted where a
// line has none).
func (m *Manager) AppendLines(ctx context.Context, id string, lines [][]byte) (AppendResult, error) {
	return m.AppendLinesWith(ctx, id, lines, AppendOptions{})
}

// AppendLinesWith is AppendLines with preconditions (see AppendOptions).
func (m *Manager) AppendLinesWith(ctx context.Context, id string, lines [][]byte, o AppendOptions) (AppendResult, error) {
	id, err := parseID("append to", id)
	if err != nil {
		return AppendResult{}, err
	}
	if len(lines) == 0 {
		return AppendResult{}, fmt.Errorf("append to %s: %w: no items", id, ErrInvalidItem)
	}
	now := m.now()
	checked := make([]rollout.CheckedLine, len(lines))
	for i, l := range lines {
		if checked[i], err = rollout.CheckLine(l, now); err != nil {
			return AppendResult{}, fmt.Errorf("append to %s: %w", id, InvalidLineError(i, err))
		}
	}
	if o.IdempotencyKey != "" {
		o.fingerprint = fingerprintLines(lines)
	}
	invalid := func(i int, err error) error { return InvalidLineError(i, err) }
	return m.appendRendered(ctx, id, o, func(row store.Thread) ([][]byte, error) { return encodeChecked(row, checked, invalid) })
}

// appendRendered appends to thread id the lines render makes of its row as
// settled under its writer lock, under the preconditions of o.
func (m *Manager) appendRendered(ctx context.Context, id string, o AppendOptions, render func(row store.Thread) ([][]byte, error)) (AppendResult, error) {
	if err := CheckIdempotencyKey(o.IdempotencyKey); err != nil {
		return AppendResult{}, fmt.Errorf("append to %s: %w", id, err)
	}
	if err := m.begin(); err != nil {
		return AppendResult{}, err
	}
	defer m.ops.Done()
	var res AppendResult
	err := m.withWritable(ctx, id, func(lt *liveThread) error {
		var key *pendingKey
		if o.IdempotencyKey != "" {
			now := m.opts.Now()
			if done, ok, err := m.replay(ctx, id, o, now); ok || err != nil {
				res = done
				return err
			}
			key = &pendingKey{key: o.IdempotencyKey, fingerprint: o.fingerprint, now: now}
		}
		if lt.row.Archived {
			return fmt.Errorf("append to %s: %w", id, ErrArchived)
		}
		offsets, err := m.appendLocked(ctx, lt, key, func(row store.Thread) ([][]byte, error) {
			if err := o.check(row); err != nil {
				return nil, err
			}
			return render(row)
		})
		if err != nil {
			return err
		}
		res = AppendResult{Offsets: offsets, Thread: threadOf(lt.row)}
		return nil
	})
	return res, err
}

// appendLocked writes lines to lt's file, then folds them into the index.
// lt.mu must be held. The file is written first: if the index update fails
// (a full disk) the lines are cut from the file again, so the failed
// append wrote nothing and its retry writes them once (unless they renamed
// the thread and the name is in session_index.jsonl: then they stay, and
// the index catches up with them); lt is dropped so the next use reloads
// it from the file and the index.
//
// Under SyncBatch the index update runs while the lines' group sync does,
// and the append is acknowledged (returned, published) only once both are
// done. So the index may commit lines that are not durable yet: readers
// do not see them until the append is acknowledged (unackedSizes), and if
// the sync fails the index is brought back to the file before the error
// is returned. A power loss in that window leaves the index ahead of the
// file; the next open finds the file shorter than indexed and rescans it
// (indexer.ErrShrunk).
//
// prepare turns the thread's row, as settled, into the lines to write (the
// row says which ordinals come next); it may also refuse the append (a
// precondition on the settled row), and then nothing is written. key,
// when not nil, is recorded with the result in the index update.
func (m *Manager) appendLocked(ctx context.Context, lt *liveThread, key *pendingKey, prepare func(row store.Thread) ([][]byte, error)) ([]int64, error) {
	if err := refuseCompressed(lt.row); err != nil {
		return nil, err
	}
	var lines [][]byte
	if err := m.lockWriter(lt); err != nil {
		return nil, fmt.Errorf("append to %s: %w", lt.id, busy(err))
	}
	defer m.unlockWriter(lt)
	err := m.settle(ctx, lt, false)
	var pending *rolloutfs.PendingAppend
	if err == nil {
		lines, err = prepare(lt.row)
	}
	if err == nil {
		pending, err = lt.appender.Begin(ctx, lines)
	}
	if errors.Is(err, rolloutfs.ErrFileChanged) {
		// Someone who does not take Codex's lock wrote to or cut the file
		// between settle and the write: settle again and append after
		// what is there.
		m.log.Warn("rollout changed under its writer", "id", lt.id, "err", err)
		if err = m.settle(ctx, lt, true); err == nil {
			lines, err = prepare(lt.row)
		}
		if err == nil {
			pending, err = lt.appender.Begin(ctx, lines)
		}
	}
	if err != nil {
		// A failed settle or write leaves the thread in a state the next
		// use must reload from the file and the index.
		m.invalidate(lt)
		return nil, fmt.Errorf("append to %s: %w", lt.id, err)
	}
	// From here on the lines are in the file: finish the index update even
	// if the caller goes away.
	ctx = context.WithoutCancel(ctx)
	m.unacked.hold(lt.row)
	after, indexed, named, err := m.indexAppend(ctx, lt, key, lines, pending)
	if m.indexedBeforeSync != nil {
		m.indexedBeforeSync()
	}
	if syncErr := pending.Wait(); syncErr != nil {
		// Nothing is acknowledged and the lines are cut from the file (or
		// the file's state is unknown): the index must follow the file
		// before readers may see its size again.
		if indexed {
			m.repairIndex(ctx, after)
		}
		m.unacked.release(lt.id)
		m.invalidate(lt)
		return nil, fmt.Errorf("append to %s: %w", lt.id, syncErr)
	}
	// Acknowledged: readers see the lines from now on, before the event
	// that tells followers to read them is published.
	m.unacked.release(lt.id)
	if err != nil {
		// The index does not have the lines: nor may the file, or they
		// would show up, unacknowledged, once the index catches up. Cut
		// before lt is dropped, while no sync may index them. Unless they
		// renamed the thread and session_index.jsonl has the name: that
		// line stays (and wins on a rebuild), so the lines stay with it
		// and the next use catches the index up with both.
		if named {
			m.log.Warn("the lines of a rename the index refused stay in the file", "id", lt.id)
		} else if undo := pending.Undo(); undo != nil {
			m.log.Error("cut the lines of an append the index refused", "id", lt.id, "err", undo)
			err = errors.Join(err, undo)
		}
		m.invalidate(lt)
		return nil, fmt.Errorf("append to %s: %w", lt.id, err)
	}
	lt.row = after
	offsets := historyOffsets(lt.row, pending.Offsets)
	published := threadOf(lt.row)
	m.events.Publish(Event{Type: EventAppended, ThreadID: lt.id, Size: published.HistorySize(), Offsets: offsets, Thread: &published})
	return offsets, nil
}

// historyOffsets returns the positions in the history of lines at offsets
// of row's own file.
func historyOffsets(row store.Thread, offsets []int64) []int64 {
	out := make([]int64, len(offsets))
	for i, off := range offsets {
		out[i] = off + row.BaseSize
	}
	return out
}

// indexAppend folds lines, written to lt's file by pending, into the index
// and returns lt's row as the index then holds it. indexed reports whether
// the index update committed; an error before it leaves the index as it
// was. named reports whether the lines' rename was recorded in
// session_index.jsonl (then the lines may no longer be cut from the file,
// even if the index update fails). It waits for pending's sync only when
// the lines rename the thread.
func (m *Manager) indexAppend(ctx context.Context, lt *liveThread, key *pendingKey, lines [][]byte, pending *rolloutfs.PendingAppend) (after store.Thread, indexed, named bool, err error) {
	offsets := pending.Offsets
	p := observe(lt.row, lines, offsets)
	p.FileSize = lt.appender.Size()
	if lt.row.Archived {
		// An archived file's mtime is its archive time (that is how a
		// rebuild learns it): a rename appended to it must not move it.
		if err := m.fsys.SetModTime(ctx, lt.row.RolloutPath, time.UnixMilli(lt.row.ArchivedAt)); err != nil {
			return store.Thread{}, false, false, fmt.Errorf("keep archive time: %w", err)
		}
	}
	info, err := m.fsys.Stat(ctx, lt.row.RolloutPath)
	if err != nil {
		return store.Thread{}, false, false, err
	}
	p.FileMtime = info.ModTime.UnixNano()
	if p.Name != nil {
		// session_index.jsonl wins over the rollout's rename events when
		// an index is rebuilt, so every rename goes there too, whether it
		// came from Rename or in appended lines; but only once those lines
		// are durable, or a failed sync would leave the name without them.
		if err := pending.Wait(); err != nil {
			return store.Thread{}, false, false, err
		}
		if err := m.recordName(ctx, lt.id, *p.Name, p.UpdatedAt); err != nil {
			return store.Thread{}, false, false, err
		}
	}
	after = advanced(lt.row, p)
	if key != nil {
		if p.Idempotency, err = key.record(historyOffsets(lt.row, offsets), after); err != nil {
			return store.Thread{}, false, p.Name != nil, err
		}
	}
	if err := m.index.advance(ctx, p, pending.SyncStarted()); err != nil {
		return store.Thread{}, false, p.Name != nil, fmt.Errorf("index: %w", err)
	}
	return after, true, p.Name != nil, nil
}

// repairIndex brings the index row of a thread whose append failed after
// its index update committed (row) back to the file, which no longer holds
// those lines: a file shorter than its indexed size is rescanned. If that
// fails the index asks for a full rescan, so that no open trusts the row.
func (m *Manager) repairIndex(ctx context.Context, row store.Thread) {
	_, _, err := m.catchUp(ctx, row)
	if err == nil {
		return
	}
	m.log.Error("repair the index after a failed sync", "id", row.ID, "err", err)
	if err := m.store.PutState(ctx, "rescan", "an append failed after its index update and the row could not be repaired"); err != nil {
		m.log.Error("ask for a rescan", "id", row.ID, "err", err)
	}
}

// numbered gives each line of an append to a paginated thread the next
// ordinal, as Codex writes them (a line that brings its own fails with
// ErrInvalidItem: ordinals are the file's to number). Lines for a legacy
// thread are returned as they are.
func (m *Manager) numbered(row store.Thread, lines [][]byte) ([][]byte, error) {
	if row.HistoryMode != string(rollout.HistoryPaginated) {
		return lines, nil
	}
	out := make([][]byte, len(lines))
	for i, l := range lines {
		if rollout.IsRollbackLine(l) {
			return nil, &LineError{Line: i + 1, Err: ErrPaginatedRollback}
		}
		n, err := rollout.WithOrdinal(l, row.NextOrdinal+int64(i))
		if err != nil {
			return nil, InvalidLineError(i, err)
		}
		out[i] = n
	}
	return out, nil
}

// applyProgress returns row as the index holds it after store.Advance(p).
func applyProgress(row store.Thread, p store.Progress) store.Thread {
	row.UserMessageCount = p.KeepUserMessages + len(p.NewMessages)
	row.LineCount = p.LineCount
	row.IndexedSize, row.TailSum = p.IndexedSize, p.TailSum
	row.FileSize = p.FileSize
	row.FileMtime = p.FileMtime
	row.UpdatedAt = p.UpdatedAt
	if p.Name != nil {
		row.Name = *p.Name
	}
	if p.Preview != nil {
		row.Preview, row.PreviewOffset = *p.Preview, p.PreviewOffset
	}
	row.NextOrdinal, row.TurnOffset, row.TurnID = p.NextOrdinal, p.TurnOffset, p.TurnID
	// A rollback into what a reference fork inherits lowers that count.
	row.InheritedMessages = min(row.InheritedMessages, p.KeepUserMessages)
	return row
}

// withProgressOf returns row with the fields applyProgress sets taken
// from earlier, a row of the same thread before an append.
func withProgressOf(row, earlier store.Thread) store.Thread {
	row.UserMessageCount, row.LineCount = earlier.UserMessageCount, earlier.LineCount
	row.IndexedSize, row.FileSize, row.FileMtime = earlier.IndexedSize, earlier.FileSize, earlier.FileMtime
	row.TailSum = earlier.TailSum
	row.UpdatedAt, row.Name, row.Preview, row.PreviewOffset = earlier.UpdatedAt, earlier.Name, earlier.Preview, earlier.PreviewOffset
	row.NextOrdinal, row.TurnOffset, row.TurnID = earlier.NextOrdinal, earlier.TurnOffset, earlier.TurnID
	row.InheritedMessages = earlier.InheritedMessages
	return row
}

// Get returns thread id as the index knows it, without loading it, and
// without the lines of appends not acknowledged yet (as reads return it).
func (m *Manager) Get(ctx context.Context, id string) (Thread, error) {
	if err := m.begin(); err != nil {
		return Thread{}, err
	}
	defer m.ops.Done()
	id, err := parseID("get", id)
	if err != nil {
		return Thread{}, err
	}
	row, err := m.store.Get(ctx, id) // its errors name the thread
	return threadResult(m.unacked.clamp(row), err)
}

// Resume makes thread id live, loading it from the index and catching its
// index up with its file if needed, and returns it.
func (m *Manager) Resume(ctx context.Context, id string) (Thread, error) {
	id, err := parseID("resume", id)
	if err != nil {
		return Thread{}, err
	}
	var row store.Thread
	err = m.withThread(ctx, id, func(lt *liveThread) error {
		row = lt.row
		return nil
	})
	if err != nil {
		return Thread{}, threadErr(id, err, "resume")
	}
	return threadOf(row), nil
}

// ResumePath resumes the thread whose rollout is at p: an absolute path
// inside the root, or a path relative to it. A rollout not yet indexed is
// indexed first. Paths outside the root, or whose base name is not a
// rollout name, fail with ErrInvalidPath.
func (m *Manager) ResumePath(ctx context.Context, p string) (Thread, error) {
	rel, err := m.relPath(p)
	if err != nil {
		return Thread{}, fmt.Errorf("resume %q: %w", p, err)
	}
	// It may index the file: Close waits for it.
	if err := m.begin(); err != nil {
		return Thread{}, err
	}
	defer m.ops.Done()
	row, err := m.store.GetByPath(ctx, rel)
	if errors.Is(err, store.ErrNotFound) {
		row, err = m.indexPath(ctx, rel)
		if errors.Is(err, fs.ErrNotExist) {
			return Thread{}, fmt.Errorf("resume %q: %w", p, ErrNotFound)
		}
	}
	if err != nil {
		return Thread{}, fmt.Errorf("resume %q: %w", p, err)
	}
	return m.Resume(ctx, row.ID)
}

// indexPath indexes the rollout at rel, which the index did not list, and
// returns its row. It holds the thread as creates do, so that a background
// sync (a watcher that saw the file appear) indexing it meanwhile is not
// taken for a conflict: the row it wrote, found under the hold, is the
// thread's.
func (m *Manager) indexPath(ctx context.Context, rel string) (store.Thread, error) {
	if id, _, _, err := rollout.ParseRolloutName(path.Base(rel)); err == nil {
		indexing := m.indexLock(id)
		indexing.Lock()
		defer indexing.Unlock()
		row, err := m.store.GetByPath(ctx, rel)
		if !errors.Is(err, store.ErrNotFound) {
			return row, err
		}
	}
	rec, _, err := indexer.ScanFileWith(ctx, m.fsys, rel, m.bases())
	if err != nil {
		return store.Thread{}, err
	}
	if err := m.store.Insert(ctx, rec); err != nil {
		return store.Thread{}, err
	}
	return rec.Thread, nil
}

// relPath turns a caller's rollout path into a slash path relative to the
// root, refusing anything that leaves the root or is not a rollout name.
func (m *Manager) relPath(p string) (string, error) {
	if p == "" {
		return "", ErrInvalidPath
	}
	abs := p
	if !filepath.IsAbs(p) {
		abs = filepath.Join(m.opts.Root, p)
	}
	rel, err := filepath.Rel(m.opts.Root, filepath.Clean(abs))
	if err != nil || rel == "." || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return "", fmt.Errorf("%w: outside the root", ErrInvalidPath)
	}
	rel = filepath.ToSlash(rel)
	if _, _, err := rollout.ParseFileName(path.Base(rel)); err != nil {
		return "", fmt.Errorf("%w: %v", ErrInvalidPath, err)
	}
	top, _, _ := strings.Cut(rel, "/")
	if top != rollout.SessionsDir && top != rollout.ArchivedSessionsDir {
		return "", fmt.Errorf("%w: not under %s/ or %s/", ErrInvalidPath, rollout.SessionsDir, rollout.ArchivedSessionsDir)
	}
	return rel, nil
}

// recordName records that thread id is named name since updatedAt (Unix
// ms), after the line naming it in its rollout is durable: a line in
// session_index.jsonl, which wins over the rollout's rename events when an
// index is rebuilt, and Codex's thread cache, from which Codex reads names.
// A clear ("") removes the thread's lines from session_index.jsonl
// instead: Codex takes no line for a clear (it skips a blank name and
// shows the one before), and without them a rebuild takes the rollout's
// last rename, the clear.
func (m *Manager) recordName(ctx context.Context, id, name string, updatedAt int64) error {
	var err error
	if name == "" {
		err = m.dropNames(ctx, id)
	} else {
		var line []byte
		line, err = rollout.EncodeNameEntry(rollout.NameEntry{
			ID: id, ThreadName: name, UpdatedAt: time.UnixMilli(updatedAt).UTC().Format(time.RFC3339),
		})
		if err == nil {
			err = m.fsys.AppendRecord(ctx, rollout.SessionIndexFile, line)
		}
	}
	if errors.Is(err, rolloutfs.ErrJournalLocked) {
		err = fmt.Errorf("%w: %w", ErrBusy, err) // a Codex holds session_index.jsonl.lock
	}
	if err != nil {
		return fmt.Errorf("record name: %w", err)
	}
	if err := m.codex.Named(ctx, id, name); err != nil {
		m.log.Warn("the name is not in Codex's thread cache", "id", id, "err", err)
	}
	return nil
}

// dropNames rewrites session_index.jsonl without thread id's lines, as
// Codex's thread/delete does; other lines, names or not, stay as they are.
func (m *Manager) dropNames(ctx context.Context, id string) error {
	_, err := m.fsys.DropRecords(ctx, rollout.SessionIndexFile, func(line []byte) bool {
		named, ok := rollout.NameLineID(line)
		return ok && named == id
	})
	return err
}

// Rename sets the thread's name ("" clears it): a thread_name_updated event
// in its rollout, a line in session_index.jsonl, and the index row, in that
// order (the files are the truth). The name is kept without its
// surrounding white space, as Codex's thread/name/set keeps one.
func (m *Manager) Rename(ctx context.Context, id, name string) (Thread, error) {
	return threadResult(m.rename(ctx, id, name))
}

// rename is Rename returning the thread's row.
func (m *Manager) rename(ctx context.Context, id, name string) (store.Thread, error) {
	id, err := parseID("rename", id)
	if err != nil {
		return store.Thread{}, err
	}
	line, err := RenameLine(id, name, m.now())
	if err != nil {
		return store.Thread{}, fmt.Errorf("rename %s: %w", id, err)
	}
	if err := m.begin(); err != nil {
		return store.Thread{}, err
	}
	defer m.ops.Done()
	var row store.Thread
	err = m.withWritable(ctx, id, func(lt *liveThread) error {
		if _, err := m.appendLocked(ctx, lt, nil, func(row store.Thread) ([][]byte, error) { return m.numbered(row, [][]byte{line}) }); err != nil {
			return err
		}
		row = lt.row
		return nil
	})
	if err != nil {
		return store.Thread{}, threadErr(id, err, "rename")
	}
	m.publishThread(EventRenamed, row)
	return row, nil
}

// RenameLine returns the line a rename of thread id to name appends, at
// time now, as Codex writes one (an event_msg thread_name_updated), after
// checking the name (ErrInvalidArgument). The line names the thread name
// without its surrounding (Unicode) white space, as Codex's thread/name/set
// does. Every backend renames with it.
func RenameLine(id, name string, now time.Time) ([]byte, error) {
	if err := checkName(name); err != nil {
		return nil, err
	}
	name = strings.TrimSpace(name)
	payload, err := json.Marshal(struct {
		Type       string `json:"type"`
		ThreadID   string `json:"thread_id"`
		ThreadName string `json:"thread_name"`
	}{"thread_name_updated", id, name})
	if err != nil {
		return nil, err
	}
	line, err := rollout.EncodeItem(rollout.Item{Type: rollout.TypeEventMsg, Payload: payload}, now)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidArgument, err)
	}
	return line, nil
}

// maxNameBytes bounds a thread name.
const maxNameBytes = 1024

// Archive moves the thread's rollout to archived_sessions/ (Codex layout)
// and marks it archived. The file's mtime is set to the archive time, which
// is how a rebuilt index learns it. Archiving an archived thread fails with
// ErrArchived, and one a running Codex has loaded (its writer lock held)
// with ErrBusy.
func (m *Manager) Archive(ctx context.Context, id string) (Thread, error) {
	return threadResult(m.setArchived(ctx, "archive", id, true))
}

// Unarchive moves the thread's rollout back to its date folder under
// sessions/. Unarchiving a live thread fails with ErrNotArchived, and one a
// running Codex has loaded with ErrBusy.
func (m *Manager) Unarchive(ctx context.Context, id string) (Thread, error) {
	return threadResult(m.setArchived(ctx, "unarchive", id, false))
}

func (m *Manager) setArchived(ctx context.Context, op, id string, archive bool) (store.Thread, error) {
	id, err := parseID(op, id)
	if err != nil {
		return store.Thread{}, err
	}
	if err := m.begin(); err != nil {
		return store.Thread{}, err
	}
	defer m.ops.Done()
	var row store.Thread
	err = m.withThread(ctx, id, func(lt *liveThread) error {
		switch {
		case archive && lt.row.Archived:
			return ErrArchived
		case !archive && !lt.row.Archived:
			return ErrNotArchived
		}
		// Codex appends to the file it loaded, wherever it is moved, and
		// spool would not follow it there: never move a thread under a
		// running Codex (ErrBusy), as for an append or a revert.
		lock, err := codexlock.TryLock(m.opts.Root, lt.id)
		if err != nil {
			return busy(err)
		}
		rel := lt.row.RolloutPath
		dst, _ := otherPlace(lt.row)
		if err := m.move(context.WithoutCancel(ctx), lt, archive); err != nil {
			// The file may have moved all the same: the next use of the
			// thread finds it where it is (locate). The writer lock is
			// released first, or that use would find it held.
			lock.Unlock()
			m.invalidate(lt)
			if errors.Is(err, fs.ErrNotExist) {
				// Removed behind the manager's back: as for a thread
				// not in memory, whose next use finds no file.
				return fmt.Errorf("its file %s is gone: %w", rel, ErrNotFound)
			}
			if errors.Is(err, fs.ErrExist) {
				// Another file holds the place (a copy put there by
				// hand): neither is overwritten.
				m.log.Warn("a file is in the way of a move", "id", id, "from", rel, "to", dst, "err", err)
				return fmt.Errorf("%s: another file %w there; both stay as they were", dst, store.ErrExists)
			}
			return err
		}
		defer lock.Unlock()
		row = lt.row
		// A Codex sharing the root resumes the thread from where its
		// cache says it is (docs/CODEX.md): tell the cache, under the
		// thread's lock so that moves reach it in order. The move stands
		// if that fails; Codex rebuilds its cache from the files.
		abs := filepath.Join(m.opts.Root, filepath.FromSlash(row.RolloutPath))
		if err := m.codex.Moved(context.WithoutCancel(ctx), id, abs, archive, m.now()); err != nil {
			m.log.Warn("the move is not in Codex's thread cache", "id", id, "err", err)
		}
		return nil
	})
	if err != nil {
		return store.Thread{}, threadErr(id, err, "%s", op)
	}
	if archive {
		m.publishThread(EventArchived, row)
	} else {
		m.publishThread(EventUnarchived, row)
	}
	return row, nil
}

// move archives or unarchives lt's file and records it in the index. An
// archived file's mtime is set to the archive time, which is how a rebuilt
// index learns it. When the index cannot be updated the file is moved
// back, with the mtime it had. lt.mu must be held.
func (m *Manager) move(ctx context.Context, lt *liveThread, archive bool) (err error) {
	place := m.placeLock(lt.id)
	place.Lock()
	defer place.Unlock()
	oldRel := lt.row.RolloutPath
	newRel, _ := otherPlace(lt.row)
	if newRel == oldRel {
		return fmt.Errorf("%w: %s is not in the layout", ErrInvalidPath, oldRel)
	}
	now := m.now()
	var archivedAt int64
	if archive {
		archivedAt = now.UnixMilli()
		// Set before the move: a file in archived_sessions/ always carries
		// its archive time.
		restore, stampErr := m.stampModTime(ctx, oldRel, now)
		if stampErr != nil {
			return stampErr
		}
		defer func() { // err is the result
			if err != nil {
				restore()
			}
		}()
	}
	// A reverted thread's earlier files move with it, as Codex moves them.
	undoSegments, err := m.moveSegments(ctx, lt.id, archive)
	if err != nil {
		return err
	}
	// So does the file's other form beside it (a .jsonl.zst left next to
	// the plain file): left behind, it would hold the thread at its old
	// place at the next sync.
	undoTwin, err := m.moveTwin(ctx, oldRel, newRel)
	if err != nil {
		undoSegments()
		return err
	}
	// The move and the moved file's identity go into the index in one
	// update: a second one failing would report as not made a move that
	// stands.
	err = m.fsys.Move(ctx, oldRel, newRel)
	var info rolloutfs.FileInfo
	if err == nil {
		info, err = m.fsys.Stat(ctx, newRel)
	}
	if err == nil {
		err = m.store.SetMoved(ctx, lt.id, archive, newRel, archivedAt, info.Size, info.ModTime.UnixNano())
	}
	if err != nil {
		defer undoSegments()
		defer undoTwin()
		// A move can fail after the rename took place (its directory
		// fsync): a failed call leaves the file where it was.
		if _, statErr := m.fsys.Stat(ctx, newRel); statErr == nil {
			if undo := m.fsys.Move(ctx, newRel, oldRel); undo != nil {
				m.log.Error("move rollout back after a failed archive", "id", lt.id, "path", newRel, "err", undo)
			}
		}
		return err
	}
	lt.row.RolloutPath, lt.row.Archived, lt.row.ArchivedAt = newRel, archive, archivedAt
	lt.row.FileSize, lt.row.FileMtime = info.Size, info.ModTime.UnixNano()
	lt.appender.Moved(newRel)
	return nil
}

// stampModTime sets the mtime of file rel to t and returns how to put back
// the one it had, for a move that fails after it.
func (m *Manager) stampModTime(ctx context.Context, rel string, t time.Time) (restore func(), err error) {
	info, err := m.fsys.Stat(ctx, rel)
	if err != nil {
		return nil, err
	}
	if err := m.fsys.SetModTime(ctx, rel, t); err != nil {
		return nil, err
	}
	return func() {
		if err := m.fsys.SetModTime(context.WithoutCancel(ctx), rel, info.ModTime); err != nil {
			m.log.Error("put back the mtime of a rollout after a failed archive", "path", rel, "err", err)
		}
	}, nil
}

// moveTwin moves the other form of rollout file from (rollout.TwinName), if there
// is one, to the other form of to, and returns how to move it back.
func (m *Manager) moveTwin(ctx context.Context, from, to string) (undo func(), err error) {
	src, dst := rollout.TwinName(from), rollout.TwinName(to)
	if _, err := m.fsys.Stat(ctx, src); errors.Is(err, fs.ErrNotExist) {
		return func() {}, nil
	}
	moveBack := func() {
		if err := m.fsys.Move(ctx, dst, src); err != nil {
			m.log.Error("move a file's other form back after a failed archive", "path", dst, "err", err)
		}
	}
	if err := m.fsys.Move(ctx, src, dst); err != nil {
		// A move can fail after the rename took place (its directory
		// fsync): then it is moved back too.
		if _, statErr := m.fsys.Stat(ctx, dst); statErr == nil {
			moveBack()
		}
		return nil, err
	}
	return moveBack, nil
}

// deleteStep, when set (by tests), is called as Delete passes its steps:
// "checked" after its first look for reference forks, "locked" once it
// holds the thread and has looked again.
var deleteStep func(step string)

// refuseIfReferenced fails with a *ReferencedError when reference forks
// continue thread id's history: a delete would leave them without it.
// Those the index holds (Referrers) count, and so do fork files it could
// not read that still name a file of id (unindexedReferrers), as Codex
// counts them.
func (m *Manager) refuseIfReferenced(ctx context.Context, id string) error {
	forks, err := m.store.Referrers(ctx, id)
	if err != nil {
		return err
	}
	ids, files, err := m.unindexedReferrers(ctx, id)
	if err != nil {
		return err
	}
	if len(forks)+len(ids) > 0 {
		forks = append(forks, ids...)
		slices.Sort(forks)
		return &ReferencedError{ID: id, Forks: slices.Compact(forks), Unindexed: files}
	}
	return nil
}

// unindexedReferrers returns the recorded unindexed forks
// (store.UnindexedFork) of other threads whose files still name a file of
// thread id as their history_base, by id or by a revert segment's uuid:
// their threads and their files. A fork Codex cut in a revert segment that
// a later revert took out of the thread's history is one: Codex shows it
// whole and refuses to delete the thread, and no index can read it
// (docs/CODEX.md, Delete). A record's file is looked for where the walk
// met it, then at each place the fork may have moved to since (archived,
// compressed: OtherForms); one that is there but cannot be read counts.
func (m *Manager) unindexedReferrers(ctx context.Context, id string) (ids, files []string, err error) {
	row, err := m.store.Get(ctx, id)
	if err != nil {
		return nil, nil, err
	}
	segs, err := m.store.Segments(ctx, id)
	if err != nil {
		return nil, nil, err
	}
	names := []string{id} // what a history_base names the thread's files by
	for _, rel := range append([]string{row.RolloutPath}, segmentPaths(segs)...) {
		if _, segmentID, _, err := rollout.ParseRolloutName(rollout.PlainName(path.Base(rel))); err == nil && segmentID != "" {
			names = append(names, segmentID)
		}
	}
	forks, err := m.store.UnindexedForks(ctx, names)
	if err != nil {
		return nil, nil, err
	}
	for _, f := range forks {
		if f.ThreadID == id {
			continue // a segment of the thread itself
		}
		// Where the walk met it (any folder under sessions/), then
		// where Codex may have moved it.
		for _, rel := range append([]string{f.RolloutPath}, indexer.OtherForms(f.RolloutPath)...) {
			// A record outlives its file's change until the next sync.
			base, err := indexer.ReadBase(ctx, m.fsys, rel)
			if errors.Is(err, fs.ErrNotExist) || err == nil && base != f.Base {
				continue
			}
			ids, files = append(ids, f.ThreadID), append(files, rel)
			break
		}
	}
	return ids, files, nil
}

// segmentPaths returns the rollout paths of segs.
func segmentPaths(segs []store.Segment) []string {
	out := make([]string, len(segs))
	for i, s := range segs {
		out[i] = s.RolloutPath
	}
	return out
}

// Delete removes the thread's rollout files (every file of a reverted
// thread) and its index rows. Threads forked from it keep their lineage
// (parent id and ancestors). A thread a running Codex has loaded fails
// with ErrBusy.
func (m *Manager) Delete(ctx context.Context, id string) error {
	id, err := parseID("delete", id)
	if err != nil {
		return err
	}
	if err := m.begin(); err != nil {
		return err
	}
	defer m.ops.Done()
	if err := m.lookForForks(ctx); err != nil {
		return threadErr(id, err, "delete")
	}
	if err := m.refuseIfReferenced(ctx, id); err != nil {
		return threadErr(id, err, "delete")
	}
	if deleteStep != nil {
		deleteStep("checked")
	}
	filesGone := false // every file of the thread removed
	err = m.withThread(ctx, id, func(lt *liveThread) error {
		// lt stays in memory, locked, until the rows are gone: a concurrent
		// caller waits for it, then finds the thread gone. Should the index
		// update fail after the file is gone, the next use of the thread
		// drops its rows (locate).
		defer m.invalidate(lt)
		// A reference fork made since the check above would be left
		// without its base: look again where none can be made of it
		// until the rows are gone (writeFork takes its base's lock).
		defer m.lockIndexes(id)()
		if err := m.refuseIfReferenced(ctx, id); err != nil {
			return err
		}
		if deleteStep != nil {
			deleteStep("locked")
		}
		// Codex would go on appending to the file it loaded, removed
		// (its own delete unloads the thread first): never delete a
		// thread under a running Codex (ErrBusy).
		lock, err := codexlock.TryLock(m.opts.Root, lt.id)
		if err != nil {
			return busy(err)
		}
		defer func() {
			if !filesGone {
				lock.Unlock()
				return
			}
			// Its lock file goes too, as Codex removes it at exit.
			if err := lock.Remove(); err != nil {
				m.log.Warn("the deleted thread's writer lock file stays", "id", id, "err", err)
			}
		}()
		// A reverted thread's earlier files go first: should the delete
		// stop half way, the newest file still holds the thread.
		segs, err := m.store.Segments(ctx, id)
		if err != nil {
			return err
		}
		for _, s := range segs {
			if err := m.removeRollout(ctx, s.RolloutPath); err != nil {
				return err
			}
		}
		// Then its own file, with every copy of it a sync would take
		// for the thread again.
		if err := m.removeRollout(ctx, lt.row.RolloutPath); err != nil {
			return err
		}
		filesGone = true
		return m.store.Delete(context.WithoutCancel(ctx), id)
	})
	if filesGone {
		// The thread is gone from the files, the truth, even when its
		// rows are not (the next use drops them): what Codex keeps of
		// it goes too.
		m.recent.forget(id)
		m.forgetDeleted(context.WithoutCancel(ctx), id)
	}
	if err != nil {
		return threadErr(id, err, "delete")
	}
	m.events.Publish(Event{Type: EventDeleted, ThreadID: id})
	return nil
}

// forgetDeleted removes what Codex keeps of a thread whose files are gone,
// as Codex's own delete does: its names in session_index.jsonl, and its
// row in Codex's thread cache. Neither failing undoes the delete (a Codex
// holding the names lock past LockWait leaves the lines): no one lists a
// thread by a name whose rollout is gone. Failures are logged.
func (m *Manager) forgetDeleted(ctx context.Context, id string) {
	if err := m.dropNames(ctx, id); err != nil {
		m.log.Warn("the deleted thread's names stay in session_index.jsonl", "id", id, "err", err)
	}
	if err := m.codex.Deleted(ctx, id); err != nil {
		m.log.Warn("the delete is not in Codex's thread cache", "id", id, "err", err)
	}
}

// Evict closes thread id if it is live (flushing its file) and drops it
// from memory; the next use rehydrates it from the index. Evicting a known
// thread that is not live does nothing.
func (m *Manager) Evict(ctx context.Context, id string) error {
	id, err := parseID("evict", id)
	if err != nil {
		return err
	}
	if err := m.begin(); err != nil {
		return err
	}
	defer m.ops.Done()
	if _, err := m.store.Get(ctx, id); err != nil {
		return threadErr(id, err, "evict")
	}
	// A thread in use is never closed from under its holders: it is marked,
	// and the last holder's release closes it. Until then it stays the one
	// live copy, so two appenders never share a file.
	m.mu.Lock()
	lt, ok := m.live.byID[id]
	closeNow := ok && lt.refs == 0
	switch {
	case closeNow:
		m.forget(lt)
	case ok:
		lt.evict = true
	}
	m.mu.Unlock()
	if closeNow {
		m.closeLive(lt)
	}
	return nil
}

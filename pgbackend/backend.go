// Package pgbackend serves threads from PostgreSQL and object storage: the
// distributed implementation of manager.Backend (docs/DISTRIBUTED.md). Any
// number of spoold processes may serve one database and one bucket; the
// database orders appends to a thread (a row lock per append transaction),
// so no process lock is needed. Threads are Codex rollouts, paginated by
// default (numbered under the row lock) or legacy; forks are references
// inside the database (pgstore) unless a copy is asked for, and are
// exported as self-contained files.
//
// It offers the core of manager.Backend, lineage (manager.Lineage), search
// (manager.Searcher) and events from every node (manager.Publisher, over
// PostgreSQL's LISTEN/NOTIFY), which follow streams use, whole Codex
// turns (manager.TurnWriter), turns by id (manager.TurnReader) and forks by
// turn id, purge (manager.Purger), reverts (manager.Reverter), and
// sub-agent spawns (manager.SpawnLineage).
package pgbackend

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/spoolhq/spool/manager"
	"github.com/spoolhq/spool/objstore"
	"github.com/spoolhq/spool/pgstore"
	"github.com/spoolhq/spool/rollout"
	"github.com/spoolhq/spool/store"
)

// Options configure Open.
type Options struct {
	DSN    string          // PostgreSQL URL or key=value string
	Bucket objstore.Bucket // sealed segments; nil: nothing is sealed
	// SealBytes is how many unsealed bytes a thread gathers before the
	// background sealer moves them into a segment (default 4 MiB);
	// SealEvery is how often it looks (default 1 s).
	SealBytes int64
	SealEvery time.Duration
	Logger    *slog.Logger
	Now       func() time.Time
}

// Backend is a manager.Backend over one database and bucket.
type Backend struct {
	store *pgstore.Store
	opts  Options
	// events carries every change committed to the database, by any
	// process, to Subscribe's subscribers (pgstore.Listen).
	events manager.Bus
	stop   context.CancelFunc
	done   sync.WaitGroup
}

var (
	_ manager.Backend   = (*Backend)(nil)
	_ manager.Lineage   = (*Backend)(nil)
	_ manager.Publisher = (*Backend)(nil)
)

// Subscribe returns a subscription to the changes committed to the
// database by every node, in commit order (see manager.Bus). When the
// connection that listens for them breaks, subscriptions end with
// manager.ErrEventsLost once it listens again (pgstore.Listen): their
// subscribers read again what they follow.
func (b *Backend) Subscribe(buffer int) *manager.Subscription { return b.events.Subscribe(buffer) }

// publish turns a notice into an event with the thread as the change
// committed it, which the notice carries; only a row too large for a
// notice is read. Every node hears every change made through any node,
// and numbers them all (Event.Seq, without gaps, as a local server does);
// with no subscriber the event goes without its thread, to no one.
func (b *Backend) publish(n pgstore.Notice) {
	e := manager.Event{Type: manager.EventType(n.Type), ThreadID: n.ThreadID, Size: n.Size, Offsets: n.Offsets}
	if !b.events.Subscribed() {
		b.events.Publish(e)
		return
	}
	if e.Type == manager.EventAppended && e.Offsets == nil && n.From != nil {
		// Too many lines for a notice: read where they start, unless a
		// revert or a rewrite since made those positions other bytes.
		var era *pgstore.Era
		if t, ok := n.Thread(); ok {
			era = new(t.Era())
		}
		if offsets, err := b.store.AppendOffsets(context.Background(), n.ThreadID, era, *n.From, n.Size); err == nil {
			e.Offsets = offsets
		}
	}
	if e.Type != manager.EventDeleted {
		t, ok := n.Thread()
		var err error
		if !ok {
			t, err = b.store.Get(context.Background(), n.ThreadID)
		}
		if err == nil {
			th := threadOf(t)
			e.Thread = &th
			if e.Size == 0 {
				e.Size = t.HistorySize()
			}
		}
	}
	b.events.Publish(e)
}

// Open connects, migrates the schema and, with a bucket, starts the
// background sealer.
func Open(ctx context.Context, o Options) (*Backend, error) {
	if o.SealBytes <= 0 {
		o.SealBytes = 4 << 20
	}
	if o.SealEvery <= 0 {
		o.SealEvery = time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	s, err := pgstore.Open(ctx, o.DSN, pgstore.Options{Bucket: o.Bucket, Logger: o.Logger})
	if err != nil {
		return nil, err
	}
	b := &Backend{store: s, opts: o}
	bg, stop := context.WithCancel(context.Background())
	b.stop = stop
	if o.Bucket != nil {
		b.done.Go(func() { b.sealLoop(bg) })
	}
	// Serve only once changes are heard: a subscriber must miss nothing
	// committed after it subscribed.
	listening := make(chan struct{})
	var once sync.Once
	b.done.Go(func() {
		b.store.Listen(bg, b.publish, func() { once.Do(func() { close(listening) }) }, b.events.Lost)
	})
	wait := time.NewTimer(30 * time.Second)
	defer wait.Stop()
	select {
	case <-listening:
	case <-ctx.Done():
		b.Close()
		return nil, fmt.Errorf("pgbackend: listen for changes: %w", ctx.Err())
	case <-wait.C:
		b.Close()
		return nil, errors.New("pgbackend: could not LISTEN for changes within 30 s")
	}
	return b, nil
}

// Close stops the sealer and closes the connections.
func (b *Backend) Close() error {
	b.stop()
	b.done.Wait()
	b.events.Close()
	b.store.Close()
	return nil
}

// Store returns the underlying store (reindex and tests use it).
func (b *Backend) Store() *pgstore.Store { return b.store }

// sealLoop seals threads with enough unsealed bytes, every SealEvery.
func (b *Backend) sealLoop(ctx context.Context) {
	tick := time.NewTicker(b.opts.SealEvery)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		if err := b.sealPass(ctx); err != nil && ctx.Err() == nil {
			b.opts.Logger.Warn("seal", slog.Any("err", err))
		}
	}
}

// sealPass seals the threads with the most unsealed bytes (100 at most),
// and returns what failed. A thread whose seal fails is passed over, not
// the threads after it: one that cannot be sealed (its objects refused,
// its chunks unreadable), which stays the one with the most unsealed
// bytes, would otherwise leave every other thread unsealed. Only storage
// that cannot be reached ends the pass early, as it would fail them all.
func (b *Backend) sealPass(ctx context.Context) error {
	ids, err := b.store.Unsealed(ctx, b.opts.SealBytes, 100)
	if err != nil {
		return err
	}
	var errs []error
	for _, id := range ids {
		_, err := b.store.Seal(ctx, id, b.opts.SealBytes)
		switch {
		case err == nil, errors.Is(err, pgstore.ErrNotFound): // deleted since it was listed
			continue
		case ctx.Err() != nil, unreachable(err):
			return errors.Join(append(errs, err)...)
		}
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// Start creates a thread: its session_meta line, committed. The thread is
// paginated (every line numbered, as Codex 0.169 starts threads) unless
// o.HistoryMode asks for legacy.
func (b *Backend) Start(ctx context.Context, o manager.StartOptions) (manager.Thread, error) {
	if err := manager.CheckCwd(o.Cwd); err != nil {
		return manager.Thread{}, fmt.Errorf("start thread: %w", err)
	}
	if err := manager.CheckIdempotencyKey(o.IdempotencyKey); err != nil {
		return manager.Thread{}, fmt.Errorf("start thread: %w", err)
	}
	mode := rollout.HistoryPaginated
	if o.HistoryMode != "" {
		var err error
		if mode, err = rollout.ParseHistoryMode(o.HistoryMode); err != nil {
			return manager.Thread{}, fmt.Errorf("start thread: %w: %w", manager.ErrInvalidArgument, err)
		}
	}
	if o.Source == "" {
		o.Source = "vscode"
	}
	if o.ModelProvider == "" {
		o.ModelProvider = manager.DefaultModelProvider
	}
	id := uuid.Must(uuid.NewV7()).String()
	now := b.opts.Now()
	meta := rollout.SessionMeta{ID: id, Timestamp: rollout.FormatTimestamp(now), Cwd: o.Cwd,
		Originator: o.Originator, CLIVersion: o.CLIVersion, Source: o.Source,
		ModelProvider: o.ModelProvider, Git: o.Git, HistoryMode: mode}
	key := creationKey("", o.IdempotencyKey, o.RequestHash())
	meta.CreationKey = statedKey(key, now)
	line, err := rollout.NewSessionMetaLine(meta.Timestamp, rollout.MetaPayload{SessionMeta: meta, BaseInstructions: o.BaseInstructions})
	if err == nil && mode == rollout.HistoryPaginated {
		line, err = rollout.WithOrdinal(line, 0)
	}
	if err != nil {
		return manager.Thread{}, fmt.Errorf("start thread: %w: %w", manager.ErrInvalidArgument, err)
	}
	rename, err := nameLine(id, o.Name, now)
	if err != nil {
		return manager.Thread{}, fmt.Errorf("start thread: %w", err)
	}
	nt := pgstore.NewThread{ID: id, Cwd: o.Cwd, Facts: factsOf(meta), Lines: line,
		SpawnParentID: rollout.SpawnParent(o.Source), HistoryMode: string(mode), CreatedAt: now, Rename: rename}
	return b.createOnce(ctx, "start thread", key, func(k *pgstore.CreationKey) (manager.Thread, error) {
		nt.Key = k
		t, err := b.store.Create(ctx, nt)
		if err != nil {
			return manager.Thread{}, b.mapErr(err)
		}
		return threadOf(t), nil
	})
}

// creationKey returns the key name of scope ("" for a start, the parent
// for a fork) for a request hashed hash; nil for no name.
func creationKey(scope, name string, hash []byte) *pgstore.CreationKey {
	if name == "" {
		return nil
	}
	return &pgstore.CreationKey{Scope: scope, Name: name, Hash: hash}
}

// statedKey returns k as the meta of the thread it creates at now states
// it (nil for none), as the local backend's do: a local index rebuilt
// from the thread's exported file learns the key from there.
func statedKey(k *pgstore.CreationKey, now time.Time) *rollout.CreationKey {
	if k == nil {
		return nil
	}
	return rollout.NewCreationKey(k.Scope, k.Name, k.Hash, now, pgstore.KeyTTL)
}

// createOnce runs create with k, which records k with the thread it
// creates, unless k names a thread already: then the answer is that
// thread as it is now, and nothing is created. A create that finds k
// recorded by another transaction first (pgstore.ErrKeyTaken, from this
// node or another) is answered the same way. Errors of create are returned
// as they are; createOnce's own say op.
func (b *Backend) createOnce(ctx context.Context, op string, k *pgstore.CreationKey, create func(*pgstore.CreationKey) (manager.Thread, error)) (manager.Thread, error) {
	if k == nil {
		return create(nil)
	}
	for range 2 {
		id, err := b.store.CreatedBy(ctx, *k)
		if err == nil {
			t, err := b.Get(ctx, id)
			if !errors.Is(err, manager.ErrNotFound) {
				return t, err
			}
			// Deleted since its key was read: create anew.
		} else if !errors.Is(err, pgstore.ErrNotFound) {
			return manager.Thread{}, fmt.Errorf("%s: %w", op, b.mapErr(err))
		}
		t, err := create(k)
		if !errors.Is(err, pgstore.ErrKeyTaken) {
			return t, err
		}
	}
	return manager.Thread{}, fmt.Errorf("%s: %w", op, pgstore.ErrKeyTaken)
}

// Get returns a thread.
func (b *Backend) Get(ctx context.Context, id string) (manager.Thread, error) {
	t, err := b.row(ctx, id)
	if err != nil {
		return manager.Thread{}, err
	}
	return threadOf(t), nil
}

// row returns thread id's row.
func (b *Backend) row(ctx context.Context, id string) (pgstore.Thread, error) {
	id, err := rollout.ParseID(id)
	if err != nil {
		return pgstore.Thread{}, fmt.Errorf("get %q: %w", id, err)
	}
	t, err := b.store.Get(ctx, id)
	if err != nil {
		return pgstore.Thread{}, b.mapErr(err)
	}
	return t, nil
}

// retryChanged calls fn, and again, three times in all, while it fails
// with pgstore.ErrChanged: the thread was reverted (or rewritten) between
// finding positions in its history and using them.
func retryChanged[T any](fn func() (T, error)) (T, error) {
	for attempt := 1; ; attempt++ {
		v, err := fn()
		if !errors.Is(err, pgstore.ErrChanged) || attempt == 3 {
			return v, err
		}
	}
}

// AppendWith encodes items (stamping a timestamp where one has none) and
// appends them as one transaction.
func (b *Backend) AppendWith(ctx context.Context, id string, items []rollout.Item, o manager.AppendOptions) (manager.AppendResult, error) {
	now := b.opts.Now()
	lines := make([][]byte, len(items))
	for i, it := range items {
		var err error
		if lines[i], err = rollout.EncodeItem(it, now); err != nil {
			return manager.AppendResult{}, fmt.Errorf("append to %s: item %d: %w: %w", id, i, manager.ErrInvalidItem, err)
		}
	}
	var request []byte
	if o.IdempotencyKey != "" {
		request = itemsHash(items)
	}
	return b.append(ctx, id, lines, o, request)
}

// AppendLinesWith appends complete lines, each validated with
// rollout.EncodeLine.
func (b *Backend) AppendLinesWith(ctx context.Context, id string, lines [][]byte, o manager.AppendOptions) (manager.AppendResult, error) {
	now := b.opts.Now()
	encoded := make([][]byte, len(lines))
	for i, l := range lines {
		var err error
		if encoded[i], err = rollout.EncodeLine(l, now); err != nil {
			return manager.AppendResult{}, fmt.Errorf("append to %s: %w", id, manager.InvalidLineError(i, err))
		}
	}
	var request []byte
	if o.IdempotencyKey != "" {
		request = linesHash(lines)
	}
	return b.append(ctx, id, encoded, o, request)
}

// append commits encoded lines; request is the hash of the request as
// sent, which names it with o.IdempotencyKey (nil without a key).
func (b *Backend) append(ctx context.Context, id string, lines [][]byte, o manager.AppendOptions, request []byte) (manager.AppendResult, error) {
	id, err := rollout.ParseID(id)
	if err != nil {
		return manager.AppendResult{}, fmt.Errorf("append to %q: %w", id, err)
	}
	if len(lines) == 0 {
		return manager.AppendResult{}, fmt.Errorf("append to %s: %w: no items", id, manager.ErrInvalidItem)
	}
	if err := manager.CheckIdempotencyKey(o.IdempotencyKey); err != nil {
		return manager.AppendResult{}, fmt.Errorf("append to %s: %w", id, err)
	}
	joined := lines[0] // one line is sent from where it is
	if len(lines) > 1 {
		joined = bytes.Join(lines, nil)
	}
	expected := int64(-1)
	if o.ExpectedSize != 0 {
		expected = o.ExpectedSize
	}
	var res pgstore.AppendResult
	if o.IdempotencyKey != "" {
		res, err = b.store.AppendKeyed(ctx, id, joined, expected, pgstore.Key{Name: o.IdempotencyKey, Hash: request})
	} else {
		res, err = b.store.Append(ctx, id, joined, expected)
	}
	if err != nil {
		return manager.AppendResult{}, b.appendErr(id, err)
	}
	return manager.AppendResult{Offsets: res.Starts, Thread: threadOf(res.Thread), Replayed: res.Replayed}, nil
}

// Fork forks by manager.ForkByReference's rule. A reference fork is the
// child's meta line and a row pointing at the parent's history up to the
// cut; nothing is copied. A copy fork streams the parent's history up to
// the cut into the child's creating transaction. The cut is found again
// when the parent is reverted meanwhile.
func (b *Backend) Fork(ctx context.Context, id string, o manager.ForkOptions) (manager.Thread, error) {
	if err := manager.CheckCwd(o.Cwd); err != nil {
		return manager.Thread{}, fmt.Errorf("fork %s: %w", id, err)
	}
	if _, err := manager.ForkSource(o.Source, ""); err != nil {
		return manager.Thread{}, fmt.Errorf("fork %s: %w", id, err)
	}
	if err := manager.CheckIdempotencyKey(o.IdempotencyKey); err != nil {
		return manager.Thread{}, fmt.Errorf("fork %s: %w", id, err)
	}
	var key *pgstore.CreationKey
	if parent, err := rollout.ParseID(id); err == nil && o.Points() <= 1 && o.IdempotencyKey != "" {
		// The hash counts the parent's default mode as given
		// (RequestHashFor), as the local backend's does.
		hash := o.RequestHash()
		row, err := b.store.Get(ctx, parent)
		switch {
		case err == nil:
			hash = o.RequestHashFor(threadOf(row).HistoryMode)
		case !errors.Is(err, pgstore.ErrNotFound):
			return manager.Thread{}, fmt.Errorf("fork %s: %w", id, b.mapErr(err))
		}
		key = creationKey(parent, o.IdempotencyKey, hash)
	}
	return b.createOnce(ctx, "fork "+id, key, func(k *pgstore.CreationKey) (manager.Thread, error) {
		return retryChanged(func() (manager.Thread, error) { return b.fork(ctx, id, o, k) })
	})
}

// fork makes the fork o names of thread id, recording key with it (nil:
// none).
func (b *Backend) fork(ctx context.Context, id string, o manager.ForkOptions, key *pgstore.CreationKey) (manager.Thread, error) {
	row, err := b.row(ctx, id)
	if err != nil {
		return manager.Thread{}, err
	}
	parent, era := threadOf(row), row.Era()
	switch {
	case o.Points() > 1:
		return manager.Thread{}, fmt.Errorf("fork %s: %w: give one of before_user_message, before_turn_id and last_turn_id", id, manager.ErrInvalidArgument)
	}
	reference, err := manager.ForkByReference(parent.HistoryMode, o.Mode)
	if err != nil {
		return manager.Thread{}, fmt.Errorf("fork %s: %w", id, err)
	}
	before := -1
	var through *pgstore.Cut // a cut at the end of a turn (LastTurnID)
	switch {
	case o.BeforeUserMessage != nil:
		before = *o.BeforeUserMessage
		if before < 0 || before >= parent.UserMessageCount {
			return manager.Thread{}, &manager.OutOfRangeError{ID: parent.ID, Requested: before, Count: parent.UserMessageCount}
		}
	case o.BeforeTurnID != "":
		msg, err := b.store.UserMessageOfTurn(ctx, parent.ID, o.BeforeTurnID)
		if errors.Is(err, pgstore.ErrTurnNotFound) {
			// A turn without a counted user message of its own: cut at
			// its start, found by reading the history (turnSpan).
			span, err := b.turnSpan(ctx, parent, era, o.BeforeTurnID)
			if err != nil {
				return manager.Thread{}, fmt.Errorf("fork: %w", err)
			}
			through = &pgstore.Cut{Offset: span.Offset, Messages: span.UserMessage}
			break
		}
		if err != nil {
			return manager.Thread{}, fmt.Errorf("fork: %w", b.mapErr(err))
		}
		before = msg.Ordinal
	case o.LastTurnID != "":
		span, err := b.turnSpan(ctx, parent, era, o.LastTurnID)
		if err != nil {
			return manager.Thread{}, fmt.Errorf("fork: %w", err)
		}
		if span.Status == "in_progress" {
			return manager.Thread{}, fmt.Errorf("fork %s: turn %q: %w", parent.ID, o.LastTurnID, manager.ErrTurnInProgress)
		}
		through = &pgstore.Cut{Offset: span.End, Messages: span.UserMessage + span.UserMessages}
	}
	cwd := parent.Cwd
	if o.Cwd != "" {
		cwd = o.Cwd
	}
	source, err := manager.ForkSource(o.Source, parent.Source)
	if err != nil {
		return manager.Thread{}, fmt.Errorf("fork %s: %w", id, err)
	}
	child := uuid.Must(uuid.NewV7()).String()
	now := b.opts.Now()
	meta := rollout.SessionMeta{ID: child, ForkedFromID: parent.ID, Timestamp: rollout.FormatTimestamp(now),
		Cwd: cwd, Originator: parent.Originator, CLIVersion: parent.CLIVersion, Source: source,
		ModelProvider: parent.ModelProvider, Git: gitOf(parent)}
	meta.CreationKey = statedKey(key, now)
	paginated := parent.HistoryMode == string(rollout.HistoryPaginated)
	if paginated {
		meta.HistoryMode = rollout.HistoryPaginated
	}
	// The meta records the fork point (spool_fork_point) as the local
	// backend's does, once the cut is found: forkCopy or the store.
	rename, err := nameLine(child, manager.ForkName(o.Name, parent.Name), now)
	if err != nil {
		return manager.Thread{}, fmt.Errorf("fork %s: %w", id, err)
	}
	var t pgstore.Thread
	if reference {
		// Reference forks are of paginated parents (ForkByReference):
		// history_base names the cut, as Codex 0.169 forks.
		f := pgstore.Fork{ParentID: parent.ID, ChildID: child, BeforeUserMessage: before, At: through,
			Meta: &rollout.MetaPayload{SessionMeta: meta}, Cwd: cwd, Facts: factsOf(meta), Era: &era, CreatedAt: now,
			SpawnParentID: rollout.SpawnParent(meta.Source), Rename: rename, Key: key}
		t, err = b.store.Fork(ctx, f)
		// A cut in an archived thread copies, as the local backend's
		// does (docs/CODEX.md), unless a reference was asked for.
		reference = !errors.Is(err, pgstore.ErrCutArchived) || o.Mode == manager.ForkReference
	}
	if !reference {
		nt := pgstore.NewThread{ID: child, Cwd: cwd, Facts: factsOf(meta), ParentID: parent.ID, CreatedAt: now,
			SpawnParentID: rollout.SpawnParent(meta.Source), Rename: rename, Key: key}
		if paginated {
			nt.HistoryMode = pgstore.HistoryPaginated
		}
		t, err = b.forkCopy(ctx, parent, era, before, through, nt, meta)
	}
	if err != nil {
		return manager.Thread{}, b.mapErr(err)
	}
	return threadOf(t), nil
}

// UserMessages returns the thread's user messages in order.
func (b *Backend) UserMessages(ctx context.Context, id string) ([]manager.UserMessage, error) {
	msgs, err := b.store.UserMessages(ctx, id)
	if err != nil {
		return nil, b.mapErr(err)
	}
	return userMessagesOf(msgs), nil
}

// UserMessagesBetween returns the thread's user messages with ordinals in
// [lo, hi), and how many it has.
func (b *Backend) UserMessagesBetween(ctx context.Context, id string, lo, hi int) ([]manager.UserMessage, int, error) {
	msgs, count, err := b.store.UserMessagesBetween(ctx, id, lo, hi)
	if err != nil {
		return nil, 0, b.mapErr(err)
	}
	return userMessagesOf(msgs), count, nil
}

func userMessagesOf(msgs []pgstore.UserMessage) []manager.UserMessage {
	out := make([]manager.UserMessage, len(msgs))
	for i, m := range msgs {
		out[i] = manager.UserMessage{Ordinal: m.Ordinal, Offset: m.Offset, Line: m.Line, Preview: previewOf(m.Text),
			CutOffset: m.CutOffset, TurnID: m.TurnID}
	}
	return out
}

// ReadFrom streams the history from user message k; k < 0, or 0 on a
// thread without user messages, streams all of it.
func (b *Backend) ReadFrom(ctx context.Context, id string, k int) (io.ReadCloser, error) {
	if k <= 0 {
		t, err := b.Get(ctx, id)
		if err != nil {
			return nil, err
		}
		if k < 0 || t.UserMessageCount == 0 {
			return b.openHistory(ctx, t.ID, 0, -1)
		}
	}
	return b.openTurns(ctx, id, k, true)
}

// openHistory opens [from, to) of thread id's history (pgstore.OpenHistory)
// for a caller of the Backend: its errors, also those of its reads, are
// mapped (mapErr).
func (b *Backend) openHistory(ctx context.Context, id string, from, to int64) (io.ReadCloser, error) {
	rc, _, err := b.store.OpenHistory(ctx, id, from, to)
	if err != nil {
		return nil, b.mapErr(err)
	}
	return mappedReader{rc, b}, nil
}

// openHistoryIn is openHistory of positions found in thread id's history
// in era (pgstore.OpenHistoryIn): a thread reverted or rewritten since
// fails with pgstore.ErrChanged.
func (b *Backend) openHistoryIn(ctx context.Context, id string, era pgstore.Era, from, to int64) (io.ReadCloser, error) {
	rc, _, err := b.store.OpenHistoryIn(ctx, id, era, from, to)
	if err != nil {
		return nil, b.mapErr(err)
	}
	return mappedReader{rc, b}, nil
}

// ReadTurn streams turn k: user message k up to user message k+1.
func (b *Backend) ReadTurn(ctx context.Context, id string, k int) (io.ReadCloser, error) {
	return b.openTurns(ctx, id, k, false)
}

// openTurns opens thread id's history from user message k up to user
// message k+1, or to its end with toEnd, in the era those positions were
// found in: a revert or a rewrite meanwhile has them found again
// (retryChanged).
func (b *Backend) openTurns(ctx context.Context, id string, k int, toEnd bool) (io.ReadCloser, error) {
	return retryChanged(func() (io.ReadCloser, error) {
		from, to, era, err := b.turnBounds(ctx, id, k, !toEnd)
		if err != nil {
			return nil, err
		}
		return b.openHistoryIn(ctx, id, era, from, to)
	})
}

// beforeTurnRead, when set (by tests), is called after turnBounds found
// where a turn of thread id starts.
var beforeTurnRead func(id string)

// turnBounds returns where user message k starts and, with next, where
// message k+1 does (-1 for the end, and without next): a seek through the
// base chain each, not a list of every message; and the era of the thread
// they were sought in (the seeks are reads of their own: a revert
// meanwhile fails the history read in era).
func (b *Backend) turnBounds(ctx context.Context, id string, k int, next bool) (from, to int64, era pgstore.Era, err error) {
	t, err := b.row(ctx, id)
	if err != nil {
		return 0, 0, era, err
	}
	if k < 0 || k >= t.UserMessageCount {
		return 0, 0, era, &manager.OutOfRangeError{ID: t.ID, Requested: k, Count: t.UserMessageCount}
	}
	m, err := b.store.UserMessage(ctx, t.ID, k)
	if err != nil {
		return 0, 0, era, b.mapErr(err)
	}
	to = -1
	if next && k+1 < t.UserMessageCount {
		after, err := b.store.UserMessage(ctx, t.ID, k+1)
		if err != nil {
			return 0, 0, era, b.mapErr(err)
		}
		to = after.Offset
	}
	if beforeTurnRead != nil {
		beforeTurnRead(t.ID)
	}
	return m.Offset, to, t.Era(), nil
}

// ReadAfter streams the history from position from to its end as of the
// call, and reports that end.
func (b *Backend) ReadAfter(ctx context.Context, id string, from int64) (io.ReadCloser, int64, error) {
	invalid := func(why string) error {
		return fmt.Errorf("read %s after offset %d: %w: %s", id, from, manager.ErrInvalidArgument, why)
	}
	if from < 0 {
		return nil, 0, invalid("a negative offset")
	}
	// From the byte before from, which must end a line, as locally.
	rc, end, err := b.store.OpenHistory(ctx, id, max(from-1, 0), -1)
	switch {
	case errors.Is(err, pgstore.ErrOutOfRange):
		return nil, 0, invalid("past the thread's end")
	case err != nil:
		return nil, 0, b.mapErr(err)
	case from > end:
		rc.Close()
		return nil, 0, invalid(fmt.Sprintf("the thread has %d bytes", end))
	}
	if from > 0 {
		var last [1]byte
		if _, err := io.ReadFull(rc, last[:]); err != nil || last[0] != '\n' {
			rc.Close()
			if err != nil {
				return nil, 0, fmt.Errorf("read %s after offset %d: %w", id, from, b.mapErr(err))
			}
			return nil, 0, invalid("not the start of a line")
		}
	}
	return mappedReader{rc, b}, end, nil
}

// nameLine returns the rename line a thread created or forked with name
// (nil for none) gets in its creating transaction (manager.RenameLine).
func nameLine(id, name string, now time.Time) ([]byte, error) {
	if name == "" {
		return nil, nil
	}
	return manager.RenameLine(id, name, now)
}

// Rename names a thread as the local backend does: it appends the
// thread_name_updated line manager.RenameLine writes, which names it.
func (b *Backend) Rename(ctx context.Context, id, name string) (manager.Thread, error) {
	line, err := manager.RenameLine(id, name, b.opts.Now())
	if err != nil {
		return manager.Thread{}, fmt.Errorf("rename %s: %w", id, err)
	}
	res, err := b.store.Rename(ctx, id, line)
	if err != nil {
		return manager.Thread{}, b.mapErr(err)
	}
	return threadOf(res.Thread), nil
}

// Archive archives a thread (ErrArchived when it is).
func (b *Backend) Archive(ctx context.Context, id string) (manager.Thread, error) {
	return b.setArchived(ctx, id, true)
}

// Unarchive brings an archived thread back (ErrNotArchived when it is not).
func (b *Backend) Unarchive(ctx context.Context, id string) (manager.Thread, error) {
	return b.setArchived(ctx, id, false)
}

func (b *Backend) setArchived(ctx context.Context, id string, archive bool) (manager.Thread, error) {
	t, err := b.Get(ctx, id)
	switch {
	case err != nil:
		return manager.Thread{}, err
	case archive && t.Archived:
		return manager.Thread{}, fmt.Errorf("archive %s: %w", id, manager.ErrArchived)
	case !archive && !t.Archived:
		return manager.Thread{}, fmt.Errorf("unarchive %s: %w", id, manager.ErrNotArchived)
	}
	row, err := b.store.SetArchived(ctx, t.ID, archive)
	if err != nil {
		return manager.Thread{}, b.mapErr(err)
	}
	return threadOf(row), nil
}

// Delete removes a thread; a base of another is refused.
func (b *Backend) Delete(ctx context.Context, id string) error {
	id, err := rollout.ParseID(id)
	if err != nil {
		return fmt.Errorf("delete %q: %w", id, err)
	}
	return b.mapErr(b.store.Delete(ctx, id))
}

// IndexStats counts threads and messages.
func (b *Backend) IndexStats(ctx context.Context) (manager.IndexStats, error) {
	c, err := b.store.Counts(ctx)
	if err != nil {
		return manager.IndexStats{}, b.mapErr(err)
	}
	return manager.IndexStats{Threads: c.Threads, Archived: c.Archived, UserMessages: c.UserMessages, IndexBytes: c.Bytes}, nil
}

// Ancestors returns a thread's fork ancestors, the parent first.
func (b *Backend) Ancestors(ctx context.Context, id string) ([]manager.Relative, error) {
	rel, err := b.store.Ancestors(ctx, id)
	if err != nil {
		return nil, b.mapErr(err)
	}
	return b.relatives(ctx, rel)
}

// ancestorIDs returns the ids of thread id's ancestors, nearest first.
func (b *Backend) ancestorIDs(ctx context.Context, id string) ([]string, error) {
	rels, err := b.store.Ancestors(ctx, id)
	if err != nil {
		return nil, b.mapErr(err)
	}
	ids := make([]string, len(rels))
	for i, r := range rels {
		ids[i] = r.ID
	}
	return ids, nil
}

// Descendants returns the threads forked from a thread, nearest first.
func (b *Backend) Descendants(ctx context.Context, id string) ([]manager.Relative, error) {
	rel, err := b.store.Descendants(ctx, id)
	if err != nil {
		return nil, b.mapErr(err)
	}
	return b.relatives(ctx, rel)
}

// Tree returns the root of a thread's fork tree and the root's
// descendants.
func (b *Backend) Tree(ctx context.Context, id string) (manager.Thread, []manager.Relative, error) {
	anc, err := b.Ancestors(ctx, id)
	if err != nil {
		return manager.Thread{}, nil, err
	}
	rootID := id
	if len(anc) > 0 {
		rootID = anc[len(anc)-1].ID
	}
	root, err := b.Get(ctx, rootID)
	switch {
	case errors.Is(err, manager.ErrNotFound) && rootID != id:
		root = manager.Thread{ID: rootID} // deleted: the tree is still its
	case err != nil:
		return manager.Thread{}, nil, err
	}
	rel, err := b.store.TreeMembers(ctx, rootID)
	if err != nil {
		return manager.Thread{}, nil, b.mapErr(err)
	}
	members, err := b.relatives(ctx, rel)
	return root, members, err
}

// relatives attaches each relative's thread (nil when deleted).
func (b *Backend) relatives(ctx context.Context, rel []pgstore.Relative) ([]manager.Relative, error) {
	out := make([]manager.Relative, len(rel))
	for i, r := range rel {
		out[i] = manager.Relative{ID: r.ID, Depth: r.Depth}
		t, err := b.store.Get(ctx, r.ID)
		switch {
		case errors.Is(err, pgstore.ErrNotFound):
		case err != nil:
			return nil, b.mapErr(err)
		default:
			th := threadOf(t)
			out[i].Thread = &th
		}
	}
	return out, nil
}

// appendErr is mapErr for an append to thread id: a size mismatch, which
// pgstore reports without the thread, says which thread, once.
func (b *Backend) appendErr(id string, err error) error {
	var mismatch *pgstore.SizeMismatchError
	if errors.As(err, &mismatch) {
		return fmt.Errorf("append to %s: %w", id, &manager.SizeMismatchError{ID: id, Expected: mismatch.Expected, Actual: mismatch.Size})
	}
	var lineErr *pgstore.LineError
	if errors.As(err, &lineErr) {
		why := fmt.Errorf("%w: %w", manager.ErrInvalidItem, lineErr.Err)
		if errors.Is(lineErr.Err, pgstore.ErrPaginatedRollback) {
			why = manager.ErrPaginatedRollback
		}
		return fmt.Errorf("append to %s: %w", id, &manager.LineError{Line: int(lineErr.Line), Err: why})
	}
	return b.mapErr(err)
}

// mapErr wraps pgstore's sentinels in the manager's, which the server
// maps to HTTP answers. A call cut off by the query timeout says so, with
// the setting's name and value, which the server logs with its 503.
func (b *Backend) mapErr(err error) error {
	var mismatch *pgstore.SizeMismatchError
	var referenced *pgstore.ReferencedError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &mismatch):
		return fmt.Errorf("%w", &manager.SizeMismatchError{Expected: mismatch.Expected, Actual: mismatch.Size})
	case errors.As(err, &referenced):
		return fmt.Errorf("%w", &manager.ReferencedError{ID: referenced.ID, Forks: referenced.Forks})
	case errors.Is(err, pgstore.ErrNotPaginated), errors.Is(err, pgstore.ErrInheritedCut):
		return fmt.Errorf("%w: %w", manager.ErrInvalidArgument, err)
	case errors.Is(err, pgstore.ErrNotFound), errors.Is(err, pgstore.ErrTurnNotFound):
		return fmt.Errorf("%w: %w", manager.ErrNotFound, err)
	case errors.Is(err, pgstore.ErrReferenced):
		return fmt.Errorf("%w: %w", manager.ErrReferenced, err)
	case errors.Is(err, pgstore.ErrArchived), errors.Is(err, pgstore.ErrCutArchived):
		return fmt.Errorf("%w: %w", manager.ErrArchived, err)
	case errors.Is(err, pgstore.ErrNotArchived):
		return fmt.Errorf("%w: %w", manager.ErrNotArchived, err)
	case errors.Is(err, pgstore.ErrOutOfRange):
		return fmt.Errorf("%w: %w", manager.ErrOutOfRange, err)
	case errors.Is(err, pgstore.ErrKeyReused):
		return fmt.Errorf("%w: %w", manager.ErrIdempotencyKeyReused, err)
	case errors.Is(err, pgstore.ErrInvalidLines):
		return fmt.Errorf("%w: %w", manager.ErrInvalidItem, err)
	case pgstore.LockNotAvailable(err):
		return fmt.Errorf("%w: waited lock_timeout (%s) for it: %w", manager.ErrStorageLocked, b.store.LockTimeout(), err)
	case b.queryTimedOut(err):
		return fmt.Errorf("%w: a statement ran past spool_query_timeout (%s; PostgreSQL silent, or a lock held elsewhere): %w",
			manager.ErrUnavailable, b.store.QueryTimeout(), err)
	case unreachable(err):
		return fmt.Errorf("%w: %w", manager.ErrUnavailable, err)
	}
	return err
}

// queryTimedOut reports whether err is a statement, or a wait for a
// connection, cut off by the store's query timeout (spool_query_timeout),
// not a new connection cut off by its connect timeout.
func (b *Backend) queryTimedOut(err error) bool {
	var connect *pgconn.ConnectError
	return b.store.QueryTimeout() > 0 && errors.Is(err, context.DeadlineExceeded) &&
		!errors.Is(err, pgstore.ErrCommitUnknown) && !errors.As(err, &connect)
}

// unreachable reports whether err says the database or the object store
// could not be reached or went away: a connection refused, broken or
// timed out, a server shutting down or refusing connections (SQLSTATE
// class 08, 57P01-57P03, 53300), a server that did not answer in time (a
// deadline: pgstore.DefaultQueryTimeout's, the connect timeout's), or an
// object store answering that it cannot serve now (objstore.ErrUnavailable:
// 5xx, throttling). A retry may then succeed.
func unreachable(err error) bool {
	var (
		connect *pgconn.ConnectError
		op      *net.OpError
		netErr  net.Error
		pgErr   *pgconn.PgError
		source  *sourceError
	)
	switch {
	case errors.Is(err, context.Canceled):
		return false // the caller gave up: not the storage's doing
	case errors.As(err, &source):
		return false // what was being stored failed to read
	case errors.Is(err, objstore.ErrUnavailable):
		return true
	case errors.Is(err, pgstore.ErrCommitUnknown):
		// The write may have been committed: not a "retry later" (503),
		// which a client would follow by writing it again.
		return false
	case errors.Is(err, context.DeadlineExceeded):
		// The server did not answer a statement, or a connection, in time
		// (pgstore's query timeout, the connect timeout); no caller here
		// sets a deadline of its own, and one that did spent it waiting
		// for the storage. A COMMIT so cut off is ErrCommitUnknown, above.
		return true
	case errors.As(err, &pgErr):
		switch pgErr.Code {
		case "57P01", "57P02", "57P03", "53300":
			return true
		}
		return strings.HasPrefix(pgErr.Code, "08")
	case errors.As(err, &connect), errors.As(err, &op), errors.Is(err, io.ErrUnexpectedEOF):
		return true
	case errors.As(err, &netErr) && netErr.Timeout():
		return true
	}
	return pgconn.SafeToRetry(err) || pgconn.Timeout(err)
}

// mappedReader is a reader of history whose errors are mapped as mapErr
// maps them, so a read that fails tells the server why.
type mappedReader struct {
	io.ReadCloser
	b *Backend
}

func (r mappedReader) Read(p []byte) (int, error) {
	n, err := r.ReadCloser.Read(p)
	if err != nil && err != io.EOF {
		err = r.b.mapErr(err)
	}
	return n, err
}

// List returns a page of threads. The cursor is the last thread's sort key.
func (b *Backend) List(ctx context.Context, o manager.ListOptions) (manager.Page, error) {
	limit := o.Limit
	if limit <= 0 {
		limit = store.DefaultListLimit
	}
	limit = min(limit, store.MaxListLimit) // and one more row tells a next page
	po := pgstore.ListOptions{Archived: o.Archived, Limit: limit + 1, ByCreated: o.SortBy == manager.SortCreated,
		Ascending: o.Ascending, Cwd: o.Cwd, Source: o.Source, ModelProvider: o.ModelProvider, ParentID: o.ParentID, Text: o.Text,
		Spawned: o.Spawned}
	if o.Cursor != "" {
		after, err := decodeCursor(o.Cursor, po)
		if err != nil {
			return manager.Page{}, fmt.Errorf("list: %w", err)
		}
		po.After = &after
	}
	rows, err := b.store.List(ctx, po)
	if err != nil {
		return manager.Page{}, b.mapErr(err)
	}
	var page manager.Page
	if len(rows) > limit {
		rows = rows[:limit]
		page.NextCursor = encodeCursor(rows[limit-1], po)
	}
	for _, t := range rows {
		page.Threads = append(page.Threads, threadOf(t))
	}
	return page, nil
}

var _ manager.Searcher = (*Backend)(nil)

// SearchPage searches user messages in the query language of the local
// backend (store.ParseQuery: phrases, OR, NOT, prefixes), on PostgreSQL's
// full-text search. Ranks are negated ts_rank (lower is better, as bm25
// is locally); the order of equal ranks is the thread and ordinal. Pages
// are keyset-based on (rank, thread, ordinal), as locally: the cursor is
// the page's last hit.
func (b *Backend) SearchPage(ctx context.Context, o manager.SearchOptions) (manager.SearchPage, error) {
	fts, err := store.ParseQuery(o.Query)
	if err != nil {
		return manager.SearchPage{}, fmt.Errorf("search: %w", err)
	}
	tag := store.QueryTag(fts)
	var after *pgstore.SearchHit
	if o.Cursor != "" {
		c, err := store.DecodeSearchCursor(o.Cursor, tag)
		if err != nil {
			return manager.SearchPage{}, fmt.Errorf("search: %w", err)
		}
		after = &pgstore.SearchHit{Rank: c.Rank, ThreadID: c.ThreadID, Ordinal: c.Ordinal}
	}
	limit := o.Limit
	if limit <= 0 {
		limit = store.DefaultSearchLimit
	}
	limit = min(limit, store.MaxSearchLimit)
	hits, err := b.store.Search(ctx, pgstore.SearchOptions{Query: fts, Limit: limit + 1, After: after,
		Archived: o.Archived, Cwd: o.Cwd, Source: o.Source, ThreadID: o.ThreadID})
	if err != nil {
		return manager.SearchPage{}, b.mapErr(err)
	}
	var page manager.SearchPage
	if len(hits) > limit {
		hits = hits[:limit]
		last := hits[limit-1]
		page.NextCursor = store.SearchCursor{Rank: last.Rank, ThreadID: last.ThreadID, Ordinal: last.Ordinal, Query: tag}.Encode()
	}
	for _, h := range hits {
		page.Hits = append(page.Hits, manager.SearchHit{ThreadID: h.ThreadID, Ordinal: h.Ordinal, Snippet: h.Snippet, Rank: -h.Rank, Name: h.Name})
	}
	return page, nil
}

var _ manager.TurnWriter = (*Backend)(nil)

// AppendTurn appends one complete Codex user turn (rollout.RenderTurn, in
// the thread's history mode; a paginated thread numbers its lines on from
// its own count under its row lock) as one transaction. An empty prompt
// is refused (ErrInvalidArgument), as locally.
func (b *Backend) AppendTurn(ctx context.Context, id string, o manager.TurnOptions) (manager.AppendResult, error) {
	t, err := b.Get(ctx, id)
	if err != nil {
		return manager.AppendResult{}, err
	}
	if o.Prompt == "" {
		return manager.AppendResult{}, fmt.Errorf("append a turn to %s: %w: the prompt is empty", t.ID, manager.ErrInvalidArgument)
	}
	// The request as sent names the turn with its key: a retry that left
	// the turn id or model empty is the same request.
	h := sha256.New()
	fmt.Fprintf(h, "turn %q %q %q %q\n", o.Prompt, o.Answer, o.TurnID, o.Model)
	request := h.Sum(nil)
	given := o.TurnID // one made here is new
	if o.TurnID == "" {
		o.TurnID = uuid.NewString()
	}
	if o.Model == "" {
		o.Model = "spool"
	}
	now := b.opts.Now()
	data, _, err := rollout.RenderTurn(rollout.HistoryMode(t.HistoryMode), 0, rollout.TurnSpec{
		ThreadID: t.ID, TurnID: o.TurnID, UserText: o.Prompt, AgentText: o.Answer,
		Cwd: t.Cwd, Model: o.Model, Started: now, Completed: now,
		UserItemID: uuid.NewString(), AgentItemID: uuid.NewString(),
	})
	if err != nil {
		return manager.AppendResult{}, fmt.Errorf("append a turn to %s: %w: %w", t.ID, manager.ErrInvalidItem, err)
	}
	expected := int64(-1)
	if o.Safe.ExpectedSize != 0 {
		expected = o.Safe.ExpectedSize
	}
	var key *pgstore.Key
	if o.Safe.IdempotencyKey != "" {
		key = &pgstore.Key{Name: o.Safe.IdempotencyKey, Hash: request}
	}
	res, err := b.store.AppendTurn(ctx, t.ID, data, expected, key, given)
	if errors.Is(err, pgstore.ErrTurnExists) {
		return manager.AppendResult{}, fmt.Errorf("append to %s: %w: %q", t.ID, manager.ErrTurnExists, given)
	}
	if err != nil {
		return manager.AppendResult{}, b.appendErr(t.ID, err)
	}
	return manager.AppendResult{Offsets: res.Starts, Thread: threadOf(res.Thread), Replayed: res.Replayed}, nil
}

var _ manager.SpawnLineage = (*Backend)(nil)

// Spawns returns the sub-agent threads spawned by id, directly or not,
// nearest first.
func (b *Backend) Spawns(ctx context.Context, id string) ([]manager.Relative, error) {
	rel, err := b.store.Spawns(ctx, id)
	if err != nil {
		return nil, b.mapErr(err)
	}
	return b.relatives(ctx, rel)
}

// SpawnedBy returns the chain of threads that spawned id, nearest first.
func (b *Backend) SpawnedBy(ctx context.Context, id string) ([]manager.Relative, error) {
	rel, err := b.store.SpawnedBy(ctx, id)
	if err != nil {
		return nil, b.mapErr(err)
	}
	return b.relatives(ctx, rel)
}

// linesIn returns how many lines lead and thread id's history from
// position from to position end in era hold together.
func (b *Backend) linesIn(ctx context.Context, id string, era pgstore.Era, from, end int64, lead []byte) (int64, error) {
	rc, _, err := b.store.OpenHistoryIn(ctx, id, era, from, end)
	if err != nil {
		return 0, err
	}
	defer rc.Close()
	return rollout.CountLines(bytes.NewReader(lead), rc)
}

// forkCopy commits a self-contained copy fork: the child's meta line
// (nt.Lines), then the parent's history before user message before (its
// Cut), or through the end of a turn, or all of it (before -1, through
// nil), as the local backend's copy of a legacy thread is laid out; a
// paginated child's lines are renumbered from 0. Its
// user messages are counted again from the copied bytes. The parent's
// history is streamed into the child's chunks as it is read, never whole
// in memory.
func (b *Backend) forkCopy(ctx context.Context, parent manager.Thread, era pgstore.Era, before int, through *pgstore.Cut, nt pgstore.NewThread, meta rollout.SessionMeta) (pgstore.Thread, error) {
	cut := int64(-1)
	switch {
	case before >= 0:
		m, err := b.store.UserMessage(ctx, parent.ID, before)
		if err != nil {
			return pgstore.Thread{}, err
		}
		cut = m.Cut()
	case through != nil:
		cut = through.Offset
		if through.Messages < parent.UserMessageCount {
			before = through.Messages
		}
	}
	rc, end, err := b.store.OpenHistoryIn(ctx, parent.ID, era, 0, cut)
	if err != nil {
		return pgstore.Thread{}, err
	}
	defer rc.Close()
	ancestors, err := b.ancestorIDs(ctx, parent.ID)
	if err != nil {
		return pgstore.Thread{}, err
	}
	lineage := append([]string{parent.ID}, ancestors...)
	meta.ForkPoint = &rollout.ForkPoint{UserMessage: before, ParentOffset: end, Ancestors: lineage}
	nt.ForkPoint = &pgstore.ForkPoint{UserMessage: before, Offset: end}
	if nt.HistoryMode != pgstore.HistoryPaginated {
		if nt.Lines, err = rollout.NewSessionMetaLine(meta.Timestamp, rollout.MetaPayload{SessionMeta: meta}); err != nil {
			return pgstore.Thread{}, err
		}
		nt.More = rc // streamed in chunks into the child's creating transaction
		return b.store.Create(ctx, nt)
	}
	// A self-contained paginated history counts 0, 1, 2, ... as Codex
	// requires: the child's meta, the metas of the parent and its fork
	// ancestors when the parent continues a base (as the local copy lays
	// them out, from which a rebuilt index reads the ancestry), then the
	// parent's lines, renumbered. Renumbered lines change length, so the
	// meta says where the copies end by line (ForkPoint.CopiedLines),
	// counted in a first pass over the history.
	var ancestry []byte
	if parent.BaseID != "" {
		_, own, metas, err := manager.SelfContainedMetas(ctx, b, parent)
		if err != nil {
			return pgstore.Thread{}, fmt.Errorf("copy of %s: %w", parent.ID, err)
		}
		ancestry = append(own, metas...)
	}
	if meta.ForkPoint.CopiedLines, err = b.linesIn(ctx, parent.ID, era, 0, end, ancestry); err != nil {
		return pgstore.Thread{}, fmt.Errorf("copy of %s: %w", parent.ID, err)
	}
	if nt.Lines, err = rollout.NewSessionMetaLine(meta.Timestamp, rollout.MetaPayload{SessionMeta: meta}); err != nil {
		return pgstore.Thread{}, err
	}
	// The parent's history is stored lines, not the request's (renumbered
	// would call its read errors invalid lines): what fails to read it,
	// the storage gone or the parent reverted, is answered as such.
	numbered := bufio.NewReader(rollout.Renumbered(0, bytes.NewReader(nt.Lines), bytes.NewReader(ancestry), rc))
	if nt.Lines, err = rollout.ReadLine(nil, numbered); err != nil {
		return pgstore.Thread{}, err
	}
	nt.More = numbered
	return b.store.Create(ctx, nt)
}

package pgstore

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// maxBatch bounds the appends one transaction carries.
const maxBatch = 64

// batcher packs concurrent appends of one Store, to any threads, into one
// transaction: a round trip to lock the rows, one with every write, and the
// commit. The caller that finds no batch running leads: it commits the
// queue's head (its own request among them) and, if more arrived meanwhile,
// hands the lead to the oldest waiter, so no caller waits for more than the
// batch in flight and its own.
//
// A batch locks only the rows no other transaction holds (SKIP LOCKED), so
// that a row held by another session (an operator's transaction left open,
// a fork, another node's batch) holds neither the rest of the batch nor the
// queue behind it. The appends to such a thread wait for its row apart:
// the first leads them, a batch of that thread alone that waits for the
// lock (bounded by the query timeout), and hands the lead on as run does;
// later appends to the thread queue behind them, in arrival order. Such
// batches hold a connection each while they wait: at most half the pool's
// wait at once (waitSlots), so that with many threads locked the batches
// of the queue and reads still get one.
type batcher struct {
	s  *Store
	mu sync.Mutex // guards the fields below
	// busy: a batch of the queue is in flight.
	busy  bool
	queue []*appendReq
	// waiting holds, by thread, the appends waiting for a row another
	// transaction held. A thread stays in it, with appends left or none,
	// until a batch of them ends with none left.
	waiting map[string][]*appendReq

	// waitSlots holds a token for each batch waiting for a locked row.
	waitSlots chan struct{}
}

// appendReq is one queued append and, once wake says done, its outcome.
type appendReq struct {
	id       string
	lines    []byte
	marks    []lineMark
	expected int64
	key      *Key // nil: no idempotency key
	// renumber: the lines carry ordinals that a paginated thread replaces
	// with its own (a rendered turn); otherwise a line that carries one is
	// refused there.
	renumber bool
	// rename: the lines name the thread (Rename): an archived thread
	// takes them, and a "renamed" notice follows the "appended" one.
	rename bool
	// newTurn, when not "", is the id of the turn the lines open, which
	// the thread's history must not hold yet (AppendTurn).
	newTurn string

	wake chan turn
	res  AppendResult
	err  error
	// deferred: the batch found the row locked by another transaction
	// and wrote nothing of this request, which waits for it apart.
	deferred bool
}

// turn is what a queued request's caller is told to do next.
type turn int

const (
	turnDone  turn = iota // the outcome is set
	turnBatch             // lead a batch of the queue
	turnWait              // lead a batch of the appends waiting for the request's thread's row
)

// append queues r and returns its outcome.
func (b *batcher) append(ctx context.Context, r *appendReq) (AppendResult, error) {
	r.wake = make(chan turn, 1)
	b.mu.Lock()
	b.queue = append(b.queue, r)
	lead := !b.busy
	b.busy = true
	b.mu.Unlock()
	if lead {
		b.run(context.WithoutCancel(ctx))
	}
	return b.follow(ctx, r)
}

// follow waits for the outcome of r, queued, and leads a batch when it is
// handed the lead.
func (b *batcher) follow(ctx context.Context, r *appendReq) (AppendResult, error) {
	for {
		switch <-r.wake {
		case turnDone:
			return r.res, r.err
		case turnBatch:
			b.run(context.WithoutCancel(ctx))
		case turnWait:
			b.runWaiting(context.WithoutCancel(ctx), r.id)
		}
	}
}

// run commits the head of the queue and passes the lead on. An append to
// a thread whose row is waited for joins the appends waiting for it, so
// that it does not overtake them; one whose row the batch found locked
// joins them after the batch.
func (b *batcher) run(ctx context.Context) {
	b.mu.Lock()
	n := min(len(b.queue), maxBatch)
	var batch []*appendReq
	for _, r := range b.queue[:n] {
		if waiting, ok := b.waiting[r.id]; ok {
			b.waiting[r.id] = append(waiting, r)
		} else {
			batch = append(batch, r)
		}
	}
	b.queue = slices.Delete(b.queue, 0, n)
	b.mu.Unlock()

	if len(batch) > 0 {
		b.commitIsolated(ctx, batch, false)
	}
	var deferred []*appendReq
	for _, r := range batch {
		if r.deferred {
			deferred = append(deferred, r)
		} else {
			r.wake <- turnDone
		}
	}

	b.mu.Lock()
	for _, r := range deferred {
		waiting, ok := b.waiting[r.id]
		if !ok {
			if b.waiting == nil {
				b.waiting = make(map[string][]*appendReq)
			}
			r.wake <- turnWait
		}
		b.waiting[r.id] = append(waiting, r)
	}
	if len(b.queue) > 0 {
		b.queue[0].wake <- turnBatch
	} else {
		b.busy = false
	}
	b.mu.Unlock()
}

// runWaiting commits the head of the appends waiting for thread id's row,
// waiting for the row, and passes the lead on to the next of them.
func (b *batcher) runWaiting(ctx context.Context, id string) {
	b.mu.Lock()
	waiting := b.waiting[id]
	n := min(len(waiting), maxBatch)
	batch := slices.Clone(waiting[:n])
	b.waiting[id] = slices.Delete(waiting, 0, n)
	b.mu.Unlock()

	err := b.takeWaitSlot()
	if err == nil {
		b.commitIsolated(ctx, batch, true)
		<-b.waitSlots
	}
	for _, r := range batch {
		if err != nil {
			r.err = err
		}
		r.wake <- turnDone
	}

	b.mu.Lock()
	if waiting := b.waiting[id]; len(waiting) > 0 {
		waiting[0].wake <- turnWait
	} else {
		delete(b.waiting, id)
	}
	b.mu.Unlock()
}

// takeWaitSlot takes a token of waitSlots, waiting for one no longer than
// the query timeout: a statement that waited as long would have failed too.
func (b *batcher) takeWaitSlot() error {
	var expired <-chan time.Time
	if d := b.s.queryTimeout; d > 0 {
		timer := time.NewTimer(d)
		defer timer.Stop()
		expired = timer.C
	}
	select {
	case b.waitSlots <- struct{}{}:
		return nil
	case <-expired:
		return fmt.Errorf("%d batches of appends already wait for rows other transactions hold: %w",
			cap(b.waitSlots), context.DeadlineExceeded)
	}
}

// commitIsolated commits batch and sets each request's outcome. The batch
// is one transaction, so an error in it (an append PostgreSQL refuses, a
// deadlock with a fork) would fail every append in it: then each is
// committed alone, and fails alone. A commit whose outcome is unknown
// (ErrCommitUnknown) fails every request of the batch, none run again;
// so does a batch PostgreSQL did not answer in time (the query timeout),
// or one that waited lock_timeout for a row, which each request alone
// would wait for again. Unless wait is set, a
// request whose row another transaction holds is deferred (see commit).
func (b *batcher) commitIsolated(ctx context.Context, batch []*appendReq, wait bool) {
	err := b.commitRetrying(ctx, batch, wait)
	switch {
	case err == nil:
	case len(batch) == 1, errors.Is(err, ErrCommitUnknown), errors.Is(err, context.DeadlineExceeded), LockNotAvailable(err):
		// A batch that may have been committed is not committed again,
		// which could append its lines twice: each request says so. Nor
		// is one that waited lock_timeout for a row: each alone would
		// wait for it again.
		for _, r := range batch {
			r.err = err
		}
	default:
		waiting := make(map[string]bool) // threads an append was set aside for
		for i, r := range batch {
			if waiting[r.id] {
				// Its row may be free by now, but an earlier append to
				// the thread waits for it: this one waits behind it.
				r.deferred = true
				continue
			}
			if err := b.commitRetrying(ctx, batch[i:i+1], wait); err != nil {
				r.err = err
			}
			waiting[r.id] = r.deferred
		}
	}
}

// commitRetrying commits batch in a transaction, again (a few times) when
// PostgreSQL ended it for a deadlock or a serialization failure, which a
// new transaction may not meet. When it fails, the requests are as they
// were before it: the transaction that changed them was rolled back.
func (b *batcher) commitRetrying(ctx context.Context, batch []*appendReq, wait bool) error {
	inputs := make([]appendInputs, len(batch))
	for i, r := range batch {
		inputs[i] = appendInputs{lines: r.lines, marks: r.marks}
	}
	for attempt := 1; ; attempt++ {
		// The batch reads its transaction's id with its last statements:
		// no round trip more.
		err := b.s.inTxWithID(ctx, func(tx pgx.Tx) (string, error) {
			var xid string
			err := b.commit(ctx, tx, batch, &xid, wait)
			return xid, err
		})
		if err == nil {
			return nil
		}
		for i, r := range batch {
			r.lines, r.marks = inputs[i].lines, inputs[i].marks
			r.res, r.err, r.deferred = AppendResult{}, nil, false
		}
		if attempt == 3 || !isTransient(err) {
			return err
		}
	}
}

// LockNotAvailable reports whether err is PostgreSQL's for a statement
// that waited lock_timeout (Store.LockTimeout) for a lock another session
// holds (SQLSTATE 55P03): its transaction was rolled back.
func LockNotAvailable(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "55P03"
}

// isTransient reports whether err ended a transaction that may succeed
// when run again: a deadlock or a serialization failure.
func isTransient(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && (pgErr.Code == "40P01" || pgErr.Code == "40001")
}

// appendInputs is what commit may replace in a request (numberLines
// returns new lines and marks; it changes neither in place).
type appendInputs struct {
	lines []byte
	marks []lineMark
}

// commit writes the batch's appends inside tx. It locks the rows in id
// order (so batches of different processes cannot deadlock), then applies
// the appends in arrival order; one that is refused (a missing thread, a
// size mismatch) fails alone. Unless wait is set, it skips the rows other
// transactions hold, and defers the appends to them (r.deferred), with no
// round trip more: a missing thread's too, which a batch that waits then
// refuses. It sets *xid to tx's id when it wrote, read with the writes (no
// round trip more), so that a COMMIT whose answer is lost can be settled.
func (b *batcher) commit(ctx context.Context, tx pgx.Tx, batch []*appendReq, xid *string, wait bool) error {
	ids := make([]string, 0, len(batch))
	for _, r := range batch {
		ids = append(ids, r.id)
	}
	slices.Sort(ids)
	ids = slices.Compact(ids)
	lock := `FOR UPDATE SKIP LOCKED`
	if wait {
		lock = `FOR UPDATE`
	}
	rows, err := tx.Query(ctx, `SELECT `+threadColumns+` FROM threads WHERE id = ANY($1) ORDER BY id `+lock, ids)
	if err != nil {
		return err
	}
	threads := make(map[string]*Thread, len(ids))
	for rows.Next() {
		t, err := scanThread(rows)
		if err != nil {
			rows.Close()
			return err
		}
		threads[t.ID] = &t
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	var q pgx.Batch
	now := b.s.now().UnixMilli()
	changed := make(map[string]bool, len(ids))
	turns := make(map[[2]string]bool) // the turns this batch's appends open, by thread
	keys, err := b.s.knownKeys(ctx, tx, batch, now)
	if err != nil {
		return err
	}
	for _, r := range batch {
		t, ok := threads[r.id]
		if !ok && !wait {
			// Its key, if any, is told under the row's lock.
			r.deferred = true
			continue
		}
		if found, replay, err := keys.check(r); found {
			r.res, r.err = replay, err
			if ok && err == nil && replay.Thread.ID == "" {
				r.res.Thread = *t // a key recorded before threads were kept with keys
			}
			continue
		}
		switch {
		case !ok:
			r.err = ErrNotFound
		case t.Archived && !r.rename:
			r.err = ErrArchived
		case r.expected >= 0 && r.expected != t.HistorySize():
			// As the local backend: the size of the history, a reference
			// fork's base part included (the API's history_size).
			r.err = &SizeMismatchError{Size: t.HistorySize(), Expected: r.expected}
		default:
			// A paginated thread refuses a rollback marker (numberLines)
			// before any fork could stand in its way, as the local backend.
			if t.Paginated() {
				if r.lines, r.marks, r.err = numberLines(r.lines, r.marks, t.NextOrdinal, r.renumber); r.err != nil {
					continue
				}
			}
			if r.err = refuseRollbackUnderForks(ctx, tx, *t, r.marks); r.err != nil {
				continue
			}
			if r.newTurn != "" {
				if r.err = refuseKnownTurn(ctx, tx, turns, *t, r.newTurn); r.err != nil {
					continue
				}
			}
			r.res = queueAppend(&q, t, r.lines, r.marks, now)
			for _, mk := range r.marks {
				if mk.kind == markTurnStart && mk.turnID != "" {
					turns[[2]string{r.id, mk.turnID}] = true
				}
			}
			if refuseAppend != nil && refuseAppend(r.lines) {
				q.Queue(`SELECT 1 / 0`)
			}
			r.res.Starts = lineStarts(r.lines, r.res.Offset)
			changed[r.id] = true
			if r.key != nil {
				if err := keys.record(&q, r, now); err != nil {
					return err
				}
			}
			// Each append updates the row and is announced with where its
			// lines start, as the local backend announces it: the notice
			// carries the row as this append left it.
			queueRowUpdate(&q, t)
			queueAppendNotice(&q, "appended", r.id, r.res.Size, r.res.Starts)
			if r.rename {
				queueNotice(&q, "renamed", r.id, r.res.Size)
			}
		}
	}
	if len(changed) == 0 {
		return nil
	}
	q.Queue(`SELECT pg_current_xact_id()::text`).QueryRow(func(row pgx.Row) error { return row.Scan(xid) })
	return tx.SendBatch(ctx, &q).Close()
}

// refuseKnownTurn fails with ErrTurnExists when the history of thread t
// (its row as the batch holds it, locked) holds turn turnID: a turn with a
// user message in the index, or any turn an earlier append of this batch
// opens (batch).
func refuseKnownTurn(ctx context.Context, q querier, batch map[[2]string]bool, t Thread, turnID string) error {
	if batch[[2]string{t.ID, turnID}] {
		return fmt.Errorf("%w: %q", ErrTurnExists, turnID)
	}
	_, err := userMessageOfTurnFrom(ctx, q, t, turnID)
	switch {
	case err == nil:
		return fmt.Errorf("%w: %q", ErrTurnExists, turnID)
	case !errors.Is(err, ErrTurnNotFound):
		return err
	}
	return nil
}

// refuseAppend, when set (by tests), picks appends PostgreSQL refuses: a
// statement that fails is queued with each.
var refuseAppend func(lines []byte) bool

// refuseRollbackUnderForks fails with a *ReferencedError when the lines
// marked by marks roll back user messages of t that a reference fork of t
// inherits: a fork resolves what it inherits through its base's rows, which
// the rollback drops (the local index gives such forks rows of their own;
// here the append is refused, and nothing is written).
func refuseRollbackUnderForks(ctx context.Context, q querier, t Thread, marks []lineMark) error {
	if !slices.ContainsFunc(marks, func(m lineMark) bool { return m.kind == markRollback }) {
		return nil
	}
	before := t.UserMessageCount
	if _, keep := observe(&t, marks); keep < before { // t is a copy
		// Only forks based on t itself read t's own rows (a fork of one of
		// its links reads the link's); a link of a fork names the fork.
		err := refuseReferrers(ctx, q, t.ID, `SELECT DISTINCT COALESCE(link_of, id) AS referrer FROM threads
			WHERE base_id = $1 AND COALESCE(link_of, id) <> $1 AND inherited_messages > $2 ORDER BY referrer`, t.ID, keep)
		if err != nil {
			return fmt.Errorf("a rollback of messages reference forks of %s inherit: %w", t.ID, err)
		}
	}
	return nil
}

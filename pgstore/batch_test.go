//go:build distributed

package pgstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/spoolhq/spool/internal/disttest"
)

// TestBatchRefusalsFailAlone: one transaction carrying appends to two
// threads, a stale expected size and a missing thread commits the good
// appends, in arrival order, and refuses only the bad ones.
func TestBatchRefusalsFailAlone(t *testing.T) {
	s := openStore(t, testDSN(t), nil)
	a, ah := parentWith(t, s, 1)
	b, bh := parentWith(t, s, 1)
	reqs := []*appendReq{
		{id: a, lines: userLine("a1"), expected: -1},
		{id: b, lines: userLine("b1"), expected: int64(len(bh))},
		{id: a, lines: userLine("stale"), expected: int64(len(ah))}, // a has grown by a1
		{id: newID(t), lines: userLine("nobody"), expected: -1},
		{id: a, lines: userLine("a2"), expected: -1},
	}
	runBatch(t, s, reqs)
	for i, want := range []error{nil, nil, ErrSizeMismatch, ErrNotFound, nil} {
		ok := reqs[i].err == nil
		if want != nil {
			ok = errors.Is(reqs[i].err, want)
		}
		if !ok {
			t.Fatalf("request %d: %v, want %v", i, reqs[i].err, want)
		}
	}
	if s.batch.busy {
		t.Fatal("the batcher stays busy with an empty queue")
	}
	wantA := append(append(bytes.Clone(ah), userLine("a1")...), userLine("a2")...)
	if got := history(t, s, a); !bytes.Equal(got, wantA) {
		t.Fatalf("thread a: %q, want %q", got, wantA)
	}
	if reqs[4].res.Offset != int64(len(ah)+len(userLine("a1"))) {
		t.Fatalf("a2 acknowledged at %d", reqs[4].res.Offset)
	}
	if got := history(t, s, b); !bytes.Equal(got, append(bytes.Clone(bh), userLine("b1")...)) {
		t.Fatal("thread b misses b1")
	}
	th, err := s.Get(t.Context(), a)
	if err != nil || th.UserMessageCount != 3 {
		t.Fatalf("thread a: %d messages, %v; want 3", th.UserMessageCount, err)
	}
}

// TestBatchRefusesATurnTwice: of two turns of one new id in one batch, to
// one thread, the second is refused though neither is in the index yet;
// so is a turn whose id lines appended earlier in the batch open; another
// thread takes a turn of that id.
func TestBatchRefusesATurnTwice(t *testing.T) {
	s := openStore(t, testDSN(t), nil)
	a, _ := parentWith(t, s, 1)
	b, _ := parentWith(t, s, 1)
	turn := func(id, text string) []byte {
		return append(fmt.Appendf(nil, `{"timestamp":"2026-11-25T00:00:01.000Z","type":"event_msg","payload":{"type":"task_started","turn_id":%q}}`+"\n", id), userLine(text)...)
	}
	reqs := []*appendReq{
		{id: a, lines: turn("t1", "first"), expected: -1, newTurn: "t1"},
		{id: a, lines: turn("t1", "second"), expected: -1, newTurn: "t1"},
		{id: b, lines: turn("t1", "other"), expected: -1, newTurn: "t1"},
		{id: a, lines: turn("t2", "raw"), expected: -1},
		{id: a, lines: turn("t2", "after the raw one"), expected: -1, newTurn: "t2"},
	}
	runBatch(t, s, reqs)
	for i, want := range []error{nil, ErrTurnExists, nil, nil, ErrTurnExists} {
		if got := reqs[i].err; want == nil && got != nil || want != nil && !errors.Is(got, want) {
			t.Fatalf("request %d: %v, want %v", i, got, want)
		}
	}
}

// TestBatchedAppendsToManyThreads: 64 writers on one Store, 16 threads;
// every thread's offsets are contiguous and its history holds its lines.
func TestBatchedAppendsToManyThreads(t *testing.T) {
	s := openStore(t, testDSN(t), nil)
	var ids []string
	for range 16 {
		id := newID(t)
		if _, err := s.Create(t.Context(), NewThread{ID: id, Lines: metaLine(id)}); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	var mu sync.Mutex
	got := make(map[string]map[int64][]byte)
	var wg sync.WaitGroup
	for w := range 64 {
		wg.Go(func() {
			for i := range 10 {
				id := ids[(w+i)%len(ids)]
				line := userLine(fmt.Sprintf("writer %d line %d", w, i))
				res, err := s.Append(t.Context(), id, line, -1)
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				if got[id] == nil {
					got[id] = make(map[int64][]byte)
				}
				got[id][res.Offset] = line
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	for _, id := range ids {
		h := history(t, s, id)
		next := int64(len(metaLine(id)))
		for next < int64(len(h)) {
			line, ok := got[id][next]
			if !ok || !bytes.Equal(h[next:next+int64(len(line))], line) {
				t.Fatalf("thread %s: no acknowledged line at %d", id, next)
			}
			next += int64(len(line))
			delete(got[id], next-int64(len(line)))
		}
		if len(got[id]) != 0 {
			t.Fatalf("thread %s: %d acknowledged lines not in its history", id, len(got[id]))
		}
	}
}

// TestBatchErrorsFailAlone: an append PostgreSQL refuses (refuseAppend
// queues a statement that fails with it) fails alone, not the others of its
// batch, and a message with a NUL character is indexed with a space for it.
func TestBatchErrorsFailAlone(t *testing.T) {
	s := openStore(t, testDSN(t), nil)
	a, _ := parentWith(t, s, 1)
	b, _ := parentWith(t, s, 1)
	refused := userLine("refused by PostgreSQL")
	refuseAppend = func(lines []byte) bool { return bytes.Contains(lines, []byte("refused by PostgreSQL")) }
	t.Cleanup(func() { refuseAppend = nil })
	nul := []byte(`{"timestamp":"2026-11-25T00:00:01.000Z","type":"response_item","payload":{"type":"message","role":"user","content":[{"type":"input_text","text":"nul\u0000zanzibar"}]}}` + "\n")
	reqs := []*appendReq{
		{id: a, lines: userLine("a1"), expected: -1},
		{id: b, lines: refused, expected: -1},
		{id: a, lines: nul, expected: -1},
		{id: b, lines: userLine("b1"), expected: -1},
	}
	runBatch(t, s, reqs)
	for i, r := range reqs {
		if failed := r.err != nil; failed != (i == 1) {
			t.Fatalf("request %d: %v; want only request 1 to fail", i, r.err)
		}
	}
	for id, want := range map[string]int{a: 3, b: 2} {
		if th, err := s.Get(t.Context(), id); err != nil || th.UserMessageCount != want {
			t.Fatalf("thread %s: %d messages, %v; want %d", id, th.UserMessageCount, err, want)
		}
	}
	hits, err := s.Search(t.Context(), SearchOptions{Query: `"zanzibar"`})
	if err != nil || len(hits) != 1 || hits[0].ThreadID != a {
		t.Fatalf("search for the word after the NUL: %+v, %v", hits, err)
	}
}

// runBatch commits reqs as one batch of s's batcher, and the batches of
// those whose rows it found locked or missing, as their callers would, and
// fails unless each request is then done.
func runBatch(t *testing.T, s *Store, reqs []*appendReq) {
	t.Helper()
	for _, r := range reqs {
		marks, err := scanLines(r.lines)
		if err != nil {
			t.Fatal(err)
		}
		r.marks, r.wake = marks, make(chan turn, 1)
	}
	s.batch.queue, s.batch.busy = slices.Clone(reqs), true
	s.batch.run(t.Context())
	for i, r := range reqs {
		next := <-r.wake
		if next == turnWait {
			s.batch.runWaiting(t.Context(), r.id)
			next = <-r.wake
		}
		if next != turnDone {
			t.Fatalf("request %d: told %d after its batch, want done", i, next)
		}
	}
}

// TestCommitAnswerLost: a batch of appends whose COMMIT was sent but
// whose answer was lost is never committed twice (which appended its lines
// twice), and is answered as PostgreSQL settled it (pg_xact_status): as
// committed when it committed (it used to fail every request with
// ErrCommitUnknown, though PostgreSQL could tell), or committed again,
// request by request, when it rolled back. Only when its status cannot be
// read (the database unreachable), or it committed where commits wait for
// a synchronous standby (committed locally, maybe not on the standby), does
// every request fail with ErrCommitUnknown. A lone append is answered the
// same way, and when rolled back fails with the lost answer's error, not
// ErrCommitUnknown.
func TestCommitAnswerLost(t *testing.T) {
	lostErr := fmt.Errorf("read answer: %w", io.ErrUnexpectedEOF)
	for _, tc := range []struct {
		name       string
		rolledBack bool  // the COMMIT never arrived, and the session's end rolled back
		statusErr  error // the status read's error; nil: it is read
		syncRep    bool  // commits wait for a synchronous standby
	}{
		{"committed", false, nil, false},
		{"rolled back", true, nil, false},
		{"status unknown", false, errors.New("connect: connection refused"), false},
		{"committed locally, synchronous standby", false, nil, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := openStore(t, testDSN(t), nil)
			a, _ := parentWith(t, s, 1)
			b, _ := parentWith(t, s, 1)
			lost := true
			hook := func() error {
				if lost {
					lost = false
					return lostErr
				}
				return nil
			}
			if tc.rolledBack {
				commitSentLost = hook
			} else {
				commitAnswerLost = hook
			}
			xactStatusLost = func() error { return tc.statusErr }
			syncRepForced = func() bool { return tc.syncRep }
			t.Cleanup(func() { commitAnswerLost, commitSentLost, xactStatusLost, syncRepForced = nil, nil, nil, nil })
			settled := tc.statusErr == nil && !tc.syncRep
			reqs := []*appendReq{
				{id: a, lines: userLine("lost-a1"), expected: -1},
				{id: b, lines: userLine("lost-b1"), expected: -1},
				{id: a, lines: userLine("lost-a2"), expected: -1},
			}
			runBatch(t, s, reqs)
			for i, r := range reqs {
				if settled && r.err != nil {
					t.Fatalf("request %d of a batch whose answer was lost, settled: %v, want success", i, r.err)
				}
				if !settled && !errors.Is(r.err, ErrCommitUnknown) {
					t.Fatalf("request %d of a batch whose answer was lost, unsettled: %v, want ErrCommitUnknown", i, r.err)
				}
			}
			if settled && (reqs[2].res.Offset <= reqs[0].res.Offset || reqs[1].res.Size == 0) {
				t.Fatalf("results %+v, %+v, %+v: want those of the committed appends", reqs[0].res, reqs[1].res, reqs[2].res)
			}
			lost = true
			_, err := s.Append(t.Context(), a, userLine("lost-a3"), -1)
			lone := 1
			switch {
			case tc.rolledBack:
				if errors.Is(err, ErrCommitUnknown) || !errors.Is(err, io.ErrUnexpectedEOF) {
					t.Fatalf("a lone append whose COMMIT was lost and rolled back: %v, want the lost answer's error only", err)
				}
				lone = 0
			case settled && err != nil:
				t.Fatalf("a lone append whose answer was lost, settled: %v, want success", err)
			case !settled && !errors.Is(err, ErrCommitUnknown):
				t.Fatalf("a lone append whose answer was lost, unsettled: %v, want ErrCommitUnknown", err)
			}
			for id, texts := range map[string][]string{a: {"lost-a1", "lost-a2", "lost-a3"}, b: {"lost-b1"}} {
				rc, _, err := s.OpenHistory(t.Context(), id, 0, -1)
				if err != nil {
					t.Fatal(err)
				}
				h, err := io.ReadAll(rc)
				rc.Close()
				if err != nil {
					t.Fatal(err)
				}
				for _, text := range texts {
					want := 1
					if text == "lost-a3" {
						want = lone
					}
					if n := bytes.Count(h, []byte(text+`"`)); n != want {
						t.Errorf("%q is in %s's history %d times, want %d", text, id, n, want)
					}
				}
			}
		})
	}
}

// TestLockedRowHoldsOnlyItsThread: a thread's row held locked by another
// session (an operator's SELECT ... FOR UPDATE left open in psql, a stuck
// node) holds only the appends to that thread. Appends to other threads,
// in its batch or queued behind it, commit while the row stays locked; they
// used to wait the whole query timeout with it and then fail with it. The
// locked thread's appends commit, in their order, once the row is
// released, or fail alone at the lock timeout (lock_not_available) while it is
// not.
func TestLockedRowHoldsOnlyItsThread(t *testing.T) {
	for _, tc := range []struct {
		name    string
		timeout string // spool_query_timeout
		release bool   // the holder releases the row before the timeout
	}{
		{"released", "20s", true},
		{"held past the lock timeout", "2s", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			plain := testDSN(t)
			s := openStore(t, disttest.WithQueryTimeout(t, plain, tc.timeout), nil)
			a, ah := parentWith(t, s, 1)
			b, bh := parentWith(t, s, 1)
			c, ch := parentWith(t, s, 1)
			lock := rowHolder(t, plain)
			holdRow(t, lock, a)
			reqs := []*appendReq{
				{id: a, lines: userLine("a1"), expected: -1},
				{id: b, lines: userLine("b1"), expected: -1},
				{id: a, lines: userLine("a2"), expected: -1},
				{id: c, lines: userLine("c1"), expected: -1},
			}
			done := startBatch(t, s, reqs)
			if _, err := s.Append(t.Context(), b, userLine("b2"), -1); err != nil {
				t.Fatalf("append to another thread queued behind a batch with a locked row: %v; want it committed", err)
			}
			for _, i := range []int{1, 3} {
				<-done[i]
				if err := reqs[i].err; err != nil {
					t.Fatalf("append to another thread in a batch with a locked row: %v; want it committed", err)
				}
			}
			if got, want := history(t, s, b), slices.Concat(bh, userLine("b1"), userLine("b2")); !bytes.Equal(got, want) {
				t.Fatalf("thread b: %q, want %q", got, want)
			}
			if got, want := history(t, s, c), slices.Concat(ch, userLine("c1")); !bytes.Equal(got, want) {
				t.Fatalf("thread c: %q, want %q", got, want)
			}
			wantA := ah
			if tc.release {
				if err := lock.Rollback(t.Context()); err != nil {
					t.Fatal(err)
				}
				wantA = slices.Concat(ah, userLine("a1"), userLine("a2"))
			}
			for _, i := range []int{0, 2} {
				<-done[i]
				err := reqs[i].err
				if tc.release && err != nil {
					t.Fatalf("append to the locked thread once released: %v; want it committed", err)
				}
				var pgErr *pgconn.PgError
				if !tc.release && (!errors.As(err, &pgErr) || pgErr.Code != "55P03") {
					t.Fatalf("append to a thread locked past the lock timeout: %v; want lock_not_available (55P03)", err)
				}
			}
			if !tc.release {
				if err := lock.Rollback(t.Context()); err != nil {
					t.Fatal(err)
				}
			}
			if got := history(t, s, a); !bytes.Equal(got, wantA) {
				t.Fatalf("thread a: %q, want %q", got, wantA)
			}
		})
	}
}

// TestLockedRowFailsItsWaitersOnce: appends waiting together for a row
// another session holds past lock_timeout fail together, with
// lock_not_available, after one wait. They were then committed one at a
// time, as a batch failed for another reason is, each waiting the whole
// lock_timeout again: eight appends took eight waits.
func TestLockedRowFailsItsWaitersOnce(t *testing.T) {
	plain := testDSN(t)
	s := openStore(t, disttest.WithQueryTimeout(t, plain, "2s"), nil)
	a, ah := parentWith(t, s, 1)
	lock := rowHolder(t, plain)
	holdRow(t, lock, a)
	reqs := make([]*appendReq, 8)
	for i := range reqs {
		reqs[i] = &appendReq{id: a, lines: userLine(fmt.Sprintf("a%d", i)), expected: -1}
	}
	start := time.Now()
	done := startBatch(t, s, reqs)
	for i, r := range reqs {
		<-done[i]
		if !LockNotAvailable(r.err) {
			t.Fatalf("append %d to a row held past lock_timeout: %v; want lock_not_available (55P03)", i, r.err)
		}
	}
	// One wait is one lock_timeout (1.5 s); eight would be 12 s.
	if elapsed, bound := time.Since(start), 4*s.LockTimeout(); elapsed >= bound {
		t.Errorf("%d appends waiting for one locked row failed after %s, past %s: they waited for it one at a time", len(reqs), elapsed, bound)
	}
	if err := lock.Rollback(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got := history(t, s, a); !bytes.Equal(got, ah) {
		t.Fatalf("thread a after refused appends: %q, want %q", got, ah)
	}
}

// startBatch queues reqs as one batch of s's batcher and commits it, each
// request followed by a goroutine of its own, as a caller of append; done[i]
// is closed once reqs[i] has its outcome.
func startBatch(t *testing.T, s *Store, reqs []*appendReq) (done []chan struct{}) {
	t.Helper()
	for _, r := range reqs {
		marks, err := scanLines(r.lines)
		if err != nil {
			t.Fatal(err)
		}
		r.marks, r.wake = marks, make(chan turn, 1)
	}
	s.batch.mu.Lock()
	s.batch.queue, s.batch.busy = slices.Clone(reqs), true
	s.batch.mu.Unlock()
	done = make([]chan struct{}, len(reqs))
	for i, r := range reqs {
		done[i] = make(chan struct{})
		go func() {
			defer close(done[i])
			if i == 0 {
				s.batch.run(t.Context())
			}
			s.batch.follow(t.Context(), r)
		}()
	}
	return done
}

// TestLockedRowsLeaveConnections: appends waiting for rows other
// transactions hold take at most half the pool's connections while they
// wait, so that with more threads locked than that, appends to other
// threads and reads still get a connection. They used to take one each:
// with as many locked threads as connections, every other append and read
// waited the whole query timeout for a connection, then failed.
func TestLockedRowsLeaveConnections(t *testing.T) {
	plain := testDSN(t)
	const conns = 4
	dsn := disttest.WithQueryTimeout(t, plain, "20s") + fmt.Sprintf("&pool_max_conns=%d", conns)
	s := openStore(t, dsn, nil)
	free, _ := parentWith(t, s, 1)
	lock := rowHolder(t, plain)
	var locked []string
	for range conns {
		id, _ := parentWith(t, s, 1)
		holdRow(t, lock, id)
		locked = append(locked, id)
	}
	var wg sync.WaitGroup
	errs := make([]error, len(locked))
	for i, id := range locked {
		wg.Go(func() { _, errs[i] = s.Append(t.Context(), id, userLine("waits"), -1) })
	}
	// Until the appends wait on the rows, as PostgreSQL sees it (on a
	// connection of its own: a transaction reads pg_stat_activity once).
	observer, err := pgx.Connect(t.Context(), plain)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { observer.Close(context.Background()) })
	for waiting := 0; waiting < conns/2; {
		if err := observer.QueryRow(t.Context(), `SELECT count(*) FROM pg_stat_activity
			WHERE datname = current_database() AND wait_event_type = 'Lock'`).Scan(&waiting); err != nil {
			t.Fatal(err)
		}
		time.Sleep(10 * time.Millisecond) // polls the server's state; nothing here to wait on
	}
	if _, err := s.Append(t.Context(), free, userLine("goes on"), -1); err != nil {
		t.Fatalf("append to another thread while %d threads are locked, pool of %d: %v; want it committed", conns, conns, err)
	}
	if _, err := s.Get(t.Context(), free); err != nil {
		t.Fatalf("read while %d threads are locked, pool of %d: %v", conns, conns, err)
	}
	if err := lock.Rollback(t.Context()); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("append to locked thread %d once released: %v", i, err)
		}
	}
}

// rowHolder returns a transaction on a connection of its own to dsn, for
// a test to hold rows locked as another session would (holdRow) until it
// rolls back; the connection is closed when the test ends.
func rowHolder(t *testing.T, dsn string) pgx.Tx {
	t.Helper()
	holder, err := pgx.Connect(t.Context(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { holder.Close(context.Background()) })
	tx, err := holder.Begin(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return tx
}

// holdRow locks thread id's row in tx.
func holdRow(t *testing.T, tx pgx.Tx, id string) {
	t.Helper()
	if _, err := tx.Exec(t.Context(), `SELECT 1 FROM threads WHERE id = $1 FOR UPDATE`, id); err != nil {
		t.Fatal(err)
	}
}

// TestIsolatedAppendsKeepTheirOrder: a batch that failed as a whole is
// committed an append at a time. The first of two appends to a thread
// whose row another session held was set aside to wait for it; the row was
// released before the second's turn, which found it free and was written
// first, so the thread's lines came out of order (a review found it).
func TestIsolatedAppendsKeepTheirOrder(t *testing.T) {
	plain := testDSN(t)
	s := openStore(t, plain, nil)
	a, ah := parentWith(t, s, 1)
	b, _ := parentWith(t, s, 1)
	lock := rowHolder(t, plain)
	holdRow(t, lock, a)
	refused := 0
	refuseAppend = func(lines []byte) bool {
		if !bytes.Contains(lines, []byte("refused by PostgreSQL")) {
			return false
		}
		if refused++; refused == 2 { // alone, between the two appends to a
			if err := lock.Rollback(t.Context()); err != nil {
				t.Error(err)
			}
		}
		return true
	}
	t.Cleanup(func() { refuseAppend = nil })
	reqs := []*appendReq{
		{id: a, lines: userLine("a1"), expected: -1},
		{id: b, lines: userLine("refused by PostgreSQL"), expected: -1},
		{id: a, lines: userLine("a2"), expected: -1},
	}
	runBatch(t, s, reqs)
	if refused != 2 {
		t.Fatalf("the refused append was tried %d times, want twice (in the batch, then alone)", refused)
	}
	for i, r := range reqs {
		if failed := r.err != nil; failed != (i == 1) {
			t.Fatalf("request %d: %v; want only request 1 to fail", i, r.err)
		}
	}
	if got, want := history(t, s, a), slices.Concat(ah, userLine("a1"), userLine("a2")); !bytes.Equal(got, want) {
		t.Fatalf("thread a:\n%s\nwant its appends in order:\n%s", got, want)
	}
}

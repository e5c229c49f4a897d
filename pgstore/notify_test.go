//go:build distributed

package pgstore

import (
	"context"
	"errors"
	"log/slog"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/spoolhq/spool/internal/disttest"
	"github.com/spoolhq/spool/internal/fixtures"
)

// TestNoticesCarryTheRow (issue #17): every notice carries the thread's
// row as the change committed it, so a listener publishes it without a
// query per notice; a row too large for a notice goes without it, and
// the change still commits; a deleted thread's notice has none.
func TestNoticesCarryTheRow(t *testing.T) {
	s := openStore(t, testDSN(t), nil)
	notices := listen(t, s)
	id := newID(t)
	for _, tc := range []struct {
		name    string
		change  func() error
		typ     string
		withRow bool
	}{
		{"create", func() error { _, err := s.Create(t.Context(), NewThread{ID: id, Lines: metaLine(id)}); return err }, "created", true},
		{"append", func() error { _, err := s.Append(t.Context(), id, userLine("hello"), -1); return err }, "appended", true},
		// A rename appends its line, as an append is announced, then says so.
		{"rename", func() error { return rename(t, s, id, "named") }, "appended renamed", true},
		{"archive", func() error { _, err := s.SetArchived(t.Context(), id, true); return err }, "archived", true},
		{"a name too long for a notice", func() error { return rename(t, s, id, strings.Repeat("n", 9000)) }, "appended renamed", false},
		{"delete", func() error { return s.Delete(t.Context(), id) }, "deleted", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.change(); err != nil {
				t.Fatal(err)
			}
			var n Notice
			for _, typ := range strings.Fields(tc.typ) {
				select {
				case n = <-notices:
				case <-t.Context().Done():
					t.Fatal("no notice")
				}
				if n.Type != typ || n.ThreadID != id {
					t.Fatalf("notice %s of %s, want %s of %s", n.Type, n.ThreadID, typ, id)
				}
			}
			got, ok := n.Thread()
			if ok != tc.withRow {
				t.Fatalf("notice carries the row: %v, want %v", ok, tc.withRow)
			}
			if !ok {
				return
			}
			want, err := s.Get(t.Context(), id)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("notice's row %+v, want %+v", got, want)
			}
		})
	}
}

// TestEachAppendsNoticeCarriesItsRow: two appends to one thread committed
// in one batch are each announced with the row as that append left it.
func TestEachAppendsNoticeCarriesItsRow(t *testing.T) {
	s := openStore(t, testDSN(t), nil)
	id, _ := parentWith(t, s, 1)
	notices := listen(t, s)
	before, err := s.Get(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	var reqs []*appendReq
	for _, text := range []string{"first", "second"} {
		lines := userLine(text)
		marks, err := scanLines(lines)
		if err != nil {
			t.Fatal(err)
		}
		reqs = append(reqs, &appendReq{id: id, lines: lines, marks: marks, expected: -1})
	}
	var xid string
	if err := s.inTx(t.Context(), func(tx pgx.Tx) error { return s.batch.commit(t.Context(), tx, reqs, &xid, false) }); err != nil {
		t.Fatal(err)
	}
	for i := range reqs {
		n := <-notices
		got, ok := n.Thread()
		if n.Type != "appended" || !ok || got.UserMessageCount != before.UserMessageCount+i+1 || n.Size != reqs[i].res.Size {
			t.Fatalf("notice %d: %s, %d user messages (row %t), size %d; want appended with %d, size %d",
				i, n.Type, got.UserMessageCount, ok, n.Size, before.UserMessageCount+i+1, reqs[i].res.Size)
		}
	}
}

// listen returns the notices s hears from when it returns (it is
// listening by then) until the test ends.
func listen(t *testing.T, s *Store) <-chan Notice {
	t.Helper()
	ctx, stop := context.WithCancel(t.Context())
	notices := make(chan Notice, 16)
	listening := make(chan struct{})
	var once sync.Once
	var wg sync.WaitGroup
	wg.Go(func() {
		s.Listen(ctx, func(n Notice) { notices <- n }, func() { once.Do(func() { close(listening) }) }, func() {})
	})
	t.Cleanup(func() { stop(); wg.Wait() })
	select {
	case <-listening:
	case <-t.Context().Done():
		t.Fatal("never listening")
	}
	return notices
}

// TestNoChangeLostAcrossReconnect: when the listening connection breaks,
// a change committed after Listen calls lost (a follower read again then)
// but before it listens again is delivered, or lost is called once more:
// a follower that read again before it never waits for a change that
// came.
func TestNoChangeLostAcrossReconnect(t *testing.T) {
	s := openStore(t, testDSN(t), nil)
	id := newID(t)
	if _, err := s.Create(t.Context(), NewThread{ID: id, Lines: metaLine(id)}); err != nil {
		t.Fatal(err)
	}
	notices := make(chan Notice, 16)
	listening := make(chan struct{}, 16)
	losts := make(chan error, 16)
	first := true
	lost := func() {
		var err error
		if first { // another node appends as the first lost's follower has read
			first = false
			_, err = s.Append(t.Context(), id, userLine("while reconnecting"), -1)
		}
		losts <- err
	}
	ctx, stop := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	wg.Go(func() {
		s.Listen(ctx, func(n Notice) { notices <- n }, func() { listening <- struct{}{} }, lost)
	})
	t.Cleanup(func() { stop(); wg.Wait() })
	wait, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	select {
	case <-listening:
	case <-wait.Done():
		t.Fatal("never listening")
	}
	if _, err := s.pool.Exec(t.Context(), `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
		WHERE datname = current_database() AND query = 'LISTEN `+noticeChannel+`'`); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-losts:
		if err != nil {
			t.Fatal(err)
		}
	case <-wait.Done():
		t.Fatal("lost not called when the listening connection broke")
	}
	for {
		select {
		case n := <-notices:
			if n.Type == "appended" && n.ThreadID == id {
				return
			}
		case <-losts:
			return
		case <-wait.Done():
			t.Fatal("the append committed while reconnecting was neither delivered nor followed by lost")
		}
	}
}

// TestAppendOffsetsOfAnAppendRevertedSince: the offsets of an append too
// large for its notice are read from the history afterwards; a revert and
// new turns since put other bytes at those positions. Asked in the era the
// notice's row holds, the read fails with ErrChanged, where it would name
// the starts of other lines.
func TestAppendOffsetsOfAnAppendRevertedSince(t *testing.T) {
	ctx := t.Context()
	s := openStore(t, testDSN(t), nil)
	id := createPaginated(t, s)
	appendTurns(t, s, id, "turn-a")
	notices := listen(t, s)
	appendTurns(t, s, id, "turn-b")
	var n Notice
	select {
	case n = <-notices:
	case <-ctx.Done():
		t.Fatal("no notice")
	}
	row, ok := n.Thread()
	if n.Type != "appended" || n.From == nil || !ok {
		t.Fatalf("notice %+v: want an append's, with where it starts and its row", n)
	}
	era := row.Era()
	want, err := s.AppendOffsets(ctx, id, &era, *n.From, n.Size)
	if err != nil || !slices.Equal(want, n.Offsets) {
		t.Fatalf("offsets of the append read back: %v, %v; the notice says %v", want, err, n.Offsets)
	}
	if _, err := s.Revert(ctx, Revert{ID: id, TurnID: "turn-b"}); err != nil {
		t.Fatal(err)
	}
	appendTurns(t, s, id, "turn-c with a longer prompt", "turn-d")
	if got, err := s.AppendOffsets(ctx, id, &era, *n.From, n.Size); !errors.Is(err, ErrChanged) {
		t.Fatalf("offsets of the append after a revert: %v, %v; want ErrChanged", got, err)
	}
}

// TestListenLogsBreakAndReconnect: when the connection listening for
// changes breaks, the log says so once, however many attempts to connect
// again fail, and says once that it listens again: an operator can tell
// why follow streams stalled, and that they came back.
func TestListenLogsBreakAndReconnect(t *testing.T) {
	var log fixtures.Buffer
	s, err := Open(t.Context(), testDSN(t), Options{Logger: slog.New(slog.NewTextHandler(&log, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	var refusing atomic.Bool
	attempts := make(chan struct{}, 64)
	listenRefused = func() error {
		attempts <- struct{}{}
		if refusing.Load() {
			return errors.New("refused by the test")
		}
		return nil
	}
	t.Cleanup(func() { listenRefused = nil })
	listening := make(chan struct{}, 16)
	ctx, stop := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	wg.Go(func() { s.Listen(ctx, func(Notice) {}, func() { listening <- struct{}{} }, func() {}) })
	t.Cleanup(func() { stop(); wg.Wait() })
	receive(t, attempts, "an attempt to listen")
	receive(t, listening, "listening")
	refusing.Store(true)
	if _, err := s.pool.Exec(t.Context(), `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
		WHERE datname = current_database() AND query = 'LISTEN `+noticeChannel+`'`); err != nil {
		t.Fatal(err)
	}
	for range 3 { // three attempts refused
		receive(t, attempts, "an attempt to listen again")
	}
	refusing.Store(false)
	receive(t, listening, "listening again")
	stop()
	wg.Wait()
	got := log.String()
	for _, want := range []struct {
		level, msg string
	}{
		{"WARN", "the connection listening for changes broke"},
		{"INFO", "listening for changes again"},
	} {
		n := 0
		for line := range strings.Lines(got) {
			if strings.Contains(line, "level="+want.level) && strings.Contains(line, want.msg) {
				n++
			}
		}
		if n != 1 {
			t.Errorf("log lines %s %q: %d, want 1; the log:\n%s", want.level, want.msg, n, got)
		}
	}
}

// receive returns the next value on ch, failing the test after 10 s
// without one.
func receive[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	var v T
	select {
	case v = <-ch:
	case <-time.After(10 * time.Second):
		t.Fatalf("no %s within 10 s", what)
	}
	return v
}

// TestListenNoticesAServerGoneSilent: a server gone without closing the
// listening connection (a host powered off, a network dropping packets:
// here a proxy that stops forwarding) is noticed while nothing is
// committed, and the connection is made again once the server answers,
// with lost called for what was missed. The listener waited for a
// notification that would never come until TCP's keepalive gave up (pgx
// sets 5 minutes, then nine probes as far apart: most of an hour), and
// follow streams and caches heard nothing all that time.
func TestListenNoticesAServerGoneSilent(t *testing.T) {
	idle, wait := listenIdle, listenPingWait
	listenIdle, listenPingWait = 100*time.Millisecond, 300*time.Millisecond
	t.Cleanup(func() { listenIdle, listenPingWait = idle, wait })
	dsn, pg := disttest.ProxyURL(t, testDSN(t))
	s := openStore(t, dsn, nil)
	attempts := make(chan struct{}, 64)
	listenRefused = func() error { attempts <- struct{}{}; return nil }
	t.Cleanup(func() { listenRefused = nil })
	listening, losts := make(chan struct{}, 16), make(chan struct{}, 16)
	notices := make(chan Notice, 16)
	ctx, stop := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	wg.Go(func() {
		s.Listen(ctx, func(n Notice) { notices <- n }, func() { listening <- struct{}{} }, func() { losts <- struct{}{} })
	})
	t.Cleanup(func() { stop(); wg.Wait() })
	receive(t, attempts, "an attempt to listen")
	receive(t, listening, "listening")

	pg.Freeze()
	receive(t, attempts, "an attempt to listen again, the server silent")
	pg.Thaw()
	receive(t, losts, "lost, once listening again")
	receive(t, listening, "listening again")
	id := newID(t) // and it hears changes, pinging between them
	if _, err := s.Create(t.Context(), NewThread{ID: id, Lines: metaLine(id)}); err != nil {
		t.Fatal(err)
	}
	if n := receive(t, notices, "the notice of a change"); n.Type != "created" || n.ThreadID != id {
		t.Fatalf("notice %s of %s, want created of %s", n.Type, n.ThreadID, id)
	}
}

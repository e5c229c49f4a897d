package pgstore

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// noticeChannel is the PostgreSQL channel every change is announced on.
const noticeChannel = "spool_events"

// Notice is a change committed to the database, by any process: its type
// ("created", "appended", "forked", "renamed", "archived", "unarchived",
// "deleted"), the thread, and the thread's history size after it.
type Notice struct {
	Type     string `json:"t"`
	ThreadID string `json:"id"`
	Size     int64  `json:"size,omitempty"`
	// Offsets are where the lines of an append start (history positions);
	// left out when they would not fit in a notice. From is where the
	// first of them starts, always there for an append: the lines from
	// there to Size are the append's (AppendOffsets reads them).
	Offsets []int64 `json:"offsets,omitempty"`
	From    *int64  `json:"from,omitempty"`
	// Row is the thread's row as the change committed it, in
	// threadColumns' order (null for a deleted thread, or left out when it
	// would not fit in a notice); Thread reads it.
	Row []json.RawMessage `json:"row,omitempty"`
}

// Thread returns the thread's row as the change committed it, so a
// listener needs no query per notice; ok is false when the notice does
// not carry it (a deleted thread, or a row too large for a notice: read
// it then).
func (n Notice) Thread() (t Thread, ok bool) {
	if n.Row == nil {
		return Thread{}, false
	}
	t, err := scanThread(jsonRow(n.Row))
	return t, err == nil
}

// jsonRow is a row of JSON values, scanned as pgx scans a row.
type jsonRow []json.RawMessage

func (r jsonRow) Scan(dest ...any) error {
	if len(r) != len(dest) {
		return fmt.Errorf("pgstore: notice row has %d columns, want %d", len(r), len(dest))
	}
	for i, d := range dest {
		if err := json.Unmarshal(r[i], d); err != nil {
			return fmt.Errorf("pgstore: notice row column %d: %w", i, err)
		}
	}
	return nil
}

// noticeSQL announces a change with the thread's row as the transaction
// sees it, after the change (the row is null once deleted). PostgreSQL
// refuses a payload of 8000 bytes or more: past 7900 (a long name or
// preview) the notice goes without the row.
const noticeSQL = `WITH bare AS (SELECT json_build_object('t', $1::text, 'id', $2::text, 'size', $3::bigint,
		'from', ($4::bigint[])[1])::text AS j),
	withoffsets AS (SELECT json_build_object('t', $1::text, 'id', $2::text, 'size', $3::bigint,
		'offsets', $4::bigint[], 'from', ($4::bigint[])[1])::text AS j),
	withrow AS (SELECT json_build_object('t', $1::text, 'id', $2::text, 'size', $3::bigint, 'offsets', $4::bigint[],
		'from', ($4::bigint[])[1], 'row', (SELECT json_build_array(` + threadColumns + `) FROM threads WHERE id = $2))::text AS j)
	SELECT pg_notify('` + noticeChannel + `', CASE WHEN octet_length(withrow.j) <= 7900 THEN withrow.j
		WHEN octet_length(withoffsets.j) <= 7900 THEN withoffsets.j ELSE bare.j END) FROM bare, withoffsets, withrow`

// queueNotice queues the announcement of a change in b, after the change's
// statements; PostgreSQL delivers it when the transaction commits, and
// never if it does not.
func queueNotice(b *pgx.Batch, typ, id string, size int64) {
	queueAppendNotice(b, typ, id, size, nil)
}

// queueAppendNotice is queueNotice of an append whose lines start at
// offsets.
func queueAppendNotice(b *pgx.Batch, typ, id string, size int64, offsets []int64) {
	b.Queue(noticeSQL, typ, id, size, offsets)
}

// Listen calls fn with every change committed to the database, in commit
// order, until ctx ends, on a connection of its own; listening is called
// each time that connection listens (changes committed from then on are
// delivered). When it breaks (the server restarted), changes may be
// missed until it listens again: Listen connects again, waiting up to a
// second between attempts, and once it listens closes the pool's
// connections (likely broken too) and calls lost, then listening. A caller that reads again what it follows when lost is
// called misses nothing: whatever was committed before it read is in what
// it reads, and whatever was committed after is delivered.
//
// The Store's logger hears a warning when a listening connection breaks,
// and once it listens again an info saying how long it did not: one of
// each per outage, whatever the attempts between them.
func (s *Store) Listen(ctx context.Context, fn func(Notice), listening, lost func()) {
	backoff := 10 * time.Millisecond
	broken := false
	var brokeAt time.Time // zero: no break logged since it last listened
	for ctx.Err() == nil {
		listened := false
		err := s.listenOnce(ctx, fn, func() {
			listened = true
			backoff = 10 * time.Millisecond
			if broken {
				// What broke the listening connection (a restart) most
				// likely broke the pooled ones: the re-reads lost asks
				// for get new ones.
				broken = false
				s.pool.Reset()
				lost()
			}
			if !brokeAt.IsZero() {
				s.logger.Info("listening for changes again: follow streams and caches read again what they missed",
					slog.Duration("after", time.Since(brokeAt).Round(time.Millisecond)))
				brokeAt = time.Time{}
			}
			listening()
		})
		if ctx.Err() != nil {
			return
		}
		if listened {
			s.logger.Warn("the connection listening for changes broke: follow streams and caches hear nothing until it listens again",
				slog.Any("err", err))
			brokeAt = time.Now()
		}
		broken = true
		if err != nil {
			t := time.NewTimer(backoff)
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
			backoff = min(2*backoff, time.Second)
		}
	}
}

// listenOnce listens on one connection until it fails; connected is
// called once it listens.
func (s *Store) listenOnce(ctx context.Context, fn func(Notice), connected func()) error {
	if listenRefused != nil {
		if err := listenRefused(); err != nil {
			return err
		}
	}
	conn, err := pgx.ConnectConfig(ctx, s.pool.Config().ConnConfig.Copy())
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, "LISTEN "+noticeChannel); err != nil {
		return err
	}
	connected()
	for {
		n, err := waitForNotification(ctx, conn)
		if err != nil {
			return err
		}
		var notice Notice
		if err := json.Unmarshal([]byte(n.Payload), &notice); err != nil {
			return errors.Join(errors.New("pgstore: malformed notice "+n.Payload), err)
		}
		fn(notice)
	}
}

// waitForNotification returns the next notification conn hears, pinging
// the server each time it hears nothing for listenIdle.
func waitForNotification(ctx context.Context, conn *pgx.Conn) (*pgconn.Notification, error) {
	for {
		idle, cancel := context.WithTimeout(ctx, listenIdle)
		n, err := conn.WaitForNotification(idle)
		cancel()
		if err == nil || ctx.Err() != nil || !errors.Is(idle.Err(), context.DeadlineExceeded) {
			return n, err
		}
		// Heard nothing: a timeout leaves the connection usable, and a
		// notification that comes during the ping waits for the next call.
		ping, cancel := context.WithTimeout(ctx, listenPingWait)
		err = conn.Ping(ping)
		cancel()
		if err != nil {
			return nil, fmt.Errorf("pgstore: the server did not answer a ping within %v: %w", listenPingWait, err)
		}
	}
}

// A listening connection that hears nothing for listenIdle is pinged, and
// one whose ping is not answered within listenPingWait is taken for
// broken: a server gone without closing it (a host powered off, a network
// dropping packets) would leave it waiting for TCP's keepalive to give up,
// which pgx sets to 5 minutes, then nine probes as far apart.
var (
	listenIdle     = 30 * time.Second
	listenPingWait = 10 * time.Second
)

// listenRefused, when set (by tests), is called before each connection
// Listen makes, and an error it returns fails that attempt.
var listenRefused func() error

// AppendOffsets returns where the lines of thread id's history between
// positions from and to start: an append's, when its notice could not
// carry them (Notice.From, Notice.Size). Appended bytes never change but
// for a revert or a rewrite, after which those positions name other bytes:
// with era set, the era of the row the notice carries, a thread no longer
// in it fails with ErrChanged.
func (s *Store) AppendOffsets(ctx context.Context, id string, era *Era, from, to int64) ([]int64, error) {
	rc, _, err := s.openHistory(ctx, id, era, from, to)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	offsets := []int64{from}
	br := bufio.NewReader(rc)
	at := from
	for {
		line, err := br.ReadSlice('\n')
		at += int64(len(line))
		if err == bufio.ErrBufferFull {
			continue // a line longer than the buffer: read on to its end
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		if at < to {
			offsets = append(offsets, at)
		}
	}
	return offsets, nil
}

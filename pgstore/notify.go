package pgstore

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"
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
}

// queueNotice queues the announcement of a change in b; PostgreSQL
// delivers it when the transaction commits, and never if it does not.
func queueNotice(b *pgx.Batch, typ, id string, size int64) {
	payload, _ := json.Marshal(Notice{Type: typ, ThreadID: id, Size: size})
	b.Queue(`SELECT pg_notify('`+noticeChannel+`', $1)`, string(payload))
}

// Listen calls fn with every change committed to the database, in commit
// order, until ctx ends, on a connection of its own; listening is called
// each time that connection listens (changes committed from then on are
// delivered). When it breaks (the server restarted), changes may have been
// missed: Listen calls lost, then connects again, waiting up to a second
// between attempts.
func (s *Store) Listen(ctx context.Context, fn func(Notice), listening, lost func()) {
	backoff := 10 * time.Millisecond
	for ctx.Err() == nil {
		err := s.listenOnce(ctx, fn, func() {
			backoff = 10 * time.Millisecond
			listening()
		})
		if ctx.Err() != nil {
			return
		}
		lost()
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
		n, err := conn.WaitForNotification(ctx)
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

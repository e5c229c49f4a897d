package store

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// checkpointEvery is the shortest time between two checkpoints: what the
// WAL holds beyond the database file is at most this long's writes.
const checkpointEvery = 250 * time.Millisecond

// checkpointer copies the WAL back into the database file from a
// goroutine of its own, on a connection of its own. The writer connection
// does not checkpoint (wal_autocheckpoint(0) in writerDSN): SQLite would
// otherwise run a checkpoint, with its fsyncs, inside the commit that
// crossed the WAL's threshold, and every write waiting on the writer
// (appends acknowledged through the index) would wait for it.
//
// A PASSIVE checkpoint never blocks the writer or readers; what it cannot
// copy yet (frames a reader still needs) waits for the next one.
//
// The first commit after a checkpoint that copied the whole WAL back
// restarts the WAL from its start, and SQLite fsyncs the restarted WAL's
// header before it writes the commit's pages: one fsync more for the first
// append, fork or start after every pause, at every sync policy. After
// such a checkpoint the checkpointer makes that first commit itself
// (restart, on the writer's connection: it waits for the writer and never
// makes the writer wait for a lock), so the next real commit finds the WAL
// restarted.
type checkpointer struct {
	db      *sql.DB
	restart func(context.Context) error // one write on the writer's connection; nil: none
	wrote   chan struct{}               // buffered(1): a write committed since the last checkpoint
	ran     chan struct{}               // buffered(1): a checkpoint finished (tests wait on it)
	stop    chan struct{}               // closed by close
	done    chan struct{}               // closed when the loop has exited
	err     error                       // the last checkpoint's error; read after done
}

// startCheckpointer opens the checkpointer's connection to path and starts
// its loop; close stops it. restart, when not nil, is the write that
// restarts a WAL copied back whole.
func startCheckpointer(ctx context.Context, path string, restart func(context.Context) error) (*checkpointer, error) {
	db, err := sql.Open("sqlite", checkpointDSN(path))
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(1)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, err
	}
	c := &checkpointer{
		db:      db,
		restart: restart,
		wrote:   make(chan struct{}, 1),
		ran:     make(chan struct{}, 1),
		stop:    make(chan struct{}),
		done:    make(chan struct{}),
	}
	go c.loop()
	return c, nil
}

// noted tells the checkpointer that a write committed. It never blocks.
func (c *checkpointer) noted() {
	if c == nil {
		return
	}
	select {
	case c.wrote <- struct{}{}:
	default:
	}
}

func (c *checkpointer) loop() {
	defer close(c.done)
	pause := time.NewTimer(checkpointEvery)
	pause.Stop()
	for {
		select {
		case <-c.stop:
			return
		case <-c.wrote:
		}
		c.err = c.checkpoint()
		select {
		case c.ran <- struct{}{}:
		default:
		}
		pause.Reset(checkpointEvery)
		select {
		case <-c.stop:
			return
		case <-pause.C:
		}
	}
}

// checkpoint copies what it can of the WAL back into the database file
// and, when that was all of it, restarts the WAL.
func (c *checkpointer) checkpoint() error {
	var busy, logFrames, copied int
	err := c.db.QueryRow(`PRAGMA wal_checkpoint(PASSIVE)`).Scan(&busy, &logFrames, &copied)
	if err != nil || c.restart == nil || busy != 0 || logFrames <= 0 || copied != logFrames {
		return err
	}
	return c.restart(context.Background())
}

// close stops the loop, waits for a checkpoint under way, and closes the
// connection; it returns the last checkpoint's error, if it failed (a
// failed checkpoint loses nothing: the WAL keeps the pages). The last
// connection to close checkpoints the rest.
func (c *checkpointer) close() error {
	if c == nil {
		return nil
	}
	close(c.stop)
	<-c.done
	if err := c.db.Close(); err != nil {
		return err
	}
	if c.err != nil {
		return fmt.Errorf("checkpoint: %w", c.err)
	}
	return nil
}

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
type checkpointer struct {
	db    *sql.DB
	wrote chan struct{} // buffered(1): a write committed since the last checkpoint
	ran   chan struct{} // buffered(1): a checkpoint finished (tests wait on it)
	stop  chan struct{} // closed by close
	done  chan struct{} // closed when the loop has exited
	err   error         // the last checkpoint's error; read after done
}

// startCheckpointer opens the checkpointer's connection to path and starts
// its loop; close stops it.
func startCheckpointer(ctx context.Context, path string) (*checkpointer, error) {
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
		db:    db,
		wrote: make(chan struct{}, 1),
		ran:   make(chan struct{}, 1),
		stop:  make(chan struct{}),
		done:  make(chan struct{}),
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
		_, c.err = c.db.Exec(`PRAGMA wal_checkpoint(PASSIVE)`)
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

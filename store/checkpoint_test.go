package store

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"testing"
)

// dbFileSize returns the size of the index's database file (not its WAL):
// it grows only when a checkpoint copies pages into it.
func dbFileSize(t *testing.T, s *Store) int64 {
	t.Helper()
	info, err := os.Stat(s.path)
	if err != nil {
		t.Fatal(err)
	}
	return info.Size()
}

// TestCheckpointOffTheWritePath shows that commits leave the WAL to the
// checkpointer (issue #11: a checkpoint inside the commit of an append's
// index update stalled every append waiting on the writer), and that the
// checkpointer copies it back once writes were noted.
func TestCheckpointOffTheWritePath(t *testing.T) {
	ctx := t.Context()
	s := openTest(t)
	var auto int
	if err := s.writer.GetContext(ctx, &auto, `PRAGMA wal_autocheckpoint`); err != nil {
		t.Fatal(err)
	}
	if auto != 0 {
		t.Fatalf("writer's wal_autocheckpoint = %d, want 0", auto)
	}

	// Without the checkpointer, what the commits do on their own shows.
	if err := s.ckpt.close(); err != nil {
		t.Fatal(err)
	}
	s.ckpt = nil
	before := dbFileSize(t, s)
	const threads = 400
	for i := range threads {
		th := newThread(fmt.Sprintf("t%04d", i), int64(i))
		if err := s.Replace(ctx, []Record{{Thread: th, Messages: messages(0, 3, "some words to index")}}); err != nil {
			t.Fatal(err)
		}
	}
	wal, err := os.Stat(s.path + "-wal")
	if err != nil {
		t.Fatal(err)
	}
	if got := dbFileSize(t, s); got != before || wal.Size() < 1000*4096 {
		t.Fatalf("after %d commits the database file is %d bytes (was %d) and the WAL %d; want it unchanged and the WAL past SQLite's default threshold of 1000 pages",
			threads, got, before, wal.Size())
	}

	// A checkpointer told of a write copies the pages.
	if s.ckpt, err = startCheckpointer(ctx, s.path, nil); err != nil {
		t.Fatal(err)
	}
	s.ckpt.noted()
	select {
	case <-s.ckpt.ran:
	case <-ctx.Done():
		t.Fatal(ctx.Err())
	}
	if s.ckpt.err != nil {
		t.Fatalf("checkpoint: %v", s.ckpt.err)
	}
	if got := dbFileSize(t, s); got <= before {
		t.Fatalf("after the checkpointer ran the database file is %d bytes, was %d; want it grown", got, before)
	}
	if n, err := s.Stats(ctx); err != nil || n.Threads != threads {
		t.Fatalf("Stats = %+v, %v; want %d threads", n, err, threads)
	}
}

// TestCheckpointerStops shows that Close ends the checkpointer's goroutine.
func TestCheckpointerStops(t *testing.T) {
	s, err := Open(t.Context(), t.TempDir()+"/index.db")
	if err != nil {
		t.Fatal(err)
	}
	done := s.ckpt.done
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-done:
	default:
		t.Fatal("checkpointer still running after Close")
	}
}

// TestCheckpointerRestartsWAL: after a checkpoint that copied the whole WAL
// back, the next commit restarts the WAL, and SQLite fsyncs the restarted
// WAL's header inside that commit. With restart the checkpointer makes
// that commit itself, so the next real commit goes on in the same WAL
// (its header, with the checkpoint count and salts, unchanged).
func TestCheckpointerRestartsWAL(t *testing.T) {
	for _, tc := range []struct {
		name      string
		restart   bool
		restarted bool // by the commit after the checkpoint
	}{
		{"without restart the next commit restarts the WAL", false, true},
		{"with restart the next commit does not", true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := t.Context()
			s := openTest(t)
			if err := s.ckpt.close(); err != nil {
				t.Fatal(err)
			}
			s.ckpt = nil
			write := func(id string) {
				t.Helper()
				if err := s.Replace(ctx, []Record{{Thread: newThread(id, 1), Messages: messages(0, 2, "words")}}); err != nil {
					t.Fatal(err)
				}
			}
			write("before")
			var restart func(context.Context) error
			if tc.restart {
				restart = s.restartWAL
			}
			ckpt, err := startCheckpointer(ctx, s.path, restart)
			if err != nil {
				t.Fatal(err)
			}
			ckpt.noted()
			select {
			case <-ckpt.ran:
			case <-ctx.Done():
				t.Fatal(ctx.Err())
			}
			if err := ckpt.close(); err != nil { // no checkpoint after this one
				t.Fatal(err)
			}
			before := walHeader(t, s)
			write("after")
			if restarted := !bytes.Equal(walHeader(t, s), before); restarted != tc.restarted {
				t.Fatalf("the commit after the checkpoint restarted the WAL: %v, want %v", restarted, tc.restarted)
			}
		})
	}
}

// walHeader returns the checkpoint count and the salts of the index's WAL
// header: a restart of the WAL changes them.
func walHeader(t *testing.T, s *Store) []byte {
	t.Helper()
	b, err := os.ReadFile(s.path + "-wal")
	if err != nil {
		t.Fatal(err)
	}
	if len(b) < 32 {
		t.Fatalf("WAL of %d bytes", len(b))
	}
	return b[12:24]
}

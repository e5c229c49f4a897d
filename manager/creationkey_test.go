package manager

import (
	"errors"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/spoolhq/spool/rollout"
	"github.com/spoolhq/spool/store"
)

// TestCreationKeyTakenMeanwhile: when another process records a key
// between the check for it and the insert of a new thread (here: a start
// run from inside the create), the insert fails on the key, its file is
// removed, and the answer is the other's thread.
func TestCreationKeyTakenMeanwhile(t *testing.T) {
	m := openTest(t)
	ctx := t.Context()
	o := StartOptions{Cwd: "/w", IdempotencyKey: "k"}
	key := newCreationKey("", o.IdempotencyKey, o.RequestHash(), m.now())
	var winner, loser store.Thread
	row, replayed, err := m.createOnce(ctx, "start thread", key, func() (store.Thread, error) {
		var err error
		if winner, err = m.startFile(ctx, "019b0000-0000-7000-8000-00000000000a", "sessions/a.jsonl", metaLineFor(t, "019b0000-0000-7000-8000-00000000000a"), nil, m.now(), o, "vscode", rollout.HistoryPaginated, key); err != nil {
			t.Fatal(err)
		}
		loser, err = m.startFile(ctx, "019b0000-0000-7000-8000-00000000000b", "sessions/b.jsonl", metaLineFor(t, "019b0000-0000-7000-8000-00000000000b"), nil, m.now(), o, "vscode", rollout.HistoryPaginated, key)
		return loser, err
	})
	if err != nil || !replayed || row.ID != winner.ID {
		t.Fatalf("createOnce: %s (replayed %v), %v; want %s, replayed", row.ID, replayed, err, winner.ID)
	}
	if _, err := m.fsys.Stat(ctx, "sessions/b.jsonl"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("the losing insert's file: %v, want it removed", err)
	}
	if st, err := m.IndexStats(ctx); err != nil || st.Threads != 1 {
		t.Fatalf("%d threads, %v; want 1", st.Threads, err)
	}
}

// metaLineFor returns the first line of a paginated thread id.
func metaLineFor(t *testing.T, id string) []byte {
	t.Helper()
	ts := rollout.FormatTimestamp(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	line, err := rollout.NewSessionMetaLine(ts, rollout.MetaPayload{SessionMeta: rollout.SessionMeta{ID: id, Timestamp: ts, HistoryMode: rollout.HistoryPaginated}})
	if err == nil {
		line, err = rollout.WithOrdinal(line, 0)
	}
	if err != nil {
		t.Fatal(err)
	}
	return line
}

// TestCreationKeysAcrossRestart: the keys of a start, a reference fork
// and a copy are in the index, and each thread's meta states its key, so
// an index that lost a key learns it again from the file: after a plain
// restart, after a crash between the file and its row's commit (the
// state is the same as the rows deleted: the files indexed anew at the
// next open) and after a rebuild from scratch, a retry answers with the
// thread the first request made, and another request under the key is
// refused. A reverted start keeps its key: the revert's segment states it
// too.
func TestCreationKeysAcrossRestart(t *testing.T) {
	for _, lose := range []string{"nothing", "rows", "index"} {
		t.Run("lost "+lose, func(t *testing.T) {
			ctx := t.Context()
			root := t.TempDir()
			open := opener(t, root)
			m := open()
			start := StartOptions{Cwd: "/w", IdempotencyKey: "s"}
			th, err := m.Start(ctx, start)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := m.Append(ctx, th.ID, []rollout.Item{user("one"), user("two")}); err != nil {
				t.Fatal(err)
			}
			one := 1
			forks := []ForkOptions{
				{BeforeUserMessage: &one, IdempotencyKey: "f"},
				{BeforeUserMessage: &one, IdempotencyKey: "c", Mode: ForkCopy},
			}
			made := []string{th.ID}
			for _, o := range forks {
				f, err := m.Fork(ctx, th.ID, o)
				if err != nil {
					t.Fatal(err)
				}
				made = append(made, f.ID)
			}
			// A revert's segment carries the meta of the file before it.
			if _, err := m.Revert(ctx, th.ID, RevertOptions{BeforeUserMessage: &one}); err != nil {
				t.Fatal(err)
			}
			switch lose {
			case "nothing":
				if err := m.Close(); err != nil {
					t.Fatal(err)
				}
			case "rows":
				for _, id := range made[1:] { // the forks first: they refer to their parent
					if err := m.store.Delete(ctx, id); err != nil {
						t.Fatal(err)
					}
				}
				if err := m.store.Delete(ctx, th.ID); err != nil {
					t.Fatal(err)
				}
				if err := m.Close(); err != nil {
					t.Fatal(err)
				}
			case "index":
				if err := m.Close(); err != nil {
					t.Fatal(err)
				}
				for _, suffix := range []string{"", "-wal", "-shm"} {
					if err := os.Remove(filepath.Join(root, IndexFile+suffix)); err != nil && !errors.Is(err, fs.ErrNotExist) {
						t.Fatal(err)
					}
				}
			}
			m = open()
			defer m.Close()
			if st, err := m.IndexStats(ctx); err != nil || st.Threads != 3 {
				t.Fatalf("reopened: %d threads, %v; want 3", st.Threads, err)
			}
			again, err := m.Start(ctx, start)
			if err != nil || again.ID != th.ID {
				t.Fatalf("start retried: %s, %v; want %s", again.ID, err, th.ID)
			}
			for i, o := range forks {
				f, err := m.Fork(ctx, th.ID, o)
				if err != nil || f.ID != made[i+1] {
					t.Fatalf("fork %q retried: %s, %v; want %s", o.IdempotencyKey, f.ID, err, made[i+1])
				}
				o.Name = "other"
				if _, err := m.Fork(ctx, th.ID, o); !errors.Is(err, ErrIdempotencyKeyReused) {
					t.Fatalf("another fork under key %q: %v, want ErrIdempotencyKeyReused", o.IdempotencyKey, err)
				}
			}
			start.Name = "other"
			if _, err := m.Start(ctx, start); !errors.Is(err, ErrIdempotencyKeyReused) {
				t.Fatalf("another start under the key: %v, want ErrIdempotencyKeyReused", err)
			}
			if st, err := m.IndexStats(ctx); err != nil || st.Threads != 3 {
				t.Fatalf("after the retries: %d threads, %v; want 3", st.Threads, err)
			}
		})
	}
}

// TestCreationKeyOfAPlantedFile: a file that states a key no start could
// have made (one created long after the file's thread, here in the year
// 3000, or one kept for longer than a key is) states none. Of two threads
// stating one key the one whose key expires last takes it, so such a file
// would take the key from the thread a start made with it, for ever: a
// retry of that start would fail as a reuse of the key.
func TestCreationKeyOfAPlantedFile(t *testing.T) {
	const future = int64(32503680000000) // 3000-01-01
	for _, tc := range []struct {
		name             string
		created, expires int64
	}{
		{"created in the year 3000", future, future + 1},
		{"never expiring", 1, math.MaxInt64},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := t.Context()
			root := t.TempDir()
			open := opener(t, root)
			m := open()
			start := StartOptions{Cwd: "/w", IdempotencyKey: "k"}
			th, err := m.Start(ctx, start)
			if err != nil {
				t.Fatal(err)
			}
			if err := m.Close(); err != nil {
				t.Fatal(err)
			}
			now := time.Now()
			planted := uuid.Must(uuid.NewV7()).String()
			meta := rollout.SessionMeta{ID: planted, Timestamp: rollout.FormatTimestamp(now), Cwd: "/elsewhere", Source: "cli",
				CreationKey: &rollout.CreationKey{Key: "k", RequestSHA256: strings.Repeat("ab", 32), CreatedAt: tc.created, ExpiresAt: tc.expires}}
			line, err := rollout.NewSessionMetaLine(meta.Timestamp, rollout.MetaPayload{SessionMeta: meta})
			if err != nil {
				t.Fatal(err)
			}
			rel, err := rollout.SessionPath(rollout.FileName(now, planted))
			if err != nil {
				t.Fatal(err)
			}
			abs := filepath.Join(root, filepath.FromSlash(rel))
			if err := os.MkdirAll(filepath.Dir(abs), 0o700); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(abs, line, 0o600); err != nil {
				t.Fatal(err)
			}
			m = open()
			defer m.Close()
			if _, err := m.Get(ctx, planted); err != nil {
				t.Fatalf("the planted file is not indexed: %v", err)
			}
			again, err := m.Start(ctx, start)
			if err != nil || again.ID != th.ID {
				t.Fatalf("start retried: %s, %v; want %s", again.ID, err, th.ID)
			}
			compareRebuilds(t, m)
		})
	}
}

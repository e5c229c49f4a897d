package manager

import (
	"errors"
	"io/fs"
	"testing"
	"time"

	"github.com/spoolhq/spool/rollout"
	"github.com/spoolhq/spool/store"
)

// TestCreationKeysAcrossRestart: the keys of a start, a reference fork
// and a copy of a paginated thread are in the index: after a restart a
// retry creates nothing and answers with the first thread, and another
// request under a key is still refused.
func TestCreationKeysAcrossRestart(t *testing.T) {
	ctx := t.Context()
	open := opener(t, t.TempDir())
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
	var first []string
	for _, o := range forks {
		f, err := m.Fork(ctx, th.ID, o)
		if err != nil {
			t.Fatal(err)
		}
		first = append(first, f.ID)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	m = open()
	defer m.Close()
	again, err := m.Start(ctx, start)
	if err != nil || again.ID != th.ID {
		t.Fatalf("start after a restart: %s, %v; want %s", again.ID, err, th.ID)
	}
	for i, o := range forks {
		f, err := m.Fork(ctx, th.ID, o)
		if err != nil || f.ID != first[i] {
			t.Fatalf("fork %q after a restart: %s, %v; want %s", o.IdempotencyKey, f.ID, err, first[i])
		}
	}
	start.Name = "other"
	if _, err := m.Start(ctx, start); !errors.Is(err, ErrIdempotencyKeyReused) {
		t.Fatalf("another start under the key: %v, want ErrIdempotencyKeyReused", err)
	}
	if st, err := m.IndexStats(ctx); err != nil || st.Threads != 3 {
		t.Fatalf("%d threads, %v; want 3", st.Threads, err)
	}
}

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
		if winner, err = m.startFile(ctx, "019b0000-0000-7000-8000-00000000000a", "sessions/a.jsonl", metaLineFor(t, "019b0000-0000-7000-8000-00000000000a"), m.now(), o, "vscode", rollout.HistoryPaginated, key); err != nil {
			t.Fatal(err)
		}
		loser, err = m.startFile(ctx, "019b0000-0000-7000-8000-00000000000b", "sessions/b.jsonl", metaLineFor(t, "019b0000-0000-7000-8000-00000000000b"), m.now(), o, "vscode", rollout.HistoryPaginated, key)
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

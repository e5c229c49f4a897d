package manager

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/spoolhq/spool/indexer"
	"github.com/spoolhq/spool/rollout"
	"github.com/spoolhq/spool/rolloutfs"
	"github.com/spoolhq/spool/store"
)

// gatedFS is a local root whose directory listings wait for gate: a
// reconcile walk cannot start until the test opens it.
type gatedFS struct {
	rolloutfs.Local
	gate chan struct{}
}

func (g gatedFS) ReadDir(ctx context.Context, dir string) ([]rolloutfs.DirEntry, error) {
	select {
	case <-g.gate:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return g.Local.ReadDir(ctx, dir)
}

// TestBackgroundOpenServesBeforeReconcile: with Options.Background, Open
// returns and serves lists and threads before the reconcile walk has read
// a directory; a thread another process grew while the manager was down
// is caught up on first use; the walk then indexes the rest.
func TestBackgroundOpenServesBeforeReconcile(t *testing.T) {
	ctx := t.Context()
	root := t.TempDir()
	first, err := Open(ctx, Options{Root: root, Sync: rolloutfs.SyncNone, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	grown := start(t, first, user("before the restart"))
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	codexAppend(t, root, grown.RolloutPath, "while down", "still down")
	newID, _ := codexThread(t, root, time.Now(), "created while down")

	gate := make(chan struct{})
	m, err := Open(ctx, Options{Root: root, Sync: rolloutfs.SyncNone, Logger: quiet, Background: true,
		FS: gatedFS{Local: rolloutfs.Local{Root: root}, gate: gate}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	select {
	case <-m.Reconciled():
		t.Fatal("reconciled although the walk cannot have read a directory")
	default:
	}
	if m.Stats().Reconciled {
		t.Fatal("Stats says reconciled although the walk cannot have read a directory")
	}
	page, err := m.List(ctx, store.ListOptions{Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Threads) != 1 || page.Threads[0].ID != grown.ID {
		t.Fatalf("first page before the walk = %d threads, want the one indexed before", len(page.Threads))
	}
	th, err := m.Resume(ctx, grown.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := th.UserMessageCount, 3; got != want {
		t.Fatalf("user messages on first use = %d, want %d (caught up from the file)", got, want)
	}
	if _, err := m.Append(ctx, grown.ID, []rollout.Item{user("after")}); err != nil {
		t.Fatal(err)
	}

	close(gate)
	<-m.Reconciled()
	if !m.Stats().Reconciled {
		t.Fatal("Stats says not reconciled after the walk ended")
	}
	if _, ok := listed(t, m, newID); !ok {
		t.Fatal("thread created while down not listed after the reconcile")
	}
	verifyClean(t, m)
}

// TestFutureTimestampDoesNotPinThread: an item stamped far in the future
// (a wrong clock, or a forged item) counts as no later than its file's
// mtime plus MaxClockSkew, so the thread does not stay at the top of the
// list; timestamps within the skew are kept as written; and an index
// rebuilt from the files says the same.
func TestFutureTimestampDoesNotPinThread(t *testing.T) {
	tests := []struct {
		name    string
		ahead   time.Duration // how far past now the item claims to be
		bounded bool          // updated_at is the mtime bound, not the item's time
	}{
		{"past", -time.Hour, false},
		{"within skew", 30 * time.Second, false},
		{"an hour ahead", time.Hour, true},
		{"year 2099", time.Until(time.Date(2099, 1, 1, 0, 0, 0, 0, time.UTC)), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := t.Context()
			m := openTest(t)
			th := start(t, m)
			it := user("stamped")
			stamp := time.Now().Add(tt.ahead).UTC().Truncate(time.Millisecond)
			it.Timestamp = rollout.FormatTimestamp(stamp)
			if _, err := m.Append(ctx, th.ID, []rollout.Item{it}); err != nil {
				t.Fatal(err)
			}
			later := start(t, m, user("a later thread"))
			got, err := m.Get(ctx, th.ID)
			if err != nil {
				t.Fatal(err)
			}
			info, err := os.Stat(filepath.Join(m.Root(), got.RolloutPath))
			if err != nil {
				t.Fatal(err)
			}
			bound := time.UnixMilli(info.ModTime().Add(time.Minute).UnixMilli())
			want := stamp
			if th.CreatedAt.After(want) {
				want = th.CreatedAt
			}
			if tt.bounded {
				want = bound
			}
			if !got.UpdatedAt.Equal(want) {
				t.Fatalf("updated_at = %v, want %v (item %v, bound %v)", got.UpdatedAt, want, stamp, bound)
			}
			if tt.bounded {
				// Another thread's later append ranks above it: the item's
				// time no longer outranks everything written after it for
				// longer than the skew.
				res, err := m.Append(ctx, later.ID, []rollout.Item{user("later still")})
				if err != nil {
					t.Fatal(err)
				}
				if got.UpdatedAt.After(res.Thread.UpdatedAt.Add(indexer.MaxClockSkew)) {
					t.Fatalf("updated_at %v is more than the skew past a later append's %v", got.UpdatedAt, res.Thread.UpdatedAt)
				}
			}
			verifyClean(t, m) // the rebuild rule: Verify recomputes updated_at from the files
		})
	}
}

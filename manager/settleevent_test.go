package manager

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/spoolhq/spool/rollout"
	"github.com/spoolhq/spool/rolloutfs"
)

// failAppendOpen is a local FS whose OpenAppend of name fails while fail
// is set.
type failAppendOpen struct {
	rolloutfs.Local
	name string
	fail bool
}

var errInjected = errors.New("injected OpenAppend failure")

func (f *failAppendOpen) OpenAppend(ctx context.Context, name string) (rolloutfs.File, error) {
	if f.fail && name == f.name {
		return nil, errInjected
	}
	return f.Local.OpenAppend(ctx, name)
}

// TestFailedSettleAnnouncesWhatItIndexed: lines another process wrote,
// which an append indexed before it failed (here: reopening the file for
// appending), are announced all the same. Nothing else announces them: the
// index holds them, so the watcher's sync finds no growth.
func TestFailedSettleAnnouncesWhatItIndexed(t *testing.T) {
	ctx := t.Context()
	fsys := &failAppendOpen{}
	m := openTest(t, func(o *Options) {
		fsys.Local = rolloutfs.Local{Root: o.Root}
		o.FS = fsys
	})
	th := start(t, m, user("one"))
	if _, err := m.Resume(ctx, th.ID); err != nil {
		t.Fatal(err)
	}
	sub := m.Subscribe(0)
	defer sub.Close()
	line, err := rollout.EncodeItem(user("written by another process"), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(filepath.Join(m.Root(), filepath.FromSlash(th.RolloutPath)), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(line); err != nil {
		t.Fatal(err)
	}
	f.Close()
	fsys.name, fsys.fail = th.RolloutPath, true
	if _, err := m.Append(ctx, th.ID, []rollout.Item{user("two")}); !errors.Is(err, errInjected) {
		t.Fatalf("append with its file failing to reopen: %v, want the injected error", err)
	}
	fsys.fail = false
	got, err := m.Get(ctx, th.ID)
	if err != nil {
		t.Fatal(err)
	}
	want := th.HistorySize() + int64(len(line))
	if got.HistorySize() != want {
		t.Fatalf("history after the failed append: %d, want %d (the other process's line indexed)", got.HistorySize(), want)
	}
	select {
	case e := <-sub.Events():
		if e.Type != EventAppended || e.ThreadID != th.ID || e.Size != want {
			t.Fatalf("event %s of %s at %d, want appended of %s at %d", e.Type, e.ThreadID, e.Size, th.ID, want)
		}
	default:
		t.Fatalf("no event for the line the failed append indexed")
	}
}

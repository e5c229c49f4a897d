package manager

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/spoolhq/spool/rollout"
)

// TestSlowSubscriberDropped subscribes with room for one event and never
// reads: appends go on regardless, and the subscription ends with
// ErrSlowSubscriber after the one event it could hold.
func TestSlowSubscriberDropped(t *testing.T) {
	m := openTest(t)
	ctx := t.Context()
	th, err := m.Start(ctx, StartOptions{})
	if err != nil {
		t.Fatal(err)
	}
	slow := m.Subscribe(1)
	defer slow.Close()
	keeping := m.Subscribe(10)
	defer keeping.Close()
	for range 3 {
		if _, err := m.Append(ctx, th.ID, []rollout.Item{user("hi")}); err != nil {
			t.Fatalf("append with a stalled subscriber: %v", err)
		}
	}
	var got []Event
	for e := range slow.Events() {
		got = append(got, e)
	}
	if len(got) != 1 || got[0].Type != EventAppended {
		t.Fatalf("slow subscriber got %+v, want the first append only", got)
	}
	if err := slow.Err(); !errors.Is(err, ErrSlowSubscriber) {
		t.Fatalf("Err() = %v, want ErrSlowSubscriber", err)
	}
	// The other subscriber saw all three, numbered without gaps.
	first := got[0].Seq
	for i := range 3 {
		e := <-keeping.Events()
		if e.Seq != first+uint64(i) || e.Type != EventAppended || e.ThreadID != th.ID {
			t.Fatalf("event %d = %+v, want appended seq %d", i, e, first+uint64(i))
		}
	}
}

// TestSubscribed: a bus reports subscribers while a subscription is open,
// and none after it ends, closed or dropped.
func TestSubscribed(t *testing.T) {
	var b Bus
	if b.Subscribed() {
		t.Fatal("Subscribed() = true on a new bus")
	}
	sub := b.Subscribe(1)
	if !b.Subscribed() {
		t.Fatal("Subscribed() = false with a subscription open")
	}
	sub.Close()
	if b.Subscribed() {
		t.Fatal("Subscribed() = true after the subscription closed")
	}
	slow := b.Subscribe(1)
	b.Publish(Event{Type: EventAppended})
	b.Publish(Event{Type: EventAppended}) // its buffer is full: dropped
	if b.Subscribed() {
		t.Fatalf("Subscribed() = true after the slow subscriber was dropped (Err %v)", slow.Err())
	}
}

// TestCloseEndsSubscriptions checks that closing the manager ends every
// subscription with ErrClosed, and that a later one starts ended.
func TestCloseEndsSubscriptions(t *testing.T) {
	m := openTest(t)
	sub := m.Subscribe(0)
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if _, open := <-sub.Events(); open {
		t.Fatal("subscription still open after Close")
	}
	if err := sub.Err(); !errors.Is(err, ErrClosed) {
		t.Fatalf("Err() = %v, want ErrClosed", err)
	}
	late := m.Subscribe(0)
	if _, open := <-late.Events(); open || !errors.Is(late.Err(), ErrClosed) {
		t.Fatalf("subscription after Close: open %v, err %v", open, late.Err())
	}
	sub.Close() // idempotent after the end
	var none *Subscription
	none.Close() // a nil subscription, as a failed setup leaves, closes too
}

// TestAppendedEventSizeResumesRead follows a thread with ReadAfter and
// the events' sizes: the pieces read add up to the file.
func TestAppendedEventSizeResumesRead(t *testing.T) {
	m := openTest(t)
	ctx := t.Context()
	th, err := m.Start(ctx, StartOptions{})
	if err != nil {
		t.Fatal(err)
	}
	sub := m.Subscribe(0)
	defer sub.Close()
	for _, text := range []string{"a", "b"} {
		if _, err := m.Append(ctx, th.ID, []rollout.Item{user(text)}); err != nil {
			t.Fatal(err)
		}
	}
	var followed []byte
	pos := int64(0)
	for range 2 {
		e := <-sub.Events()
		rc, end, err := m.ReadAfter(ctx, th.ID, pos)
		if err != nil {
			t.Fatal(err)
		}
		data, _ := io.ReadAll(rc)
		rc.Close()
		followed = append(followed, data...)
		if end < e.Size {
			t.Fatalf("ReadAfter ended at %d, before the event's size %d", end, e.Size)
		}
		pos = end
	}
	rc, err := m.ReadFrom(ctx, th.ID, -1)
	if err != nil {
		t.Fatal(err)
	}
	whole, _ := io.ReadAll(rc)
	rc.Close()
	if string(followed) != string(whole) {
		t.Fatalf("followed %q, file %q", followed, whole)
	}
	if _, _, err := m.ReadAfter(ctx, th.ID, 1); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("ReadAfter mid-line: %v, want ErrInvalidArgument", err)
	}
}

// TestRefusedAppendAnnouncesWhatItIndexed: an append first indexes what
// another process wrote to the thread's file (complete lines, or a whole
// last record it ends with its newline); when the append is then refused
// (a stale expected size), those lines are announced all the same, so
// followers read them now rather than at the next append.
func TestRefusedAppendAnnouncesWhatItIndexed(t *testing.T) {
	for _, tc := range []struct {
		name    string
		newline bool
	}{{"complete line", true}, {"whole last record without its newline", false}} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := t.Context()
			m := openTest(t, func(o *Options) {
				o.Now = func() time.Time { return time.Now().Add(time.Hour) } // past the torn grace
			})
			th := start(t, m, user("one"))
			sub := m.Subscribe(0)
			defer sub.Close()
			line, err := rollout.EncodeItem(user("written by another process"), time.Now())
			if err != nil {
				t.Fatal(err)
			}
			if !tc.newline {
				line = bytes.TrimSuffix(line, []byte("\n"))
			}
			f, err := os.OpenFile(filepath.Join(m.Root(), filepath.FromSlash(th.RolloutPath)), os.O_WRONLY|os.O_APPEND, 0)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := f.Write(line); err != nil {
				t.Fatal(err)
			}
			f.Close()
			var mismatch *SizeMismatchError
			if _, err := m.AppendWith(ctx, th.ID, []rollout.Item{user("two")}, AppendOptions{ExpectedSize: th.HistorySize()}); !errors.As(err, &mismatch) {
				t.Fatalf("append at the stale size: %v, want a *SizeMismatchError", err)
			}
			want := th.HistorySize() + int64(len(line))
			if !tc.newline {
				want++ // the newline that ended it
			}
			select {
			case e := <-sub.Events():
				if e.Type != EventAppended || e.ThreadID != th.ID || e.Size != want {
					t.Fatalf("event %s of %s at %d, want appended of %s at %d", e.Type, e.ThreadID, e.Size, th.ID, want)
				}
			default:
				t.Fatalf("no event for the lines the refused append indexed (history now %d)", mismatch.Actual)
			}
		})
	}
}

package manager

import (
	"errors"
	"sync"

	"github.com/spoolhq/spool/store"
)

// EventType names what happened to a thread.
type EventType string

// The events the manager publishes, one per successful call (or, for
// EventAppended, per write to a thread's file).
const (
	EventCreated    EventType = "created"    // Start
	EventAppended   EventType = "appended"   // Append, AppendLines, and the line a Rename writes
	EventForked     EventType = "forked"     // Fork; ThreadID is the new thread, Thread.ParentID its parent
	EventRenamed    EventType = "renamed"    // Rename
	EventArchived   EventType = "archived"   // Archive
	EventUnarchived EventType = "unarchived" // Unarchive
	EventDeleted    EventType = "deleted"    // Delete; Thread is nil
	EventReverted   EventType = "reverted"   // Revert, a purge's rewrite of a fork, and a file another program cut or rewrote in place: Thread is the thread laid out anew
)

// Event is one change to the store, as published to subscribers.
type Event struct {
	// Seq numbers the events of one Manager from 1, without gaps; a
	// subscriber that sees a gap was not dropped (it would have been told)
	// but subscribed after the missing events.
	Seq      uint64
	Type     EventType
	ThreadID string
	// Size is the size of the thread's history after the change (a
	// reference fork's base part included, as ReadAfter counts): for
	// EventAppended, the position just past the last appended line.
	Size int64
	// Offsets are where the appended lines start (EventAppended only).
	Offsets []int64
	// Thread is the thread after the change; nil for EventDeleted.
	Thread *Thread
}

// Errors a Subscription ends with (Subscription.Err).
var (
	// ErrSlowSubscriber ends a subscription whose buffer was full when an
	// event was published: publishing never waits for a subscriber.
	ErrSlowSubscriber = errors.New("subscriber too slow: events dropped")

	// ErrEventsLost ends every subscription when the publisher's own
	// source of events broke off (the distributed backend's PostgreSQL
	// connection, until it listens again): events may be missing though no
	// subscriber was slow. A subscriber reads again what it follows and
	// subscribes again, as after ErrSlowSubscriber.
	ErrEventsLost = errors.New("events lost: the source of events broke off")
)

// DefaultSubscriptionBuffer is the buffer of a subscription when Subscribe
// is given a size below 1.
const DefaultSubscriptionBuffer = 256

// Bus fans events out to subscribers. The zero value is ready. Publishing
// never blocks: a subscriber whose buffer is full is dropped. The Manager
// has one; another Backend (pgbackend) uses one to offer Publisher.
type Bus struct {
	mu     sync.Mutex // guards the fields below; publish holds it while sending
	seq    uint64
	subs   map[*Subscription]struct{}
	closed bool
}

// Subscription receives the events published after it was made, in the
// order they were published. Its channel is closed when the subscription
// ends: Close was called, the subscriber fell behind (Err returns
// ErrSlowSubscriber), the publisher lost events at their source
// (ErrEventsLost) or the manager closed (ErrClosed).
type Subscription struct {
	b  *Bus
	ch chan Event

	// err is written under b.mu before ch is closed, so reading it after
	// ch is closed needs no lock.
	err error
}

// Events returns the channel events arrive on; it is closed when the
// subscription ends.
func (s *Subscription) Events() <-chan Event { return s.ch }

// Err says why the subscription ended: nil while it runs or after Close,
// ErrSlowSubscriber, ErrEventsLost or ErrClosed otherwise. Call it once
// Events is closed.
func (s *Subscription) Err() error {
	s.b.mu.Lock()
	defer s.b.mu.Unlock()
	return s.err
}

// Close ends the subscription; it is safe to call more than once,
// concurrently with publishing, and on a nil *Subscription (it does
// nothing).
func (s *Subscription) Close() {
	if s == nil {
		return
	}
	s.b.mu.Lock()
	defer s.b.mu.Unlock()
	s.b.drop(s, nil)
}

// Subscribe returns a subscription to the manager's events with room for
// buffer events (DefaultSubscriptionBuffer when buffer < 1). On a closed
// manager the subscription is already ended with ErrClosed. The caller
// closes it.
func (m *Manager) Subscribe(buffer int) *Subscription { return m.events.Subscribe(buffer) }

// Subscribe returns a subscription to the events published on b after
// this call, with room for buffer events (DefaultSubscriptionBuffer when
// buffer < 1). On a closed bus the subscription is already ended with
// ErrClosed. The caller closes it.
func (b *Bus) Subscribe(buffer int) *Subscription {
	if buffer < 1 {
		buffer = DefaultSubscriptionBuffer
	}
	s := &Subscription{b: b, ch: make(chan Event, buffer)}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		s.err = ErrClosed
		close(s.ch)
		return s
	}
	if b.subs == nil {
		b.subs = map[*Subscription]struct{}{}
	}
	b.subs[s] = struct{}{}
	return s
}

// Publish numbers e and hands it to every subscriber without waiting.
func (b *Bus) Publish(e Event) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return
	}
	b.seq++
	e.Seq = b.seq
	for s := range b.subs {
		select {
		case s.ch <- e:
		default:
			b.drop(s, ErrSlowSubscriber)
		}
	}
}

// drop ends s with err; b.mu must be held.
func (b *Bus) drop(s *Subscription, err error) {
	if _, ok := b.subs[s]; !ok {
		return
	}
	delete(b.subs, s)
	s.err = err
	close(s.ch)
}

// Subscribed reports whether anyone subscribes now, so a publisher can skip
// the work of an event nobody would receive. A change made before the call
// may go unpublished when it reports false: no subscription made after the
// call was promised it (a subscriber reads what it follows after
// subscribing, and sees the change there).
func (b *Bus) Subscribed() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.subs) > 0
}

// Lost ends every subscription with ErrEventsLost: events were lost (a
// publisher's source of events broke off), and each subscriber must read
// again what it follows, as after falling behind.
func (b *Bus) Lost() {
	b.mu.Lock()
	defer b.mu.Unlock()
	for s := range b.subs {
		b.drop(s, ErrEventsLost)
	}
}

// Close ends every subscription with ErrClosed; later publishes are
// ignored and later subscriptions start ended.
func (b *Bus) Close() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.closed = true
	for s := range b.subs {
		b.drop(s, ErrClosed)
	}
}

// publishThread publishes an event of typ about row.
func (m *Manager) publishThread(typ EventType, row store.Thread) {
	t := threadOf(row)
	m.events.Publish(Event{Type: typ, ThreadID: row.ID, Size: row.HistorySize(), Thread: &t})
}

// announceName publishes what a rename of row, a thread just created
// whose file ends in named, its name line, would: the line appended, then
// the rename; nothing for no name (nil). It is called once the row is
// committed, before the creation is announced, so that no subscriber sees
// the thread unnamed.
func (m *Manager) announceName(row store.Thread, named []byte) {
	if named == nil {
		return
	}
	t := threadOf(row)
	at := row.FileSize - int64(len(named))
	m.events.Publish(Event{Type: EventAppended, ThreadID: row.ID, Size: t.HistorySize(), Offsets: historyOffsets(row, []int64{at}), Thread: &t})
	m.publishThread(EventRenamed, row)
}

// announce returns a function that publishes an event of typ about the
// thread a successful call returned, and passes the call's results on.
func (m *Manager) announce(typ EventType) func(store.Thread, error) (store.Thread, error) {
	return func(row store.Thread, err error) (store.Thread, error) {
		if err == nil {
			m.publishThread(typ, row)
		}
		return row, err
	}
}

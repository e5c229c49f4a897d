package pgbackend

import (
	"testing"

	"github.com/spoolhq/spool/pgstore"
)

// TestEventsNumberedWithoutSubscribers: every change a node hears counts
// in the events' numbering, whether anyone listened then or not, so Seq
// numbers the node's events from 1 without gaps, as a local server's do.
func TestEventsNumberedWithoutSubscribers(t *testing.T) {
	var b Backend
	deleted := func(id string) pgstore.Notice { return pgstore.Notice{Type: "deleted", ThreadID: id} }
	b.publish(deleted("a")) // no subscriber
	sub := b.events.Subscribe(4)
	defer sub.Close()
	b.publish(deleted("b"))
	e, ok := <-sub.Events()
	if !ok || e.ThreadID != "b" || e.Seq != 2 {
		t.Fatalf("the event heard with a subscriber: %+v (%v), want b numbered 2", e, ok)
	}
}

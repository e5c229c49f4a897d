package connlimit_test

import (
	"errors"
	"net"
	"testing"
	"time"

	"github.com/spoolhq/spool/internal/connlimit"
)

// TestLimit: a third connection is not accepted while two are open, is
// once one closes, and Full hears of the listener filling and half
// emptying; a closed listener's waiting Accept returns.
func TestLimit(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := connlimit.New(ln, 2)
	fulls := make(chan bool, 8)
	l.Full = func(full bool) { fulls <- full }
	t.Cleanup(func() { l.Close() })
	dial := func() net.Conn {
		t.Helper()
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	accepted := make(chan net.Conn, 4)
	acceptErr := make(chan error, 1)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				acceptErr <- err
				return
			}
			accepted <- c
		}
	}()
	receive := func(what string) net.Conn {
		t.Helper()
		select {
		case c := <-accepted:
			return c
		case <-time.After(10 * time.Second):
			t.Fatalf("%s: not accepted within 10 s", what)
			return nil
		}
	}
	dial()
	dial()
	first := receive("first")
	second := receive("second")
	if full := <-fulls; !full || l.Open() != 2 {
		t.Fatalf("Full(%t) with %d open, want Full(true) with 2", full, l.Open())
	}
	dial() // waits in the kernel's queue
	select {
	case <-accepted:
		t.Fatal("a third connection was accepted while two were open")
	default:
	}
	first.Close()
	first.Close() // a second Close frees nothing more
	third := receive("third, once the first closed")
	if l.Open() != 2 {
		t.Fatalf("%d open, want 2", l.Open())
	}
	second.Close()
	if full := <-fulls; full || l.Open() != 1 {
		t.Fatalf("Full(%t) with %d open, want Full(false) with 1", full, l.Open())
	}
	third.Close()
	dial()
	dial()
	receive("fourth")
	receive("fifth")
	if full := <-fulls; !full {
		t.Fatal("Full(false) again, want Full(true) once full again")
	}
	dial()
	l.Close()
	select {
	case err := <-acceptErr:
		if !errors.Is(err, net.ErrClosed) {
			t.Fatalf("Accept after Close: %v, want net.ErrClosed", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Accept waiting for a free connection did not return on Close")
	}
}

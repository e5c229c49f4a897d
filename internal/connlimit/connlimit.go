// Package connlimit bounds the connections a server holds open, so that
// clients opening thousands of them cannot take the file descriptors its
// storage needs: past the bound a process's every open fails, the rollout
// a request creates among them.
package connlimit

import (
	"net"
	"sync"
)

// Listener is a net.Listener that holds at most a fixed number of accepted
// connections open: Accept waits, without accepting, while that many are
// open (clients wait in the kernel's queue). It calls Full(true) when the
// last free connection is taken, and Full(false) once half of them are
// free again: a server closes its idle connections in between.
type Listener struct {
	net.Listener
	// Full, when set, is told when the listener fills and when half of it
	// is free again. It runs on the goroutine that accepted or closed a
	// connection, and must not accept or close one itself.
	Full func(full bool)

	// slots holds a value per open connection, and one for an Accept
	// under way.
	slots     chan struct{}
	closed    chan struct{} // closed by Close
	closeOnce sync.Once
	mu        sync.Mutex // orders Full's calls
	open      int        // guarded by mu: connections accepted and not closed
	full      bool       // guarded by mu: Full(true) was called last
}

// New returns a Listener over ln that holds at most max connections open.
func New(ln net.Listener, max int) *Listener {
	return &Listener{Listener: ln, slots: make(chan struct{}, max), closed: make(chan struct{})}
}

// Accept waits for a free connection, then accepts one. Once the listener
// is closed, it fails as the listener's Accept does.
func (l *Listener) Accept() (net.Conn, error) {
	select {
	case l.slots <- struct{}{}:
	case <-l.closed:
		return l.Listener.Accept() // fails: the listener is closed
	}
	c, err := l.Listener.Accept()
	if err != nil {
		<-l.slots
		return nil, err
	}
	l.changed(+1)
	return &conn{Conn: c, release: l.release}, nil
}

// Close closes the listener; an Accept waiting for a free connection
// returns.
func (l *Listener) Close() error {
	err := l.Listener.Close()
	l.closeOnce.Do(func() { close(l.closed) })
	return err
}

// Open returns how many accepted connections are open.
func (l *Listener) Open() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.open
}

func (l *Listener) release() {
	l.changed(-1)
	<-l.slots
}

// changed counts a connection opened (+1) or closed (-1), and calls Full
// when the listener has filled, or emptied to half.
func (l *Listener) changed(delta int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.open += delta
	if l.Full == nil {
		return
	}
	switch {
	case !l.full && l.open == cap(l.slots):
		l.full = true
		l.Full(true)
	case l.full && l.open <= cap(l.slots)/2:
		l.full = false
		l.Full(false)
	}
}

// conn releases its slot on its first Close.
type conn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *conn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}

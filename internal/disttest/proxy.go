//go:build distributed

package disttest

import (
	"net"
	"net/url"
	"sync"
	"testing"
)

// Proxy forwards the connections it accepts to a real server (the
// test PostgreSQL or S3 gateway), and can be taken down and brought back
// on the same address: the server looks stopped to what goes through it,
// and to nothing else.
type Proxy struct {
	t      *testing.T
	target string
	addr   string
	mu     sync.Mutex
	ln     net.Listener
	conns  map[net.Conn]bool
	muted  bool // accepted connections are held, never forwarded
	// thawed is closed while bytes flow; Freeze replaces it with an open
	// channel, on which every forwarding waits until Thaw closes it.
	thawed chan struct{}
	wg     sync.WaitGroup
}

// NewProxy starts a proxy to target (host:port), stopped when the test
// ends.
func NewProxy(t *testing.T, target string) *Proxy {
	t.Helper()
	p := &Proxy{t: t, target: target, conns: map[net.Conn]bool{}, thawed: make(chan struct{})}
	close(p.thawed)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p.addr = ln.Addr().String()
	p.serve(ln)
	t.Cleanup(func() { p.Down(); p.wg.Wait() })
	return p
}

// ProxyURL returns rawURL with its host:port replaced by a new proxy's,
// and the proxy.
func ProxyURL(t *testing.T, rawURL string) (string, *Proxy) {
	t.Helper()
	u, err := url.Parse(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	p := NewProxy(t, u.Host)
	u.Host = p.addr
	return u.String(), p
}

func (p *Proxy) serve(ln net.Listener) {
	p.mu.Lock()
	p.ln = ln
	p.mu.Unlock()
	p.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			p.mu.Lock()
			if p.muted {
				p.conns[c] = true
				p.mu.Unlock()
				continue
			}
			p.mu.Unlock()
			s, err := net.Dial("tcp", p.target)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			if p.ln != ln { // Down meanwhile
				p.mu.Unlock()
				c.Close()
				s.Close()
				return
			}
			p.conns[c], p.conns[s] = true, true
			p.mu.Unlock()
			pipe := func(dst, src net.Conn) {
				buf := make([]byte, 32<<10)
				for {
					n, err := src.Read(buf)
					if n > 0 {
						p.mu.Lock()
						thawed := p.thawed
						p.mu.Unlock()
						<-thawed
						if _, err := dst.Write(buf[:n]); err != nil {
							break
						}
					}
					if err != nil {
						break
					}
				}
				dst.Close()
				src.Close()
			}
			p.wg.Go(func() { pipe(s, c) })
			p.wg.Go(func() { pipe(c, s) })
		}
	})
}

// Freeze stops forwarding bytes, in both directions, on the connections
// open and on new ones, and closes none: the server looks frozen (a host
// stopped, a network dropping packets) to what goes through the proxy,
// until Thaw delivers what was held. Down ends it too.
func (p *Proxy) Freeze() {
	p.mu.Lock()
	defer p.mu.Unlock()
	select {
	case <-p.thawed:
		p.thawed = make(chan struct{})
	default: // frozen already
	}
}

// Thaw forwards bytes again, what was held first.
func (p *Proxy) Thaw() {
	p.mu.Lock()
	defer p.mu.Unlock()
	select {
	case <-p.thawed:
	default:
		close(p.thawed)
	}
}

// Down closes the listener and every connection: new connections are
// refused, open ones break.
func (p *Proxy) Down() {
	p.mu.Lock()
	defer p.mu.Unlock()
	select {
	case <-p.thawed:
	default:
		close(p.thawed) // forwardings held by a freeze meet closed connections
	}
	if p.ln != nil {
		p.ln.Close()
		p.ln = nil
	}
	for c := range p.conns {
		c.Close()
	}
	clear(p.conns)
}

// Mute breaks every connection and holds the new ones open without
// forwarding a byte: the server looks hung (a frozen host, a stalled
// network) to what goes through the proxy. Down then Up ends it.
func (p *Proxy) Mute() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.muted = true
	for c := range p.conns {
		c.Close()
	}
	clear(p.conns)
}

// Up listens again on the proxy's address, forwarding what it accepts.
func (p *Proxy) Up() {
	p.t.Helper()
	p.mu.Lock()
	p.muted = false
	p.mu.Unlock()
	ln, err := net.Listen("tcp", p.addr)
	if err != nil {
		p.t.Fatal(err)
	}
	p.serve(ln)
}

package testenv

import (
	"fmt"
	"io"
	"net"
	"sync"
)

// proxy forwards the TCP connections made to its loopback port to target.
// A NATSCluster node is reached only through proxies (its clients through
// one, each other node's routes to it through one of their own), so that
// ClusterNode.Crash can cut every connection of the node at once, as the
// death of its process would, without the node saying goodbye.
type proxy struct {
	port   int
	target string

	mu    sync.Mutex
	l     net.Listener // nil while cut
	conns map[net.Conn]bool
}

// newProxy listens on a free loopback port, forwarding to target.
func newProxy(target string) (*proxy, error) {
	p := &proxy{target: target, conns: map[net.Conn]bool{}}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("proxy to %s: %w", target, err)
	}
	p.port = l.Addr().(*net.TCPAddr).Port
	p.serve(l)
	return p, nil
}

func (p *proxy) addr() string { return fmt.Sprintf("127.0.0.1:%d", p.port) }

// open listens again on the proxy's port after cut. It does nothing while
// listening.
func (p *proxy) open() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.l != nil {
		return nil
	}
	l, err := net.Listen("tcp", p.addr())
	if err != nil {
		return fmt.Errorf("proxy to %s: listen again: %w", p.target, err)
	}
	p.serveLocked(l)
	return nil
}

func (p *proxy) serve(l net.Listener) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.serveLocked(l)
}

func (p *proxy) serveLocked(l net.Listener) {
	p.l = l
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return // closed by cut
			}
			go p.forward(c)
		}
	}()
}

// forward copies between c and a new connection to the target until either
// side closes, then closes both.
func (p *proxy) forward(c net.Conn) {
	t, err := net.Dial("tcp", p.target)
	if err != nil {
		abort(c)
		return
	}
	p.mu.Lock()
	if p.l == nil {
		p.mu.Unlock()
		abort(c)
		abort(t)
		return
	}
	p.conns[c], p.conns[t] = true, true
	p.mu.Unlock()
	done := make(chan struct{}, 2)
	pipe := func(dst, src net.Conn) {
		_, _ = io.Copy(dst, src)
		done <- struct{}{}
	}
	go pipe(t, c)
	go pipe(c, t)
	<-done
	p.mu.Lock()
	delete(p.conns, c)
	delete(p.conns, t)
	p.mu.Unlock()
	_ = c.Close()
	_ = t.Close()
	<-done
}

// cut stops listening and resets every forwarded connection (both of its
// sides): each end sees the connection reset, not a close, and new
// connections are refused until open.
func (p *proxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.l != nil {
		_ = p.l.Close()
		p.l = nil
	}
	for c := range p.conns {
		abort(c)
	}
	clear(p.conns)
}

// close stops the proxy for good.
func (p *proxy) close() { p.cut() }

// abort closes c with a reset instead of an orderly close.
func abort(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = c.Close()
}

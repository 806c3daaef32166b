package echotest

import (
	"io"
	"net"
	"net/netip"
	"sync"
	"testing"
)

// Server is a loopback TCP echo server for tests that can be killed (its
// listener and every connection it accepted closed) and started again on
// the same address.
type Server struct {
	t     testing.TB
	mu    sync.Mutex
	addr  netip.AddrPort
	ln    net.Listener
	conns map[net.Conn]bool
	wg    sync.WaitGroup
}

// NewServer starts a server on a free loopback port; it is killed when
// the test ends.
func NewServer(t testing.TB) *Server {
	t.Helper()
	s := &Server{t: t, addr: netip.MustParseAddrPort("127.0.0.1:0"), conns: map[net.Conn]bool{}}
	s.Start()
	t.Cleanup(s.Kill)
	return s
}

// Addr is the server's address.
func (s *Server) Addr() netip.AddrPort {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addr
}

// Start starts a killed server again, on the same address.
func (s *Server) Start() {
	s.t.Helper()
	s.mu.Lock()
	addr := s.addr
	s.mu.Unlock()
	ln, err := net.Listen("tcp", addr.String())
	if err != nil {
		s.t.Fatal(err)
	}
	s.mu.Lock()
	s.ln = ln
	s.addr = ln.Addr().(*net.TCPAddr).AddrPort()
	s.mu.Unlock()
	s.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.mu.Lock()
			s.conns[c] = true
			s.mu.Unlock()
			s.wg.Go(func() {
				_, _ = io.Copy(c, c)
				c.Close()
				s.mu.Lock()
				delete(s.conns, c)
				s.mu.Unlock()
			})
		}
	})
}

// Kill closes the listener and every connection, and waits for the
// server's goroutines. A second Kill does nothing.
func (s *Server) Kill() {
	s.mu.Lock()
	if s.ln != nil {
		s.ln.Close()
		s.ln = nil
	}
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
}

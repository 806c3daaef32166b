package dns

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/qorbgo/qorb/backend"
	"github.com/qorbgo/qorb/connector/tcp"
	"github.com/qorbgo/qorb/pool"
	"github.com/qorbgo/qorb/resolver"
)

// loopbackServer is a real TCP listener on 127.0.0.1 that accepts and
// holds connections until the test ends.
type loopbackServer struct {
	addr     netip.AddrPort
	mu       sync.Mutex
	accepted int
}

func startLoopbackServer(t *testing.T) *loopbackServer {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &loopbackServer{addr: l.Addr().(*net.TCPAddr).AddrPort()}
	var wg sync.WaitGroup
	var conns []net.Conn
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			s.mu.Lock()
			s.accepted++
			conns = append(conns, c)
			s.mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		l.Close()
		wg.Wait()
		for _, c := range conns {
			c.Close()
		}
	})
	return s
}

func (s *loopbackServer) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.accepted
}

// TestLocalhostThroughSystemResolver: "localhost:PORT" with no DNS servers
// given goes through the real system resolver (/etc/hosts), resolves to
// the loopback address, and a pool over it reaches the server listening
// there. (Before, the resolver asked the name servers of /etc/resolv.conf
// for localhost.'s A and AAAA records and never found the server.)
func TestLocalhostThroughSystemResolver(t *testing.T) {
	srv := startLoopbackServer(t)
	service := fmt.Sprintf("localhost:%d", srv.addr.Port())
	want := backend.Backend{Name: backend.Name("localhost@" + srv.addr.String()), Addr: srv.addr}

	r, err := New(service, nil, Config{})
	if err != nil {
		t.Fatal(err)
	}
	h := newHost(t)
	h.start(r)
	st := wantState(t, h, r, resolver.Resolved)
	if !slices.Contains(h.last(), want) {
		t.Fatalf("backends %v, want %v among them", h.last(), want)
	}
	for _, b := range h.last() {
		if !b.Addr.Addr().IsLoopback() || b.Addr.Port() != srv.addr.Port() {
			t.Errorf("backend %v is not on the loopback at port %d", b, srv.addr.Port())
		}
	}
	if st.LastError != "" || st.Queries != 1 {
		t.Errorf("stats %+v, want one query and no error", st)
	}
	h.stop(r)

	// The same through a pool, as a user writes it: a claim lands on
	// the server listening on 127.0.0.1.
	r, err = New(service, nil, Config{})
	if err != nil {
		t.Fatal(err)
	}
	conn, err := tcp.New(tcp.Config{DialTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	p, err := pool.New(r, conn, pool.Policy{SparesWanted: 1, MaxSlots: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close(context.Background())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	hd, err := p.Claim(ctx)
	if err != nil {
		t.Fatalf("claim: %v (resolver %+v)", err, p.Stats().Resolver)
	}
	if got := hd.Conn().RemoteAddr().String(); got != srv.addr.String() {
		t.Errorf("claimed a connection to %s, want %s", got, srv.addr)
	}
	if hd.Backend() != want {
		t.Errorf("claimed backend %v, want %v", hd.Backend(), want)
	}
	hd.Release()
	for deadline := time.Now().Add(10 * time.Second); srv.count() == 0; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the server accepted no connection")
		}
	}
}

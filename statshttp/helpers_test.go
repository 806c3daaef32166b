package statshttp

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/qorbgo/qorb/backend"
	"github.com/qorbgo/qorb/connector/tcp"
	"github.com/qorbgo/qorb/fsm"
	"github.com/qorbgo/qorb/pool"
	"github.com/qorbgo/qorb/resolver"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// deadline bounds every wait in these tests.
const deadline = 10 * time.Second

// echoServer starts a loopback TCP echo server, stopped at the test's end.
func echoServer(t *testing.T) netip.AddrPort {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	conns := map[net.Conn]bool{}
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns[c] = true
			mu.Unlock()
			wg.Go(func() { _, _ = io.Copy(c, c); c.Close() })
		}
	})
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return ln.Addr().(*net.TCPAddr).AddrPort()
}

// refusedAddr returns a loopback address where nothing listens.
func refusedAddr(t *testing.T) netip.AddrPort {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	a := ln.Addr().(*net.TCPAddr).AddrPort()
	ln.Close()
	return a
}

// transitions is an observer that sends each transition, as text, to a
// buffered channel, dropping them when it is full.
type transitions chan string

func (c transitions) observer() fsm.Observer {
	return fsm.ObserverFunc(func(t fsm.Transition) {
		select {
		case c <- t.Kind() + "[" + t.ID + "] " + t.FromName() + " --" + t.EventName() + "--> " + t.ToName():
		default:
		}
	})
}

// await reads transitions until every one in want (substrings) was seen.
func (c transitions) await(t *testing.T, want ...string) {
	t.Helper()
	timer := time.NewTimer(deadline)
	defer timer.Stop()
	seen := map[string]bool{}
	for len(seen) < len(want) {
		select {
		case tr := <-c:
			for _, w := range want {
				if strings.Contains(tr, w) {
					seen[w] = true
				}
			}
		case <-timer.C:
			t.Fatalf("after %v, saw only %v of the transitions %q", deadline, seen, want)
		}
	}
}

// tcpPool starts a pool of TCP connections over addrs, closed at the
// test's end.
func tcpPool(t *testing.T, pol pool.Policy, addrs []netip.AddrPort, opts ...pool.Option) *pool.Pool[net.Conn] {
	t.Helper()
	conn, err := tcp.New(tcp.Config{DialTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	p, err := pool.New(resolver.NewFixed(addrs...), conn, pol, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { closePool(t, p) })
	return p
}

// session is an in-memory connection, so that pools of two connection
// types are served together.
type session struct{ b backend.Name }

type sessions struct{}

func (sessions) Connect(_ context.Context, b backend.Backend) (*session, error) {
	return &session{b: b.Name}, nil
}
func (sessions) Close(*session) error { return nil }

// memPool starts a pool of in-memory sessions over addrs.
func memPool(t *testing.T, name string, addrs ...netip.AddrPort) *pool.Pool[*session] {
	t.Helper()
	p, err := pool.New(resolver.NewFixed(addrs...), backend.Connector[*session](sessions{}),
		pool.Policy{MaxSlots: 2, SparesWanted: 1}, pool.WithName(name))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { closePool(t, p) })
	return p
}

func closePool[C any](t *testing.T, p *pool.Pool[C]) {
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	if err := p.Close(ctx); err != nil {
		t.Errorf("close: %v", err)
	}
}

// event is one server-sent event.
type event struct{ id, name, data string }

// readEvent reads the next event from r.
func readEvent(r *bufio.Reader) (event, error) {
	var ev event
	for range 100 { // an event has three lines; bound the loop all the same
		line, err := r.ReadString('\n')
		if err != nil {
			return ev, err
		}
		line = strings.TrimSuffix(line, "\n")
		if line == "" {
			return ev, nil
		}
		k, v, _ := strings.Cut(line, ": ")
		switch k {
		case "id":
			ev.id = v
		case "event":
			ev.name = v
		case "data":
			ev.data = v
		}
	}
	return ev, io.ErrUnexpectedEOF
}

// serve serves h on a loopback test server. At the test's end it closes
// h first, so that a stream still running ends, then the server.
func serve(t *testing.T, h *Handler) *httptest.Server {
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	t.Cleanup(h.Close)
	return srv
}

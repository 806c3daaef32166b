// Package pooltest is the test environment shared by the metrics packages:
// a pool on a mock clock and a loop of its own, over an in-memory connector
// whose connects can be held or refused.
package pooltest

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/benbjohnson/clock"

	"github.com/qorbgo/qorb/backend"
	"github.com/qorbgo/qorb/fsm"
	"github.com/qorbgo/qorb/internal/simhook"
	"github.com/qorbgo/qorb/pool"
	"github.com/qorbgo/qorb/resolver"
)

// Conn is a connection of the test connector.
type Conn struct{ B backend.Backend }

// Connector opens connections in memory. Connects to the backends in fail
// fail at once with errRefused. While held, connects to the others block
// until released, so that the test can move the clock while they run.
type Connector struct {
	Fail    map[netip.AddrPort]bool
	mu      sync.Mutex
	gate    chan struct{}
	blocked int
}

var ErrRefused = errors.New("connection refused")

// Connect implements backend.Connector.
func (c *Connector) Connect(ctx context.Context, b backend.Backend) (*Conn, error) {
	if c.Fail[b.Addr] {
		return nil, ErrRefused
	}
	c.mu.Lock()
	gate := c.gate
	if gate != nil {
		c.blocked++
	}
	c.mu.Unlock()
	if gate != nil {
		select {
		case <-gate:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return &Conn{B: b}, nil
}

// Close implements backend.Connector.
func (c *Connector) Close(*Conn) error { return nil }

// Hold makes the next connects block until release.
func (c *Connector) Hold() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gate, c.blocked = make(chan struct{}), 0
}

// Release lets the blocked connects return.
func (c *Connector) Release() {
	c.mu.Lock()
	defer c.mu.Unlock()
	close(c.gate)
	c.gate = nil
}

// WaitBlocked yields until n connects are blocked.
func (c *Connector) WaitBlocked(t *testing.T, n int) {
	t.Helper()
	WaitFor(t, "blocked connects", func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.blocked >= n
	})
}

// WaitFor yields until cond holds; it never sleeps.
func WaitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for i := 0; !cond(); i++ {
		if i > 5_000_000 {
			t.Fatalf("never reached: %s", what)
		}
		runtime.Gosched()
	}
}

// Good and Bad are the addresses of a backend that connects and of one
// that refuses. They are only names: the Connector opens its connections
// in memory and never dials, so no socket is opened on them and tests of
// two checkouts running at once do not meet there (the metrics tests'
// expected outputs show them as backend labels).
var (
	Good = netip.MustParseAddrPort("127.0.0.1:5432")
	Bad  = netip.MustParseAddrPort("127.0.0.1:5433")
)

// Env is a pool named "orders" on a mock clock over a good and a failing
// backend, on a loop of the test's own, so that the test can run it to
// quiescence.
type Env struct {
	T    *testing.T
	Clk  *clock.Mock
	Loop *fsm.Loop
	Conn *Connector
	P    *pool.Pool[*Conn]
}

// NewEnv makes a pool with the tracer tr and policy pol over the backends
// at addrs (Bad refuses every connect); the first connects are held.
func NewEnv(t *testing.T, tr pool.Tracer, pol pool.Policy, addrs ...netip.AddrPort) *Env {
	t.Helper()
	e := &Env{T: t, Clk: clock.NewMock(), Conn: &Connector{Fail: map[netip.AddrPort]bool{Bad: true}}}
	e.Loop = fsm.NewLoop(fsm.Config{Clock: e.Clk, Seed: 1, Strict: true})
	e.Conn.Hold()
	p, err := pool.New(resolver.NewFixed(addrs...), backend.Connector[*Conn](e.Conn), pol,
		simhook.WithLoop(e.Loop).(pool.Option), pool.WithName("orders"), pool.WithTracer(tr))
	if err != nil {
		t.Fatal(err)
	}
	e.P = p
	t.Cleanup(func() {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		_ = p.Close(ctx)
		e.Loop.WaitIdle()
	})
	return e
}

// Settle runs the pool to quiescence at the current time: every I/O
// completion has run and no timer is due.
func (e *Env) Settle() {
	for {
		e.Loop.WaitIdle()
		e.Loop.Enter()
		n := e.Loop.RunDue()
		idle := e.Loop.InFlight() == 0
		e.Loop.Leave()
		if n == 0 && idle {
			return
		}
	}
}

// Advance moves the clock by d, stopping at every deadline on the way so
// that timers fire at their own times. No connect may be held.
func (e *Env) Advance(d time.Duration) {
	end := e.Clk.Now().Add(d)
	for {
		e.Settle()
		e.Loop.Enter()
		next, ok := e.Loop.NextDeadline()
		e.Loop.Leave()
		if !ok || next.After(end) {
			break
		}
		if next.After(e.Clk.Now()) {
			e.Clk.Set(next)
		}
	}
	e.Clk.Set(end)
	e.Settle()
}

// ConnectHeld lets n held connects take d: it waits for them, moves the
// clock by d while they run, releases them and settles.
func (e *Env) ConnectHeld(n int, d time.Duration) {
	e.Conn.WaitBlocked(e.T, n)
	e.Clk.Set(e.Clk.Now().Add(d))
	e.Conn.Release()
	e.Settle()
}

// Claim claims, failing the test on an error.
func (e *Env) Claim() *pool.Handle[*Conn] {
	e.T.Helper()
	h, err := e.P.Claim(context.Background())
	if err != nil {
		e.T.Fatalf("claim: %v", err)
	}
	return h
}

// ClaimResult is what a claim in another goroutine returned.
type ClaimResult struct {
	H   *pool.Handle[*Conn]
	Err error
}

// ClaimAsync claims in a goroutine and waits until the claim is queued.
func (e *Env) ClaimAsync(waiters int) <-chan ClaimResult {
	e.T.Helper()
	ch := make(chan ClaimResult, 1)
	go func() {
		h, err := e.P.Claim(context.Background())
		ch <- ClaimResult{h, err}
	}()
	WaitFor(e.T, "a waiting claim", func() bool { return e.P.Stats().Waiters == waiters })
	return ch
}

// PGServer returns the first PostgreSQL server of QORB_PG_SERVERS (as
// contrib/pg's tests and .ci/pg-servers.sh start print it), and skips the
// test when it is not set. A server that is not on a loopback address is a
// mistake, and fails the test.
func PGServer(t testing.TB) netip.AddrPort {
	t.Helper()
	list := os.Getenv("QORB_PG_SERVERS")
	if list == "" {
		t.Skip("QORB_PG_SERVERS is not set; export what .ci/pg-servers.sh start prints")
	}
	addr, err := netip.ParseAddrPort(strings.Split(list, ",")[0])
	if err != nil || !addr.Addr().IsLoopback() {
		t.Fatalf("QORB_PG_SERVERS=%q: want loopback addresses (%v)", list, err)
	}
	return addr
}

// ClosedPort returns a loopback address where nothing listens: connects
// to it are refused at once.
func ClosedPort(t testing.TB) netip.AddrPort {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().(*net.TCPAddr).AddrPort()
	ln.Close()
	return addr
}

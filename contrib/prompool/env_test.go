package prompool_test

import (
	"context"
	"errors"
	"net/netip"
	"runtime"
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

// conn is a connection of the test connector.
type conn struct{ b backend.Backend }

// connector opens connections in memory. Connects to the backends in fail
// fail at once with errRefused. While held, connects to the others block
// until released, so that the test can move the clock while they run.
type connector struct {
	fail    map[netip.AddrPort]bool
	mu      sync.Mutex
	gate    chan struct{}
	blocked int
}

var errRefused = errors.New("connection refused")

func (c *connector) Connect(ctx context.Context, b backend.Backend) (*conn, error) {
	if c.fail[b.Addr] {
		return nil, errRefused
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
	return &conn{b: b}, nil
}

func (c *connector) Close(*conn) error { return nil }

// hold makes the next connects block until release.
func (c *connector) hold() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gate, c.blocked = make(chan struct{}), 0
}

// release lets the blocked connects return.
func (c *connector) release() {
	c.mu.Lock()
	defer c.mu.Unlock()
	close(c.gate)
	c.gate = nil
}

// waitBlocked yields until n connects are blocked.
func (c *connector) waitBlocked(t *testing.T, n int) {
	t.Helper()
	waitFor(t, "blocked connects", func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.blocked >= n
	})
}

// waitFor yields until cond holds; it never sleeps.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for i := 0; !cond(); i++ {
		if i > 5_000_000 {
			t.Fatalf("never reached: %s", what)
		}
		runtime.Gosched()
	}
}

var (
	good = netip.MustParseAddrPort("127.0.0.1:5432")
	bad  = netip.MustParseAddrPort("127.0.0.1:5433")
)

// testPolicy: three slots for two backends, so that the failing backend's
// probe slot and two slots of the good one fill the pool; a backend is
// dead after its first failure, and retries only after an hour, so that
// in a test's few seconds it connects exactly once.
var testPolicy = pool.Policy{MaxSlots: 3, SparesWanted: 1, ClaimTimeout: time.Second, DeadAfter: 1,
	BackoffMin: time.Hour, BackoffMax: time.Hour}

// env is a pool named "orders" on a mock clock over a good and a failing
// backend, on a loop of the test's own, so that the test can run it to
// quiescence.
type env struct {
	t    *testing.T
	clk  *clock.Mock
	loop *fsm.Loop
	conn *connector
	p    *pool.Pool[*conn]
}

// newEnv makes the pool with the tracer tr; the good backend's first
// connect is held.
func newEnv(t *testing.T, tr pool.Tracer) *env {
	t.Helper()
	return newEnvWith(t, tr, testPolicy, good, bad)
}

// newEnvWith makes a pool with policy pol over the backends at addrs.
func newEnvWith(t *testing.T, tr pool.Tracer, pol pool.Policy, addrs ...netip.AddrPort) *env {
	t.Helper()
	e := &env{t: t, clk: clock.NewMock(), conn: &connector{fail: map[netip.AddrPort]bool{bad: true}}}
	e.loop = fsm.NewLoop(fsm.Config{Clock: e.clk, Seed: 1, Strict: true})
	e.conn.hold()
	p, err := pool.New(resolver.NewFixed(addrs...), backend.Connector[*conn](e.conn), pol,
		simhook.WithLoop(e.loop).(pool.Option), pool.WithName("orders"), pool.WithTracer(tr))
	if err != nil {
		t.Fatal(err)
	}
	e.p = p
	t.Cleanup(func() {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		_ = p.Close(ctx)
		e.loop.WaitIdle()
	})
	return e
}

// settle runs the pool to quiescence at the current time: every I/O
// completion has run and no timer is due.
func (e *env) settle() {
	for {
		e.loop.WaitIdle()
		e.loop.Enter()
		n := e.loop.RunDue()
		idle := e.loop.InFlight() == 0
		e.loop.Leave()
		if n == 0 && idle {
			return
		}
	}
}

// advance moves the clock by d, stopping at every deadline on the way so
// that timers fire at their own times. No connect may be held.
func (e *env) advance(d time.Duration) {
	end := e.clk.Now().Add(d)
	for {
		e.settle()
		e.loop.Enter()
		next, ok := e.loop.NextDeadline()
		e.loop.Leave()
		if !ok || next.After(end) {
			break
		}
		if next.After(e.clk.Now()) {
			e.clk.Set(next)
		}
	}
	e.clk.Set(end)
	e.settle()
}

// connectHeld lets n held connects take d: it waits for them, moves the
// clock by d while they run, releases them and settles.
func (e *env) connectHeld(n int, d time.Duration) {
	e.conn.waitBlocked(e.t, n)
	e.clk.Set(e.clk.Now().Add(d))
	e.conn.release()
	e.settle()
}

func (e *env) claim() *pool.Handle[*conn] {
	e.t.Helper()
	h, err := e.p.Claim(context.Background())
	if err != nil {
		e.t.Fatalf("claim: %v", err)
	}
	return h
}

// claimResult is what a claim in another goroutine returned.
type claimResult struct {
	h   *pool.Handle[*conn]
	err error
}

// claimAsync claims in a goroutine and waits until the claim is queued.
func (e *env) claimAsync(waiters int) <-chan claimResult {
	e.t.Helper()
	ch := make(chan claimResult, 1)
	go func() {
		h, err := e.p.Claim(context.Background())
		ch <- claimResult{h, err}
	}()
	waitFor(e.t, "a waiting claim", func() bool { return e.p.Stats().Waiters == waiters })
	return ch
}

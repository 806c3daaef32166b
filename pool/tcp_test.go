package pool_test

// Real TCP on loopback: the pool over three echo servers, with the
// connector of connector/tcp. These tests use the real clock; every wait
// is bounded by a context or a timeout, and none sleeps.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/benbjohnson/clock"

	"github.com/qorbgo/qorb/backend"
	"github.com/qorbgo/qorb/connector/tcp"
	"github.com/qorbgo/qorb/fsm"
	"github.com/qorbgo/qorb/internal/echotest"
	"github.com/qorbgo/qorb/pool"
	"github.com/qorbgo/qorb/resolver"
	"github.com/qorbgo/qorb/slot"
	"github.com/qorbgo/qorb/slotset"
)

// connGauge counts connections open now and the most ever open at once.
type connGauge struct {
	open, peak atomic.Int64
}

func (g *connGauge) inc() {
	n := g.open.Add(1)
	for {
		p := g.peak.Load()
		if n <= p || g.peak.CompareAndSwap(p, n) {
			return
		}
	}
}

func (g *connGauge) dec() { g.open.Add(-1) }

// gauged wraps the TCP connector (with a Validate) and counts, on the
// client side, the connections open or opening: from the start of Connect
// until Connect fails or Close returns. That is the count MaxSlots bounds.
// (A server counts a connection until it reads the client's FIN, which
// can come a little after Close returned, so the servers' own peak may
// briefly pass the cap while the pool's does not.)
type gauged struct {
	inner backend.Connector[net.Conn]
	g     *connGauge
}

func (c gauged) Connect(ctx context.Context, b backend.Backend) (net.Conn, error) {
	c.g.inc()
	conn, err := c.inner.Connect(ctx, b)
	if err != nil {
		c.g.dec()
	}
	return conn, err
}

func (c gauged) Close(conn net.Conn) error {
	err := c.inner.Close(conn)
	c.g.dec()
	return err
}

func (c gauged) Validate(ctx context.Context, conn net.Conn) error {
	return c.inner.(backend.Validator[net.Conn]).Validate(ctx, conn)
}

// echoServer is a loopback TCP echo server that counts its connections,
// in a gauge of its own and in one shared by all the servers of a test.
//
// A connection counts as open from Accept until the server is done with
// it: its handler saw EOF (or an error) from the client, or kill closed it.
type echoServer struct {
	t        *testing.T
	ln       net.Listener
	addr     netip.AddrPort
	all      *connGauge
	own      connGauge
	accepted atomic.Int64
	wg       sync.WaitGroup // the accept loop and every handler

	mu     sync.Mutex
	conns  map[net.Conn]bool // open, not yet uncounted
	killed bool
}

func startEchoServer(t *testing.T, all *connGauge) *echoServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &echoServer{t: t, ln: ln, addr: ln.Addr().(*net.TCPAddr).AddrPort(), all: all, conns: map[net.Conn]bool{}}
	s.wg.Go(s.acceptLoop)
	t.Cleanup(s.kill) // after a failure: nothing is left running
	return s
}

func (s *echoServer) acceptLoop() {
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return // the listener is closed
		}
		s.mu.Lock()
		if s.killed {
			s.mu.Unlock()
			c.Close()
			continue
		}
		s.conns[c] = true
		s.own.inc()
		s.all.inc()
		s.accepted.Add(1)
		s.mu.Unlock()
		s.wg.Go(func() {
			_, _ = io.Copy(c, c) // returns at EOF, or when kill closes c
			s.uncount(c)
			c.Close()
		})
	}
}

// uncount takes c out of the gauges, once.
func (s *echoServer) uncount(c net.Conn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.conns[c] {
		delete(s.conns, c)
		s.own.dec()
		s.all.dec()
	}
}

// kill stops the server as a crash would: the listener closes (new
// connects are refused) and every accepted connection is closed. The
// connections leave the gauges before kill returns, and kill waits for
// every handler.
func (s *echoServer) kill() {
	s.ln.Close()
	s.mu.Lock()
	s.killed = true
	for c := range s.conns {
		delete(s.conns, c)
		s.own.dec()
		s.all.dec()
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
}

// waitClientsGone closes the listener and waits until the handler of every
// connection the server accepted has seen the client close its end. It
// fails the test after timeout, with the connections still open.
func (s *echoServer) waitClientsGone(timeout time.Duration) {
	s.t.Helper()
	s.ln.Close()
	done := make(chan struct{})
	go func() {
		s.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(timeout):
		s.t.Errorf("server %s: %d connections still open %v after the pool closed", s.addr, s.own.open.Load(), timeout)
		s.kill() // unblocks the waiter above
		<-done
	}
}

func (s *echoServer) backendName() backend.Name { return backend.FromAddr(s.addr).Name }

// setWatch signals when a watched backend's slot set goes down (online to
// offline). It is a pool observer: it runs on the loop and only closes a
// channel.
type setWatch struct {
	mu      sync.Mutex
	watched map[string]chan struct{}
}

func (w *setWatch) Observe(tr fsm.Transition) {
	if st, ok := slotset.Kind.Step(tr); !ok || st.Created || st.Event != slotset.Down {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if ch, ok := w.watched[tr.ID]; ok {
		delete(w.watched, tr.ID)
		close(ch)
	}
}

// down returns a channel closed at the next time the set of b goes down.
func (w *setWatch) down(b backend.Name) <-chan struct{} {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.watched == nil {
		w.watched = map[string]chan struct{}{}
	}
	ch := make(chan struct{})
	w.watched[string(b)] = ch
	return ch
}

// echoLoad is the workload of TestTCPEchoServers: workers claim, echo a
// message and release; on an I/O error they discard the handle and try
// again with a new claim.
type echoLoad struct {
	t           *testing.T
	p           *pool.Pool[net.Conn]
	ctx         context.Context
	ioTimeout   time.Duration
	maxAttempts int

	ok           atomic.Int64 // round trips echoed
	ioErrors     atomic.Int64 // round trips that failed (handle discarded)
	failedClaims atomic.Int64
	byBackend    map[backend.Name]*atomic.Int64 // round trips echoed, per backend (read-only map)

	firstErr     sync.Once
	err          error
	onOK         func(n int64) // called after each echoed round trip with the running count
	forbidIOErrs bool
	forbidden    backend.Name // a backend that must not serve any claim
}

func (l *echoLoad) fail(err error) {
	l.firstErr.Do(func() { l.err = err })
}

// run starts workers × iterations round trips and waits for them.
func (l *echoLoad) run(phase string, workers, iterations int) {
	l.t.Helper()
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() { l.worker(phase, w, iterations) })
	}
	wg.Wait()
	if l.err != nil {
		l.t.Fatalf("%s: %v", phase, l.err)
	}
}

func (l *echoLoad) worker(phase string, w, iterations int) {
	for i := range iterations {
		for attempt := 0; ; attempt++ {
			if attempt == l.maxAttempts {
				l.fail(fmt.Errorf("worker %d iteration %d: %d attempts failed", w, i, attempt))
				return
			}
			h, err := l.p.Claim(l.ctx)
			if err != nil {
				l.failedClaims.Add(1)
				l.fail(fmt.Errorf("worker %d iteration %d: claim: %w", w, i, err))
				return
			}
			b := h.Backend().Name
			if b == l.forbidden {
				l.fail(fmt.Errorf("worker %d iteration %d: claim served by %s, which is down", w, i, b))
			}
			msg := fmt.Appendf(nil, "%s w%02d i%03d a%02d|", phase, w, i, attempt)
			if err := echotest.RoundTrip(h.Conn(), msg, l.ioTimeout); err != nil {
				h.Discard(err)
				l.ioErrors.Add(1)
				if l.forbidIOErrs {
					l.fail(fmt.Errorf("worker %d iteration %d: echo through %s: %w", w, i, b, err))
					return
				}
				continue
			}
			h.Release()
			l.byBackend[b].Add(1)
			if n := l.ok.Add(1); l.onOK != nil {
				l.onOK(n)
			}
			break
		}
	}
}

// TestTCPEchoServers runs the pool over three loopback echo servers with
// many goroutines claiming, writing and reading. It checks that the
// servers together never see more than MaxSlots connections at once; that
// killing the busiest server in the middle of the load moves all traffic
// to the other two with no failed claim; and that after Close every server
// has seen every connection closed.
func TestTCPEchoServers(t *testing.T) {
	const (
		maxSlots   = 8
		workers    = 32
		iterations = 24
	)
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()

	var all connGauge
	servers := []*echoServer{startEchoServer(t, &all), startEchoServer(t, &all), startEchoServer(t, &all)}
	addrs := make([]netip.AddrPort, len(servers))
	byBackend := map[backend.Name]*atomic.Int64{}
	for i, s := range servers {
		addrs[i] = s.addr
		byBackend[s.backendName()] = new(atomic.Int64)
	}

	inner, err := tcp.New(tcp.Config{DialTimeout: 2 * time.Second, Validate: echotest.Check})
	var client connGauge
	conn := gauged{inner, &client}
	if err != nil {
		t.Fatal(err)
	}
	var watch setWatch
	p, err := pool.New(resolver.NewFixed(addrs...), conn, pool.Policy{
		MaxSlots:           maxSlots,
		MaxSlotsPerBackend: maxSlots,
		SparesWanted:       maxSlots,
		ClaimTimeout:       5 * time.Second,
		ConnectTimeout:     2 * time.Second,
		HealthInterval:     100 * time.Millisecond, // finds the killed server's idle connections soon
		HealthTimeout:      2 * time.Second,
		// A discarded connection is closed off the loop while its slot
		// backs off; the backoff gives the server time to see it closed
		// before the slot reconnects (see TestTCPCapHoldsWhileAConnectionCloses).
		BackoffMin: 50 * time.Millisecond,
		BackoffMax: 200 * time.Millisecond,
	}, pool.WithObserver(&watch), pool.WithName("tcp"), pool.WithStrict(true))
	if err != nil {
		t.Fatal(err)
	}
	closed := false
	defer func() {
		if !closed {
			_ = p.Close(context.Background())
		}
	}()

	load := &echoLoad{t: t, p: p, ctx: ctx, ioTimeout: 2 * time.Second, maxAttempts: 50, byBackend: byBackend}

	// Phase 1: all three up; the busiest server is killed a third of the
	// way through, while the workers run.
	killAt := int64(workers * iterations / 3)
	third := make(chan struct{})
	load.onOK = func(n int64) {
		if n == killAt {
			close(third)
		}
	}
	var victim *echoServer
	var victimDown <-chan struct{}
	killed := make(chan struct{})
	go func() {
		defer close(killed)
		select {
		case <-third:
		case <-ctx.Done():
			return
		}
		victim = servers[0]
		for _, s := range servers[1:] {
			if s.own.open.Load() > victim.own.open.Load() {
				victim = s
			}
		}
		victimDown = watch.down(victim.backendName())
		victim.kill()
	}()
	load.run("one", workers, iterations)
	<-killed
	if victim == nil {
		t.Fatal("the load ended before a third of it was done")
	}
	if victim.accepted.Load() == 0 {
		t.Fatalf("the killed server %s never had a connection: the kill proved nothing", victim.addr)
	}
	t.Logf("killed %s after %d round trips; %d I/O errors so far", victim.addr, killAt, load.ioErrors.Load())

	// The pool notices: the killed server's set goes offline, with no
	// connection left.
	select {
	case <-victimDown:
	case <-ctx.Done():
		t.Fatalf("the killed server's set never went offline: %+v", p.Stats().Backends)
	}

	// Phase 2: all traffic goes to the other two, and none of it fails.
	load.onOK = nil
	load.forbidden = victim.backendName()
	load.forbidIOErrs = true
	before := map[backend.Name]int64{}
	for n, c := range byBackend {
		before[n] = c.Load()
	}
	load.run("two", workers, iterations/2)

	st := p.Stats()
	for _, s := range servers {
		n := s.backendName()
		served := byBackend[n].Load() - before[n]
		t.Logf("%s: accepted %d connections, peak %d open, served %d round trips after the kill", s.addr, s.accepted.Load(), s.own.peak.Load(), served)
		if s == victim && served != 0 {
			t.Errorf("killed server %s served %d round trips", s.addr, served)
		}
	}
	if got := load.failedClaims.Load(); got != 0 {
		t.Errorf("%d claims failed", got)
	}
	if ce := st.ClaimErrors; ce != (pool.ClaimErrors{}) {
		t.Errorf("claim errors in Stats: %+v", ce)
	}
	if want := load.ok.Load() + load.ioErrors.Load(); st.Claims != uint64(want) {
		t.Errorf("Stats.Claims %d, want %d (echoed %d + discarded %d)", st.Claims, want, load.ok.Load(), load.ioErrors.Load())
	}
	if st.Discards != uint64(load.ioErrors.Load()) {
		t.Errorf("Stats.Discards %d, want %d", st.Discards, load.ioErrors.Load())
	}
	if st.Slots.Total > maxSlots {
		t.Errorf("%d slots, above MaxSlots %d", st.Slots.Total, maxSlots)
	}
	for _, b := range st.Backends {
		live := b.Slots.Connected + b.Slots.Claimed + b.Slots.Recycling + b.Slots.Checking
		switch {
		case b.Name == string(victim.backendName()):
			if b.State != slotset.Offline.String() || live != 0 || b.Slots.Total > 1 {
				t.Errorf("killed backend %s: state %s, %d slots with a connection, %d in all; want offline with at most a probe slot", b.Name, b.State, live, b.Slots.Total)
			}
		case b.State != slotset.Online.String():
			t.Errorf("backend %s is %s, want online", b.Name, b.State)
		}
	}

	// Close: every server sees each of its connections closed.
	closeCtx, cancelClose := context.WithTimeout(ctx, 5*time.Second)
	defer cancelClose()
	if err := p.Close(closeCtx); err != nil {
		t.Fatalf("close: %v", err)
	}
	closed = true
	for _, s := range servers {
		s.waitClientsGone(5 * time.Second)
		if n := s.own.open.Load(); n != 0 {
			t.Errorf("server %s: %d connections open after Close", s.addr, n)
		}
	}
	if n := all.open.Load(); n != 0 {
		t.Errorf("%d connections open after Close", n)
	}
	if peak := client.peak.Load(); peak > maxSlots || peak == 0 {
		t.Errorf("the pool had %d connections open or opening at once; the cap is MaxSlots %d", peak, maxSlots)
	} else {
		t.Logf("peak %d connections open or opening at once (MaxSlots %d); the servers saw at most %d", peak, maxSlots, all.peak.Load())
	}
}

// TestTCPCapCountsOpeningConnections holds every new connection but the
// first in its first check, so that the pool sits at its cap with most
// slots still connecting while claims queue. The servers, which see a
// connection as soon as it is dialled, never see more than MaxSlots; the
// queued claims are served meanwhile by the one connection that is up, and
// the rest once the checks end.
func TestTCPCapCountsOpeningConnections(t *testing.T) {
	const maxSlots = 4
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	var all connGauge
	servers := []*echoServer{startEchoServer(t, &all), startEchoServer(t, &all), startEchoServer(t, &all)}
	addrs := []netip.AddrPort{servers[0].addr, servers[1].addr, servers[2].addr}

	// The first check of each connection, but the very first, waits for
	// the gate. Later checks (on release, and periodic) go through.
	gate := make(chan struct{})
	held := make(chan struct{}, 64)
	var mu sync.Mutex
	checked := map[net.Conn]bool{}
	inner, err := tcp.New(tcp.Config{Validate: func(ctx context.Context, c net.Conn) error {
		mu.Lock()
		first, hold := !checked[c], len(checked) > 0
		checked[c] = true
		mu.Unlock()
		if first && hold {
			held <- struct{}{}
			select {
			case <-gate:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		return echotest.Check(ctx, c)
	}})
	if err != nil {
		t.Fatal(err)
	}
	var client connGauge
	conn := gauged{inner, &client}
	var created atomic.Int64
	obs := fsm.ObserverFunc(func(tr fsm.Transition) {
		if st, ok := slot.Kind.Step(tr); ok && st.Created {
			created.Add(1)
		}
	})
	p, err := pool.New(resolver.NewFixed(addrs...), conn, pool.Policy{
		MaxSlots: maxSlots, MaxSlotsPerBackend: maxSlots, SparesWanted: 2 * maxSlots,
		ClaimTimeout: 5 * time.Second, HealthTimeout: 5 * time.Second, ConnectTimeout: 5 * time.Second,
	}, pool.WithObserver(obs), pool.WithStrict(true))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close(context.Background())

	const claimers = 3 * maxSlots
	var served atomic.Int64
	errs := make(chan error, claimers)
	var wg sync.WaitGroup
	for i := range claimers {
		wg.Go(func() {
			h, err := p.Claim(ctx)
			if err != nil {
				errs <- err
				return
			}
			if err := echotest.RoundTrip(h.Conn(), fmt.Appendf(nil, "claimer %d|", i), 2*time.Second); err != nil {
				h.Discard(err)
				errs <- err
				return
			}
			h.Release()
			served.Add(1)
		})
	}
	// Every slot but one is held in its first check, its connection open
	// on a server.
	for range maxSlots - 1 {
		select {
		case <-held:
		case <-ctx.Done():
			t.Fatalf("the first checks were not all held: %+v", p.Stats().Slots)
		}
	}
	if n := all.open.Load(); n > maxSlots {
		t.Fatalf("%d connections open with the pool at its cap, above MaxSlots %d", n, maxSlots)
	}
	if n := created.Load(); n != maxSlots {
		t.Fatalf("%d slots created, want exactly MaxSlots %d", n, maxSlots)
	}
	select {
	case <-held:
		t.Fatal("a connection was opened beyond MaxSlots")
	default:
	}
	close(gate)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n := served.Load(); n != claimers {
		t.Errorf("%d claimers served, want %d", n, claimers)
	}
	if err := p.Close(ctx); err != nil {
		t.Fatal(err)
	}
	for _, s := range servers {
		s.waitClientsGone(5 * time.Second)
	}
	if peak := client.peak.Load(); peak > maxSlots {
		t.Errorf("the pool had %d connections open or opening at once; the cap is MaxSlots %d", peak, maxSlots)
	}
}

// closeGate wraps a connector so that Close waits for the gate: a
// connection whose Close is under way (as with a graceful shutdown that
// talks to the server) stays open until the gate opens.
type closeGate struct {
	backend.Connector[net.Conn]
	armed   atomic.Bool
	gate    chan struct{}
	waiting chan struct{} // a Close is waiting at the gate
}

func (g *closeGate) Close(c net.Conn) error {
	if g.armed.Load() {
		g.waiting <- struct{}{}
		<-g.gate
	}
	return g.Connector.Close(c)
}

// TestTCPCapHoldsWhileAConnectionCloses: a connection counts against
// MaxSlots until the connector's Close has returned, so the servers never
// see more than MaxSlots connections even when closing one takes time.
// With MaxSlots 1, the pool replaces its one connection (its backend is
// removed, or its lifetime ends) while the Close of the old one is slow:
// the new connection must wait for it.
// A connection being closed still counts against MaxSlots until its Close
// returns.
func TestTCPCapHoldsWhileAConnectionCloses(t *testing.T) {
	for _, tc := range []struct {
		name    string
		replace func(t *testing.T, p *pool.Pool[net.Conn], r *resolver.Fixed, mock *clock.Mock, next netip.AddrPort)
	}{
		{"backend removed", func(t *testing.T, p *pool.Pool[net.Conn], r *resolver.Fixed, _ *clock.Mock, next netip.AddrPort) {
			r.Replace(next)
		}},
		{"lifetime expired", func(t *testing.T, p *pool.Pool[net.Conn], _ *resolver.Fixed, mock *clock.Mock, _ netip.AddrPort) {
			h, err := p.Claim(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			mock.Add(2 * time.Minute) // past MaxConnLifetime
			h.Release()               // the connection expires as it comes back
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			defer cancel()
			var all connGauge
			a, b := startEchoServer(t, &all), startEchoServer(t, &all)
			inner, err := tcp.New(tcp.Config{DialTimeout: 2 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			conn := &closeGate{Connector: inner, gate: make(chan struct{}), waiting: make(chan struct{}, 8)}
			connected := make(chan struct{}, 8)
			obs := fsm.ObserverFunc(func(tr fsm.Transition) {
				if st, ok := slot.Kind.Step(tr); ok && !st.Created && st.Event == slot.ConnectOK {
					connected <- struct{}{}
				}
			})
			mock := clock.NewMock()
			r := resolver.NewFixed(a.addr)
			p, err := pool.New(r, backend.Connector[net.Conn](conn), pool.Policy{
				MaxSlots: 1, SparesWanted: 1, MaxConnLifetime: time.Minute,
			}, pool.WithObserver(obs), pool.WithClock(mock), pool.WithStrict(true))
			if err != nil {
				t.Fatal(err)
			}
			defer func() {
				// Open the gate first: Close waits for the closes under way.
				conn.armed.Store(false)
				close(conn.gate)
				if err := p.Close(ctx); err != nil {
					t.Error(err)
				}
			}()
			select {
			case <-connected:
			case <-ctx.Done():
				t.Fatal("no connection")
			}

			conn.armed.Store(true)
			tc.replace(t, p, r, mock, b.addr)
			// The old connection's Close is under way and waits.
			select {
			case <-conn.waiting:
			case <-ctx.Done():
				t.Fatal("the pool did not close the old connection")
			}
			// The replacement must not be opened until that Close returns.
			select {
			case <-connected:
				t.Errorf("a new connection was opened while the old one was still closing: the servers see %d connections at once (a %d, b %d), MaxSlots is 1",
					all.open.Load(), a.own.open.Load(), b.own.open.Load())
			case <-time.After(200 * time.Millisecond):
				// Proving that something did not happen needs a bound; the
				// connect, when it happens, takes well under a millisecond
				// on loopback.
			}
		})
	}
}

// connectWatch counts the slots' successful connects.
type connectWatch struct{ ok chan struct{} }

func (w *connectWatch) Observe(tr fsm.Transition) {
	if st, ok := slot.Kind.Step(tr); ok && st.Event == slot.ConnectOK {
		w.ok <- struct{}{}
	}
}

// await waits for n more connects.
func (w *connectWatch) await(t *testing.T, ctx context.Context, n int) {
	t.Helper()
	for range n {
		select {
		case <-w.ok:
		case <-ctx.Done():
			t.Fatalf("waiting for %d connects: %v", n, ctx.Err())
		}
	}
}

// TestTCPDoTryClaimAndReset: Do releases a connection after a good call
// and discards it after an error that is the connection's fault or a
// panic; TryClaim takes idle connections and never waits; Reset replaces
// every connection (an idle one at once, a claimed one on release)
// without failing the claim, over a real loopback TCP server.
func TestTCPDoTryClaimAndReset(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	var all connGauge
	srv := startEchoServer(t, &all)
	conns, err := tcp.New(tcp.Config{})
	if err != nil {
		t.Fatal(err)
	}
	w := &connectWatch{ok: make(chan struct{}, 64)}
	p, err := pool.New(resolver.NewFixed(srv.addr), backend.Connector[net.Conn](conns),
		pool.Policy{MaxSlots: 2, SparesWanted: 2, BackoffMin: time.Millisecond, BackoffMax: 10 * time.Millisecond, BackoffJitter: time.Millisecond},
		pool.WithObserver(w))
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := p.Close(ctx); err != nil {
			t.Error(err)
		}
	}()
	w.await(t, ctx, 2)

	// Do: a good call releases, a broken one and a panic discard.
	if err := p.Do(ctx, func(c net.Conn) error { return echotest.Check(ctx, c) }); err != nil {
		t.Fatalf("Do with a good call: %v", err)
	}
	if err := p.Do(ctx, func(net.Conn) error { return fmt.Errorf("read: %w", io.EOF) }); !errors.Is(err, io.EOF) {
		t.Fatalf("Do returned %v; want the function's error", err)
	}
	if err := p.Do(ctx, func(net.Conn) error { return errors.New("no such row") }); err == nil {
		t.Fatal("Do lost the function's error")
	}
	func() {
		defer func() {
			if v := recover(); v != "boom" {
				t.Errorf("Do re-panicked with %v; want boom", v)
			}
		}()
		_ = p.Do(ctx, func(net.Conn) error { panic("boom") })
		t.Error("Do did not panic")
	}()
	if st := p.Stats(); st.Discards != 2 || st.Claims != 4 {
		t.Fatalf("after Do: %d discards of %d claims; want 2 of 4 (the EOF and the panic)", st.Discards, st.Claims)
	}
	w.await(t, ctx, 2) // the discarded slots connect again

	// TryClaim: two idle connections, then a miss at once.
	h1, err := p.TryClaim(ctx)
	if err != nil {
		t.Fatal(err)
	}
	h2, err := p.TryClaim(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.TryClaim(ctx); !errors.Is(err, pool.ErrNoIdle) {
		t.Fatalf("TryClaim with nothing idle: %v; want ErrNoIdle", err)
	}
	h2.Release()

	// Reset with one connection claimed: the idle one is replaced now,
	// the claimed one keeps working and is replaced on release.
	before := p.Stats().Connects
	p.Reset()
	w.await(t, ctx, 1)
	if err := echotest.Check(ctx, h1.Conn()); err != nil {
		t.Fatalf("the claimed connection after Reset: %v", err)
	}
	h1.Release()
	w.await(t, ctx, 1)
	st := p.Stats()
	if got := st.Connects - before; got != 2 || st.Resets != 1 || st.Expired != 2 {
		t.Fatalf("after Reset: %d new connections, %d resets, %d expired; want 2, 1, 2", got, st.Resets, st.Expired)
	}
	if ce := st.ClaimErrors; ce.NoIdle != 1 || ce.Closed+ce.Context+ce.AllClaimsUsed+ce.NoBackends+ce.NoBackendsOnline != 0 {
		t.Fatalf("claim errors %+v; want only the one TryClaim miss", ce)
	}
	if err := p.Do(ctx, func(c net.Conn) error { return echotest.Check(ctx, c) }); err != nil {
		t.Fatalf("Do after Reset: %v", err)
	}
}

// startGauge wraps a connector and records how many connects are in
// flight at most, and when each began.
type startGauge struct {
	inner  backend.Connector[net.Conn]
	mu     sync.Mutex
	now    int
	peak   int
	starts []time.Time
}

func (g *startGauge) Connect(ctx context.Context, b backend.Backend) (net.Conn, error) {
	g.mu.Lock()
	g.now++
	g.peak = max(g.peak, g.now)
	g.starts = append(g.starts, time.Now())
	g.mu.Unlock()
	defer func() {
		g.mu.Lock()
		g.now--
		g.mu.Unlock()
	}()
	return g.inner.Connect(ctx, b)
}

func (g *startGauge) Close(c net.Conn) error { return g.inner.Close(c) }

// TestTCPDialLimits: a pool of 8 slots over one loopback server opens its
// connections at most 2 at a time with MaxConnectingPerBackend, and no
// faster than the rate allows with ConnectRatePerBackend (a burst of one
// second's worth, then one every 1/rate).
func TestTCPDialLimits(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	var all connGauge
	srv := startEchoServer(t, &all)
	inner, err := tcp.New(tcp.Config{})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		pol  pool.Policy
	}{
		{"max-connecting", pool.Policy{MaxSlots: 8, SparesWanted: 8, MaxConnectingPerBackend: 2}},
		{"rate", pool.Policy{MaxSlots: 8, SparesWanted: 8, ConnectRatePerBackend: 5}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := &startGauge{inner: inner}
			w := &connectWatch{ok: make(chan struct{}, 64)}
			p, err := pool.New(resolver.NewFixed(srv.addr), backend.Connector[net.Conn](g), tc.pol, pool.WithObserver(w))
			if err != nil {
				t.Fatal(err)
			}
			w.await(t, ctx, 8)
			if err := p.Close(ctx); err != nil {
				t.Fatal(err)
			}
			g.mu.Lock()
			defer g.mu.Unlock()
			if m := tc.pol.MaxConnectingPerBackend; m > 0 && g.peak > m {
				t.Fatalf("%d connects in flight at once; the cap is %d", g.peak, m)
			}
			if r := tc.pol.ConnectRatePerBackend; r > 0 {
				burst := int(r)
				for k := burst; k < len(g.starts); k++ {
					// Connect k needs k-burst+1 tokens beyond the burst.
					earliest := time.Duration(float64(k-burst+1) / r * float64(time.Second))
					if d := g.starts[k].Sub(g.starts[0]); d < earliest-time.Millisecond {
						t.Fatalf("connect %d began %v after the first; the rate allows it no sooner than %v", k, d, earliest)
					}
				}
			}
			t.Logf("%d connects, at most %d at once, the last %v after the first", len(g.starts), g.peak, g.starts[len(g.starts)-1].Sub(g.starts[0]))
		})
	}
}

// startSlowEcho starts a loopback server that answers each byte after
// delay: a backend slower than the others.
func startSlowEcho(t *testing.T, delay time.Duration) netip.AddrPort {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() {
		ln.Close()
		wg.Wait()
	})
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer c.Close()
				buf := make([]byte, 1)
				for {
					if _, err := c.Read(buf); err != nil {
						return
					}
					time.Sleep(delay) // the backend's own work, not a wait for a state
					if _, err := c.Write(buf); err != nil {
						return
					}
				}
			})
		}
	})
	return ln.Addr().(*net.TCPAddr).AddrPort()
}

// TestTCPLeastLatencyAvoidsASlowBackend: claimers report each request's
// latency (Handle.Report); with the LeastLatency picker, a backend that
// answers in 5ms gets a small share of the claims next to one that
// answers at once. With the default picker the share is logged.
func TestTCPLeastLatencyAvoidsASlowBackend(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	var all connGauge
	fast := startEchoServer(t, &all).addr
	slow := startSlowEcho(t, 5*time.Millisecond)
	conns, err := tcp.New(tcp.Config{})
	if err != nil {
		t.Fatal(err)
	}
	share := func(picker pool.Picker) float64 {
		w := &connectWatch{ok: make(chan struct{}, 64)}
		p, err := pool.New(resolver.NewFixed(fast, slow), backend.Connector[net.Conn](conns),
			pool.Policy{MaxSlots: 8, MaxSlotsPerBackend: 4, SparesWanted: 8, Picker: picker}, pool.WithObserver(w))
		if err != nil {
			t.Fatal(err)
		}
		defer p.Close(ctx)
		w.await(t, ctx, 8)
		const workers, each = 4, 50
		var mu sync.Mutex
		toSlow := 0
		var wg sync.WaitGroup
		for range workers {
			wg.Go(func() {
				for range each {
					h, err := p.Claim(ctx)
					if err != nil {
						t.Error(err)
						return
					}
					start := time.Now()
					err = echotest.Check(ctx, h.Conn())
					h.Report(time.Since(start), nil)
					if h.Backend().Addr == slow {
						mu.Lock()
						toSlow++
						mu.Unlock()
					}
					if err != nil {
						h.Discard(err)
						t.Error(err)
						return
					}
					h.Release()
				}
			})
		}
		wg.Wait()
		return float64(toSlow) / (workers * each)
	}
	base := share(nil)
	ll := share(pool.LeastLatency{})
	t.Logf("share of claims to the slow backend: %.0f%% with LeastClaimed, %.0f%% with LeastLatency", 100*base, 100*ll)
	if ll > 0.25 {
		t.Fatalf("LeastLatency sent %.0f%% of the claims to the slow backend; want under 25%%", 100*ll)
	}
}

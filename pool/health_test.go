package pool

// Regression tests of the health rules (docs/pool.md): a backend is dead
// only when connects to it fail; connections that were open and are lost
// are not connect failures; a backend that refuses more connections is at
// its capacity, not dead, and what it refuses goes to the others. Each
// failed before its fix.

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/benbjohnson/clock"

	"github.com/qorbgo/qorb/backend"
	"github.com/qorbgo/qorb/resolver"
)

// A server that ends every session of the pool (pg_terminate_backend, an
// idle timeout on the server, a proxy restart) is healthy: the discards
// of its connections must not make it dead, and claims must wait for the
// reconnect instead of failing fast.
func TestBugLostSessionsDoNotKillTheBackend(t *testing.T) {
	h := newHarness(t, Policy{MaxSlots: 6, SparesWanted: 6, ClaimTimeout: 10 * time.Second}, 1, nil)
	var held []*Handle[*fakeConn]
	for range 6 {
		held = append(held, h.claim())
	}
	ended := errors.New("FATAL: terminating connection due to administrator command (SQLSTATE 57P01)")
	for _, hd := range held {
		hd.Discard(ended)
	}
	h.settle()
	st := h.stats()
	if st.State != "running" || st.Backends[0].Dead || st.Backends[0].ConsecutiveFailures != 0 {
		t.Fatalf("after six lost sessions: pool %s, backend dead %v, %d failures in a row", st.State, st.Backends[0].Dead, st.Backends[0].ConsecutiveFailures)
	}
	if st.Lost != 6 || st.Backends[0].Lost != 6 {
		t.Fatalf("lost %d (backend %d), want 6", st.Lost, st.Backends[0].Lost)
	}
	// A claim now waits for the reconnect and gets a connection.
	if err := h.claimAfter(time.Second); err != nil {
		t.Fatalf("claim after the sessions ended: %v", err)
	}
	h.advance(time.Second)
	st = h.stats()
	if st.ClaimErrors != (ClaimErrors{}) || st.Slots.Connected != 6 || st.Backends[0].LastError != "" {
		t.Fatalf("after the reconnect: claim errors %+v, %d connected, last error %q", st.ClaimErrors, st.Slots.Connected, st.Backends[0].LastError)
	}
}

// A caller whose context ends in the middle of a query discards the
// connection (pgx closes a connection whose query was interrupted): that
// says nothing of the backend. Here eight queries are interrupted at once
// while the reconnects take their time: the pool must stay running, and a
// claim meanwhile waits for a reconnect instead of failing fast.
func TestBugCancelledCallersDoNotKillTheBackend(t *testing.T) {
	h := newHarness(t, Policy{MaxSlots: 8, SparesWanted: 8, ClaimTimeout: 10 * time.Second}, 1, nil)
	var held []*Handle[*fakeConn]
	for range 8 {
		held = append(held, h.claim())
	}
	h.fake.set(func(f *fakeConnector) { f.hang[name(1)] = true }) // reconnects take a while
	for _, hd := range held {
		hd.Discard(fmt.Errorf("query: %w", context.DeadlineExceeded))
	}
	if st := h.stats(); st.State != "running" || st.Backends[0].Dead {
		t.Fatalf("pool %s, backend dead %v after interrupted queries", st.State, st.Backends[0].Dead)
	}
	got := make(chan error, 1)
	go func() {
		hd, err := h.p.Claim(context.Background())
		if err == nil {
			hd.Release()
		}
		got <- err
	}()
	h.waitUntil("claimer queued or failed", func() bool { return h.p.waiters.n == 1 || len(got) == 1 })
	h.fake.set(func(f *fakeConnector) { delete(f.hang, name(1)) })
	close(h.fake.unhangOnce())
	h.advance(time.Second)
	if err := <-got; err != nil {
		t.Fatalf("claim while the backend reconnects: %v", err)
	}
	h.advance(time.Second)
	if st := h.stats(); st.Slots.Connected != 8 || st.ClaimErrors != (ClaimErrors{}) {
		t.Fatalf("%d connected, claim errors %+v", st.Slots.Connected, st.ClaimErrors)
	}
}

// cappedConnector refuses connects to one backend beyond a cap of open
// and opening connections, as a server at max_connections does.
type cappedConnector struct {
	*fakeConnector
	name backend.Name
	cap  int
	mu   sync.Mutex
	n    int // open and opening to name
}

func (c *cappedConnector) Connect(ctx context.Context, b backend.Backend) (*fakeConn, error) {
	if b.Name != c.name {
		return c.fakeConnector.Connect(ctx, b)
	}
	c.mu.Lock()
	if c.n >= c.cap {
		c.mu.Unlock()
		return nil, errors.New("FATAL: sorry, too many clients already (SQLSTATE 53300)")
	}
	c.n++
	c.mu.Unlock()
	fc, err := c.fakeConnector.Connect(ctx, b)
	if err != nil {
		c.mu.Lock()
		c.n--
		c.mu.Unlock()
	}
	return fc, err
}

func (c *cappedConnector) Close(fc *fakeConn) error {
	if fc.b.Name == c.name {
		c.mu.Lock()
		c.n--
		c.mu.Unlock()
	}
	return c.fakeConnector.Close(fc)
}

// A backend capped below its share keeps what it accepts, is not dead,
// and the slots it refuses go to the other backends, so the pool holds
// its target.
func TestBugCappedBackendGivesItsShareToTheOthers(t *testing.T) {
	var capped *cappedConnector
	h := newHarness(t, Policy{MaxSlots: 20, SparesWanted: 20, MaxSlotsPerBackend: 16}, 3, func(f *fakeConnector) backend.Connector[*fakeConn] {
		capped = &cappedConnector{fakeConnector: f, name: name(1), cap: 5}
		return capped
	})
	h.advance(5 * time.Second) // well within one RebalanceInterval
	st := h.stats()
	if st.Slots.Connected != 20 {
		t.Errorf("%d connected, want the target of 20", st.Slots.Connected)
	}
	for _, b := range st.Backends {
		if b.Dead || b.State != "online" {
			t.Errorf("backend %s: %s, dead %v", b.Name, b.State, b.Dead)
		}
		if b.Name == string(name(1)) && (b.Slots.Connected != 5 || b.Capacity != 5 || b.Slots.Total != 5) {
			t.Errorf("capped backend: %d connected of %d slots, capacity %d; want 5, 5, 5", b.Slots.Connected, b.Slots.Total, b.Capacity)
			h.mu.Lock()
			for _, tr := range h.trace {
				t.Logf("%v", tr)
			}
			h.mu.Unlock()
		}
	}
	if n := h.fake.openTo(name(1)); n != 5 {
		t.Errorf("%d connections open to the capped backend", n)
	}
	// It stays so: no connect storm on the capped backend meanwhile.
	before := st.Backends[0].Connects
	h.advance(2 * time.Minute)
	st = h.stats()
	if got := st.Backends[0].Connects - before; got > 30 {
		t.Errorf("%d connects to the capped backend in two minutes", got)
	}
	if st.Slots.Connected != 20 {
		t.Errorf("after two minutes: %d connected", st.Slots.Connected)
	}
}

// A backend that comes back gets its share within seconds of its first
// good connect, not at the next periodic rebalance.
func TestBugRecoveredBackendGetsItsShareAtOnce(t *testing.T) {
	// Eight spares under a cap of 16: four on each backend.
	h := newHarness(t, Policy{MaxSlots: 16, SparesWanted: 8}, 2, func(f *fakeConnector) backend.Connector[*fakeConn] { return validating{f} })
	down := errors.New("connection refused")
	// The backend restarts: its connections fail their health checks, and
	// connects to it fail until it is back.
	h.fake.set(func(f *fakeConnector) { f.fail[name(2)], f.validateErr[name(2)] = down, down })
	h.advance(40 * time.Second) // past one health interval
	if st := h.stats(); !st.Backends[1].Dead || st.Backends[0].Slots.Total != 7 {
		t.Fatalf("while down: backend 2 dead %v, backend 1 has %d slots", st.Backends[1].Dead, st.Backends[0].Slots.Total)
	}
	h.fake.set(func(f *fakeConnector) { delete(f.fail, name(2)); delete(f.validateErr, name(2)) })
	h.advance(31 * time.Second) // the probe's backoff is at most BackoffMax, 30s
	st := h.stats()
	if got := st.Backends[1].Slots.Connected; got != 4 {
		t.Fatalf("after it came back: backend 2 has %d connected, want its share of 4 (wanted %d)", got, st.Backends[1].Wanted)
	}
	if st.Slots.Total > 16 {
		t.Fatalf("%d slots, above MaxSlots", st.Slots.Total)
	}
}

// refusingResolver is a resolver whose every query fails, as a DNS server
// that answers REFUSED.
type refusingResolver struct{}

func (refusingResolver) Start(h resolver.Host) {
	h.Querying()
	h.ReportError(errors.New("query _db._tcp.example.com. SRV at 127.0.0.1:53: REFUSED"))
}
func (refusingResolver) Stop()                 {}
func (refusingResolver) Stats() resolver.Stats { return resolver.Stats{} }

// A claim that fails because the resolver lists nothing says why: the
// resolver's last error, at the pool's deadline and when the claimer's
// context ends first.
func TestBugResolverErrorIsInTheClaimError(t *testing.T) {
	clk := clock.NewMock()
	p, err := New(refusingResolver{}, newFakeConnector(), Policy{ClaimTimeout: time.Second}, WithClock(clk))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close(context.Background())
	got := make(chan error, 1)
	go func() { _, err := p.Claim(context.Background()); got <- err }()
	for p.Stats().Waiters != 1 {
		runtime.Gosched()
	}
	clk.Add(time.Second)
	err = <-got
	if !errors.Is(err, ErrNoBackends) || !strings.Contains(err.Error(), "REFUSED") {
		t.Fatalf("claim at the deadline: %v, want ErrNoBackends with the resolver's error", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	go func() { _, err := p.Claim(ctx); got <- err }()
	for p.Stats().Waiters != 1 {
		runtime.Gosched()
	}
	cancel()
	err = <-got
	if !errors.Is(err, context.Canceled) || !errors.Is(err, ErrNoBackends) || !strings.Contains(err.Error(), "REFUSED") {
		t.Fatalf("claim whose context ended: %v, want context.Canceled with ErrNoBackends and the resolver's error", err)
	}
	if st := p.Stats(); st.ClaimErrors.Context != 1 || st.ClaimErrors.NoBackends != 1 || st.ClaimErrors.Timeouts != 1 {
		t.Fatalf("claim errors %+v", st.ClaimErrors)
	}
}

// During an outage of every backend, a claim fails fast and says when the
// pool next tries to connect, so that a caller that retries need not spin.
func TestRetryAfterWhenEveryBackendIsDead(t *testing.T) {
	h := newHarness(t, Policy{MaxSlots: 2, SparesWanted: 2}, 1, nil)
	h.fake.set(func(f *fakeConnector) { f.fail[name(1)] = errors.New("connection refused") })
	var held []*Handle[*fakeConn]
	for range 2 {
		held = append(held, h.claim())
	}
	for _, hd := range held {
		hd.Discard(errors.New("server restarting"))
	}
	h.advance(5 * time.Second)
	if st := h.stats(); st.State != "failed" {
		t.Fatalf("pool %s, want failed", st.State)
	}
	_, err := h.p.Claim(context.Background())
	d, ok := RetryAfter(err)
	if !errors.Is(err, ErrNoBackendsOnline) || !ok || d <= 0 || d > h.p.pol.BackoffMax+h.p.pol.BackoffJitter {
		t.Fatalf("claim: %v, retry after %v (%v)", err, d, ok)
	}
	connects := h.stats().Connects
	h.advance(d - time.Nanosecond)
	if got := h.stats().Connects; got != connects {
		t.Fatalf("%d connects before the retry-after ended", got-connects)
	}
	h.advance(time.Nanosecond)
	if got := h.stats().Connects; got != connects+1 {
		t.Fatalf("%d connects when the retry-after ended, want 1", got-connects)
	}
	if _, ok := RetryAfter(ErrNoBackendsOnline); ok {
		t.Fatal("RetryAfter of a plain sentinel")
	}
}

// A claim made when a dead backend's backoff has ended but its timer has
// not run yet (the process was busy, or the timer is due in this very
// event) learns that a connect is about to start: no retry-after, rather
// than "retry after 1ns" over and over until the timer runs.
func TestRetryAfterWhenTheNextConnectIsDue(t *testing.T) {
	h := newHarness(t, Policy{MaxSlots: 2, SparesWanted: 2}, 1, nil)
	h.fake.set(func(f *fakeConnector) { f.fail[name(1)] = errors.New("connection refused") })
	held := []*Handle[*fakeConn]{h.claim(), h.claim()}
	for _, hd := range held {
		hd.Discard(errors.New("server restarting"))
	}
	h.advance(5 * time.Second)
	_, err := h.p.Claim(context.Background())
	d, ok := RetryAfter(err)
	if !ok {
		t.Fatalf("claim: %v: no retry-after", err)
	}
	// The clock passes the backoff's end while the loop is held: the
	// timer cannot run before the claim below.
	h.p.loop.Enter()
	h.clk.Set(h.clk.Now().Add(d + time.Millisecond))
	err = h.p.admit()
	h.p.loop.Leave()
	if d, ok := RetryAfter(err); !errors.Is(err, ErrNoBackendsOnline) || ok {
		t.Fatalf("claim with the connect due: %v, retry after %v (%v); want no retry-after", err, d, ok)
	}
	h.settle()
}

// With every connect failing while the backend is never counted dead
// (DeadAfter high: as with connects that time out, or a server refusing
// under load), the circuit breaker opens after CircuitBreakAfter:
// claims fail at once with ErrCircuitOpen, which is also
// ErrNoBackendsOnline, with the last connect error and the time of the
// next connect; the first connection closes it. Turned off, claims wait
// out their timeout instead.
func TestCircuitBreaker(t *testing.T) {
	for _, tc := range []struct {
		name    string
		breaker time.Duration
	}{{"on", 0}, {"off", -1}} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, Policy{MaxSlots: 2, SparesWanted: 2, DeadAfter: 1000, BackoffMin: time.Second,
				BackoffMax: 2 * time.Second, CircuitBreakAfter: tc.breaker, ClaimTimeout: time.Minute}, 1,
				func(f *fakeConnector) backend.Connector[*fakeConn] {
					f.fail[name(1)] = errors.New("i/o timeout")
					return f
				})
			h.advance(16 * time.Second)
			st := h.stats()
			ctx, cancel := context.WithTimeout(context.Background(), time.Hour) // the mock clock's deadline is ClaimTimeout
			defer cancel()
			if tc.breaker < 0 {
				if st.State != "starting" || st.Breaks != 0 {
					t.Fatalf("breaker off: pool %s, %d breaks", st.State, st.Breaks)
				}
				return
			}
			if st.State != "broken" || st.Breaks != 1 {
				t.Fatalf("pool %s, %d breaks; want broken, 1", st.State, st.Breaks)
			}
			for range 2 {
				_, err := h.p.Claim(ctx)
				if !errors.Is(err, ErrCircuitOpen) || !errors.Is(err, ErrNoBackendsOnline) || !strings.Contains(err.Error(), "i/o timeout") {
					t.Fatalf("claim: %v", err)
				}
				if d, ok := RetryAfter(err); ok && (d <= 0 || d > 3*time.Second) {
					t.Fatalf("retry after %v", d)
				}
			}
			if got := h.stats().ClaimErrors.CircuitOpen; got != 2 {
				t.Fatalf("ClaimErrors.CircuitOpen = %d, want 2", got)
			}
			h.fake.set(func(f *fakeConnector) { delete(f.fail, name(1)) })
			h.advance(5 * time.Second)
			if st := h.stats(); st.State != "running" {
				t.Fatalf("after a connect succeeded: pool %s, want running", st.State)
			}
			h.claim().Release()
		})
	}
}

// Slow start follows failed connects only: a backend whose connections
// were lost (sessions ended by the server) and whose next connects
// succeed gets its share back at once, as without slow start.
func TestSlowStartOnlyAfterFailedConnects(t *testing.T) {
	h := newHarness(t, Policy{MaxSlots: 4, SparesWanted: 4, SlowStartWindow: time.Minute}, 1, nil)
	var held []*Handle[*fakeConn]
	for range 4 {
		held = append(held, h.claim())
	}
	for _, hd := range held {
		hd.Discard(errors.New("terminating connection due to administrator command"))
	}
	h.advance(time.Second)
	st := h.stats()
	if b := st.Backends[0]; b.SlowStart != 0 || st.SlowStarts != 0 || b.Slots.Connected != 4 {
		t.Fatalf("after lost sessions: slow start %d (%d in all), %d connected; want none, 4", b.SlowStart, st.SlowStarts, b.Slots.Connected)
	}
	// Now its connects fail for a while: when it is back, it ramps.
	h.fake.set(func(f *fakeConnector) { f.fail[name(1)] = errors.New("connection refused") })
	for range 4 {
		held = append(held[:0], h.claim())
		held[0].Discard(errors.New("server closed the connection"))
	}
	h.advance(time.Second)
	h.fake.set(func(f *fakeConnector) { delete(f.fail, name(1)) })
	h.advance(time.Minute / 2)
	st = h.stats()
	if b := st.Backends[0]; st.SlowStarts != 1 || b.SlowStart == 0 || b.SlowStart >= 4 {
		t.Fatalf("back after failed connects: %d slow starts, cap %d; want one, under 4 halfway through", st.SlowStarts, b.SlowStart)
	}
	h.advance(time.Minute)
	if b := h.stats().Backends[0]; b.SlowStart != 0 || b.Slots.Connected != 4 {
		t.Fatalf("after the window: slow start %d, %d connected; want over, 4", b.SlowStart, b.Slots.Connected)
	}
}

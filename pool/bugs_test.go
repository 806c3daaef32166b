package pool

// Regression tests of bugs found by attacking the pool as a careful user
// would: each failed (or hung, or crashed the test binary) before its fix.

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/benbjohnson/clock"

	"github.com/qorbgo/qorb/backend"
	"github.com/qorbgo/qorb/fsm"
	"github.com/qorbgo/qorb/resolver"
)

// A handle used after its claim ended must never touch another claim.
func TestBugStaleHandleNeverTouchesAnotherClaim(t *testing.T) {
	h := newHarness(t, Policy{MaxSlots: 1, SparesWanted: 1, ClaimTimeout: time.Second}, 1, nil)
	a := h.claim()
	a.Release()
	h.settle()
	b := h.claim() // the same slot, claimed again
	if b == a {
		t.Fatal("the second claim got the first claim's handle")
	}
	bConn := b.Conn()
	if a.Conn() != nil {
		t.Fatal("a released handle still gives its connection")
	}
	a.Release()
	a.Discard(errors.New("stale"))
	h.settle()
	st := h.stats()
	if st.Misuse != 2 || st.Slots.Claimed != 1 || st.Discards != 0 {
		t.Fatalf("after a stale Release and Discard: misuse %d, claimed %d, discards %d", st.Misuse, st.Slots.Claimed, st.Discards)
	}
	if b.Conn() != bConn || bConn.closed.Load() {
		t.Fatal("the stale handle changed the live claim's connection")
	}
	// A third claimer must not share b's connection: it waits, and times out.
	if err := h.claimAfter(time.Second); !errors.Is(err, ErrAllClaimsUsed) {
		t.Fatalf("third claim: %v, want ErrAllClaimsUsed", err)
	}
	b.Release()
	h.settle()
	if st := h.stats(); st.Slots.Claimed != 0 || st.Misuse != 2 {
		t.Fatalf("after b's release: claimed %d, misuse %d", st.Slots.Claimed, st.Misuse)
	}
}

// blockingClose is a connector whose Close blocks until release is closed.
type blockingClose struct {
	*fakeConnector
	release chan struct{}
}

func (c blockingClose) Close(fc *fakeConn) error {
	<-c.release
	return c.fakeConnector.Close(fc)
}

// Close must return promptly after its context ends even when the
// connector's Close blocks and a handle is still claimed.
func TestBugCloseReturnsWhenConnectorCloseBlocks(t *testing.T) {
	release := make(chan struct{})
	h := newHarness(t, Policy{MaxSlots: 1, SparesWanted: 1}, 1, func(f *fakeConnector) backend.Connector[*fakeConn] {
		return blockingClose{f, release}
	})
	defer close(release)
	hd := h.claim()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	done := make(chan error, 1)
	go func() { done <- h.p.Close(ctx) }()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "1 claimed") {
			t.Fatalf("Close: %v", err)
		}
	case <-time.After(10 * time.Second): // a safety net: Close hangs without the fix
		t.Fatal("Close did not return after its context ended")
	}
	for i := 0; h.stats().ClosesRunning != 1; i++ {
		if i > 1_000_000 {
			t.Fatalf("closes running: %d, want 1", h.stats().ClosesRunning)
		}
		runtime.Gosched()
	}
	hd.Release() // a no-op: the connection was forced shut
	release <- struct{}{}
	h.p.loop.WaitIdle()
	if st := h.stats(); st.ClosesRunning != 0 || st.Misuse != 0 {
		t.Fatalf("closes running %d, misuse %d", st.ClosesRunning, st.Misuse)
	}
	if n := h.fake.openCount(); n != 0 {
		t.Fatalf("%d connections open", n)
	}
}

// hangingChecks is a validating connector whose Validate (first check,
// health check or recycle) hangs, ignoring its context, while hang is set.
type hangingChecks struct {
	*fakeConnector
	hang   atomic.Bool
	unhang chan struct{}
	n      atomic.Int64 // checks that hung
}

func (c *hangingChecks) Validate(ctx context.Context, fc *fakeConn) error {
	if c.hang.Load() {
		c.n.Add(1)
		<-c.unhang
	}
	return nil
}

// Every connection the connector returned is closed exactly once: one
// that arrives after its connect timed out, one whose first check timed
// out, whose health check timed out, whose recycle hook timed out.
func TestBugEveryConnectionIsClosedExactlyOnce(t *testing.T) {
	pol := Policy{MaxSlots: 2, SparesWanted: 1, ConnectTimeout: time.Second, HealthTimeout: time.Second, HealthInterval: 10 * time.Second}
	check := func(t *testing.T, h *harness, hc *hangingChecks) {
		t.Helper()
		hc.hang.Store(false)
		close(hc.unhang)
		h.settle()
		h.close()
		if n, dbl := h.fake.openCount(), h.fake.doubleClose; n != 0 || dbl != 0 {
			t.Fatalf("%d connections left open, %d closed twice", n, dbl)
		}
	}
	newChecks := func(h **hangingChecks) func(f *fakeConnector) backend.Connector[*fakeConn] {
		return func(f *fakeConnector) backend.Connector[*fakeConn] {
			*h = &hangingChecks{fakeConnector: f, unhang: make(chan struct{})}
			return *h
		}
	}
	t.Run("connect after its timeout", func(t *testing.T) {
		var hc *hangingChecks
		h := startHarnessNoSettle(t, pol, 1, func(f *fakeConnector) backend.Connector[*fakeConn] {
			f.hang[name(1)] = true
			f.hangHonours = false
			return newChecks(&hc)(f)
		})
		h.waitUntil("connect started", func() bool { h.fake.mu.Lock(); defer h.fake.mu.Unlock(); return h.fake.hanging > 0 })
		h.advanceNoWait(2 * time.Second) // the connect times out; the slot backs off
		close(h.fake.unhangOnce())       // the connect returns a connection now
		check(t, h, hc)
	})
	t.Run("first check after its timeout", func(t *testing.T) {
		var hc *hangingChecks
		h := startHarnessNoSettle(t, pol, 1, func(f *fakeConnector) backend.Connector[*fakeConn] {
			c := newChecks(&hc)(f)
			hc.hang.Store(true)
			return c
		})
		h.waitUntil("first check started", func() bool { return hc.n.Load() > 0 })
		h.advanceNoWait(2 * time.Second)
		check(t, h, hc)
	})
	t.Run("health check after its timeout", func(t *testing.T) {
		var hc *hangingChecks
		h := newHarness(t, pol, 1, newChecks(&hc))
		hc.hang.Store(true)
		h.advanceNoWait(10 * time.Second) // the health check starts and hangs
		h.waitUntil("health check started", func() bool { return hc.n.Load() > 0 })
		h.advanceNoWait(2 * time.Second) // and times out
		check(t, h, hc)
	})
	// The recycle hook is the check on release: with one slot, it is the
	// only check once the connection is claimed.
	recycle := pol
	recycle.MaxSlots, recycle.CheckOnRelease = 1, true
	t.Run("recycle after its timeout", func(t *testing.T) {
		var hc *hangingChecks
		h := newHarness(t, recycle, 1, newChecks(&hc))
		hd := h.claim()
		hc.hang.Store(true)
		hd.Release() // the recycle hook (Validate) hangs
		h.waitUntil("recycle started", func() bool { return hc.n.Load() > 0 })
		h.advanceNoWait(2 * time.Second)
		check(t, h, hc)
	})
	t.Run("hook running at a forced Close", func(t *testing.T) {
		var hc *hangingChecks
		h := newHarness(t, recycle, 1, newChecks(&hc))
		hd := h.claim()
		hc.hang.Store(true)
		hd.Release()
		h.waitUntil("recycle started", func() bool { return hc.n.Load() > 0 })
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if err := h.p.Close(ctx); err != nil {
			t.Fatalf("Close: %v", err)
		}
		check(t, h, hc)
	})
}

// acquireFailing adds an AcquireHook that always fails, or panics.
type acquireFailing struct {
	*fakeConnector
	panics bool
}

func (c acquireFailing) OnAcquire(context.Context, *fakeConn) error {
	if c.panics {
		panic("acquire hook")
	}
	return errors.New("acquire hook refuses")
}

// An acquire hook that always fails must not make Claim run for ever:
// ClaimTimeout bounds the whole claim, and the backend is charged.
func TestBugFailingAcquireHookIsBoundedByClaimTimeout(t *testing.T) {
	for _, panics := range []bool{false, true} {
		h := newHarness(t, Policy{MaxSlots: 1, SparesWanted: 1, ClaimTimeout: time.Second, BackoffMin: 10 * time.Millisecond, BackoffMax: 20 * time.Millisecond},
			1, func(f *fakeConnector) backend.Connector[*fakeConn] { return acquireFailing{f, panics} })
		done := make(chan error, 1)
		go func() {
			hd, err := h.p.Claim(context.Background())
			if err == nil {
				hd.Release()
			}
			done <- err
		}()
		var err error
	wait:
		for i := 0; ; i++ {
			select {
			case err = <-done:
				break wait
			default:
			}
			if i > 100_000 {
				t.Fatalf("panics=%v: the claim still runs after %v of virtual time", panics, h.clk.Now().Sub(time.Unix(0, 0)))
			}
			h.advance(10 * time.Millisecond)
			runtime.Gosched()
		}
		if err == nil {
			t.Fatalf("panics=%v: the claim succeeded", panics)
		}
		st := h.stats()
		if st.Discards == 0 || st.Failures == 0 || st.Slots.Claimed != 0 {
			t.Fatalf("panics=%v: discards %d, failures %d, claimed %d", panics, st.Discards, st.Failures, st.Slots.Claimed)
		}
		if panics && !strings.Contains(st.LastError, "panicked") {
			t.Fatalf("last error %q", st.LastError)
		}
	}
}

// A claimer whose context ends just after the hand-off, racing a forced
// Close, must never see (or give back) a slot that Close stopped.
func TestBugClaimerNeverKeepsASlotStoppedByClose(t *testing.T) {
	h := newHarness(t, Policy{MaxSlots: 1, SparesWanted: 1}, 1, nil)
	a := h.claim()
	ctx, cancel := context.WithCancel(context.Background())
	type result struct {
		h   *Handle[*fakeConn]
		err error
	}
	got := make(chan result, 1)
	go func() {
		hd, err := h.p.Claim(ctx)
		got <- result{hd, err}
	}()
	h.waitUntil("claimer queued", func() bool { return h.p.waiters.n == 1 })
	// In one event: the release hands the slot to the waiter, its context
	// ends, and a forced Close stops the slot, before the claimer runs.
	h.p.loop.Enter()
	h.p.release(a)
	cancel()
	h.p.beginClose()
	h.p.endClose()
	h.p.loop.Leave()
	r := <-got
	if r.h != nil || !errors.Is(r.err, ErrClosed) {
		t.Fatalf("claim: %v, %v; want ErrClosed", r.h, r.err)
	}
	h.p.loop.WaitIdle()
	st := h.stats()
	if st.Slots.Total != 0 || st.ClaimErrors.Closed != 1 || st.Claims != 1 {
		t.Fatalf("slots %+v, claim errors %+v, claims %d", st.Slots, st.ClaimErrors, st.Claims)
	}
}

// Claims whose context is done on entry, or ends just after the hand-off,
// are counted.
func TestBugContextErrorsAreCounted(t *testing.T) {
	h := newHarness(t, Policy{MaxSlots: 1, SparesWanted: 1}, 1, nil)
	done, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := h.p.Claim(done); !errors.Is(err, context.Canceled) {
		t.Fatalf("claim with a done context: %v", err)
	}
	a := h.claim()
	ctx, cancel := context.WithCancel(context.Background())
	got := make(chan error, 1)
	go func() {
		_, err := h.p.Claim(ctx)
		got <- err
	}()
	h.waitUntil("claimer queued", func() bool { return h.p.waiters.n == 1 })
	h.p.loop.Enter()
	h.p.release(a) // hands the slot to the waiter
	cancel()       // whose context ends before it runs: it gives the slot back
	h.p.loop.Leave()
	if err := <-got; !errors.Is(err, context.Canceled) {
		t.Fatalf("claim cancelled after the hand-off: %v", err)
	}
	h.settle()
	st := h.stats()
	if st.ClaimErrors.Context != 2 || st.Claims != 1 || st.Slots.Connected != 1 {
		t.Fatalf("context errors %d, claims %d, slots %+v", st.ClaimErrors.Context, st.Claims, st.Slots)
	}
}

// Close must not return the context's error at random when there is
// nothing claimed, and a second Close after the first finished returns nil.
func TestBugCloseErrorIsNotRandom(t *testing.T) {
	done, cancel := context.WithCancel(context.Background())
	cancel()
	for i := range 50 {
		h := startHarness(t, Policy{MaxSlots: 2}, 2, nil)
		if err := h.p.Close(done); err != nil {
			t.Fatalf("run %d: Close with nothing claimed: %v", i, err)
		}
		if err := h.p.Close(done); err != nil {
			t.Fatalf("run %d: second Close: %v", i, err)
		}
		h.p.loop.WaitIdle()
		if n := h.fake.openCount(); n != 0 {
			t.Fatalf("run %d: %d connections open", i, n)
		}
	}
}

// Pools on a shared loop register with the loop held, and unregister at
// Close: a closed pool's observer sees nothing of the others.
func TestBugSharedLoopRegistrations(t *testing.T) {
	loop := fsm.NewLoop(fsm.Config{Seed: 1, Strict: true})
	fa := newFakeConnector()
	a, err := New(resolverFor(2), backend.Connector[*fakeConn](fa), Policy{}, withLoop(loop), WithName("a"))
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close(context.Background())
	// Claims on a while b is created with an observer.
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for range 200 {
			if hd, err := a.Claim(context.Background()); err == nil {
				hd.Release()
			}
		}
	}()
	var afterClose atomic.Int64
	var closed atomic.Bool
	obs := fsm.ObserverFunc(func(tr fsm.Transition) {
		if closed.Load() {
			afterClose.Add(1)
		}
	})
	fb := newFakeConnector()
	b, err := New(resolverFor(1), backend.Connector[*fakeConn](fb), Policy{}, withLoop(loop), WithName("b"), WithObserver(obs))
	if err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	if err := b.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	closed.Store(true)
	for range 50 {
		hd, err := a.Claim(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		hd.Release() // a's slot is claimed and returned: transitions
	}
	loop.WaitIdle()
	if n := afterClose.Load(); n != 0 {
		t.Fatalf("b's observer saw %d transitions after b closed", n)
	}
}

// With fewer slots than backends and every backend down, the pool must
// still fail fast: every backend gets tried, and all go dead.
func TestBugFailFastWithFewerSlotsThanBackends(t *testing.T) {
	h := newHarness(t, Policy{MaxSlots: 2, SparesWanted: 1, DeadAfter: 2, BackoffMin: 10 * time.Millisecond, BackoffMax: 100 * time.Millisecond}, 5,
		func(f *fakeConnector) backend.Connector[*fakeConn] {
			for i := 1; i <= 5; i++ {
				f.fail[name(i)] = errors.New("refused")
			}
			return f
		})
	for i := 0; h.stats().State != "failed"; i++ {
		if i >= 100 {
			t.Fatalf("after %ds with every backend down the pool is %s; backends %+v", i/10, h.stats().State, h.stats().Backends)
		}
		h.advance(100 * time.Millisecond)
	}
	for _, b := range h.stats().Backends {
		if !b.Dead || b.Connects == 0 {
			t.Fatalf("backend %s: dead %v after %d connects", b.Name, b.Dead, b.Connects)
		}
	}
	if _, err := h.p.Claim(context.Background()); !errors.Is(err, ErrNoBackendsOnline) {
		t.Fatalf("claim: %v, want ErrNoBackendsOnline at once", err)
	}
}

// With fewer slots than backends, a probe must not stay on a backend that
// refuses it while another has room.
func TestBugProbeMovesOffARefusingBackend(t *testing.T) {
	h := &harness{t: t, clk: clock.NewMock(), res: resolver.NewFixed(), fake: newFakeConnector()}
	refused := errors.New("too many connections")
	h.fake.fail[name(1)] = refused
	h.fake.fail[name(2)] = refused
	p, err := New(h.res, backend.Connector[*fakeConn](h.fake),
		Policy{MaxSlots: 1, SparesWanted: 1, DeadAfter: 3, BackoffMin: 10 * time.Millisecond, BackoffMax: time.Second},
		WithClock(h.clk), WithSeed(7), WithObserver(fsm.ObserverFunc(h.observe)))
	if err != nil {
		t.Fatal(err)
	}
	h.p = p
	t.Cleanup(h.close)
	h.res.Replace(addr(1), addr(2))
	h.settle()
	// The one slot went to one backend; the other has room from now on.
	probed := h.p.order[0].b.Name
	for _, s := range h.p.order {
		if len(s.slots) > 0 {
			probed = s.b.Name
		}
	}
	other := name(1)
	if probed == other {
		other = name(2)
	}
	h.fake.set(func(f *fakeConnector) { delete(f.fail, other) })
	for i := 0; ; i++ {
		if st := h.stats(); st.Slots.Connected == 1 {
			break
		}
		if i >= 100 {
			t.Fatalf("after %ds the probe is still pinned on %s; %s was never tried", i/10, probed, other)
		}
		h.advance(100 * time.Millisecond)
	}
	hd := h.claim()
	if hd.Backend().Name != other {
		t.Fatalf("claimed from %s", hd.Backend().Name)
	}
	hd.Release()
}

// When the last online backend fails, dead backends are probed at once: a
// dead backend that came back serves claims without waiting out its long
// backoff.
func TestBugDeadBackendProbedWhenLastOnlineFails(t *testing.T) {
	pol := Policy{MaxSlots: 2, SparesWanted: 1, DeadAfter: 2, BackoffMin: time.Second, BackoffMax: 30 * time.Second,
		BackoffJitter: time.Millisecond, HealthInterval: time.Second}
	down := errors.New("down")
	h := newHarness(t, pol, 2, func(f *fakeConnector) backend.Connector[*fakeConn] { return validating{f} })
	// Backend 1 goes down for good and backs off towards 30s.
	h.fake.set(func(f *fakeConnector) { f.fail[name(1)] = down; f.validateErr[name(1)] = down })
	h.advance(40 * time.Second)
	st := h.stats()
	if b := st.Backends[0]; !b.Dead || b.State != "failing" {
		t.Fatalf("backend 1 after 40s down: %+v", b)
	}
	// It comes back; then backend 2, the last one online, fails.
	h.fake.set(func(f *fakeConnector) {
		delete(f.fail, name(1))
		delete(f.validateErr, name(1))
		f.fail[name(2)] = down
		f.validateErr[name(2)] = down
	})
	h.advance(2 * time.Second) // backend 2's health check fails within 1s
	st = h.stats()
	if b := st.Backends[0]; b.State != "online" {
		t.Fatalf("2s after the last online backend failed, backend 1 (back) is %s, %d connects", b.State, b.Connects)
	}
	hd := h.claim()
	if hd.Backend().Name != name(1) {
		t.Fatalf("claimed from %s", hd.Backend().Name)
	}
	hd.Release()
}

// nilConnector returns (nil, nil) for backend 1, and a connection together
// with an error for backend 2.
type nilConnector struct{ *fakeConnector }

func (c nilConnector) Connect(ctx context.Context, b backend.Backend) (*fakeConn, error) {
	fc, err := c.fakeConnector.Connect(ctx, b)
	switch b.Name {
	case name(1):
		if err == nil {
			c.fakeConnector.Close(fc)
		}
		return nil, nil
	case name(2):
		return fc, errors.New("half open")
	}
	return fc, err
}

// A connector returning (nil, nil) never hands out a nil connection, and a
// connection returned with an error is closed; both count as failures.
func TestBugNilAndHalfOpenConnections(t *testing.T) {
	h := newHarness(t, Policy{MaxSlots: 2, SparesWanted: 1, ClaimTimeout: time.Second}, 2,
		func(f *fakeConnector) backend.Connector[*fakeConn] { return nilConnector{f} })
	if err := h.claimAfter(time.Second); !errors.Is(err, ErrNoBackendsOnline) {
		t.Fatalf("claim: %v", err)
	}
	st := h.stats()
	if st.Slots.Connected != 0 || st.Failures == 0 {
		t.Fatalf("slots %+v, failures %d", st.Slots, st.Failures)
	}
	var sawNil, sawHalf bool
	for _, b := range st.Backends {
		sawNil = sawNil || strings.Contains(b.LastError, "nil connection")
		sawHalf = sawHalf || strings.Contains(b.LastError, "half open")
	}
	if !sawNil || !sawHalf {
		t.Fatalf("last errors: %+v", st.Backends)
	}
	if n := h.fake.openCount(); n != 0 {
		t.Fatalf("%d connections returned with an error left open", n)
	}
}

// Bad resolvers and contradictory policies get a clear error or a
// documented cap, never a panic or an overflow.
func TestBugPolicyAndNilEdges(t *testing.T) {
	var typedNil *resolver.Fixed
	if _, err := New[*fakeConn](typedNil, newFakeConnector(), Policy{}); err == nil || !strings.Contains(err.Error(), "nil resolver") {
		t.Fatalf("typed-nil resolver: %v", err)
	}
	var nilConn *fakeConnector
	if _, err := New[*fakeConn](resolverFor(1), nilConn, Policy{}); err == nil || !strings.Contains(err.Error(), "nil connector") {
		t.Fatalf("typed-nil connector: %v", err)
	}
	if _, err := New[*fakeConn](resolverFor(1), newFakeConnector(), Policy{MaxSlots: math.MaxInt}); err == nil {
		t.Fatal("MaxSlots MaxInt accepted")
	}
	h := newHarness(t, Policy{MaxSlots: 4, SparesWanted: math.MaxInt, MaxSlotsPerBackend: 100}, 2, nil)
	pol := h.p.EffectivePolicy()
	if pol.SparesWanted != 4 || pol.MaxSlotsPerBackend != 4 {
		t.Fatalf("spares %d, per backend %d; want both capped at MaxSlots 4", pol.SparesWanted, pol.MaxSlotsPerBackend)
	}
	hd := h.claim()
	hd.Release()
	h.settle()
	if st := h.stats(); st.Slots.Total != 4 || st.PolicyError != "" {
		t.Fatalf("slots %+v, policy error %q", st.Slots, st.PolicyError)
	}
}

// loopProbe is a log handler that checks, for each record, that the
// pool's loop is free: it takes it from another goroutine.
type loopProbe struct {
	p       *Pool[*fakeConn]
	records atomic.Int64
	held    atomic.Int64
}

func (l *loopProbe) Enabled(context.Context, slog.Level) bool { return true }
func (l *loopProbe) WithAttrs([]slog.Attr) slog.Handler       { return l }
func (l *loopProbe) WithGroup(string) slog.Handler            { return l }
func (l *loopProbe) Handle(context.Context, slog.Record) error {
	l.records.Add(1)
	if l.p == nil {
		return nil
	}
	free := make(chan struct{})
	go func() {
		l.p.loop.Enter()
		l.p.loop.Leave()
		close(free)
	}()
	select {
	case <-free:
	case <-time.After(5 * time.Second): // a safety net: the record was written with the loop held
		l.held.Add(1)
	}
	return nil
}

// Logging never happens with the loop held.
func TestBugLoggingOffTheLoop(t *testing.T) {
	probe := &loopProbe{}
	h := &harness{t: t, clk: clock.NewMock(), res: resolverFor(3), fake: newFakeConnector()}
	p, err := New(h.res, backend.Connector[*fakeConn](h.fake), Policy{Picker: wildPicker{}},
		WithClock(h.clk), WithLogger(slog.New(probe)), WithObserver(fsm.ObserverFunc(h.observe)))
	if err != nil {
		t.Fatal(err)
	}
	h.p = p
	t.Cleanup(h.close)
	h.settle()
	probe.p = p
	for range 3 {
		h.claim().Release() // the picker's bad choice is logged as a policy error
	}
	if probe.records.Load() == 0 {
		t.Fatal("nothing was logged")
	}
	if n := probe.held.Load(); n != 0 {
		t.Fatalf("%d log records written with the loop held", n)
	}
}

// An observer that panics does not break the pool, nor leave its loop held.
func TestBugPanickingObserverLeavesThePoolWorking(t *testing.T) {
	var panics atomic.Int64
	obs := fsm.ObserverFunc(func(tr fsm.Transition) {
		if tr.EventName() == "connect_ok" {
			panics.Add(1)
			panic("observer")
		}
	})
	p, err := New(resolverFor(2), backend.Connector[*fakeConn](newFakeConnector()), Policy{MaxSlots: 2}, WithObserver(obs))
	if err != nil {
		t.Fatal(err)
	}
	for range 10 {
		hd, err := p.Claim(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		hd.Discard(errors.New("reconnect"))
	}
	if err := p.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	p.loop.WaitIdle()
	if panics.Load() == 0 {
		t.Fatal("the observer never ran")
	}
}

// A backend whose address changes under the same name is dialled at its
// new address, and its connections to the old one are replaced.
func TestBackendAddressChangeIsFollowed(t *testing.T) {
	h := &harness{t: t, clk: clock.NewMock(), fake: newFakeConnector()}
	h.res = resolver.NewFixedBackends(backend.Backend{Name: "db", Addr: addr(1)})
	p, err := New(h.res, backend.Connector[*fakeConn](h.fake), Policy{MaxSlots: 3, SparesWanted: 3},
		WithClock(h.clk), WithStrict(true), WithObserver(fsm.ObserverFunc(h.observe)))
	if err != nil {
		t.Fatal(err)
	}
	h.p = p
	t.Cleanup(h.close)
	h.settle()
	held := h.claim()
	if held.Backend().Addr != addr(1) {
		t.Fatalf("claimed %v", held.Backend())
	}
	h.res.ReplaceBackends(backend.Backend{Name: "db", Addr: addr(2)})
	h.settle()
	held.Release() // its slot reconnects at the new address now
	h.settle()
	h.fake.mu.Lock()
	for c := range h.fake.open {
		if c.b.Addr != addr(2) {
			t.Errorf("connection %d still open to %v", c.id, c.b.Addr)
		}
	}
	n := len(h.fake.open)
	h.fake.mu.Unlock()
	if n != 3 {
		t.Fatalf("%d connections open, want 3", n)
	}
	for range 3 {
		hd := h.claim()
		if hd.Backend().Addr != addr(2) || hd.Backend().Name != "db" {
			t.Fatalf("claimed %s at %v", hd.Backend().Name, hd.Backend().Addr)
		}
		defer hd.Release()
	}
}

// Release or Discard of the nil handle a failed Claim returns panics with
// a message that says so, not with a nil dereference.
func TestNilHandleSaysWhy(t *testing.T) {
	for _, op := range []func(h *Handle[*fakeConn]){func(h *Handle[*fakeConn]) { h.Release() }, func(h *Handle[*fakeConn]) { h.Discard(nil) }} {
		func() {
			defer func() {
				if v := recover(); v == nil || !strings.Contains(fmt.Sprint(v), "nil Handle") {
					t.Fatalf("recovered %v", v)
				}
			}()
			op(nil)
		}()
	}
}

// TestCloseLeavesNoTimerOfTheNewPolicies: a backend ejected (its
// ejection's timer pending), slots queued behind a connect rate (the
// rate's timer pending) and claims queued under load shedding (the shed
// timer pending): after Close, no timer of the pool is left on its loop.
func TestCloseLeavesNoTimerOfTheNewPolicies(t *testing.T) {
	h := newHarness(t, Policy{MaxSlots: 6, MaxSlotsPerBackend: 3, SparesWanted: 6, ConnectRatePerBackend: 0.5,
		TargetClaimDelay: 10 * time.Millisecond, ClaimTimeout: time.Minute,
		Ejection: Ejection{ConsecutiveErrors: 1, MaxEjectedPercent: 50}}, 2, nil)
	hd := h.claim()
	hd.Report(time.Millisecond, errors.New("overloaded"))
	hd.Release()
	h.p.loop.Enter()
	var ejected, queued int
	for _, s := range h.p.order {
		if s.fb.ejected && s.fb.timer.Pending() {
			ejected++
		}
		if len(s.dial.queue) > 0 && s.dial.timer.Pending() {
			queued++
		}
	}
	h.p.loop.Leave()
	if ejected != 1 || queued == 0 {
		t.Fatalf("%d backends ejected, %d with slots queued behind the connect rate; want 1 and some", ejected, queued)
	}
	if err := h.p.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	h.p.loop.Enter()
	next, pending := h.p.loop.NextDeadline()
	h.p.loop.Leave()
	if pending {
		t.Fatalf("a timer due at %v is left on the loop after Close", next)
	}
}

// TestLeastLatencyRetriesARecoveredBackend: a backend whose claimers
// reported it slow lost every power-of-two choice from then on, so it got
// no claim, so no report, and was never tried again after it recovered.
// Its average now decays while the other backends are reported on.
func TestLeastLatencyRetriesARecoveredBackend(t *testing.T) {
	h := newHarness(t, Policy{MaxSlots: 4, MaxSlotsPerBackend: 2, SparesWanted: 4, Picker: LeastLatency{}}, 2, nil)
	defer h.close()
	// Make the first backend that serves a claim the slow one.
	hd := h.claim()
	slow := hd.Backend().Name
	for range 8 {
		hd.Report(100*time.Millisecond, nil)
	}
	hd.Release()
	fast := 0
	for range 2000 {
		hd := h.claim()
		if hd.Backend().Name == slow {
			t.Logf("the slow backend was tried again after %d claims elsewhere", fast)
			hd.Report(time.Millisecond, nil)
			hd.Release()
			return
		}
		fast++
		hd.Report(time.Millisecond, nil)
		hd.Release()
	}
	t.Fatalf("the backend reported slow got none of %d claims after it, though every other backend answered in 1ms", fast)
}

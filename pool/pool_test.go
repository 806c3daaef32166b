package pool

import (
	"context"
	"errors"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/qorbgo/qorb/backend"
	"github.com/qorbgo/qorb/pool/machine"
	"github.com/qorbgo/qorb/slot"
	"github.com/qorbgo/qorb/slotset"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestClaimRelease(t *testing.T) {
	h := newHarness(t, Policy{}, 3, nil)
	st := h.stats()
	if st.State != "running" {
		t.Fatalf("state %s, want running", st.State)
	}
	// Spares (8) spread over the three online backends.
	if st.Slots.Connected != 8 {
		t.Fatalf("connected slots %d, want 8: %+v", st.Slots.Connected, st.Slots)
	}
	hd := h.claim()
	if hd.Conn() == nil || hd.Conn().b != hd.Backend() {
		t.Fatalf("handle conn %+v backend %v", hd.Conn(), hd.Backend())
	}
	if got := h.stats().Slots.Claimed; got != 1 {
		t.Fatalf("claimed %d, want 1", got)
	}
	hd.Release()
	h.settle()
	st = h.stats()
	if st.Slots.Claimed != 0 || st.Claims != 1 {
		t.Fatalf("after release: %+v", st)
	}
	// A second Release is misuse: it does nothing, and is counted.
	hd.Release()
	h.settle()
	if st := h.stats(); st.Misuse != 1 || st.Slots.Claimed != 0 || st.Slots.Connected != st.Slots.Total {
		t.Fatalf("after a second release: misuse %d, slots %+v", st.Misuse, st.Slots)
	}
}

func TestClaimBeforeAnyBackend(t *testing.T) {
	h := newHarness(t, Policy{}, 0, nil)
	got := make(chan error, 1)
	go func() {
		hd, err := h.p.Claim(context.Background())
		if err == nil {
			if hd.Backend().Name != name(1) {
				err = errors.New("claim served by " + string(hd.Backend().Name))
			}
			hd.Release()
		}
		got <- err
	}()
	h.waitUntil("claimer queued", func() bool { return h.p.waiters.n == 1 })
	h.res.Replace(addr(1))
	h.settle()
	if err := <-got; err != nil {
		t.Fatal(err)
	}
}

func TestMoreClaimersThanSlotsAreServedInOrder(t *testing.T) {
	h := newHarness(t, Policy{MaxSlots: 2, SparesWanted: 2}, 1, nil)
	held := []*Handle[*fakeConn]{h.claim(), h.claim()}
	const n = 6
	order := make(chan int, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			hd, err := h.p.Claim(context.Background())
			if err != nil {
				t.Error(err)
				return
			}
			order <- i
			hd.Release()
		}()
		h.waitUntil("claimer queued", func() bool { return h.p.waiters.n == i+1 })
	}
	held[0].Release()
	wg.Wait()
	held[1].Release()
	close(order)
	want := 0
	for i := range order {
		if i != want {
			t.Fatalf("claimer %d served in place %d", i, want)
		}
		want++
	}
	if want != n {
		t.Fatalf("%d claimers served, want %d", want, n)
	}
}

func TestClaimTimeoutKinds(t *testing.T) {
	timeout := 5 * time.Second
	t.Run("no backends", func(t *testing.T) {
		h := newHarness(t, Policy{ClaimTimeout: timeout}, 0, nil)
		err := h.claimAfter(timeout)
		if !errors.Is(err, ErrNoBackends) {
			t.Fatalf("got %v, want ErrNoBackends", err)
		}
		if h.stats().ClaimErrors.NoBackends != 1 {
			t.Fatalf("stats: %+v", h.stats().ClaimErrors)
		}
	})
	t.Run("no backends online", func(t *testing.T) {
		h := newHarness(t, Policy{ClaimTimeout: timeout, DeadAfter: 1000}, 1, func(f *fakeConnector) backend.Connector[*fakeConn] {
			f.fail[name(1)] = errors.New("connection refused")
			return f
		})
		err := h.claimAfter(timeout)
		if !errors.Is(err, ErrNoBackendsOnline) || !strings.Contains(err.Error(), "connection refused") {
			t.Fatalf("got %v, want ErrNoBackendsOnline with the connect error", err)
		}
	})
	t.Run("all claims used", func(t *testing.T) {
		h := newHarness(t, Policy{ClaimTimeout: timeout, MaxSlots: 1}, 1, nil)
		hd := h.claim()
		err := h.claimAfter(timeout)
		if !errors.Is(err, ErrAllClaimsUsed) {
			t.Fatalf("got %v, want ErrAllClaimsUsed", err)
		}
		hd.Release()
	})
	t.Run("failed pool fails fast", func(t *testing.T) {
		h := newHarness(t, Policy{DeadAfter: 3}, 2, func(f *fakeConnector) backend.Connector[*fakeConn] {
			f.fail[name(1)] = errors.New("refused one")
			f.fail[name(2)] = errors.New("refused two")
			return f
		})
		h.advance(time.Second) // three attempts each
		if st := h.stats(); st.State != "failed" {
			t.Fatalf("pool %s, want failed", st.State)
		}
		_, err := h.p.Claim(context.Background())
		var cause error = err
		if !errors.Is(err, ErrNoBackendsOnline) || !strings.Contains(cause.Error(), "refused") {
			t.Fatalf("got %v, want ErrNoBackendsOnline with last error", err)
		}
		// A backend coming back brings the pool back.
		h.fake.set(func(f *fakeConnector) { delete(f.fail, name(2)) })
		h.advance(time.Minute)
		if st := h.stats(); st.State != "running" {
			t.Fatalf("pool %s after recovery, want running", st.State)
		}
		h.claim().Release()
	})
	t.Run("context", func(t *testing.T) {
		h := newHarness(t, Policy{MaxSlots: 1}, 1, nil)
		hd := h.claim()
		ctx, cancel := context.WithCancel(context.Background())
		got := make(chan error, 1)
		go func() { _, err := h.p.Claim(ctx); got <- err }()
		h.waitUntil("queued", func() bool { return h.p.waiters.n == 1 })
		cancel()
		if err := <-got; !errors.Is(err, context.Canceled) {
			t.Fatalf("got %v, want context.Canceled", err)
		}
		hd.Release()
		h.settle()
		if st := h.stats(); st.Slots.Connected != 1 || st.Waiters != 0 {
			t.Fatalf("after cancel: %+v", st)
		}
	})
}

// claimAfter starts a claim, advances the clock by d, and returns its error.
func (h *harness) claimAfter(d time.Duration) error {
	got := make(chan error, 1)
	go func() {
		hd, err := h.p.Claim(context.Background())
		if err == nil {
			hd.Release()
		}
		got <- err
	}()
	h.waitUntil("claimer queued", func() bool { return h.p.waiters.n == 1 })
	h.advance(d)
	return <-got
}

func TestDoneWaiterIsNeverHandedAConnection(t *testing.T) {
	h := newHarness(t, Policy{MaxSlots: 1}, 1, nil)
	hd := h.claim()
	ctx, cancel := context.WithCancel(context.Background())
	got := make(chan error, 1)
	go func() {
		hd, err := h.p.Claim(ctx)
		if err == nil {
			hd.Release()
		}
		got <- err
	}()
	h.waitUntil("queued", func() bool { return h.p.waiters.n == 1 })
	// Cancel with the loop held, so that the release below finds a queued
	// waiter whose context is already done.
	h.p.loop.Enter()
	cancel()
	h.p.loop.Leave()
	hd.Release()
	if err := <-got; !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want context.Canceled", err)
	}
	if st := h.stats(); st.Claims != 1 {
		t.Fatalf("claims %d: the cancelled waiter was served", st.Claims)
	}
}

func TestFailingHealthCheckRemovesBackend(t *testing.T) {
	pol := Policy{SparesWanted: 4, DeadAfter: 2}
	h := newHarness(t, pol, 2, func(f *fakeConnector) backend.Connector[*fakeConn] { return validating{f} })
	if st := h.stats(); st.Backends[0].State != "online" || st.Backends[1].State != "online" {
		t.Fatalf("backends not online: %+v", st.Backends)
	}
	h.fake.set(func(f *fakeConnector) { f.validateErr[name(1)] = errors.New("health: bad") })
	h.advance(pol.withDefaults().HealthInterval + time.Second)
	st := h.stats()
	if b := st.Backends[0]; b.State != "failing" || !b.Dead || !strings.Contains(b.LastError, "health: bad") {
		t.Fatalf("backend 1 after failing checks: %+v", b)
	}
	if h.fake.openTo(name(1)) != 0 {
		t.Fatalf("%d connections still open to the unhealthy backend", h.fake.openTo(name(1)))
	}
	for range 20 {
		hd := h.claim()
		if hd.Backend().Name != name(2) {
			t.Fatalf("claim served by unhealthy %s", hd.Backend().Name)
		}
		hd.Release()
	}
}

func TestBackoffBoundsAndReset(t *testing.T) {
	pol := Policy{SparesWanted: 1, MaxSlots: 1, DeadAfter: 1000, BackoffMin: 20 * time.Millisecond, BackoffMax: time.Second, BackoffJitter: 10 * time.Millisecond}
	h := newHarness(t, pol, 1, func(f *fakeConnector) backend.Connector[*fakeConn] {
		f.fail[name(1)] = errors.New("refused")
		return f
	})
	h.advance(30 * time.Second)
	delays := h.backoffDelaysSince(0)
	if len(delays) < 10 {
		t.Fatalf("only %d retries in 30s", len(delays))
	}
	for i, d := range delays {
		want := min(pol.BackoffMin<<i, pol.BackoffMax)
		if d < want || d >= want+pol.BackoffJitter {
			t.Fatalf("retry %d waited %v, want [%v, %v)", i+1, d, want, want+pol.BackoffJitter)
		}
	}
	// Success resets the backoff: the next failure waits BackoffMin again.
	h.fake.set(func(f *fakeConnector) { delete(f.fail, name(1)) })
	h.advance(2 * time.Second)
	hd := h.claim()
	h.fake.set(func(f *fakeConnector) { f.fail[name(1)] = errors.New("refused again") })
	delays = h.backoffDelays(func() {
		hd.Discard(errors.New("broken"))
		h.advance(time.Second)
	})
	if len(delays) == 0 || delays[0] < pol.BackoffMin || delays[0] >= pol.BackoffMin+pol.BackoffJitter {
		t.Fatalf("first delay after a success %v, want [%v, %v)", delays, pol.BackoffMin, pol.BackoffMin+pol.BackoffJitter)
	}
}

// backoffDelays runs f and returns, from the trace, the time each slot
// spent in failed before its backoff elapsed.
func (h *harness) backoffDelays(f func()) []time.Duration {
	h.mu.Lock()
	start := len(h.trace)
	h.mu.Unlock()
	f()
	return h.backoffDelaysSince(start)
}

func (h *harness) backoffDelaysSince(start int) []time.Duration {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []time.Duration
	failedAt := map[string]time.Time{}
	for _, tr := range h.trace[start:] {
		st, ok := slot.Kind.Step(tr)
		if !ok {
			continue
		}
		if st.To == slot.Failed {
			failedAt[tr.ID] = tr.At
		}
		if at, ok := failedAt[tr.ID]; ok && st.Event == slot.BackoffElapsed {
			out = append(out, tr.At.Sub(at))
		}
	}
	return out
}

func TestRemovedBackendDrains(t *testing.T) {
	h := newHarness(t, Policy{}, 2, nil)
	var held *Handle[*fakeConn]
	for held == nil {
		hd := h.claim()
		if hd.Backend().Name == name(1) {
			held = hd
			continue
		}
		defer hd.Release()
	}
	h.res.Replace(addr(2))
	h.settle()
	st := h.stats()
	if b := st.Backends[0]; b.Name != string(name(1)) || b.State != "draining" || b.Slots.Total != 1 || b.Slots.Claimed != 1 {
		t.Fatalf("removed backend: %+v", st.Backends)
	}
	if h.fake.openTo(name(1)) != 1 {
		t.Fatalf("%d open to the draining backend, want only the claimed one", h.fake.openTo(name(1)))
	}
	for range 10 {
		hd := h.claim()
		if hd.Backend().Name != name(2) {
			t.Fatalf("claim from removed backend %s", hd.Backend().Name)
		}
		hd.Release()
	}
	if held.Conn().closed.Load() {
		t.Fatal("claimed connection closed while draining")
	}
	held.Release()
	h.settle()
	if h.fake.openTo(name(1)) != 0 || len(h.stats().Backends) != 1 {
		t.Fatalf("drained backend not gone: %+v", h.stats().Backends)
	}
	if h.count("set", "drained") != 1 {
		t.Fatal("no drained transition")
	}
	// Listed again, it comes back.
	h.res.Replace(addr(1), addr(2))
	h.settle()
	if st := h.stats(); len(st.Backends) != 2 || st.Backends[0].State != slotset.Online.String() {
		t.Fatalf("re-added backend: %+v", st.Backends)
	}
}

func TestCloseWaitsForClaimedThenForces(t *testing.T) {
	h := newHarness(t, Policy{}, 2, nil)
	a, b := h.claim(), h.claim()
	bConn := b.Conn()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.p.Close(ctx) }()
	h.waitUntil("stopping with only claimed slots left", func() bool {
		return h.p.state.Get() == machine.Stopping && h.p.nslots == 2 && h.p.loop.InFlight() == 0
	})
	if _, err := h.p.Claim(context.Background()); !errors.Is(err, ErrClosed) {
		t.Fatalf("claim while closing: %v", err)
	}
	a.Release() // closed on release
	h.waitUntil("released slot stopped", func() bool { return h.p.nslots == 1 })
	cancel()
	err := <-done
	if !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "1 claimed") {
		t.Fatalf("Close: %v", err)
	}
	if b.Conn() != bConn {
		t.Fatal("the handle's connection changed under its claimer")
	}
	h.p.loop.WaitIdle() // the forced close runs off Close
	if !bConn.closed.Load() {
		t.Fatal("claimed connection left open after Close")
	}
	b.Release() // a no-op now
	if n := h.fake.openCount(); n != 0 {
		t.Fatalf("%d connections open after Close", n)
	}
	if h.fake.doubleClose != 0 {
		t.Fatalf("%d connections closed twice", h.fake.doubleClose)
	}
	if err := h.p.Close(context.Background()); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if st := h.stats(); st.State != "stopped" {
		t.Fatalf("state %s", st.State)
	}
}

func TestCloseWithHangingConnector(t *testing.T) {
	fake := newFakeConnector()
	fake.hang[name(1)] = true
	fake.hangHonours = false // ignores its context
	p, err := New(resolverFor(1), backend.Connector[*fakeConn](fake), Policy{}, WithStrict(true))
	if err != nil {
		t.Fatal(err)
	}
	for {
		fake.mu.Lock()
		n := fake.hanging
		fake.mu.Unlock()
		if n > 0 {
			break
		}
		runtime.Gosched()
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := p.Close(ctx); err != nil && !errors.Is(err, context.Canceled) {
		t.Fatalf("Close: %v", err)
	}
	fake.finished.Store(true)
	close(fake.unhang) // the connects return connections now
	p.loop.WaitIdle()
	if n := fake.lateCalls.Load(); n != 0 {
		t.Fatalf("connector called %d times after Close returned", n)
	}
	// The connection that arrived after Close was closed as it arrived.
	if n, open := fake.lateCloses.Load(), fake.openCount(); n != 1 || open != 0 {
		t.Fatalf("%d closes after Close returned, %d connections open", n, open)
	}
	if st := p.Stats(); st.State != "stopped" {
		t.Fatalf("state %s", st.State)
	}
}

func TestCloseLeavesNothingOpen(t *testing.T) {
	h := newHarness(t, Policy{}, 3, func(f *fakeConnector) backend.Connector[*fakeConn] { return validating{f} })
	for range 5 {
		h.claim().Release()
	}
	h.settle()
	if err := h.p.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := h.fake.openCount(); n != 0 {
		t.Fatalf("%d open after Close", n)
	}
	h.fake.mu.Lock()
	defer h.fake.mu.Unlock()
	if h.fake.connects != h.fake.closes || h.fake.doubleClose != 0 {
		t.Fatalf("connects %d closes %d double %d", h.fake.connects, h.fake.closes, h.fake.doubleClose)
	}
}

func TestPolicyValidation(t *testing.T) {
	for _, tc := range []struct {
		p    Policy
		want string
	}{
		{Policy{MaxSlots: -1}, "MaxSlots"},
		{Policy{BackoffMin: time.Second, BackoffMax: time.Millisecond}, "BackoffMin"},
		{Policy{ClaimTimeout: -time.Second}, "ClaimTimeout"},
		{Policy{SparesWanted: -3, HealthInterval: -1}, "HealthInterval"},
		{Policy{MaxSlots: 4, MinSlots: 5}, "MinSlots (5) is above MaxSlots (4)"},
		{Policy{MaxConnLifetime: time.Minute, MaxConnLifetimeJitter: 2 * time.Minute}, "MaxConnLifetimeJitter"},
		{Policy{MaxConnLifetimeJitter: time.Second}, "MaxConnLifetimeJitter (1s) is above MaxConnLifetime (0s)"},
		{Policy{TargetClaimDelay: time.Second, ClaimTimeout: 2 * time.Second}, "twice TargetClaimDelay"},
		{Policy{TargetClaimDelay: -time.Second}, "TargetClaimDelay"},
		{Policy{MinSlots: -1}, "MinSlots"},
		{Policy{ConnectRatePerBackend: -1}, "ConnectRatePerBackend"},
		{Policy{MaxConnectingPerBackend: -2}, "MaxConnectingPerBackend"},
		{Policy{MaxWaiters: -1}, "MaxWaiters is -1"},
		{Policy{LeakThreshold: 100}, "LeakThreshold is 100ns"},
		{Policy{HeldStacks: true}, "HeldStacks is set without TrackHeld"},
		{Policy{CircuitBreakAfter: 10}, "CircuitBreakAfter is 10ns"},
		// Periods and deadlines below a millisecond: a unit left out.
		{Policy{HealthInterval: 1}, "HealthInterval is 1ns; it must be at least 1ms"},
		{Policy{ConnectTimeout: 30}, "ConnectTimeout is 30ns"},
		{Policy{HealthTimeout: time.Microsecond}, "HealthTimeout is 1µs"},
		{Policy{RebalanceInterval: 60}, "RebalanceInterval is 60ns"},
		{Policy{DecoherenceInterval: 999 * time.Microsecond}, "DecoherenceInterval"},
		{Policy{TargetClaimDelay: time.Millisecond, ClaimDelayInterval: 100}, "ClaimDelayInterval is 100ns"},
	} {
		_, err := New(resolverFor(1), newFakeConnector(), tc.p)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("policy %+v: got %v, want an error naming %s", tc.p, err, tc.want)
		}
	}
	if _, err := New[*fakeConn](nil, newFakeConnector(), Policy{}); err == nil {
		t.Error("nil resolver accepted")
	}
}

func TestCancellingAClaimNeverCancelsAConnect(t *testing.T) {
	h := startHarnessNoSettle(t, Policy{MaxSlots: 1, SparesWanted: 1}, 1, func(f *fakeConnector) backend.Connector[*fakeConn] {
		f.hang[name(1)] = true // returns early only if its context ends
		return f
	})
	ctx, cancel := context.WithCancel(context.Background())
	got := make(chan error, 1)
	go func() { _, err := h.p.Claim(ctx); got <- err }()
	h.waitUntil("claimer queued behind the connect", func() bool { return h.p.waiters.n == 1 })
	cancel()
	if err := <-got; !errors.Is(err, context.Canceled) {
		t.Fatalf("claim: %v", err)
	}
	h.fake.set(func(f *fakeConnector) { delete(f.hang, name(1)) })
	close(h.fake.unhangOnce())
	h.settle()
	if n := h.count("slot", "connect_err"); n != 0 {
		t.Fatalf("the connect failed %d times after the claim was cancelled", n)
	}
	if st := h.stats(); st.Slots.Connected != 1 || st.Connects != 1 {
		t.Fatalf("after the connect completed: %+v", st.Slots)
	}
	h.claim().Release()
}

// TestSlotDrawsDoNotDependOnOtherBackends checks that each slot draws from
// its own random stream: the backoff delays of a failing backend's slot are
// the same whether or not another backend, with slots drawing jitter of
// their own, is in the pool.
func TestSlotDrawsDoNotDependOnOtherBackends(t *testing.T) {
	pol := Policy{SparesWanted: 2, MaxSlots: 2, MaxSlotsPerBackend: 1, DeadAfter: 1000, HealthInterval: 100 * time.Millisecond,
		BackoffMin: 20 * time.Millisecond, BackoffMax: 200 * time.Millisecond, BackoffJitter: 10 * time.Millisecond}
	delays := func(backends int) []time.Duration {
		h := newHarness(t, pol, backends, func(f *fakeConnector) backend.Connector[*fakeConn] {
			f.fail[name(1)] = errors.New("refused")
			return f
		})
		h.advance(5 * time.Second)
		if backends > 1 {
			for _, b := range h.stats().Backends {
				if b.Name == string(name(2)) && b.Slots.Connected+b.Slots.Checking == 0 {
					t.Fatalf("%s has no connected slot drawing health-check jitter", b.Name)
				}
			}
		}
		return h.slotBackoffDelays(string(name(1)) + "/0")
	}
	alone, shared := delays(1), delays(2)
	if len(alone) < 10 {
		t.Fatalf("only %d retries", len(alone))
	}
	jittered := false
	for i, d := range alone {
		if d != min(pol.BackoffMin<<i, pol.BackoffMax) {
			jittered = true
		}
	}
	if !jittered {
		t.Fatalf("no jitter drawn: %v", alone)
	}
	if n := min(len(alone), len(shared)); n < 10 || !slices.Equal(alone[:n], shared[:n]) {
		t.Fatalf("backoff delays of %s/0 depend on the other backends:\nalone  %v\nshared %v", name(1), alone, shared)
	}
}

// slotBackoffDelays returns, from the trace, the time slot id spent in
// failed before each of its backoffs elapsed.
func (h *harness) slotBackoffDelays(id string) []time.Duration {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []time.Duration
	var failedAt time.Time
	for _, tr := range h.trace {
		st, ok := slot.Kind.Step(tr)
		if !ok || tr.ID != id || st.Created {
			continue
		}
		if st.To == slot.Failed {
			failedAt = tr.At
		}
		if st.Event == slot.BackoffElapsed {
			out = append(out, tr.At.Sub(failedAt))
		}
	}
	return out
}

func TestConnHooksOfAnotherTypeAreRefused(t *testing.T) {
	_, err := New(resolverFor(1), newFakeConnector(), Policy{}, WithConnHooks[int](func(backend.Backend, int) {}, nil))
	if err == nil || !strings.Contains(err.Error(), "WithConnHooks") {
		t.Fatalf("New with hooks of int connections for a pool of *fakeConn: %v; want an error naming WithConnHooks", err)
	}
}

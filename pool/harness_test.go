package pool

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/benbjohnson/clock"

	"github.com/qorbgo/qorb/backend"
	"github.com/qorbgo/qorb/fsm"
	"github.com/qorbgo/qorb/resolver"
	"github.com/qorbgo/qorb/slot"
	"github.com/qorbgo/qorb/slotset"
)

// fakeConn is a connection of the fake connector.
type fakeConn struct {
	id     int
	b      backend.Backend
	closed atomic.Bool
}

// fakeConnector opens fake connections and can be told, per backend, to
// fail, hang, or fail validation. It checks that every connection it opened
// is closed exactly once, and counts calls made after the pool closed.
type fakeConnector struct {
	mu          sync.Mutex
	next        int
	open        map[*fakeConn]bool
	fail        map[backend.Name]error
	hang        map[backend.Name]bool
	hangHonours bool          // a hung connect returns when its context ends
	unhang      chan struct{} // closing it releases every hung connect
	hanging     int
	validateErr map[backend.Name]error
	connects    int
	closes      int
	doubleClose int
	lateCalls   atomic.Int64 // calls but Close after the pool's Close returned
	lateCloses  atomic.Int64 // Close calls after the pool's Close returned
	finished    atomic.Bool
	limit       int // connections open or opening at once, when positive
	connecting  int
	overLimit   int // times open + opening exceeded limit
	overWhat    string
}

func newFakeConnector() *fakeConnector {
	return &fakeConnector{
		open:        map[*fakeConn]bool{},
		fail:        map[backend.Name]error{},
		hang:        map[backend.Name]bool{},
		validateErr: map[backend.Name]error{},
		unhang:      make(chan struct{}),
		hangHonours: true,
	}
}

func (f *fakeConnector) Connect(ctx context.Context, b backend.Backend) (*fakeConn, error) {
	if f.finished.Load() {
		f.lateCalls.Add(1)
	}
	f.mu.Lock()
	f.connects++
	f.connecting++
	if f.limit > 0 && len(f.open)+f.connecting > f.limit {
		f.overLimit++
		f.overWhat = fmt.Sprintf("connect to %s with %d connecting and open:", b.Name, f.connecting)
		for c := range f.open {
			f.overWhat += fmt.Sprintf(" %d@%s", c.id, c.b.Name)
		}
	}
	opened := false
	defer func() {
		if !opened {
			f.mu.Lock()
			f.connecting--
			f.mu.Unlock()
		}
	}()
	err := f.fail[b.Name]
	hang := f.hang[b.Name]
	if hang {
		f.hanging++
	}
	f.mu.Unlock()
	if hang {
		if f.hangHonours {
			select {
			case <-ctx.Done():
				return nil, ctx.Err()
			case <-f.unhang:
			}
		} else {
			<-f.unhang
		}
	}
	if err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.next++
	c := &fakeConn{id: f.next, b: b}
	f.open[c] = true
	f.connecting-- // counted as open from now on
	opened = true
	return c, nil
}

func (f *fakeConnector) Close(c *fakeConn) error {
	if f.finished.Load() {
		f.lateCloses.Add(1)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.closes++
	if c.closed.Swap(true) {
		f.doubleClose++
	}
	delete(f.open, c)
	return nil
}

func (f *fakeConnector) set(fn func(f *fakeConnector)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(f)
}

func (f *fakeConnector) openCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.open)
}

func (f *fakeConnector) openTo(name backend.Name) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for c := range f.open {
		if c.b.Name == name {
			n++
		}
	}
	return n
}

// validating adds a Validator to the fake connector.
type validating struct{ *fakeConnector }

func (v validating) Validate(ctx context.Context, c *fakeConn) error {
	if v.finished.Load() {
		v.lateCalls.Add(1)
	}
	if c.closed.Load() {
		return errors.New("validate on a closed connection")
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.validateErr[c.b.Name]
}

func addr(i int) netip.AddrPort {
	return netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(7000+i))
}

func name(i int) backend.Name { return backend.Name(addr(i).String()) }

func addrs(n int) []netip.AddrPort {
	out := make([]netip.AddrPort, n)
	for i := range out {
		out[i] = addr(i + 1)
	}
	return out
}

// harness is a pool on a mock clock with a fake connector and a fixed
// resolver. Every transition is checked against the pool's invariants.
type harness struct {
	t     reporter
	clk   *clock.Mock
	res   *resolver.Fixed
	fake  *fakeConnector
	p     *Pool[*fakeConn]
	trace []fsm.Transition
	mu    sync.Mutex
}

func newHarness(t *testing.T, pol Policy, nBackends int, wrap func(*fakeConnector) backend.Connector[*fakeConn], opts ...Option) *harness {
	t.Helper()
	h := startHarness(t, pol, nBackends, wrap, opts...)
	t.Cleanup(h.close)
	return h
}

// reporter is what the harness needs of a *testing.T or a *rapid.T.
type reporter interface {
	Helper()
	Errorf(format string, args ...any)
	Fatalf(format string, args ...any)
}

func startHarness(t reporter, pol Policy, nBackends int, wrap func(*fakeConnector) backend.Connector[*fakeConn], opts ...Option) *harness {
	t.Helper()
	h := &harness{t: t, clk: clock.NewMock(), res: resolver.NewFixed(addrs(nBackends)...), fake: newFakeConnector()}
	var c backend.Connector[*fakeConn] = h.fake
	if wrap != nil {
		c = wrap(h.fake)
	}
	p, err := New(h.res, c, pol, append([]Option{WithClock(h.clk), WithSeed(7), WithObserver(fsm.ObserverFunc(h.observe)), WithStrict(true)}, opts...)...)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	h.p = p
	p.loop.Enter()
	p.loop.OnEventEnd(h.check)
	p.loop.Leave()
	h.settle()
	return h
}

// close closes the pool at once and releases hung connects.
func (h *harness) close() {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_ = h.p.Close(ctx)
	close(h.fake.unhangOnce())
	h.p.loop.WaitIdle()
}

func (f *fakeConnector) unhangOnce() chan struct{} {
	f.mu.Lock()
	defer f.mu.Unlock()
	select {
	case <-f.unhang:
		return make(chan struct{})
	default:
		return f.unhang
	}
}

// observe records the trace and checks the invariants after every
// transition, with the loop held.
func (h *harness) observe(tr fsm.Transition) {
	h.mu.Lock()
	h.trace = append(h.trace, tr)
	h.mu.Unlock()
	if tr.Impossible {
		h.t.Errorf("impossible transition: %v", tr)
	}
}

// check runs at the end of every event, with the loop held.
func (h *harness) check() {
	if err := h.p.checkInvariants(); err != nil {
		h.mu.Lock()
		last := fsm.Transition{}
		if len(h.trace) > 0 {
			last = h.trace[len(h.trace)-1]
		}
		h.mu.Unlock()
		h.t.Errorf("after %v: %v", last, err)
		h.mu.Lock()
		tail := h.trace[max(0, len(h.trace)-40):]
		h.mu.Unlock()
		for _, tr := range tail {
			h.t.Errorf("  trace: %v", tr)
		}
	}
}

// settle runs the pool to quiescence at the current mock time: every I/O
// completion has run and no timer is due.
func (h *harness) settle() {
	for {
		h.p.loop.WaitIdle()
		h.p.loop.Enter()
		n := h.p.loop.RunDue()
		idle := h.p.loop.InFlight() == 0
		h.p.loop.Leave()
		if n == 0 && idle {
			return
		}
	}
}

// advance moves the mock clock forward by d, stopping at every deadline on
// the way so that timers fire at their own times.
func (h *harness) advance(d time.Duration) {
	end := h.clk.Now().Add(d)
	for {
		h.settle()
		h.p.loop.Enter()
		next, ok := h.p.loop.NextDeadline()
		h.p.loop.Leave()
		if !ok || next.After(end) {
			break
		}
		if next.After(h.clk.Now()) {
			h.clk.Set(next)
		}
	}
	h.clk.Set(end)
	h.settle()
}

func (h *harness) stats() Stats { return h.p.Stats() }

func (h *harness) claim() *Handle[*fakeConn] {
	h.t.Helper()
	hd, err := h.p.Claim(context.Background())
	if err != nil {
		h.t.Fatalf("claim: %v", err)
	}
	return hd
}

// waitUntil yields until cond holds, with the loop held while it is
// evaluated. It is for states reached by other goroutines (a claimer
// joining the queue); it never sleeps.
func (h *harness) waitUntil(what string, cond func() bool) {
	h.t.Helper()
	for i := 0; ; i++ {
		h.p.loop.Enter()
		ok := cond()
		h.p.loop.Leave()
		if ok {
			return
		}
		if i > 10_000_000 {
			h.t.Fatalf("never reached: %s", what)
		}
		runtime.Gosched()
	}
}

// transitions returns the recorded transitions of one machine id matching event.
func (h *harness) count(machine, event string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for _, tr := range h.trace {
		if tr.Kind() == machine && tr.EventName() == event {
			n++
		}
	}
	return n
}

// checkInvariants verifies the pool's bookkeeping. It runs with the loop held.
func (p *Pool[C]) checkInvariants() error {
	total, claimed := 0, 0
	for _, s := range p.order {
		if len(s.slots) > p.pol.MaxSlotsPerBackend {
			return fmt.Errorf("backend %s has %d slots, cap %d", s.b.Name, len(s.slots), p.pol.MaxSlotsPerBackend)
		}
		live, cl, retiring := 0, 0, 0
		for i, sl := range s.slots {
			if int(sl.pos) != i || sl.set != s {
				return fmt.Errorf("slot %s misplaced", sl.ID())
			}
			if sl.State() == slot.Stopped {
				return fmt.Errorf("stopped slot %s still in its set", sl.ID())
			}
			if sl.State().HasConn() {
				live++
			}
			if sl.State() == slot.Claimed {
				cl++
			}
			if sl.Retiring() {
				retiring++
			}
			if (sl.idlePos >= 0) != (sl.State() == slot.Connected) {
				return fmt.Errorf("slot %s idle index %d in state %s", sl.ID(), sl.idlePos, sl.State())
			}
		}
		for i, sl := range s.idle {
			if int(sl.idlePos) != i || sl.State() != slot.Connected {
				return fmt.Errorf("idle stack of %s holds %s in %s", s.b.Name, sl.ID(), sl.State())
			}
		}
		if live != s.Live() || cl != s.Claimed || retiring != s.Retiring {
			return fmt.Errorf("backend %s counts live %d/%d claimed %d/%d retiring %d/%d", s.b.Name, live, s.Live(), cl, s.Claimed, retiring, s.Retiring)
		}
		if (s.State() == slotset.Online) != (live > 0) && s.State() != slotset.Draining && s.State() != slotset.Stopped {
			return fmt.Errorf("backend %s is %s with %d live slots", s.b.Name, s.State(), live)
		}
		total += len(s.slots)
		claimed += cl
	}
	orphans := 0
	for _, s := range p.order {
		if len(s.slots)+s.Orphans > p.pol.MaxSlotsPerBackend {
			return fmt.Errorf("backend %s: %d slots and %d orphans, cap %d", s.b.Name, len(s.slots), s.Orphans, p.pol.MaxSlotsPerBackend)
		}
		orphans += s.Orphans
	}
	if orphans != p.orphans {
		return fmt.Errorf("orphans %d/%d", orphans, p.orphans)
	}
	if total+orphans > p.pol.MaxSlots {
		return fmt.Errorf("%d slots and %d orphans, MaxSlots %d", total, orphans, p.pol.MaxSlots)
	}
	if total != p.nslots || claimed != p.nclaimed {
		return fmt.Errorf("pool counts slots %d/%d claimed %d/%d", total, p.nslots, claimed, p.nclaimed)
	}
	if total > p.pol.MaxSlots {
		return fmt.Errorf("%d slots, MaxSlots %d", total, p.pol.MaxSlots)
	}
	return p.lcCheck()
}

func resolverFor(n int) *resolver.Fixed { return resolver.NewFixed(addrs(n)...) }

func runtimeGosched() { runtime.Gosched() }

// startHarnessNoSettle is newHarness for connectors that hang: it does not
// wait for the first connects.
func startHarnessNoSettle(t *testing.T, pol Policy, nBackends int, wrap func(*fakeConnector) backend.Connector[*fakeConn]) *harness {
	t.Helper()
	h := &harness{t: t, clk: clock.NewMock(), res: resolver.NewFixed(addrs(nBackends)...), fake: newFakeConnector()}
	p, err := New(h.res, wrap(h.fake), pol, WithClock(h.clk), WithSeed(7), WithObserver(fsm.ObserverFunc(h.observe)), WithStrict(true))
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	h.p = p
	p.loop.Enter()
	p.loop.OnEventEnd(h.check)
	p.loop.Leave()
	t.Cleanup(h.close)
	return h
}

// advanceNoWait moves the clock and fires due timers without waiting for
// I/O in flight (which may hang).
func (h *harness) advanceNoWait(d time.Duration) {
	h.clk.Set(h.clk.Now().Add(d))
	h.p.loop.Enter()
	h.p.loop.RunDue()
	h.p.loop.Leave()
}

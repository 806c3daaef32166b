package dns

import (
	"log/slog"
	"math/rand/v2"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/benbjohnson/clock"

	"github.com/qorbgo/qorb/backend"
	"github.com/qorbgo/qorb/fsm"
	"github.com/qorbgo/qorb/resolver"
)

// testHost is a resolver.Host on a loop with a mock clock whose real timer
// is halted: timers fire only when a test advances the clock and runs them.
// It runs the resolver machine as a pool does, and records its trace.
type testHost struct {
	t       *testing.T
	clk     *clock.Mock
	loop    *fsm.Loop
	rng     *rand.Rand
	machine resolver.Tracker
	updates [][]backend.Backend
	errs    []error
	trace   []string // "from --event--> to"
}

func newHost(t *testing.T) *testHost {
	h := &testHost{t: t, clk: clock.NewMock()}
	h.loop = fsm.NewLoop(fsm.Config{Clock: h.clk, Seed: 1, Strict: true})
	h.rng = h.loop.NewRand("resolver", "test")
	h.loop.Enter()
	h.loop.Halt()
	h.loop.AddObserver(fsm.ObserverFunc(func(tr fsm.Transition) {
		h.trace = append(h.trace, tr.FromName()+" --"+tr.EventName()+"--> "+tr.ToName())
	}))
	h.loop.Leave()
	return h
}

const hostID = "test"

func (h *testHost) Querying() { h.machine.Querying(h.loop, hostID) }

// Update records the sets that differ from the last, as a pool applies
// only those.
func (h *testHost) Update(bs []backend.Backend) {
	h.machine.Answered(h.loop, hostID)
	if n := len(h.updates); n == 0 || !slices.Equal(h.updates[n-1], bs) {
		h.updates = append(h.updates, slices.Clone(bs))
	}
}

func (h *testHost) ReportError(err error) {
	h.machine.Failed(h.loop, hostID)
	h.errs = append(h.errs, err)
}

func (h *testHost) NewTimer(f func()) resolver.Timer {
	t := &loopTimer{l: h.loop}
	t.t.Init(f)
	return t
}

func (h *testHost) Go(q func() func()) {
	h.loop.Spawn(fsm.Action{Kind: fsm.Query, ID: hostID}, q)
}

func (h *testHost) Now() time.Time   { return h.loop.Now() }
func (h *testHost) Rand() *rand.Rand { return h.rng }
func (h *testHost) Log(level slog.Level, msg string, args ...any) {
	h.loop.Log(nil, level, msg, args...)
}
func (h *testHost) Do(f func()) { h.locked(f) }

// stopped stops r and its machine, as a pool does.
func (h *testHost) stopResolver(r *Resolver) {
	r.Stop()
	h.machine.Stop(h.loop, hostID)
}

type loopTimer struct {
	l *fsm.Loop
	t fsm.Timer
}

func (t *loopTimer) Reset(d time.Duration) { t.l.After(&t.t, d) }
func (t *loopTimer) Stop()                 { t.l.Cancel(&t.t) }

// locked runs f with the loop held.
func (h *testHost) locked(f func()) {
	h.loop.Enter()
	defer h.loop.Leave()
	f()
}

// start starts r and waits until its first round is over.
func (h *testHost) start(r *Resolver) {
	h.locked(func() { r.Start(h) })
	h.loop.WaitIdle()
}

// stop stops r.
func (h *testHost) stop(r *Resolver) {
	h.locked(func() { h.stopResolver(r) })
	h.loop.WaitIdle()
}

// nextIn returns how long from now the next timer is due.
func (h *testHost) nextIn() time.Duration {
	var d time.Duration
	h.locked(func() {
		when, ok := h.loop.NextDeadline()
		if !ok {
			h.t.Fatal("no timer pending")
		}
		d = when.Sub(h.clk.Now())
	})
	return d
}

// pending reports whether a timer is pending.
func (h *testHost) pending() bool {
	var ok bool
	h.locked(func() { _, ok = h.loop.NextDeadline() })
	return ok
}

// advance moves the clock by d, fires what is due and waits for the queries
// it started.
func (h *testHost) advance(d time.Duration) {
	h.clk.Add(d)
	h.locked(func() { h.loop.RunDue() })
	h.loop.WaitIdle()
}

// requery advances to the next timer (the re-query) and waits for its
// round.
func (h *testHost) requery() { h.advance(h.nextIn()) }

// stats reads r's Stats with the loop held.
func (h *testHost) stats(r *Resolver) resolver.Stats {
	var st resolver.Stats
	h.locked(func() {
		st = r.Stats()
		st.State = h.machine.State().String()
	})
	return st
}

// last is the last update; it fails the test when there was none.
func (h *testHost) last() []backend.Backend {
	h.t.Helper()
	if len(h.updates) == 0 {
		h.t.Fatal("no update")
	}
	return h.updates[len(h.updates)-1]
}

// names lists the backends' names.
func names(bs []backend.Backend) []string {
	out := make([]string, len(bs))
	for i, b := range bs {
		out[i] = string(b.Name)
	}
	return out
}

func ap(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }

// Record types, short.
const (
	typeA     = 1
	typeCNAME = 5
	typeAAAA  = 28
	typeSRV   = 33
)

package dns

import (
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
type testHost struct {
	t       *testing.T
	clk     *clock.Mock
	loop    *fsm.Loop
	updates [][]backend.Backend
	trace   []string // "from --event--> to"
}

func newHost(t *testing.T) *testHost {
	h := &testHost{t: t, clk: clock.NewMock()}
	h.loop = fsm.NewLoop(fsm.Config{Clock: h.clk, Seed: 1, Strict: true})
	h.loop.Enter()
	h.loop.Halt()
	h.loop.AddObserver(fsm.ObserverFunc(func(tr fsm.Transition) {
		h.trace = append(h.trace, tr.FromName()+" --"+tr.EventName()+"--> "+tr.ToName())
	}))
	h.loop.Leave()
	return h
}

func (h *testHost) Loop() *fsm.Loop { return h.loop }

func (h *testHost) Update(bs []backend.Backend) { h.updates = append(h.updates, slices.Clone(bs)) }

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
	h.locked(r.Stop)
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
	h.locked(func() { st = r.Stats() })
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

package pool

import (
	"github.com/qorbgo/qorb/core"
	"github.com/qorbgo/qorb/fsm"
	"github.com/qorbgo/qorb/slot"
	"github.com/qorbgo/qorb/slotset"
)

// dialGate limits the connects to one backend (go-redis's
// MaxConcurrentDials, cueball's maxChurnRate): at most
// Policy.MaxConnectingPerBackend in flight, and at most
// Policy.ConnectRatePerBackend a second on average, with a burst of one
// second's worth; and none at all while the backend holds connects off
// (it refused one as overloaded, with a retry-after: backend.Overloaded).
// A slot that may not connect yet waits, in the declared state waiting, in
// its backend's queue; the first in the queue connects when a connect of
// the backend ends, the rate allows one more, or the hold ends.
type dialGate[C any] struct {
	core.ConnectGate             // connects (and first checks) in flight, stale ones included; the rate's tokens
	queue            []*pslot[C] // slots waiting to connect, first come first
	timer            fsm.Timer   // when the rate allows the next connect
}

// dialLimited reports whether the policy limits connects at all.
func (p *Pool[C]) dialLimited() bool {
	return p.pol.MaxConnectingPerBackend > 0 || p.pol.ConnectRatePerBackend > 0
}

// dial starts the connect of a slot in connecting now, or queues it
// (waiting) until its backend's limits allow one.
func (p *Pool[C]) dial(sl *pslot[C]) {
	s := sl.set
	if !p.dialLimited() && len(s.dial.queue) == 0 && !s.dial.Held(p.loop.Nanos()) && !p.failingBusy(s, sl) {
		p.connect(sl)
		return
	}
	if len(s.dial.queue) == 0 && p.dialAllowed(s, sl) {
		p.connect(sl)
		return
	}
	sl.fire(slot.Wait)
	s.dial.queue = append(s.dial.queue, sl)
	if s.State() == slotset.Failing {
		// No connect to it in flight or backing off: the first waiting
		// slot tries.
		p.dialNext(s)
		return
	}
	p.armDial(s)
}

// dialAllowed reports whether s may start one more connect now, and if so
// takes the rate's token for it.
func (p *Pool[C]) dialAllowed(s *set[C], sl *pslot[C]) bool {
	if p.failingBusy(s, sl) {
		return false
	}
	return s.dial.Allow(p.loop.Nanos(), p.pol.MaxConnectingPerBackend, p.pol.ConnectRatePerBackend)
}

// failingBusy reports whether s is failing and a slot other than sl is
// connecting to it or backing off from it: while connects to a backend
// fail, one connect to it is in flight at a time, and the other slots
// wait until it comes online (or the slot that tries stops).
func (p *Pool[C]) failingBusy(s *set[C], sl *pslot[C]) bool {
	if s.State() != slotset.Failing {
		return false
	}
	for _, o := range s.slots {
		if o != sl && (o.State() == slot.Connecting || o.State() == slot.Failed) {
			return true
		}
	}
	return false
}

// dialDone records the end of a connect of s, and lets the next waiting
// slot of s connect if the limits allow.
func (p *Pool[C]) dialDone(s *set[C]) {
	if !p.dialLimited() {
		return
	}
	s.dial.Done()
	p.dialNext(s)
}

// dialNext starts the connects of the slots first in s's queue, as many
// as the limits allow; slots that stopped meanwhile leave the queue.
func (p *Pool[C]) dialNext(s *set[C]) {
	g := &s.dial
	for len(g.queue) > 0 {
		sl := g.queue[0]
		if sl.State() != slot.Waiting || sl.set != s {
			g.queue = g.queue[1:] // stopped, or moved on
			continue
		}
		if !p.dialAllowed(s, sl) {
			break
		}
		g.queue[0] = nil
		g.queue = g.queue[1:]
		if sl.fire(slot.Ready) {
			p.connect(sl)
		}
	}
	p.armDial(s)
}

// armDial points s's dial timer at the moment the rate allows the next
// connect, while slots wait for one and the rate is what holds them.
func (p *Pool[C]) armDial(s *set[C]) {
	g := &s.dial
	at, ok := g.Next(p.loop.Nanos(), p.pol.MaxConnectingPerBackend, p.pol.ConnectRatePerBackend)
	if len(g.queue) == 0 || !ok {
		p.loop.Cancel(&g.timer)
		return
	}
	p.loop.AtNanos(&g.timer, at)
}

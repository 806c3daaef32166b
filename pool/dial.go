package pool

import (
	"math"
	"time"

	"github.com/qorbgo/qorb/fsm"
	"github.com/qorbgo/qorb/slot"
)

// dialGate limits the connects to one backend (go-redis's
// MaxConcurrentDials, cueball's maxChurnRate): at most
// Policy.MaxConnectingPerBackend in flight, and at most
// Policy.ConnectRatePerBackend a second on average, with a burst of one
// second's worth. A slot that may not connect yet waits, in the declared
// state waiting, in its backend's queue; the first in the queue connects
// when a connect of the backend ends or the rate allows one more.
type dialGate[C any] struct {
	dialing int         // connects (and first checks) in flight, stale ones included
	tokens  float64     // connects the rate allows now
	filled  int64       // when tokens was last refilled (stamp)
	queue   []*pslot[C] // slots waiting to connect, first come first
	timer   fsm.Timer   // when the rate allows the next connect
}

// dialLimited reports whether the policy limits connects at all.
func (p *Pool[C]) dialLimited() bool {
	return p.pol.MaxConnectingPerBackend > 0 || p.pol.ConnectRatePerBackend > 0
}

// dial starts the connect of a slot in connecting now, or queues it
// (waiting) until its backend's limits allow one.
func (p *Pool[C]) dial(sl *pslot[C]) {
	if !p.dialLimited() {
		p.connect(sl)
		return
	}
	s := sl.set
	if len(s.dial.queue) == 0 && p.dialAllowed(s) {
		p.connect(sl)
		return
	}
	sl.fire(slot.Wait)
	s.dial.queue = append(s.dial.queue, sl)
	p.armDial(s)
}

// dialAllowed reports whether s may start one more connect now, and if so
// takes the rate's token for it.
func (p *Pool[C]) dialAllowed(s *set[C]) bool {
	g := &s.dial
	if m := p.pol.MaxConnectingPerBackend; m > 0 && g.dialing >= m {
		return false
	}
	if r := p.pol.ConnectRatePerBackend; r > 0 {
		now := p.loop.Nanos()
		burst := math.Max(1, r)
		g.tokens = math.Min(burst, g.tokens+r*float64(now-g.filled)/1e9)
		g.filled = now
		if g.tokens < 1 {
			return false
		}
		g.tokens--
	}
	return true
}

// dialDone records the end of a connect of s, and lets the next waiting
// slot of s connect if the limits allow.
func (p *Pool[C]) dialDone(s *set[C]) {
	if !p.dialLimited() {
		return
	}
	s.dial.dialing--
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
		if !p.dialAllowed(s) {
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
	r := p.pol.ConnectRatePerBackend
	if len(g.queue) == 0 || r <= 0 || (p.pol.MaxConnectingPerBackend > 0 && g.dialing >= p.pol.MaxConnectingPerBackend) {
		p.loop.Cancel(&g.timer)
		return
	}
	need := (1 - g.tokens) / r // seconds until one token
	p.loop.AtNanos(&g.timer, g.filled+int64(math.Ceil(need*float64(time.Second))))
}

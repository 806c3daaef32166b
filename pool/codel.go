package pool

import (
	"errors"
	"time"
)

// ErrClaimShed is returned by Claim when Policy.TargetClaimDelay is set and
// the claim queue is overloaded: the claim had waited more than twice the
// target while the claims served had all waited more than the target for
// an interval. It fails fast so that the claims that are served wait about
// the target instead of the whole claim timeout.
var ErrClaimShed = errors.New("pool: claim shed: the claim queue is overloaded")

// The claim queue sheds claims from its head under overload, as cueball's
// targetClaimDelay does: core.CoDel decides, the pool acts. A claim that
// has waited more than twice the target in an overloaded interval is
// failed with ErrClaimShed when a connection would be handed to it and, at
// the latest, when its wait reaches twice the target (p.shedTimer).

// headWait returns how long the claim at the head of the queue has waited,
// or -1 when the queue is empty.
func (p *Pool[C]) headWait(now time.Time) time.Duration {
	if w := p.waiters.head; w != nil {
		return now.Sub(w.since)
	}
	return -1
}

// shed runs when the shedding deadline passes: it sheds the claims at the
// head of the queue that waited too long, and arms the next deadline.
func (p *Pool[C]) shed(now time.Time) {
	for p.codel.ShedHead(now, p.headWait(now)) {
		p.st.shed++
		p.finishWaiter(p.waiters.head, nil, ErrClaimShed)
	}
	p.armShed(now)
}

// armShed sets the shedding deadline for the queue's head, or cancels it
// when the queue is empty.
func (p *Pool[C]) armShed(now time.Time) {
	w := p.waiters.head
	if w == nil {
		p.loop.Cancel(&p.shedTimer)
		return
	}
	p.loop.At(&p.shedTimer, p.codel.Next(now, w.since))
}

// codelShed reports whether w, about to be served at now, is to be shed.
func (p *Pool[C]) codelShed(w *waiter[C], now time.Time) bool {
	return p.codel.Serve(now, now.Sub(w.since))
}

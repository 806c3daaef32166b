package pool

import (
	"errors"
	"time"

	"github.com/qorbgo/qorb/fsm"
)

// ErrClaimShed is returned by Claim when Policy.TargetClaimDelay is set and
// the claim queue is overloaded: the claim had waited more than twice the
// target while the claims served had all waited more than the target for
// an interval. It fails fast so that the claims that are served wait about
// the target instead of the whole claim timeout.
var ErrClaimShed = errors.New("pool: claim shed: the claim queue is overloaded")

// codel sheds claims from the head of the queue under overload, as
// cueball's targetClaimDelay does (controlled delay, in the form used for
// request queues by Facebook's folly and wangle): the queue is overloaded
// for the next interval when every claim served during the last interval
// had waited longer than the target, or when none was served while the
// head waited longer than the target; while it is overloaded, a claim that
// has waited more than twice the target is failed with ErrClaimShed, when
// a connection would be handed to it and, at the latest, when its wait
// reaches twice the target.
type codel struct {
	target, interval time.Duration // target 0: off
	end              time.Time     // the current interval ends
	minWait          time.Duration // least wait of the claims served in the current interval; -1: none
	overloaded       bool          // decided at the end of the last interval
	timer            fsm.Timer
}

// roll moves to the interval holding now, deciding whether the queue is
// overloaded from the one that ended; headWait is the wait of the claim
// at the head of the queue now, or -1.
func (c *codel) roll(now time.Time, headWait time.Duration) {
	if now.Before(c.end) {
		return
	}
	if c.minWait >= 0 {
		c.overloaded = c.minWait > c.target
	} else {
		c.overloaded = headWait > c.target
	}
	c.minWait = -1
	c.end = now.Add(c.interval)
}

// headWait is how long the claim at the head of the queue has waited, or
// -1 when none waits.
func (p *Pool[C]) headWait(now time.Time) time.Duration {
	if w := p.waiters.head; w != nil {
		return now.Sub(w.since)
	}
	return -1
}

// shed fails the claims at the head of the queue that waited more than
// twice the target while the queue is overloaded, then arms the timer.
func (p *Pool[C]) shed(now time.Time) {
	c := &p.codel
	c.roll(now, p.headWait(now))
	for c.overloaded {
		if wait := p.headWait(now); wait <= 2*c.target {
			break
		}
		p.st.shed++
		p.finishWaiter(p.waiters.head, nil, ErrClaimShed)
	}
	p.armShed(now)
}

// armShed points the shed timer, while claims wait, at the end of the
// interval, when the queue is judged again, or, while it is overloaded,
// at the moment the head of the queue will have waited twice the target
// if that comes first. (Not overloaded, a head that waited longer is
// judged at the interval's end: the timer never fires in the past over
// and over.)
func (p *Pool[C]) armShed(now time.Time) {
	c := &p.codel
	w := p.waiters.head
	if w == nil {
		p.loop.Cancel(&c.timer)
		return
	}
	at := c.end
	if shedAt := w.since.Add(2*c.target + 1); c.overloaded && shedAt.Before(at) {
		at = shedAt
	}
	if at.Before(now) {
		at = now
	}
	p.loop.At(&c.timer, at)
}

// codelShed is asked, for a waiter about to be handed a connection at
// now, whether to shed it instead; otherwise it records its wait.
func (p *Pool[C]) codelShed(w *waiter[C], now time.Time) bool {
	c := &p.codel
	wait := now.Sub(w.since)
	c.roll(now, wait)
	if c.overloaded && wait > 2*c.target {
		return true
	}
	if c.minWait < 0 || wait < c.minWait {
		c.minWait = wait
	}
	return false
}

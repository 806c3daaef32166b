package core

import "time"

// CoDel decides which queued claims to shed under overload (controlled
// delay, in the form used for request queues by Facebook's folly and
// wangle, as cueball's targetClaimDelay): over each interval it keeps the
// least wait of the claims served; if that least wait is above the
// target, or none was served while the head of the queue waited longer
// than the target, the queue is overloaded for the next interval, and
// while it is, a claim that has waited more than twice the target is shed
// instead of served.
//
// The zero value is off ([CoDel.On] is false). Times are the caller's: the
// type never reads a clock.
type CoDel struct {
	// Target is the least wait above which an interval counts as
	// overloaded; 0: off.
	Target time.Duration
	// Interval is the length of one interval.
	Interval time.Duration

	end        time.Time     // the current interval ends
	minWait    time.Duration // least wait of the claims served in the current interval; -1: none
	overloaded bool          // decided at the end of the last interval
}

// NewCoDel returns a CoDel with the given target (0: off) and interval.
func NewCoDel(target, interval time.Duration) CoDel {
	return CoDel{Target: target, Interval: interval, minWait: -1}
}

// On reports whether shedding is on (Target > 0).
func (c CoDel) On() bool { return c.Target > 0 }

// Overloaded reports what the last interval decided.
func (c CoDel) Overloaded() bool { return c.overloaded }

// roll ends the current interval if now is past it: the next one is
// overloaded if the least wait served in it was above the target, or, when
// none was served, if the claim at the head of the queue (headWait; -1 for
// an empty queue) has already waited longer.
func (c *CoDel) roll(now time.Time, headWait time.Duration) {
	if now.Before(c.end) {
		return
	}
	if c.minWait >= 0 {
		c.overloaded = c.minWait > c.Target
	} else {
		c.overloaded = headWait > c.Target
	}
	c.minWait = -1
	c.end = now.Add(c.Interval)
}

// Serve is asked when a claim that has waited wait is about to be served
// at now. It returns true when the claim is to be shed instead; otherwise
// the claim's wait counts toward the interval's least wait.
func (c *CoDel) Serve(now time.Time, wait time.Duration) (shed bool) {
	c.roll(now, wait)
	if c.overloaded && wait > 2*c.Target {
		return true
	}
	if c.minWait < 0 || wait < c.minWait {
		c.minWait = wait
	}
	return false
}

// ShedHead is asked at now, when the shedding deadline ([CoDel.Next])
// passed, for the claim at the head of the queue, which has waited
// headWait (-1: the queue is empty). It returns true when that claim is to
// be shed; the caller sheds it and asks again for the next head.
func (c *CoDel) ShedHead(now time.Time, headWait time.Duration) bool {
	c.roll(now, headWait)
	return c.overloaded && headWait > 2*c.Target
}

// Next returns when to call ShedHead again, for a queue whose head claim
// was queued at headSince: the end of the interval, or earlier, if the
// queue is overloaded, the moment the head claim will have waited more
// than twice the target. It is never before now.
func (c *CoDel) Next(now, headSince time.Time) time.Time {
	at := c.end
	if shedAt := headSince.Add(2*c.Target + 1); c.overloaded && shedAt.Before(at) {
		at = shedAt
	}
	if at.Before(now) {
		at = now
	}
	return at
}

package core

import "time"

// ClaimClock times claims without a clock read on the claim path, where a
// read would cost more than the rest of a claim. Claims are numbered in
// the order they start; the pool's clock reads made for other reasons (a
// Stats call, a claim that waited, a health check, a connect) are kept as
// marks: the number of claims started so far and the time. A claim
// numbered s started before every mark whose count is s or more, so the
// earliest such mark gives a lower bound of how long it has been held.
//
// The ring keeps the last marks only: for a claim older than all of them,
// the earliest one kept still bounds it from below, less closely.
type ClaimClock struct {
	started uint64 // claims started so far; never decremented
	marks   [32]claimMark
	n       int // marks written so far
}

type claimMark struct {
	started uint64
	at      time.Time
}

// Start numbers a new claim.
func (c *ClaimClock) Start() uint64 {
	c.started++
	return c.started
}

// Mark records a clock read. Of marks that follow the same claims, the
// earliest is kept: it bounds those claims' age most closely.
func (c *ClaimClock) Mark(now time.Time) {
	if c.n > 0 && c.marks[(c.n-1)%len(c.marks)].started == c.started {
		return
	}
	c.marks[c.n%len(c.marks)] = claimMark{c.started, now}
	c.n++
}

// HeldAtLeast returns how long claim s has been held at least, by now.
func (c *ClaimClock) HeldAtLeast(s uint64, now time.Time) time.Duration {
	for i := max(0, c.n-len(c.marks)); i < c.n; i++ {
		if m := c.marks[i%len(c.marks)]; m.started >= s {
			return max(0, now.Sub(m.at))
		}
	}
	return 0
}

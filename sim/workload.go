package sim

import (
	"errors"
	"time"

	"github.com/qorbgo/qorb/internal/simhook"
	"github.com/qorbgo/qorb/pool"
)

// claim is one claim of a client's workload, from its arrival to its
// release. Claims are reused; done is bound once.
type claim struct {
	s        *Sim
	c        *client
	inst     *poolInst
	arrival  int64
	deadline int64
	h        *pool.Handle[*conn]
	cn       *conn
	forced   bool // the pool's Close closed the connection while held
	done     func(any, error)
	handedFn func(any)
	handed   bool  // handed a connection at least once
	handedAt int64 // when it was last handed a connection
	next     *claim

	// The request made on the connection (see request.go).
	reqStart int64 // when it started
	outcome  int8  // how it ends, one of the req… outcomes
	final    bool  // outcome decided
	keepConn bool  // a failed request the connection survives (an error answer)
	readOnly bool  // the error answer is a demoted primary's (see claim.err)

}

func (s *Sim) newClaim() *claim {
	cl := s.claimFree
	if cl != nil {
		s.claimFree = cl.next
		cl.next = nil
		return cl
	}
	cl = &claim{s: s}
	cl.done = cl.onDone
	cl.handedFn = cl.onHanded
	return cl
}

func (s *Sim) freeClaim(cl *claim) {
	cl.c, cl.inst, cl.h, cl.cn, cl.forced, cl.handed = nil, nil, nil, nil, false, false
	cl.next = s.claimFree
	s.claimFree = cl
}

// timeout is the client's per-claim timeout.
func (c *client) timeout() time.Duration {
	if t := c.spec.Workload.Timeout.D(); t > 0 {
		return t
	}
	if c.policy.ClaimTimeout > 0 {
		return c.policy.ClaimTimeout
	}
	return 30 * time.Second
}

// scheduleArrival schedules the client's next claim (Poisson arrivals).
func (c *client) scheduleArrival(s *Sim) {
	if c.rate <= 0 || c.pending || s.ending || c.gone {
		return
	}
	d := int64(c.rng.ExpFloat64() / c.rate * 1e9)
	c.pending = true
	s.q.push(s.now+d, c)
}

// run is a claim arrival.
func (c *client) run(s *Sim) {
	c.pending = false
	if s.ending || c.gone {
		return
	}
	switch {
	case c.paused():
		s.heldArrivals++
		c.hold(heldArrival{arrival{c, s.now}}) // issued at its resume
	case c.inst != nil:
		s.issueClaim(c)
	default:
		c.res.dropped++ // the client is down (restarting, or closed with down)
	}
	c.scheduleArrival(s)
}

// heldArrival is an arrival held for a paused client: a live claim for
// the budget (Options.MaxLiveClaims) until its resume.
type heldArrival struct{ a arrival }

func (h heldArrival) run(s *Sim) {
	s.heldArrivals--
	h.a.run(s)
}

func (s *Sim) issueClaim(c *client) { s.issueClaimAt(c, s.now) }

// issueClaimAt issues a claim that arrived at arrival (earlier than now
// when its client was paused): its wait counts from its arrival, its
// timeout from now.
func (s *Sim) issueClaimAt(c *client, arrival int64) {
	cl := s.newClaim()
	cl.c, cl.inst, cl.arrival = c, c.inst, arrival
	timeout := c.timeout()
	cl.deadline = s.now + int64(timeout)
	s.outstanding++
	if c.spec.Workload.TryClaim {
		simhook.TryClaimAsync(c.inst.p, nil, cl.handedFn, cl.done)
		return
	}
	simhook.ClaimAsync(c.inst.p, nil, timeout, cl.handedFn, cl.done)
}

// onHanded runs, with the loop held, each time the pool hands the claim a
// connection, before the claim's check or acquire hook: claims are handed
// connections in the order they arrived. A claim handed another after its
// hook failed goes back to the head of the queue, behind nobody: only
// first hand-offs are ordered.
func (cl *claim) onHanded(hd any) {
	inst := cl.inst
	if cn := hd.(*pool.Handle[*conn]).Conn(); cn != nil {
		cn.hooked = cl
	}
	cl.handedAt = cl.s.now
	if cl.handed {
		return
	}
	cl.handed = true
	if cl.arrival < inst.lastServed {
		cl.s.violate("fifo", "%s: claim that arrived at %v handed a connection after one that arrived at %v",
			inst.name, time.Duration(cl.arrival), time.Duration(inst.lastServed))
	}
	inst.lastServed = cl.arrival
}

// onDone is the claim's callback, run with the loop held: it checks the
// hand-out, records the outcome, and schedules the release.
func (cl *claim) onDone(hd any, err error) {
	s, c, inst := cl.s, cl.c, cl.inst
	if err != nil {
		kind := errKind(err)
		c.res.errs[kind]++
		if kind != errClosed {
			c.res.failWaits.add(s.now - cl.arrival)
		}
		s.series.claimError()
		s.tr.record(s.now, "claim", inst.name, "", "error", errKindNames[kind], false)
		s.outstanding--
		s.freeClaim(cl)
		s.maybeClose()
		return
	}
	h := hd.(*pool.Handle[*conn])
	cn := h.Conn()
	if cn != nil {
		cn.hooked = nil
	}
	switch {
	case cn == nil:
		s.violate("nil-conn", "%s: a claim was handed a nil connection", inst.name)
	case cn.inst != inst:
		s.violate("foreign-conn", "%s: a claim was handed connection %d of pool %s", inst.name, cn.id, cn.inst.name)
	case cn.state != connOpen:
		s.violate("closed-conn", "%s: a claim was handed connection %d to %s, which is not open", inst.name, cn.id, cn.b.name)
	case inst.pol.MaxConnLifetime > 0 && s.now-cn.opened > int64(inst.pol.MaxConnLifetime) && !c.lateLifetime(cl, cn, int64(inst.pol.MaxConnLifetime)):
		s.violate("expired-conn", "%s: a claim was handed connection %d to %s, opened %v ago, past the policy's lifetime %v",
			inst.name, cn.id, cn.b.name, time.Duration(s.now-cn.opened), inst.pol.MaxConnLifetime)
	case cn.held != nil:
		s.violate("double-handout", "%s: connection %d to %s handed to a second claimer (the first arrived at %v)",
			inst.name, cn.id, cn.b.name, time.Duration(cn.held.arrival))
	case !inst.listed[cn.b.idx]:
		s.violate("removed-backend", "%s: claim served from %s, which its resolver no longer lists", inst.name, cn.b.name)
	case s.now > cl.deadline:
		s.violate("waiter-deadline", "%s: claim that arrived at %v served at %v, after its deadline %v",
			inst.name, time.Duration(cl.arrival), time.Duration(s.now), time.Duration(cl.deadline))
	case inst.closing:
		s.violate("served-after-close", "%s: claim that arrived at %v served at %v, after the pool's Close began",
			inst.name, time.Duration(cl.arrival), time.Duration(s.now))
	}
	cl.h, cl.cn = h, cn
	cn.held = cl
	wait := s.now - cl.arrival
	c.res.ok++
	c.res.waits.add(wait)
	cn.b.claims++
	s.series.claimServed(wait)
	s.startRequest(cl)
}

// run is the end of the claim's request: the claimer reports it, and
// gives the connection back, or discards it when the request failed.
func (cl *claim) run(s *Sim) {
	if !s.finishRequest(cl) {
		return // waits for the claimer's I/O timeout
	}
	if cl.c.paused() {
		cl.c.hold(cl) // the claimer gives the connection back at its resume
		return
	}
	cn := cl.cn
	if cn.held == cl {
		cn.held = nil
	}
	s.endRequest(cl)
	s.outstanding--
	s.freeClaim(cl)
	s.maybeClose()
}

// maybeClose closes the pools once the workload ended and every claim
// finished.
func (s *Sim) maybeClose() {
	if s.ending && !s.closed && s.outstanding == 0 {
		s.q.push(s.now, handlerFunc(func(s *Sim) { s.closeAll() }))
	}
}

// Claim error kinds, as counted in results.
const (
	errNoBackends = iota
	errNoBackendsOnline
	errAllClaimsUsed
	errClosed
	errShed
	errNoIdle
	errOther
	errQueueFull
	errCircuitOpen
	numErrKinds
)

var errKindNames = [numErrKinds]string{"no_backends", "no_backends_online", "all_claims_used", "closed", "shed", "no_idle", "other", "queue_full", "circuit_open"}

func errKind(err error) int {
	switch {
	case errors.Is(err, pool.ErrClosed):
		return errClosed
	case errors.Is(err, pool.ErrCircuitOpen):
		return errCircuitOpen
	case errors.Is(err, pool.ErrQueueFull):
		return errQueueFull
	case errors.Is(err, pool.ErrNoBackendsOnline):
		return errNoBackendsOnline
	case errors.Is(err, pool.ErrNoBackends):
		return errNoBackends
	case errors.Is(err, pool.ErrAllClaimsUsed):
		return errAllClaimsUsed
	case errors.Is(err, pool.ErrClaimShed):
		return errShed
	case errors.Is(err, pool.ErrNoIdle):
		return errNoIdle
	}
	return errOther
}

package sim

import (
	"fmt"
	"time"

	"github.com/qorbgo/qorb/fsm"
	"github.com/qorbgo/qorb/internal/simhook"
)

// A pause fault stops client processes for a while, as a long GC pause or
// a VM stall does: nothing of the client runs, and the world goes on.
//
// While a client is paused, its pools' loop timers do not fire (the loop's
// gate holds them: see timerGate), the completions of its I/O are not
// delivered, its claims that arrive are not issued, and the requests of
// its claims do not end: each of those is held, in the order it came due,
// and runs when the client resumes, each as its own event. The I/O
// itself goes on in the world: a connect, check or request is decided by
// the backend at the time it completes there, and only its completion
// waits. A claim that arrives during the pause is issued at resume with
// its arrival time, so that its wait counts from its arrival; its timeout
// counts from its issue, as the claimer's context starts when the
// process gets to it. Faults that act on a paused client's pool (reset,
// restart, kill, close, and a new pool after one of them) take effect at
// its resume too.

// pauseState is a client's pauses.
type pauseState struct {
	n     int       // pause faults in force
	since int64     // when the pause in force began
	held  []handler // what came due while paused, in that order
	spans []span    // the pauses that ended
}

// span is a stretch of virtual time, [from, to).
type span struct{ from, to int64 }

// paused reports whether the client is paused.
func (c *client) paused() bool { return c.pause.n > 0 }

// hold keeps h, which came due while c is paused, for its resume.
func (c *client) hold(h handler) { c.pause.held = append(c.pause.held, h) }

// holdIfPaused holds f for c's resume when c is paused, and reports
// whether it did.
func (s *Sim) holdIfPaused(c *client, f func(s *Sim)) bool {
	if c.pause.n == 0 {
		return false
	}
	c.hold(handlerFunc(f))
	return true
}

// pausedBetween is how long c was paused between from and to: what a
// timer of its pools due in that stretch may have fired late.
func (c *client) pausedBetween(from, to int64) int64 {
	var d int64
	for _, sp := range c.pause.spans {
		d += max(0, min(sp.to, to)-max(sp.from, from))
	}
	if c.pause.n > 0 {
		d += max(0, to-max(c.pause.since, from))
	}
	return d
}

// lateLifetime reports whether a connection handed to cl past its
// lifetime was handed out because of a pause of c. A connection opened
// while c was paused reaches its pool at the resume, and its lifetime
// counts from then; and at a resume a claim that came due before the
// lifetime ended may take the connection before the lifetime's held
// timer fires. The age is judged when the connection was handed to the
// claim (before its check on claim or acquire hook), from when the pool
// got the connection, with the time c was paused since the lifetime
// ended.
func (c *client) lateLifetime(cl *claim, cn *conn, lifetime int64) bool {
	if len(c.pause.spans) == 0 && c.pause.n == 0 {
		return false
	}
	got := c.resumedAt(cn.opened)
	return cl.handedAt-got <= lifetime+c.pausedBetween(got+lifetime, cl.handedAt)
}

// resumedAt is t, or the end of the pause of c that t falls in: when a
// completion due at t reached c's pools.
func (c *client) resumedAt(t int64) int64 {
	for _, sp := range c.pause.spans {
		if t >= sp.from && t < sp.to {
			return sp.to
		}
	}
	return t
}

// pauseClient begins a pause of c.
func (s *Sim) pauseClient(c *client, f Fault) {
	c.pause.n++
	if c.pause.n > 1 {
		return // paused already: it resumes when the last pause ends
	}
	c.pause.since = s.now
	c.res.pauses++
	s.pausedClients++
	s.tr.record(s.now, "client", c.name, "", "pause", fmt.Sprintf("for %v", f.For.D()), false)
}

// resumeClient ends a pause of c; when it was the last, everything held
// runs now, in the order it came due.
func (s *Sim) resumeClient(c *client) {
	c.pause.n--
	if c.pause.n > 0 {
		return
	}
	s.pausedClients--
	c.pause.spans = append(c.pause.spans, span{c.pause.since, s.now})
	d := s.now - c.pause.since
	c.res.paused += d
	held := c.pause.held
	c.pause.held = nil
	s.tr.record(s.now, "client", c.name, "", "resume", fmt.Sprintf("after %v, %d held", time.Duration(d), len(held)), false)
	for i, h := range held {
		held[i] = nil
		if s.violation != nil {
			break
		}
		h.run(s)
		s.events++
	}
}

// timerGate is the loop's timer gate while a scenario has pause faults:
// it holds a due timer of a paused client's pool until the client resumes.
func (s *Sim) timerGate(t *fsm.Timer) bool {
	if s.pausedClients == 0 {
		return false
	}
	inst := s.byPool[simhook.TimerOwner(t)]
	if inst == nil || inst.c.pause.n == 0 {
		return false
	}
	inst.c.hold(heldTimer{t})
	return true
}

// heldTimer is a loop timer the gate held: it fires at its client's resume,
// unless the pool cancelled or moved it meanwhile.
type heldTimer struct{ t *fsm.Timer }

func (h heldTimer) run(s *Sim) {
	s.loop.Enter()
	s.loop.FireHeld(h.t)
	s.loop.Leave()
}

// completion is the completion of an I/O that ended in the world while
// its client was paused: it runs, with the loop held, at the resume.
type completion func()

// delivery is the completion of a connect that opened cn in the world
// while its client was paused: the pool gets cn at the resume.
type delivery struct {
	cn   *conn
	done func()
}

func (d delivery) run(s *Sim) {
	inst := d.cn.inst
	d.cn.undelivered = false
	inst.undelivered--
	d.cn.late = inst.finished
	completion(d.done).run(s)
}

func (f completion) run(s *Sim) {
	s.loop.Enter()
	if f != nil {
		f()
	}
	s.loop.Leave()
}

// arrival is a claim that arrived while its client was paused: it is
// issued at the resume, with its arrival time.
type arrival struct {
	c  *client
	at int64
}

func (a arrival) run(s *Sim) {
	c := a.c
	switch {
	case s.ending || c.gone:
	case c.inst != nil:
		s.issueClaimAt(c, a.at)
	default:
		c.res.dropped++
	}
}

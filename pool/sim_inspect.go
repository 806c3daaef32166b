package pool

import (
	"context"
	"time"

	"github.com/qorbgo/qorb/backend"
	"github.com/qorbgo/qorb/fsm"
	"github.com/qorbgo/qorb/internal/simhook"
)

// This file fills in internal/simhook: what the simulator needs of a pool
// and users must not depend on. The inspection is read-only.

// simPool is what every Pool[C] offers the hooks.
type simPool interface {
	inspectLocked() simhook.Pool
	inspectSetLocked(name backend.Name) (simhook.Set, bool)
	inspectSetsLocked(dst []simhook.Set) []simhook.Set
	claimAsync(ctx context.Context, timeout time.Duration, handed func(any), done func(any, error))
	claimAsyncTry(ctx context.Context, timeout time.Duration, try bool, handed func(any), done func(any, error))
	closeAsync(quiet func()) (end func() int)
	inspector() simhook.PoolInspector
}

// simHandle is what every *Handle[C] offers the hooks.
type simHandle interface {
	doRequest(f func() error) (discarded bool, err error)
}

// doRequest is DoHandle's end of a claim with a function that does not
// need the connection: the simulator's request, already made, which
// reports how it went.
func (h *Handle[C]) doRequest(f func() error) (bool, error) {
	return h.do(nil, func(*Handle[C]) error { return f() })
}

func init() {
	simhook.WithLoop = func(l *fsm.Loop) any { return Option(func(o *options) { o.loop = l }) }
	simhook.ClaimAsync = func(p any, ctx context.Context, timeout time.Duration, handed func(any), done func(any, error)) {
		p.(simPool).claimAsync(ctx, timeout, handed, done)
	}
	simhook.TryClaimAsync = func(p any, ctx context.Context, handed func(any), done func(any, error)) {
		p.(simPool).claimAsyncTry(ctx, 0, true, handed, done)
	}
	simhook.Do = func(h any, f func() error) (bool, error) { return h.(simHandle).doRequest(f) }
	simhook.CloseAsync = func(p any, quiet func()) (end func() (forced int)) { return p.(simPool).closeAsync(quiet) }
	simhook.Inspect = func(p any) simhook.Pool { return p.(simPool).inspectLocked() }
	simhook.InspectSet = func(p any, name backend.Name) (simhook.Set, bool) {
		return p.(simPool).inspectSetLocked(name)
	}
	simhook.InspectSets = func(p any, dst []simhook.Set) []simhook.Set { return p.(simPool).inspectSetsLocked(dst) }
	simhook.TimerOwner = func(t *fsm.Timer) any { return timerOwnerOf(t.Callback()) }
	simhook.Inspector = func(p any) simhook.PoolInspector { return p.(simPool).inspector() }
}

// poolView and setView are the pool and a set seen through
// simhook.PoolInspector and simhook.SetInspector: the methods the
// interfaces need, kept off the pool's own.
type (
	poolView[C any] Pool[C]
	setView[C any]  set[C]
)

func (p *Pool[C]) inspector() simhook.PoolInspector { return (*poolView[C])(p) }

func (v *poolView[C]) Inspect(dst *simhook.Pool) { (*Pool[C])(v).inspectInto(dst) }

func (v *poolView[C]) Set(name backend.Name) simhook.SetInspector {
	if s := v.sets[name]; s != nil {
		return (*setView[C])(s)
	}
	return nil
}

func (v *setView[C]) Inspect(dst *simhook.Set) bool {
	s := (*set[C])(v)
	if !s.inPool {
		return false
	}
	s.inspectInto(dst)
	return true
}

func (p *Pool[C]) inspectLocked() simhook.Pool {
	var v simhook.Pool
	p.inspectInto(&v)
	return v
}

func (p *Pool[C]) inspectInto(v *simhook.Pool) {
	v.State, v.Slots, v.Claimed, v.Waiters, v.Sets = int8(p.state.Get()), p.nslots, p.nclaimed, p.waiters.n, len(p.order)
	v.IndexErr = ""
	if err := p.lcCheckEvent(); err != nil {
		v.IndexErr = err.Error()
	}
	v.PolicyError = errString(p.st.policyErr)
}

func (p *Pool[C]) inspectSetLocked(name backend.Name) (simhook.Set, bool) {
	s, ok := p.sets[name]
	if !ok {
		return simhook.Set{}, false
	}
	return s.inspect(), true
}

func (p *Pool[C]) inspectSetsLocked(dst []simhook.Set) []simhook.Set {
	for _, s := range p.order {
		dst = append(dst, s.inspect())
	}
	return dst
}

func (s *set[C]) inspect() simhook.Set {
	var v simhook.Set
	s.inspectInto(&v)
	return v
}

func (s *set[C]) inspectInto(v *simhook.Set) {
	v.Name, v.State, v.Dead, v.Wanted, v.Slots = s.b.Name, s.State(), s.Dead(), s.Wanted, len(s.slots)
	v.Live, v.Claimed, v.Retiring, v.Idle = s.Live(), s.Claimed, s.Retiring, len(s.idle)
	v.ByState = [len(v.ByState)]int{}
	for _, sl := range s.slots {
		if int(sl.State()) < len(v.ByState) {
			v.ByState[sl.State()]++
		}
	}
	v.IndexErr = ""
	if err := s.p.lcCheckSet(s); err != nil {
		v.IndexErr = err.Error()
	}
}

// closeAsync is Close in two halves for a caller that must not block: it
// runs beginClose now, calls quiet (with the loop held) once the pool is
// quiet, and returns the second half, which does what Close does once it
// stops waiting. It returns nil when the pool is already closing.
func (p *Pool[C]) closeAsync(quiet func()) (end func() int) {
	p.loop.Enter()
	if p.closing() {
		p.loop.Leave()
		return nil
	}
	p.onQuiet = quiet
	p.beginClose()
	p.loop.Leave()
	ended := false
	return func() int {
		if ended {
			panic("pool: the end of an asynchronous close called twice")
		}
		ended = true
		p.loop.Enter()
		p.onQuiet = nil
		forced := p.endClose()
		p.loop.Leave()
		close(p.done)
		return forced
	}
}

// ioDone reports, once no slot is left, whether none of the pool's I/O
// is in flight: closeAsync's quiet. On a loop of its own that is the
// loop's count. On a shared loop (the simulator's fleet) the loop's count
// includes every other pool's I/O, so the pool counts its own: the
// connects, checks and closes of its stopped slots and its resolver's
// queries. (The blocking Close keeps waiting for the loop's count.)
func (p *Pool[C]) ioDone() bool {
	if p.idPrefix == "" {
		return p.loop.InFlight() == 0
	}
	return p.orphans == 0 && p.queries == 0 && len(p.hooking) == 0
}

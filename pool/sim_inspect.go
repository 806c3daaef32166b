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
	claimAsync(ctx context.Context, timeout time.Duration, done func(any, error))
}

func init() {
	simhook.WithLoop = func(l *fsm.Loop) any { return Option(func(o *options) { o.loop = l }) }
	simhook.ClaimAsync = func(p any, ctx context.Context, timeout time.Duration, done func(any, error)) {
		p.(simPool).claimAsync(ctx, timeout, done)
	}
	simhook.Inspect = func(p any) simhook.Pool { return p.(simPool).inspectLocked() }
	simhook.InspectSet = func(p any, name backend.Name) (simhook.Set, bool) {
		return p.(simPool).inspectSetLocked(name)
	}
	simhook.InspectSets = func(p any, dst []simhook.Set) []simhook.Set { return p.(simPool).inspectSetsLocked(dst) }
}

func (p *Pool[C]) inspectLocked() simhook.Pool {
	return simhook.Pool{State: int8(p.state.Get()), Slots: p.nslots, Claimed: p.nclaimed, Waiters: p.waiters.n, Sets: len(p.order)}
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
	v := simhook.Set{Name: s.b.Name, State: s.State(), Dead: s.Dead(), Wanted: s.wanted, Slots: len(s.slots),
		Live: s.Live(), Claimed: s.claimed, Retiring: s.retiring, Idle: len(s.idle)}
	for _, sl := range s.slots {
		if int(sl.State()) < len(v.ByState) {
			v.ByState[sl.State()]++
		}
	}
	return v
}

package pool

import (
	"github.com/qorbgo/qorb/backend"
	"github.com/qorbgo/qorb/slot"
	"github.com/qorbgo/qorb/slotset"
)

// This file is read-only introspection for the simulator (package sim),
// which checks the pool's bookkeeping against a model of its own after
// every event. Nothing here changes the pool.

// Inspection is a read-only view of a pool's totals, taken with its loop
// held.
type Inspection struct {
	State   State // the pool machine's state
	Slots   int   // slots not stopped, in every set (the pool's own count)
	Claimed int   // claimed slots (the pool's own count)
	Waiters int   // claimers in the queue
	Sets    int   // slot sets, draining ones included
}

// SetInspection is a read-only view of one backend's slot set, taken with
// the loop held: the set's recorded counters and, in ByState, the states
// of its slots counted one by one.
type SetInspection struct {
	Name     backend.Name  // the backend
	State    slotset.State // the set machine's state
	Dead     bool          // Policy.DeadAfter failures in a row
	Wanted   int           // slots the rebalancer last wanted for this backend
	Slots    int           // slots not stopped
	Live     int           // recorded: slots holding a connection
	Claimed  int           // recorded: claimed slots
	Retiring int           // recorded: slots to stop at their next idle moment
	Idle     int           // connected slots in the idle stack
	// ByState counts the set's slots by state, indexed by slot.State.
	ByState [slot.NumStates]int
}

// InspectLocked returns the pool's totals. The caller must hold the
// pool's loop (a simulator checking invariants at the end of an event).
func (p *Pool[C]) InspectLocked() Inspection {
	return Inspection{State: p.state.Get(), Slots: p.nslots, Claimed: p.nclaimed, Waiters: p.waiters.n, Sets: len(p.order)}
}

// InspectSetLocked returns the view of the set of the named backend, and
// false when the pool has no such set (never had one, or it drained). The
// caller must hold the pool's loop.
func (p *Pool[C]) InspectSetLocked(name backend.Name) (SetInspection, bool) {
	s, ok := p.sets[name]
	if !ok {
		return SetInspection{}, false
	}
	return s.inspect(), true
}

// InspectSetsLocked appends the views of every set, in the pool's
// preference order, to dst and returns it. The caller must hold the
// pool's loop.
func (p *Pool[C]) InspectSetsLocked(dst []SetInspection) []SetInspection {
	for _, s := range p.order {
		dst = append(dst, s.inspect())
	}
	return dst
}

func (s *set[C]) inspect() SetInspection {
	v := SetInspection{Name: s.b.Name, State: s.state.Get(), Dead: s.dead, Wanted: s.wanted, Slots: len(s.slots),
		Live: s.live, Claimed: s.claimed, Retiring: s.retiring, Idle: len(s.idle)}
	for _, sl := range s.slots {
		if int(sl.state.Get()) < len(v.ByState) {
			v.ByState[sl.state.Get()]++
		}
	}
	return v
}

// EffectivePolicy returns the policy the pool runs with: the one given to
// New with every zero field replaced by its default. It is safe to call
// at any time; the policy never changes.
func (p *Pool[C]) EffectivePolicy() Policy { return p.pol }

package pool

import "github.com/qorbgo/qorb/fsm"

// Every timer a pool arms on its loop names the pool, so that a driver
// sharing one loop between pools can tell whose a due timer is
// (internal/simhook.TimerOwner): the simulator holds the timers of a
// paused client until it resumes. A slot's timer runs the slot itself;
// every other timer runs an ownedDue.

// timerOwner is what every timer callback of a pool implements.
type timerOwner interface{ owner() any }

// ownedDue is a timer callback of pool p.
type ownedDue[C any] struct {
	p *Pool[C]
	f func()
}

func (d *ownedDue[C]) Due()       { d.f() }
func (d *ownedDue[C]) owner() any { return d.p }

// owner returns the pool the slot belongs to.
func (sl *pslot[C]) owner() any { return sl.set.p }

// initTimer sets what t runs, a callback of p's.
func (p *Pool[C]) initTimer(t *fsm.Timer, f func()) { t.InitDue(&ownedDue[C]{p: p, f: f}) }

// timerOwnerOf returns the pool (a *Pool[C]) whose timer runs d, or nil.
func timerOwnerOf(d fsm.Due) any {
	if o, ok := d.(timerOwner); ok {
		return o.owner()
	}
	return nil
}

package pool

import "slices"

// followUp is work that a handler leaves for the end of its event, so that
// no handler calls another machine's handler from inside its own: a slot
// that fails does not rebalance the pool in the middle of failing, it asks
// for a rebalance, which runs once the event's handler has returned.
type followUp uint8

const (
	// followDrain: a draining set may have no slot left; it then stops.
	followDrain followUp = 1 << iota
	// followDead: every backend may be dead; the pool is then failed.
	followDead
	// followRebalance: the slots may no longer match demand or health.
	followRebalance
	// followFill: a slot stopped; its capacity can go to a set below its
	// wanted count.
	followFill
)

// maxFollowRounds bounds the rounds of follow-up work in one event. Each
// round can only ask for another when it stopped slots (a rebalance that
// shrank), and the next finds nothing to stop, so two or three rounds are
// the most seen; the bound keeps a bug from spinning the loop.
const maxFollowRounds = 16

// follow asks for follow-up work at the end of the current event.
func (p *Pool[C]) follow(f followUp) {
	if p.fu == 0 && !p.following {
		p.loop.Defer(p.afterEventFn)
	}
	p.fu |= f
}

// afterEvent runs the follow-up work the event asked for, in a fixed
// order: drained sets stop, the pool fails if every backend is dead, then
// the rebalancer runs (or, when only capacity was freed, the sets below
// their wanted count are filled). Work asked for meanwhile runs in a next
// round.
func (p *Pool[C]) afterEvent() {
	p.following = true
	defer func() { p.following = false }()
	for round := 0; p.fu != 0; round++ {
		if round == maxFollowRounds {
			p.logError("pool: follow-up work did not settle within one event", "left", p.fu)
			p.fu = 0
			return
		}
		fu := p.fu
		p.fu = 0
		if fu&followDrain != 0 {
			for _, s := range slices.Clone(p.order) {
				p.maybeDrained(s)
			}
		}
		if fu&followDead != 0 {
			p.checkDead()
		}
		switch {
		case fu&followRebalance != 0:
			p.rebalanceNow(false)
		case fu&followFill != 0:
			p.fill()
		}
	}
}

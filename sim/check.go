package sim

import (
	"strings"
	"time"

	"github.com/qorbgo/qorb/backend"
	"github.com/qorbgo/qorb/fsm"
	"github.com/qorbgo/qorb/internal/simhook"
	"github.com/qorbgo/qorb/pool"
	"github.com/qorbgo/qorb/pool/machine"
	"github.com/qorbgo/qorb/slot"
	"github.com/qorbgo/qorb/slotset"
)

// checker keeps a model of every slot and slot set, built from the trace
// alone, and compares it with the pools' own bookkeeping at the end of
// every event that touched them. The invariants it checks:
//
//   - one state per slot: each transition leaves the state the model has;
//   - the counts of slots by state, per backend and per pool, match the
//     pool's counters and its own slot lists (exactly what Stats reports);
//   - slot caps: MaxSlots per pool, MaxSlotsPerBackend per backend;
//   - a set is online exactly when one of its slots holds a connection;
//   - backoff: the delay between a slot's failure and its next connect is
//     within the policy's bounds for that number of consecutive failures.
//
// The claim callback checks the hand-outs (workload.go) and the connector
// checks the connector calls (world.go).
type checker struct {
	slots      slotIndex
	sets       map[string]*shadowSet
	dirtySets  []*shadowSet
	dirtyInsts []*poolInst
	checks     uint64
	// The views of the pool and set checked last, filled in place.
	pv simhook.Pool
	sv simhook.Set
}

type shadowSlot struct {
	id       []byte // the slot's ID as a JSON string, for the trace
	set      *shadowSet
	state    slot.State
	failures int
	failedAt int64
	gone     bool // stopped: out of the model (see slotIndex)
}

type shadowSet struct {
	inst  *poolInst
	id    string
	name  backend.Name
	b     *simBackend          // the backend, once known
	view  simhook.SetInspector // the pool's set, once looked up
	i     int                  // in inst.sets
	n     [slot.NumStates]int
	total int
	state slotset.State
	dirty bool
}

func (k *checker) init() {
	k.slots.init()
	k.sets = map[string]*shadowSet{}
}

// setFor returns the model of the set with the given ID ("pool/backend"),
// creating it.
func (k *checker) setFor(s *Sim, id string) *shadowSet {
	if ss := k.sets[id]; ss != nil {
		return ss
	}
	i := strings.IndexByte(id, '/')
	if i < 0 {
		s.violate("trace-id", "set id %q has no pool prefix", id)
		return nil
	}
	inst := s.insts[id[:i]]
	if inst == nil {
		s.violate("trace-id", "set id %q names an unknown pool", id)
		return nil
	}
	ss := &shadowSet{inst: inst, id: id, name: backend.Name(id[i+1:]), i: len(inst.sets)}
	k.sets[id] = ss
	inst.sets = append(inst.sets, ss)
	return ss
}

func (k *checker) dirtySet(s *Sim, ss *shadowSet) {
	if !ss.dirty {
		ss.dirty = true
		k.dirtySets = append(k.dirtySets, ss)
	}
	k.dirtyInst(ss.inst)
	if len(s.pendingRec) > 0 {
		s.markRecovery(ss.inst.c)
	}
}

func (k *checker) dirtyInst(inst *poolInst) {
	if !inst.dirty {
		inst.dirty = true
		k.dirtyInsts = append(k.dirtyInsts, inst)
	}
}

// slot follows one slot transition.
func (k *checker) slot(s *Sim, id string, t fsm.Step[slot.State, slot.Event]) {
	if t.Created {
		j := strings.LastIndexByte(id, '/')
		if j < 0 {
			s.violate("trace-id", "slot id %q has no set prefix", id)
			return
		}
		ss := k.setFor(s, id[:j])
		if ss == nil {
			return
		}
		if k.slots.has(id) {
			s.violate("slot-state", "slot %s created twice", id)
			return
		}
		if t.To != slot.Connecting {
			s.violate("slot-state", "slot %s created in %s", id, t.To)
			return
		}
		k.slots.add(id, &shadowSlot{id: appendString(nil, id), set: ss, state: slot.Connecting})
		ss.n[slot.Connecting]++
		ss.total++
		ss.inst.nslots++
		k.dirtySet(s, ss)
		return
	}
	k.step(s, id, t, k.slots.get(id))
}

// step follows a transition of an existing slot, sl in the model (nil
// when the model has none).
func (k *checker) step(s *Sim, id string, t fsm.Step[slot.State, slot.Event], sl *shadowSlot) {
	if sl == nil {
		s.violate("slot-state", "transition of slot %s, which does not exist: %s --%s--> %s", id, t.From, t.Event, t.To)
		return
	}
	from, to := t.From, t.To
	if !validSlotState(from) || !validSlotState(to) {
		s.violate("slot-state", "slot %s: unknown state in %s --%s--> %s", id, from, t.Event, to)
		return
	}
	if from != sl.state {
		s.violate("slot-state", "slot %s left %s, but it was %s", id, from, sl.state)
		return
	}
	ss := sl.set
	ss.n[from]--
	ss.n[to]++
	sl.state = to
	inst := ss.inst
	if from == slot.Claimed {
		inst.nclaimed--
	}
	if to == slot.Claimed {
		inst.nclaimed++
	}
	if liveState(from) {
		inst.live--
	}
	if liveState(to) {
		inst.live++
	}
	switch t.Event {
	case slot.ConnectOK, slot.CheckOK, slot.RecycleOK:
		sl.failures = 0
	case slot.BackoffElapsed:
		k.backoff(s, id, sl)
	}
	if to == slot.Failed {
		sl.failures++
		sl.failedAt = s.now
	}
	if (from == slot.Connecting || from == slot.Checking || from == slot.Recycling) && to != from {
		inst.scanIO = true // an I/O context may have been cancelled
	}
	if to == slot.Stopped {
		k.slots.del(id, sl)
		ss.n[slot.Stopped]--
		ss.total--
		inst.nslots--
	}
	k.dirtySet(s, ss)
}

func validSlotState(st slot.State) bool { return st >= 0 && st < slot.NumStates }

// liveState reports whether a slot in st holds a connection.
func liveState(st slot.State) bool {
	return st == slot.Connected || st == slot.Claimed || st == slot.Recycling || st == slot.Checking
}

// backoff checks the delay a slot waited after its last failure.
func (k *checker) backoff(s *Sim, id string, sl *shadowSlot) {
	d := time.Duration(s.now - sl.failedAt)
	n := sl.failures
	pol := sl.set.inst.pol
	var lo, hi time.Duration
	switch b := pol.Backoff.(type) {
	case pool.ExponentialBackoff:
		base := b.Min
		for i := 1; i < n && base < b.Max; i++ {
			base *= 2
		}
		base = min(base, b.Max)
		lo, hi = base, base
		if b.Jitter > 0 {
			hi = base + b.Jitter - 1
		}
	default:
		if s.opt.BackoffBounds == nil {
			lo, hi = 0, time.Duration(1<<62)
		} else {
			lo, hi = s.opt.BackoffBounds(pol, n)
		}
	}
	if d < lo && s.now == sl.set.inst.noneOnlineAt {
		return // probed at once: the last online backend just went down
	}
	hi += time.Duration(sl.set.inst.c.pausedBetween(sl.failedAt, s.now)) // a pause holds the backoff's timer
	if d < lo || d > hi {
		s.violate("backoff-bounds", "slot %s waited %v after failure %d in a row; the policy allows %v to %v", id, d, n, lo, hi)
	}
}

// set follows one slot-set transition.
func (k *checker) set(s *Sim, id string, t fsm.Step[slotset.State, slotset.Event]) {
	ss := k.setFor(s, id)
	if ss == nil {
		return
	}
	to := t.To
	if to < 0 || to >= slotset.NumStates {
		s.violate("set-state", "set %s: unknown state %s", id, to)
		return
	}
	if ss.state == slotset.Online && to != slotset.Online {
		ss.inst.onlineSets--
		if ss.inst.onlineSets == 0 {
			ss.inst.noneOnlineAt = s.now
		}
	}
	if ss.state != slotset.Online && to == slotset.Online {
		ss.inst.onlineSets++
	}
	ss.state = to
	if to == slotset.Stopped {
		if ss.total != 0 {
			s.violate("set-state", "set %s stopped with %d slots", id, ss.total)
		}
		delete(k.sets, id)
		sets := ss.inst.sets
		last := sets[len(sets)-1]
		sets[ss.i], last.i = last, ss.i
		ss.inst.sets = sets[:len(sets)-1]
	}
	k.dirtySet(s, ss)
}

// atEventEnd compares the model with the pools touched by the event.
func (k *checker) atEventEnd(s *Sim) {
	for _, ss := range k.dirtySets {
		ss.dirty = false
		k.checkSet(s, ss)
	}
	k.dirtySets = k.dirtySets[:0]
	for _, inst := range k.dirtyInsts {
		inst.dirty = false
		k.checkInst(s, inst)
		if inst.scanIO {
			s.scanCancelled(inst)
		}
	}
	k.dirtyInsts = k.dirtyInsts[:0]
	if len(s.watched) > 0 {
		s.watchContexts()
	}
}

func (k *checker) checkSet(s *Sim, ss *shadowSet) {
	if ss.inst.p == nil || s.violation != nil {
		return
	}
	k.checks++
	v, ok := &k.sv, ss.view != nil && ss.view.Inspect(&k.sv)
	if !ok {
		// First look, or the set the view was of is gone: the pool may
		// have another for the backend.
		ss.view = ss.inst.view.Set(ss.name)
		ok = ss.view != nil && ss.view.Inspect(v)
	}
	if !ok {
		if ss.total != 0 {
			s.violate("slot-counts", "set %s is gone from its pool, with %d slots by the trace", ss.id, ss.total)
		}
		return
	}
	live := ss.n[slot.Connected] + ss.n[slot.Claimed] + ss.n[slot.Recycling] + ss.n[slot.Checking]
	switch {
	case v.Slots != ss.total || v.ByState != ss.n:
		s.violate("slot-counts", "set %s: the pool has %d slots by state %v, the trace %d by state %v", ss.id, v.Slots, v.ByState, ss.total, ss.n)
	case v.Live != live || v.Claimed != ss.n[slot.Claimed] || v.Idle != ss.n[slot.Connected]:
		s.violate("slot-counts", "set %s: the pool counts live %d claimed %d idle %d; its slots say %d, %d, %d",
			ss.id, v.Live, v.Claimed, v.Idle, live, ss.n[slot.Claimed], ss.n[slot.Connected])
	case v.Slots > ss.inst.pol.MaxSlotsPerBackend:
		s.violate("backend-cap", "set %s has %d slots; MaxSlotsPerBackend is %d", ss.id, v.Slots, ss.inst.pol.MaxSlotsPerBackend)
	case v.State != ss.state:
		s.violate("set-state", "set %s is %s; its trace says %s", ss.id, v.State, ss.state)
	case v.State != slotset.Draining && (v.State == slotset.Online) != (live > 0):
		s.violate("set-online", "set %s is %s with %d slots holding a connection", ss.id, v.State, live)
	case v.IndexErr != "":
		s.violate("picker-index", "set %s: %s", ss.id, v.IndexErr)
	}
}

func (k *checker) checkInst(s *Sim, inst *poolInst) {
	if inst.p == nil || s.violation != nil {
		return
	}
	v := &k.pv
	inst.view.Inspect(v)
	switch {
	case machine.State(v.State) != inst.state:
		s.violate("pool-state", "pool %s is %s; its trace says %s", inst.name, machine.State(v.State), inst.state)
	case v.Slots != inst.nslots || v.Claimed != inst.nclaimed:
		s.violate("slot-counts", "pool %s counts %d slots, %d claimed; its trace says %d, %d", inst.name, v.Slots, v.Claimed, inst.nslots, inst.nclaimed)
	case v.Slots > inst.pol.MaxSlots:
		s.violate("slot-cap", "pool %s has %d slots; MaxSlots is %d", inst.name, v.Slots, inst.pol.MaxSlots)
	case v.IndexErr != "":
		s.violate("picker-index", "pool %s: %s", inst.name, v.IndexErr)
	case v.PolicyError != "":
		// At the event that caused it, not when the pool closes.
		s.violate("policy-error", "%s: the pool reported a policy error: %s", inst.name, v.PolicyError)
	}
}

// recovered reports whether c's pool is back to its target, judged
// against the world's truth, not against what the pool knows: running,
// every backend that DNS serves now and that would serve c online (as
// many as MaxSlots allows once each served backend that would not holds
// a probe slot), and at least min(SparesWanted, MaxSlots) connections,
// less those probes, capped by what those backends can hold.
//
// A backend would serve c when it is up, neither hung nor cut off from
// c, and either c's pool has it online or it accepts connections (it is
// below its max_conns, the connections of killed clients counted). A
// backend DNS serves but c's resolver has not listed yet (its TTL has not
// run out) counts against the recovery: the pool does not use it yet.
//
// It reads the model, not the pool: at the end of every event the model
// agrees with the pool on every set the event touched (checkSet,
// checkInst), so between events it agrees on all of them.
func (s *Sim) recovered(c *client) bool {
	if !c.started || c.gone {
		return true
	}
	inst := c.inst
	if inst == nil || inst.p == nil {
		return false
	}
	if inst.state != machine.Running {
		return false
	}
	on := inst.onlineScratch()
	for _, ss := range inst.sets {
		if ss.state != slotset.Online {
			continue
		}
		b := ss.b
		if b == nil {
			b = s.byName[ss.name]
			ss.b = b
		}
		if b != nil {
			on[b.idx] = true
		}
	}
	healthy, unhealthy, online := 0, 0, 0
	for _, b := range s.backends {
		if !b.listed {
			continue
		}
		if b.healthyFor(c) && (on[b.idx] || b.accepts()) {
			healthy++
			if on[b.idx] {
				online++
			}
		} else {
			unhealthy++
		}
	}
	clear(on)
	pol := inst.pol
	room := max(pol.MaxSlots-unhealthy, 0) // each served backend that would not serve c holds a probe slot
	if online < min(healthy, room) {
		return false
	}
	return inst.live >= min(pol.SparesWanted, room, healthy*pol.MaxSlotsPerBackend)
}

// onlineScratch returns the pool's scratch slice of one flag per backend,
// all false.
func (inst *poolInst) onlineScratch() []bool {
	if inst.scratch == nil {
		inst.scratch = make([]bool, len(inst.s.backends))
	}
	return inst.scratch
}

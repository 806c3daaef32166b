package pool

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"reflect"
	"slices"
	"sync/atomic"
	"time"

	"github.com/qorbgo/qorb/backend"
	"github.com/qorbgo/qorb/core"
	"github.com/qorbgo/qorb/fsm"
	"github.com/qorbgo/qorb/pool/machine"
	"github.com/qorbgo/qorb/resolver"
	"github.com/qorbgo/qorb/slot"
	"github.com/qorbgo/qorb/slotset"
)

// Pool keeps connections of type C to the backends its resolver finds.
//
// All methods are safe for concurrent use. A Pool must be closed with
// Close, which closes every connection it opened.
type Pool[C any] struct {
	loop        *fsm.Loop
	name        string
	idPrefix    string // before slot and set IDs on a shared loop
	res         resolver.Resolver
	conn        backend.Connector[C]
	validate    func(context.Context, C) error // nil without a Validator
	recycle     func(context.Context, C) error // OnRecycle, else Validate with CheckOnRelease, else nil
	checkIdle   time.Duration                  // with a Validator: check on claim after this idle time; 0: never
	stampIdle   bool                           // idle slots are stamped: an idle limit or a check on claim needs it
	shrinkShare float64                        // of a backend's surplus slots, the share removed at each periodic rebalance
	onAcquire   func(context.Context, C) error // nil without an AcquireHook
	pol         Policy
	log         *slog.Logger

	finished atomic.Bool // Close returned: no connect or check starts; late connections are only closed
	tr       tracers
	// closesRunning counts connector Close calls in progress.
	closesRunning atomic.Int64

	// Everything below is owned by the loop.
	state    fsm.State[machine.State, machine.Event]
	rng      *rand.Rand // decoherence, the picker
	host     *host[C]
	resTr    resolver.Tracker // the resolver machine
	sets     map[backend.Name]*set[C]
	order    []*set[C] // every set not stopped, in preference order
	waiters  waiterList[C]
	freeW    []*waiter[C]
	nslots   int // slots not stopped
	nclaimed int
	lastErr  error
	// resErr is the resolver's last error, until it lists backends again;
	// resAnswered is whether it answered at all. A claim that finds no
	// backend says why with them.
	resErr       error
	resAnswered  bool
	ioCtx        context.Context
	ioCancel     context.CancelFunc
	rebalance    fsm.Timer
	decohere     fsm.Timer
	quiet        chan struct{} // closed when stopping and nothing is left
	done         chan struct{} // closed when stopped
	cands        []Candidate
	candSets     []*set[C] // scratch of pick
	rebSets      []*set[C] // scratch of rebalanceNow
	info         []SetInfo
	want         []int
	lastDemand   int              // demand at the last rebalance
	handles      []Handle[C]      // unused handles of the current block
	hooking      []*hookJob[C]    // checks and recycle hooks in flight
	freeJobs     []*hookJob[C]    // finished hook jobs, for the next ones
	acquiring    []*asyncClaim[C] // simulated claims whose hooks run
	asyncFree    *asyncClaim[C]   // for the next simulated claim
	unregister   []func()         // undo what New registered on the loop
	fu           followUp         // follow-up work asked for in this event
	following    bool             // afterEvent is running
	afterEventFn func()           // p.afterEvent, made once
	leastClaimed bool             // the picker is LeastClaimed: pick in place
	orphans      int              // connections and connects of stopped slots not yet finished
	queries      int              // resolver queries in flight
	onQuiet      func()           // closeAsync's: called once when the pool is quiet (ioDone)
	st           counters
	cclock       core.ClaimClock // times claims for Stats.OldestClaim
	lc           lcIndex[C]      // what LeastClaimed picks, when it is the picker
	codel        core.CoDel      // sheds claims under overload (Policy.TargetClaimDelay)
	shedTimer    fsm.Timer       // the next time codel is asked to shed the queue's head
	hooks        connHooks[C]    // WithConnHooks
	reports      uint64          // Handle.Report calls so far
	// held is the registry of held claims (Policy.TrackHeld, and the leak
	// scan): what a claim's slot does not say, for the claims that have
	// it. leakTimer runs the leak scan (Policy.LeakThreshold).
	held      map[*pslot[C]]*heldInfo
	leakTimer fsm.Timer
	onLeak    func(HeldClaim)
	// breakerTimer opens the circuit breaker when the pool has held no
	// connection for Policy.CircuitBreakAfter.
	breakerTimer fsm.Timer
}

// New returns a pool over the backends r finds, connecting with c. It
// validates p (zero fields take defaults), starts the resolver and returns
// at once: connections are opened in the background, and Claim waits for
// the first.
func New[C any](r resolver.Resolver, c backend.Connector[C], p Policy, opts ...Option) (*Pool[C], error) {
	if nilValue(r) {
		return nil, fmt.Errorf("pool: nil resolver")
	}
	if nilValue(c) {
		return nil, fmt.Errorf("pool: nil connector")
	}
	p = p.withDefaults()
	if err := p.validate(); err != nil {
		return nil, err
	}
	p = p.capped()
	o := options{seed: 1, name: "pool"}
	for _, opt := range opts {
		opt(&o)
	}
	pl := &Pool[C]{
		name:  o.name,
		res:   r,
		conn:  c,
		pol:   p,
		sets:  make(map[backend.Name]*set[C]),
		quiet: make(chan struct{}),
		done:  make(chan struct{}),
	}
	pl.loop = o.loop
	if pl.loop == nil {
		pl.loop = fsm.NewLoop(fsm.Config{Clock: o.clock, Seed: o.seed, Logger: o.logger, Strict: o.strict})
	} else {
		pl.idPrefix = o.name + "/"
	}
	pl.log = pl.loop.Logger().With("pool", o.name)
	for _, t := range o.tracers {
		if err := pl.tr.add(t); err != nil {
			return nil, err
		}
	}
	if o.connHooks != nil {
		h, ok := o.connHooks.(connHooks[C])
		if !ok {
			return nil, fmt.Errorf("pool: WithConnHooks of another connection type (%T) than the pool's", o.connHooks)
		}
		pl.hooks = h
	}
	pl.rng = pl.loop.NewRand("pool", o.name)
	if v, ok := c.(backend.Validator[C]); ok {
		pl.validate = v.Validate
		if p.CheckOnRelease {
			pl.recycle = v.Validate
		}
		pl.checkIdle = max(0, p.CheckIdleAfter)
	}
	if h, ok := c.(backend.RecycleHook[C]); ok {
		pl.recycle = h.OnRecycle
	}
	if h, ok := c.(backend.AcquireHook[C]); ok {
		pl.onAcquire = h.OnAcquire
	}
	pl.stampIdle = pl.checkIdle > 0 || p.MaxConnIdleTime > 0
	pl.shrinkShare = 1 - math.Exp2(-float64(p.RebalanceInterval)/float64(p.ShrinkHalfLife))
	pl.ioCtx, pl.ioCancel = context.WithCancel(context.Background())
	pl.afterEventFn = pl.afterEvent
	_, pl.leastClaimed = p.Picker.(LeastClaimed)
	pl.codel = core.NewCoDel(p.TargetClaimDelay, p.ClaimDelayInterval)
	pl.initTimer(&pl.shedTimer, func() { pl.shed(pl.now()) })
	pl.initTimer(&pl.rebalance, pl.rebalanceTick)
	pl.initTimer(&pl.decohere, pl.decohereTick)
	pl.initTimer(&pl.leakTimer, pl.leakScan)
	pl.initTimer(&pl.breakerTimer, pl.breakerDue)
	pl.onLeak = o.onLeak

	// On a shared loop other pools may be running: register with the loop
	// held, and unregister at Close.
	pl.loop.Enter()
	defer pl.loop.Leave()
	for _, obs := range o.observers {
		pl.unregister = append(pl.unregister, pl.loop.AddObserver(obs))
	}
	pl.unregister = append(pl.unregister, pl.loop.OnIdle(pl.checkQuiet))
	pl.loop.After(&pl.rebalance, p.RebalanceInterval)
	pl.loop.After(&pl.decohere, p.DecoherenceInterval)
	if p.LeakThreshold > 0 {
		pl.loop.After(&pl.leakTimer, pl.leakPeriod())
	}
	pl.armBreaker()
	pl.host = &host[C]{p: pl, rng: pl.loop.NewRand("resolver", o.name)}
	r.Start(pl.host)
	return pl, nil
}

// nilValue reports whether x is nil or a nil pointer, map, slice,
// channel or function in an interface.
func nilValue(x any) bool {
	if x == nil {
		return true
	}
	v := reflect.ValueOf(x)
	switch v.Kind() {
	case reflect.Pointer, reflect.Map, reflect.Slice, reflect.Chan, reflect.Func, reflect.UnsafePointer:
		return v.IsNil()
	}
	return false
}

// host is what the pool offers its resolver: resolver.Host.
type host[C any] struct {
	p         *Pool[C]
	rng       *rand.Rand
	last      []backend.Backend // the last set applied
	delivered bool
}

// Querying implements resolver.Host.
func (h *host[C]) Querying() { h.p.resTr.Querying(h.p.loop, h.p.name) }

// Update implements resolver.Host: an answer, applied when it differs from
// the last one.
func (h *host[C]) Update(bs []backend.Backend) {
	p := h.p
	p.resTr.Answered(p.loop, p.name)
	p.resAnswered = true
	if len(bs) > 0 {
		p.resErr = nil
	}
	if h.delivered && slices.Equal(bs, h.last) {
		return
	}
	h.delivered = true
	h.last = append(h.last[:0], bs...)
	p.update(h.last)
}

// ReportError implements resolver.Host.
func (h *host[C]) ReportError(err error) {
	if err != nil {
		h.p.resErr = fmt.Errorf("resolver: %w", err)
	}
	h.p.resTr.Failed(h.p.loop, h.p.name)
	h.Log(slog.LevelDebug, "resolver error", "err", err)
}

// NewTimer implements resolver.Host.
func (h *host[C]) NewTimer(f func()) resolver.Timer {
	t := &hostTimer{l: h.p.loop}
	h.p.initTimer(&t.t, f)
	return t
}

// Go implements resolver.Host.
func (h *host[C]) Go(query func() func()) {
	p := h.p
	p.queries++
	p.loop.Spawn(fsm.Action{Kind: fsm.Query, ID: p.name}, func() func() {
		done := query()
		return func() {
			p.queries--
			if done != nil {
				done()
			}
			p.checkQuiet()
		}
	})
}

// Now implements resolver.Host.
func (h *host[C]) Now() time.Time { return h.p.loop.Now() }

// Rand implements resolver.Host.
func (h *host[C]) Rand() *rand.Rand { return h.rng }

// Log implements resolver.Host.
func (h *host[C]) Log(level slog.Level, msg string, args ...any) {
	h.p.loop.Log(h.p.log, level, msg, args...)
}

// Do implements resolver.Host.
func (h *host[C]) Do(f func()) {
	h.p.loop.Enter()
	defer h.p.loop.Leave()
	f()
}

// hostTimer is a resolver's timer on the loop.
type hostTimer struct {
	l *fsm.Loop
	t fsm.Timer
}

func (t *hostTimer) Reset(d time.Duration) { t.l.After(&t.t, d) }
func (t *hostTimer) Stop()                 { t.l.Cancel(&t.t) }
func (p *Pool[C]) fire(ev machine.Event)   { machine.Kind.Fire(p.loop, &p.state, p.name, ev) }
func (p *Pool[C]) closing() bool           { return p.state.Get() >= machine.Stopping }
func (p *Pool[C]) policyError(format string, a ...any) {
	err := fmt.Errorf(format, a...)
	p.st.policyErr = err
	p.logError(err.Error())
}

// logError logs at error level once the event ends, off the loop.
func (p *Pool[C]) logError(msg string, args ...any) {
	p.loop.Log(p.log, slog.LevelError, msg, args...)
}

// update applies a resolver snapshot.
func (p *Pool[C]) update(bs []backend.Backend) {
	if p.closing() {
		return
	}
	seen := make(map[backend.Name]bool, len(bs))
	// A new backend enters the preference order at a random place. During
	// a run of new backends (a pool's first snapshot is all new) the order
	// is kept as places in run, which move without pointers, and is
	// rebuilt with the index once after the run, before anything else may
	// use them.
	var (
		run    []*set[C] // the order as the run began, then the new sets
		places []int32   // the order during the run, as indexes into run
	)
	endRun := func() {
		if run == nil {
			return
		}
		p.order = p.order[:0]
		for _, i := range places {
			p.order = append(p.order, run[i])
		}
		run = nil
		p.lcRebuild()
	}
	for _, b := range bs {
		if b.Name == "" || seen[b.Name] {
			continue
		}
		seen[b.Name] = true
		s, ok := p.sets[b.Name]
		if !ok {
			s = p.newSet(b)
			p.sets[b.Name] = s
			s.inPool = true
			if run == nil {
				run = slices.Clone(p.order)
				places = places[:0]
				for i := range run {
					places = append(places, int32(i))
				}
			}
			run = append(run, s)
			i := s.rng.IntN(len(places) + 1)
			places = slices.Insert(places, i, int32(len(run)-1))
			continue
		}
		endRun()
		if s.b.Addr != b.Addr {
			// The same backend at a new address: its slots reconnect
			// there, the idle ones now, the others when they come back
			// (idleSlot, which sees that their backend is not their
			// set's any more).
			nb := *s.b
			nb.Addr = b.Addr
			s.prevB, s.b = s.b, &nb
			for _, sl := range s.slots {
				if sl.State().HasConn() || sl.State() == slot.Connecting {
					sl.moved = true
				}
			}
			for _, sl := range slices.Clone(s.idle) {
				p.expire(sl)
			}
		}
		s.Restore(p.loop)
	}
	endRun()
	for _, s := range slices.Clone(p.order) {
		if !seen[s.b.Name] && s.State() != slotset.Draining {
			p.drain(s)
		}
	}
	p.follow(followRebalance | followDead)
}

// drain starts draining a set the resolver no longer lists.
func (p *Pool[C]) drain(s *set[C]) {
	s.Remove(p.loop)
	for _, sl := range slices.Clone(s.slots) {
		p.retire(sl)
	}
	p.follow(followDrain)
}

// maybeDrained stops a draining set once its last slot stopped.
func (p *Pool[C]) maybeDrained(s *set[C]) {
	if s.Drain(p.loop, len(s.slots)) {
		p.forget(s)
	}
}

func (p *Pool[C]) forget(s *set[C]) {
	// Its timers go with it: a stopped set has no connect to pace and
	// nothing to eject.
	p.loop.Cancel(&s.dial.timer)
	p.loop.Cancel(&s.fb.timer)
	p.loop.Cancel(&s.capTimer)
	p.loop.Cancel(&s.slowTimer)
	s.dial.queue = nil
	if p.sets[s.b.Name] == s {
		delete(p.sets, s.b.Name)
		s.inPool = false
	}
	if i := slices.Index(p.order, s); i >= 0 {
		if i < len(p.order)/2 {
			// The sets before it move up one place: a closing pool
			// forgets its sets first to last, each at the front.
			copy(p.order[1:i+1], p.order[:i])
			p.order[0] = nil
			p.order = p.order[1:]
		} else {
			p.order = slices.Delete(p.order, i, i+1)
		}
		if !p.closing() {
			// A closing pool serves no claim: its sets go one by one,
			// and rebuilding the index for each would cost the square
			// of the backends.
			p.lcRebuild()
		}
	}
}

func (p *Pool[C]) rebalanceTick() {
	p.rebalanceNow(true)
	p.loop.After(&p.rebalance, p.pol.RebalanceInterval)
}

func (p *Pool[C]) decohereTick() {
	if n := len(p.order); n > 1 {
		last := p.order[n-1]
		i := p.rng.IntN(n)
		copy(p.order[i+1:], p.order[i:n-1])
		p.order[i] = last
		p.lcRebuild()
	}
	p.loop.After(&p.decohere, p.pol.DecoherenceInterval)
}

// rebalanceNow asks the rebalancer for the slots each backend wants and
// adds slots at once. It removes surplus slots only when shrink is set (the
// periodic tick), and then at most half the surplus of each backend, so a
// burst does not tear connections down.
func (p *Pool[C]) rebalanceNow(shrink bool) {
	if p.closing() {
		return
	}
	p.info = p.info[:0]
	p.rebSets = p.rebSets[:0]
	for _, s := range p.order {
		if s.State() == slotset.Draining {
			continue
		}
		p.info = append(p.info, SetInfo{Name: s.b.Name, Online: s.State() == slotset.Online, Dead: s.Dead(), Failures: s.Failures(),
			Claimed: s.Claimed, Slots: s.wantedNow(), Cap: s.cap()})
		p.rebSets = append(p.rebSets, s)
	}
	p.want = slices.Grow(p.want[:0], len(p.info))[:len(p.info)]
	p.callRebalancer()
	total := 0
	for i, s := range p.rebSets {
		w, bad := core.Clamp(p.want[i], p.pol.MaxSlotsPerBackend, s.cap(), p.pol.MaxSlots-total)
		if bad.Has(core.WantNegative) {
			p.policyError("pool: rebalancer wanted %d slots for %s", p.want[i], s.b.Name)
		}
		if bad.Has(core.WantAbovePerBackend) {
			p.policyError("pool: rebalancer wanted %d slots for %s, above MaxSlotsPerBackend %d", p.want[i], s.b.Name, p.pol.MaxSlotsPerBackend)
		}
		if bad.Has(core.WantAboveTotal) {
			p.policyError("pool: rebalancer wanted more than MaxSlots %d in all", p.pol.MaxSlots)
		}
		total += w
		s.Wanted = w
	}
	p.lastDemand = p.demand()
	// Slots that backends below their share cannot get under MaxSlots:
	// those are taken at once from the backends above theirs.
	short := 0
	for _, s := range p.rebSets {
		short += max(s.Wanted-s.wantedNow()-s.Retiring, 0)
	}
	short -= p.pol.MaxSlots - p.nslots - p.orphans
	for _, s := range p.rebSets {
		surplus := s.wantedNow() - s.Wanted
		if surplus <= 0 {
			s.shrinkCarry = 0
			continue
		}
		n := 0
		switch {
		case s.State() == slotset.Offline || s.State() == slotset.Failing:
			// No connection to tear down: keep only the probe.
			n = surplus
		case shrink:
			// Damped: a burst that passed does not tear everything down;
			// the surplus decays with Policy.ShrinkHalfLife. The share is
			// rounded to whole slots, and what rounding left carries to
			// the next step, so that a small surplus decays too.
			n = core.DampedShrink(&s.shrinkCarry, surplus, p.shrinkShare)
		}
		n = max(n, min(surplus, short))
		short -= n
		p.shrink(s, n) // changes no set's place in p.rebSets
	}
	p.fill()
}

func (p *Pool[C]) callRebalancer() {
	in := RebalanceInput{Sets: p.info, Claimed: p.nclaimed, Waiters: p.waiters.n,
		Spares: p.pol.SparesWanted, Min: p.pol.MinSlots, MaxSlots: p.pol.MaxSlots}
	defer func() {
		if v := recover(); v != nil {
			p.policyError("pool: rebalancer panicked: %v", v)
			DefaultRebalancer{}.Rebalance(in, p.want)
		}
	}()
	p.pol.Rebalancer.Rebalance(in, p.want)
}

// shrink retires up to n slots of s, cheapest first: failed, waiting, connecting,
// idle, then busy ones at their next idle moment.
func (p *Pool[C]) shrink(s *set[C], n int) {
	for _, st := range []slot.State{slot.Failed, slot.Waiting, slot.Connecting, slot.Connected, slot.Checking, slot.Recycling, slot.Claimed} {
		for _, sl := range slices.Clone(s.slots) {
			if n == 0 {
				return
			}
			if sl.State() == st && !sl.Retiring() {
				p.retire(sl)
				n--
			}
		}
	}
}

// fill adds slots to sets below their wanted count, in preference order,
// without passing MaxSlots or a backend's cap.
func (p *Pool[C]) fill() {
	if p.closing() {
		return
	}
	// Grow only within the total the rebalancer wants: a backend above its
	// share gives its surplus back at the next periodic rebalance.
	room := 0
	for _, s := range p.order {
		if s.State() != slotset.Draining {
			room += s.Wanted - s.wantedNow()
		}
	}
	for _, s := range p.order {
		// A backend that just came back online grows to its share at once, even
		// beyond the room: the backends that took its slots while it was
		// offline give their surplus back at the next periodic rebalance,
		// damped. Without this it would get one slot back per minute.
		back := s.back && s.State() == slotset.Online
		s.back = false
		// A slot waiting to retire is kept rather than replaced.
		for i := 0; s.State() != slotset.Draining && s.Retiring > 0 && s.wantedNow() < s.Wanted && i < len(s.slots); i++ {
			if sl := s.slots[i]; sl.Keep() {
				s.Retiring--
				room--
			}
		}
		for (room > 0 || back || s.State() == slotset.Offline || s.State() == slotset.Failing) && s.State() != slotset.Draining && s.wantedNow() < s.Wanted &&
			len(s.slots)+s.Orphans < p.pol.MaxSlotsPerBackend && p.nslots+p.orphans < p.pol.MaxSlots {
			p.startSlot(s)
			room--
		}
	}
}

// demand is the number of slots the default rebalancing would want.
// A claim triggers a rebalance when demand has changed since the last one
// and exceeds the slots, so that a pool held below demand by its caps does
// not rebalance on every claim.
func (p *Pool[C]) demand() int {
	return core.Demand(p.nclaimed, p.waiters.n, p.pol.SparesWanted, p.pol.MinSlots, p.pol.MaxSlots)
}

// checkDead moves the pool to failed when every known backend is dead,
// and back to running when a failed pool knows one that is not.
func (p *Pool[C]) checkDead() {
	st := p.state.Get()
	if st != machine.Starting && st != machine.Running && st != machine.Failed && st != machine.Broken {
		return
	}
	n := 0
	for _, s := range p.order {
		if s.State() == slotset.Draining {
			continue
		}
		if !s.Dead() || s.State() == slotset.Online {
			n = -1
			break
		}
		n++
	}
	if n <= 0 {
		// A backend is alive or untried, or none is listed: a failed pool
		// lets claims wait again.
		if st == machine.Failed {
			p.fire(machine.Revive)
		}
		return
	}
	if st == machine.Failed {
		return
	}
	p.fire(machine.AllDead)
	err := p.allDeadErr()
	for w := p.waiters.head; w != nil; w = p.waiters.head {
		p.finishWaiter(w, nil, err)
	}
}

// setUp records that s came online. When it comes back (it was online
// before), the rebalance that follows gives it its share at once (see
// fill), even while other backends still hold the slots it had before it
// went offline.
func (p *Pool[C]) setUp(s *set[C]) {
	s.back = s.wasUp
	s.wasUp = true
	p.loop.Cancel(&p.breakerTimer)
	if st := p.state.Get(); st == machine.Starting || st == machine.Failed || st == machine.Broken {
		p.fire(machine.BackendUp)
	}
	if len(s.dial.queue) > 0 {
		// Slots that waited while it was failing connect now.
		p.dialNext(s)
	}
}

// armBreaker starts the circuit breaker's clock (Policy.CircuitBreakAfter)
// when the pool holds no connection and it is not already running.
func (p *Pool[C]) armBreaker() {
	if p.pol.CircuitBreakAfter <= 0 || p.breakerTimer.Pending() || p.closing() {
		return
	}
	for _, s := range p.order {
		if s.State() == slotset.Online {
			return
		}
	}
	p.loop.After(&p.breakerTimer, p.pol.CircuitBreakAfter)
}

// breakerDue runs when the pool has held no connection for
// CircuitBreakAfter: the breaker opens, the queue fails, and new claims
// fail at once until a connection is made. A pool that knows no backend
// (claims fail with ErrNoBackends) or is failed (every backend dead:
// claims already fail fast) waits another period.
func (p *Pool[C]) breakerDue() {
	if p.closing() {
		return
	}
	known := 0
	for _, s := range p.order {
		switch {
		case s.State() == slotset.Online:
			return
		case s.State() != slotset.Draining:
			known++
		}
	}
	if st := p.state.Get(); known == 0 || (st != machine.Starting && st != machine.Running) {
		p.loop.After(&p.breakerTimer, p.pol.CircuitBreakAfter)
		return
	}
	p.fire(machine.Break)
	p.st.breaks++
	p.loop.Log(p.log, slog.LevelWarn, "circuit breaker open: no connection to any backend", "for", p.pol.CircuitBreakAfter, "err", p.lastErr)
	err := p.breakerErr()
	for w := p.waiters.head; w != nil; w = p.waiters.head {
		p.finishWaiter(w, nil, err)
	}
}

// EffectivePolicy returns the policy the pool runs with: the one given to
// New with every zero field replaced by its default and the documented
// caps applied. It is safe to call at any time; the policy never changes.
func (p *Pool[C]) EffectivePolicy() Policy { return p.pol }

// Stats returns a snapshot of the pool.
func (p *Pool[C]) Stats() Stats {
	p.loop.Enter()
	defer p.loop.Leave()
	return p.stats()
}

// claimErr chooses the error for a claim whose deadline passed, and marks
// it as a timeout (see ClaimEndData.TimedOut).
func (p *Pool[C]) claimErr() error {
	err := &claimError{kind: ErrAllClaimsUsed, timeout: true}
	known, online := 0, 0
	for _, s := range p.order {
		if s.State() == slotset.Draining {
			continue
		}
		known++
		if s.State() == slotset.Online {
			online++
		}
	}
	switch {
	case known == 0:
		err.kind, err.cause = ErrNoBackends, p.resolverCause()
	case online == 0:
		err.kind, err.cause = ErrNoBackendsOnline, p.lastErr
	}
	return err
}

var (
	errNoAnswer    = errors.New("resolver: no answer yet")
	errEmptyAnswer = errors.New("resolver: its last answer listed no backend")
)

// resolverCause says why the pool knows no backend: the resolver's last
// error, or that it has not answered, or that its answer was empty.
func (p *Pool[C]) resolverCause() error {
	switch {
	case p.resErr != nil:
		return p.resErr
	case !p.resAnswered:
		return errNoAnswer
	}
	return errEmptyAnswer
}

// Close stops the resolver, fails waiting claims with ErrClosed, closes
// idle connections, and waits until every claimed connection is released
// and every connect, check and close in flight has returned, or until ctx
// ends. Then it closes what is left, claimed or not, and returns at once:
// nil, or, when claimed connections were closed while in use, an error
// that wraps ctx's error and says how many.
//
// Every connection the connector returned is closed exactly once. The
// closes that Close forces run on goroutines of their own, so that a
// connector whose Close blocks cannot hold Close up: Stats.ClosesRunning
// counts those still running. After Close returns the pool calls no
// connector method again, except Close for connections that arrive later
// (a connect that ignored its cancelled context): each is closed as it
// arrives. Handles claimed when Close forced their connection shut stay
// valid: Release and Discard on them do nothing.
//
// Calling Close again waits for the first call to finish, or for ctx to
// end, and returns nil, or ctx's error when ctx ends first.
func (p *Pool[C]) Close(ctx context.Context) error {
	p.loop.Enter()
	if p.closing() {
		p.loop.Leave()
		select {
		case <-p.done:
			return nil
		default:
		}
		select {
		case <-p.done:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	p.beginClose()
	p.loop.Leave()

	var err error
	select {
	case <-p.quiet:
	default:
		select {
		case <-p.quiet:
		case <-ctx.Done():
			err = ctx.Err()
		}
	}

	p.loop.Enter()
	forced := p.endClose()
	p.loop.Leave()
	close(p.done)
	if forced > 0 {
		return fmt.Errorf("pool: close: %d claimed connections closed while in use: %w", forced, err)
	}
	return nil
}

// beginClose is the first half of Close, with the loop held: the resolver
// stops, waiters fail, and every slot stops now or at its release.
func (p *Pool[C]) beginClose() {
	p.fire(machine.CloseCalled)
	p.res.Stop()
	p.resTr.Stop(p.loop, p.name)
	p.loop.Cancel(&p.rebalance)
	p.loop.Cancel(&p.decohere)
	p.loop.Cancel(&p.shedTimer)
	p.loop.Cancel(&p.leakTimer)
	p.loop.Cancel(&p.breakerTimer)
	for w := p.waiters.head; w != nil; w = p.waiters.head {
		p.finishWaiter(w, nil, ErrClosed)
	}
	p.ioCancel()
	for _, c := range p.acquiring {
		c.cancel()
	}
	for _, s := range slices.Clone(p.order) {
		s.Remove(p.loop)
		for _, sl := range slices.Clone(s.slots) {
			if sl.cancel != nil {
				// Its connect or check ends now (the contexts of the
				// slots' I/O are not children of the pool's, so that
				// they leave nothing behind when they end).
				sl.cancel.cancel()
			}
			p.retire(sl)
		}
		p.maybeDrained(s)
	}
	p.checkQuiet()
}

// endClose is the second half of Close, with the loop held: it stops the
// slots still left, closing their connections off the loop, and returns how
// many of them were claimed.
func (p *Pool[C]) endClose() (forced int) {
	for _, s := range slices.Clone(p.order) {
		for _, sl := range slices.Clone(s.slots) {
			switch sl.State() {
			case slot.Claimed, slot.Connected:
				// Closed off the loop, so that a connector whose Close
				// blocks cannot hold Close up.
				if sl.State() == slot.Claimed {
					forced++
				}
				p.stopSlot(sl)
			default:
				// A connect, check or recycle still holds the connection:
				// a connect's is closed when it arrives, a hook's now.
				p.stopSlotKeepConn(sl)
			}
		}
	}
	p.closeHooked()
	p.finished.Store(true)
	p.fire(machine.Closed)
	for _, f := range p.unregister {
		f()
	}
	if p.idPrefix == "" { // the loop is the pool's own
		p.loop.Halt()
	}
	return forced
}

// checkQuiet releases Close once nothing is left to wait for.
func (p *Pool[C]) checkQuiet() {
	if p.state.Get() != machine.Stopping || p.nslots != 0 {
		return
	}
	if p.loop.InFlight() == 0 {
		select {
		case <-p.quiet:
		default:
			close(p.quiet)
		}
	}
	if f := p.onQuiet; f != nil && p.ioDone() {
		p.onQuiet = nil
		f()
	}
}

// now reads the loop's clock.
func (p *Pool[C]) now() time.Time { return p.loop.Now() }

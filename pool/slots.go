package pool

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"reflect"
	"strconv"
	"time"

	"github.com/qorbgo/qorb/backend"
	"github.com/qorbgo/qorb/core"
	"github.com/qorbgo/qorb/fsm"
	"github.com/qorbgo/qorb/slot"
	"github.com/qorbgo/qorb/slotset"
)

// set is one backend's slot set.
type set[C any] struct {
	p           *Pool[C]
	b           *backend.Backend // replaced, not changed, when its address changes
	prevB       *backend.Backend // before the last address change: where moved slots' connections go
	slotset.Set                  // the machine, live connections, failures, drain
	rng         fsm.Stream       // its place in the preference order
	slots       []*pslot[C]      // not stopped
	idle        []*pslot[C]      // connected, LIFO
	nextID      int
	st          setCounters
	dial        dialGate[C] // connects in flight and waiting (Policy.MaxConnectingPerBackend, ConnectRatePerBackend)
	fb          feedback    // its claimers' reports; outlier ejection
	shrinkCarry float64     // the part of a slot the damped shrink owes (Policy.ShrinkHalfLife)
	probe       *pslot[C]   // the slot claimed to probe it after an ejection
	rank        int32       // its place in the preference order
	lcIn        int32       // its bucket in the LeastClaimed index, or -1
	inPool      bool        // in p.sets: false once the pool forgot it
	back        bool        // came back online since the last fill: it may grow beyond the room
	// capTimer ends the capacity the backend showed by refusing connects,
	// so that it is asked for its share again; capRounds counts the times
	// in a row it was learned, for the delay (Policy.Backoff).
	capTimer  fsm.Timer
	capRounds int
	// slowSince is when the backend came back after its connects had
	// failed, while its slow start runs (Policy.SlowStartWindow): a stamp,
	// 0 when none runs; slowTimer ends each of its steps.
	slowSince int64
	slowTimer fsm.Timer
	wasUp     bool // has been online
}

func (p *Pool[C]) newSet(b backend.Backend) *set[C] {
	id := p.idPrefix + string(b.Name)
	s := &set[C]{Set: slotset.New(id), p: p, b: &b, lcIn: -1}
	p.initTimer(&s.dial.timer, func() { p.dialNext(s) })
	p.initTimer(&s.fb.timer, func() { p.ejectionOver(s) })
	p.initTimer(&s.capTimer, func() { p.capacityOver(s) })
	p.initTimer(&s.slowTimer, func() { p.slowStartStep(s) })
	s.dial.ConnectGate = core.NewConnectGate(p.loop.Nanos(), p.pol.ConnectRatePerBackend)
	s.rng.Init(p.loop, "set", s.ID())
	return s
}

// wantedNow is the number of slots that will remain: those not retiring.
func (s *set[C]) wantedNow() int { return len(s.slots) - s.Retiring }

// capacityOver runs when the capacity a backend showed has been kept for
// its backoff: one more connect to it is tried, unless its share is below
// the capacity, which then binds nothing and is forgotten.
func (p *Pool[C]) capacityOver(s *set[C]) {
	switch {
	case s.Capacity() == 0:
		return
	case s.Wanted < s.Capacity() || s.Capacity()+1 >= p.pol.MaxSlotsPerBackend:
		p.forgetCapacity(s)
	default:
		s.Probe()
	}
	p.follow(followRebalance)
}

// forgetCapacity forgets what s showed it accepts, for good: it went
// offline, or a connect beyond it succeeded.
func (p *Pool[C]) forgetCapacity(s *set[C]) {
	s.Forget()
	s.capRounds = 0
	p.loop.Cancel(&s.capTimer)
}

// cap is the most slots the backend is given: Policy.MaxSlotsPerBackend,
// or fewer once it refused a connect while holding that many (its
// Capacity), until it accepts more or goes offline.
func (s *set[C]) cap() int {
	c := s.p.pol.MaxSlotsPerBackend
	if k := s.Capacity(); k > 0 && k < c {
		c = k
	}
	if s.slowSince != 0 {
		c = min(c, s.p.slowStartCap(s))
	}
	return c
}

// pslot is one slot: a commitment to hold one connection. It is kept
// small (the pool may hold a million): times are stamps of the loop's
// clock (fsm.Loop.Nanos), and one timer serves every deadline the slot
// has.
type pslot[C any] struct {
	set       *set[C]
	slot.Slot            // the machine, failures, I/O generation, pending, retiring
	rng       fsm.Stream // backoff, health-check and lifetime jitter
	conn      C
	cur       *Handle[C] // the claim holding the slot, or nil
	// t is the deadline of the I/O in flight or the end of the backoff;
	// while the slot holds a connection and no I/O, its next health
	// check, or the end of its lifetime if that comes first.
	t       fsm.Timer
	cancel  *ioCtx // the context of its I/O in flight, to cancel
	num     int32  // its number in its set: its ID is the set's, a slash and the number
	pos     int32  // index in set.slots
	idlePos int32  // index in set.idle, or -1
	// replace marks a connection to replace at its next idle moment: its
	// lifetime ended while it was claimed, or Reset came after it (or its
	// connect) began. Each connect clears it.
	replace   bool
	moved     bool  // its connection goes to its backend's previous address
	checkDue  bool  // the claim checks the connection before the claimer gets it
	expireAt  int64 // end of its connection's lifetime (stamp); 0 without a limit
	idleSince int64 // when it last became idle (stamp), with an idle limit or a check on claim
	// claimed is the claim's number (core.ClaimClock), or, with a release
	// tracer, when it was claimed (stamp).
	claimed int64
}

func (sl *pslot[C]) fire(ev slot.Event) bool {
	l := sl.set.p.loop
	if l.Observed() && sl.Slot.ID() == "" {
		sl.ID() // observers read it
	}
	return sl.Fire(l, ev)
}

// backend is where the slot's connection goes: its backend, at the
// previous address if the backend moved since the slot connected.
func (sl *pslot[C]) backend() *backend.Backend {
	if sl.moved && sl.set.prevB != nil {
		return sl.set.prevB
	}
	return sl.set.b
}

// ID returns the slot's machine ID (its set's, a slash and its number),
// naming the slot the first time it is asked.
func (sl *pslot[C]) ID() string {
	if id := sl.Slot.ID(); id != "" {
		return id
	}
	id := sl.name()
	sl.SetID(id)
	return id
}

// name builds the slot's machine ID.
func (sl *pslot[C]) name() string { return sl.set.ID() + "/" + strconv.Itoa(int(sl.num)) }

// actionID is the slot's ID for an action, when the loop's driver reads it.
func (sl *pslot[C]) actionID() string {
	if sl.set.p.loop.Driven() {
		return sl.ID()
	}
	return ""
}

// Due runs when the slot's timer fires: what the deadline stood for
// depends on the slot's state.
func (sl *pslot[C]) Due() {
	p := sl.set.p
	switch sl.State() {
	case slot.Connected, slot.Claimed:
		p.healthDue(sl)
	case slot.Connecting, slot.Failed, slot.Checking, slot.Recycling:
		p.ioDue(sl)
	}
	// Waiting, stopped: a deadline left from before; nothing is due.
}

// startSlot adds a slot to s and starts connecting.
func (p *Pool[C]) startSlot(s *set[C]) {
	sl := &pslot[C]{set: s, num: int32(s.nextID), pos: int32(len(s.slots)), idlePos: -1}
	s.nextID++
	sl.rng.Init(p.loop, "slot", sl.name())
	sl.t.InitDue(sl)
	s.slots = append(s.slots, sl)
	p.nslots++
	if p.loop.Observed() {
		sl.ID()
	}
	sl.Created(p.loop)
	p.dial(sl)
}

// connectWhenFree starts the connect of a slot in connecting, or, while
// the slot's earlier connection is still closing, once it has closed.
func (p *Pool[C]) connectWhenFree(sl *pslot[C]) {
	if sl.ConnectWhenFree(p.loop) {
		p.dial(sl)
	}
}

// abandon makes the I/O in flight on a slot stale. It stays counted
// against the slot (or, once the slot stops, its backend) until its
// completion runs.
func (p *Pool[C]) abandon(sl *pslot[C]) {
	inFlight := sl.cancel != nil
	if inFlight {
		sl.cancel.cancel()
		sl.cancel = nil
	}
	sl.Abandon(inFlight)
}

// pendingDone records that one of the slot's pending connections or I/O
// finished.
func (p *Pool[C]) pendingDone(sl *pslot[C]) {
	if sl.State() == slot.Stopped {
		sl.set.Orphans--
		p.orphans--
		p.follow(followDrain)
		p.checkQuiet()
		p.capacityFreed()
		return
	}
	if sl.PendingDone(p.loop) {
		p.dial(sl)
	}
}

// connect starts the connect (and first check) of a slot in connecting.
func (p *Pool[C]) connect(sl *pslot[C]) {
	gen := sl.StartIO()
	ctx := p.ioContext()
	sl.cancel = ctx
	p.loop.After(&sl.t, p.pol.ConnectTimeout)
	if p.dialLimited() {
		sl.set.dial.Started()
	}
	s := sl.set
	sl.moved, sl.replace = false, false // a new connection, to its backend's address now
	b := sl.set.b
	sl.set.st.connects++
	p.st.connects++
	p.loop.Spawn(fsm.Action{Kind: fsm.Connect, ID: sl.actionID(), Ctx: ctx}, func() func() {
		c, err := p.openConn(ctx, *b)
		return func() {
			ctx.cancel()
			p.dialDone(s)
			p.connectDone(sl, gen, c, err)
		}
	})
}

// ioContext returns the context of one I/O of a slot (a connect, a check,
// a recycle hook). It is not a child of the pool's context: a child stays
// in its parent's map of children, which never shrinks, and would cost
// every slot bytes for good. Close cancels the I/O in flight itself.
func (p *Pool[C]) ioContext() *ioCtx { return &ioCtx{} }

// errNilConn is the error of a connector that returned neither a
// connection nor an error.
var errNilConn = errors.New("connector returned a nil connection and no error")

// openConn runs the connector's Connect and, with a Validator, the first
// check, off the loop. It returns a connection only with a nil error:
// whatever else the connector returned is closed here.
func (p *Pool[C]) openConn(ctx context.Context, b backend.Backend) (c C, err error) {
	var tctx []context.Context
	var start time.Time
	if p.tr.connect != nil {
		start = p.loop.Now()
		tctx = p.traceConnectStart(ctx, b)
	}
	c, err = p.callConnect(ctx, b)
	var zero C
	switch {
	case err != nil:
		if !isNil(c) {
			// A connection returned with an error is the caller's to close.
			p.closeConn(b, c, CloseFailed)
		}
		c = zero
	case isNil(c):
		err = errNilConn
	case p.validate != nil:
		if err = p.call("validate", ctx, c, p.validate); err != nil {
			err = &firstCheckError{err}
			// The slot never saw this connection; close it here.
			p.closeConn(b, c, CloseFailed)
			c = zero
		}
	}
	if p.tr.connect != nil {
		p.traceConnectEnd(tctx, b, start, err)
	}
	return c, err
}

// firstCheckError is the error of a new connection's first check: the
// backend accepted the connection, and the Validator found it bad.
type firstCheckError struct{ err error }

func (e *firstCheckError) Error() string { return "first check: " + e.err.Error() }
func (e *firstCheckError) Unwrap() error { return e.err }

// isNil reports whether c is a nil pointer, interface, map, slice,
// channel or function.
func isNil[C any](c C) bool {
	v := reflect.ValueOf(&c).Elem()
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface, reflect.Map, reflect.Slice, reflect.Chan, reflect.Func, reflect.UnsafePointer:
		return v.IsNil()
	}
	return false
}

func (p *Pool[C]) callConnect(ctx context.Context, b backend.Backend) (c C, err error) {
	defer func() {
		if v := recover(); v != nil {
			err = &PanicError{Op: "connect", Value: v}
		}
	}()
	if p.finished.Load() {
		return c, ErrClosed
	}
	return p.conn.Connect(ctx, b)
}

// call runs a hook or validation, recovering a panic as an error.
func (p *Pool[C]) call(op string, ctx context.Context, c C, f func(context.Context, C) error) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = &PanicError{Op: op, Value: v}
		}
	}()
	if p.finished.Load() {
		return ErrClosed
	}
	return f(ctx, c)
}

// closeConn calls the connector's Close off the loop, recovering a panic.
// Every connection the connector returned is closed exactly once, by one
// call of closeConn, even when it arrives after Close.
func (p *Pool[C]) closeConn(b backend.Backend, c C, cause CloseCause) {
	p.closesRunning.Add(1)
	defer func() {
		p.closesRunning.Add(-1)
		if v := recover(); v != nil {
			p.log.Error("connector close panicked", "backend", b.Name, "panic", v)
		}
	}()
	if p.tr.close != nil {
		p.traceClose(b, cause)
	}
	if err := p.conn.Close(c); err != nil {
		p.log.Debug("connector close", "backend", b.Name, "err", err)
	}
}

// closeLater closes c, a connection of sl, off the loop. Until the close
// returns, c still counts against sl (or, once sl stops, its backend).
func (p *Pool[C]) closeLater(sl *pslot[C], c C, cause CloseCause) {
	p.st.closes++
	if cause != CloseStale && p.hooks.removed != nil {
		// A stale connect's connection was never the slot's: it was
		// never reported added.
		p.hooks.removed(*sl.backend(), c)
	}
	if sl.State() == slot.Stopped {
		sl.set.Orphans++
		p.orphans++
	} else {
		sl.Closing()
	}
	b := *sl.backend()
	p.loop.Spawn(fsm.Action{Kind: fsm.CloseConn, ID: sl.actionID()}, func() func() {
		p.closeConn(b, c, cause)
		return func() { p.pendingDone(sl) }
	})
}

func (p *Pool[C]) connectDone(sl *pslot[C], gen uint32, c C, err error) {
	if !sl.Current(gen) {
		// Stale: the connect timed out or the slot stopped meanwhile.
		if err == nil {
			p.closeLater(sl, c, CloseStale)
		}
		p.pendingDone(sl)
		return
	}
	sl.cancel = nil
	p.loop.Cancel(&sl.t)
	if err != nil {
		if errors.Is(err, context.Canceled) && p.ioCtx.Err() != nil {
			err = ErrClosed
		}
		p.slotFailed(sl, slot.ConnectErr, fmt.Errorf("connect %s: %w", sl.set.b.Name, err))
		return
	}
	sl.conn = c
	sl.fire(slot.ConnectOK)
	if p.hooks.added != nil {
		p.hooks.added(*sl.backend(), c)
	}
	s := sl.set
	recovered := s.Failures() > 0 || s.Dead() // its connects were failing: it comes back
	first := s.Connected(p.loop)
	sl.Succeeded()
	if c := s.Capacity(); c > 0 && s.Live() >= c && s.Wanted >= c {
		// The backend took the probe above its capacity: try one more
		// soon.
		s.capRounds = 0
		p.loop.After(&s.capTimer, p.backoff(1, sl.rng.Rand()))
	}
	now := p.loop.Nanos()
	p.cclock.Mark(p.loop.Time(now))
	if p.pol.MaxConnLifetime > 0 {
		jitter := sl.rng.Int64N(int64(p.pol.MaxConnLifetimeJitter) + 1)
		sl.expireAt = now + int64(p.pol.MaxConnLifetime) - jitter
	}
	p.scheduleHealth(sl, now)
	up := first
	if up {
		p.setUp(s)
		if recovered {
			p.startSlowStart(s, now)
		}
	}
	p.idleSlot(sl)
	if up {
		p.follow(followRebalance)
	}
}

// expired reports whether the slot's connection is past its lifetime at
// now (a stamp).
func (sl *pslot[C]) expired(now int64) bool { return sl.expireAt != 0 && now >= sl.expireAt }

// scheduleHealth points the slot's timer, now (a stamp), at its next
// health check, or at the end of its connection's lifetime if that comes
// first.
func (p *Pool[C]) scheduleHealth(sl *pslot[C], now int64) {
	d := int64(p.pol.HealthInterval)
	// Up to 10% earlier, so the checks of slots opened together spread out.
	next := now + d - sl.rng.Int64N(d/10+1)
	if sl.expireAt != 0 && sl.expireAt > now && sl.expireAt < next {
		next = sl.expireAt
	}
	p.loop.AtNanos(&sl.t, next)
}

// idleSlot runs when a slot becomes connected: it stops, expires, serves
// the head waiter, or waits idle.
func (p *Pool[C]) idleSlot(sl *pslot[C]) {
	switch {
	case sl.State() != slot.Connected:
		return
	case sl.Retiring() || p.closing():
		p.stopSlot(sl)
		return
	case sl.replace, sl.moved: // its lifetime ended or Reset came, or its backend moved: reconnect
		p.expire(sl)
		return
	}
	if p.serve(sl) {
		return
	}
	if p.stampIdle {
		sl.idleSince = p.loop.Nanos()
	}
	sl.idlePos = int32(len(sl.set.idle))
	sl.set.idle = append(sl.set.idle, sl)
	p.lcUpdate(sl.set)
}

// unidle takes a slot off its set's idle stack, if it is there, and
// updates the LeastClaimed index with whatever else changed of the set
// (its claimed count, its state).
func (p *Pool[C]) unidle(sl *pslot[C]) {
	if sl.idlePos >= 0 {
		p.dropIdle(sl)
	}
	p.lcUpdate(sl.set)
}

func (p *Pool[C]) dropIdle(sl *pslot[C]) {
	idle := sl.set.idle
	last := idle[len(idle)-1]
	idle[sl.idlePos] = last
	last.idlePos = sl.idlePos
	idle[len(idle)-1] = nil
	sl.set.idle = idle[:len(idle)-1]
	sl.idlePos = -1
}

// expire closes an idle slot's connection and connects again.
func (p *Pool[C]) expire(sl *pslot[C]) {
	p.unidle(sl)
	c := sl.conn
	var zero C
	sl.conn = zero
	sl.fire(slot.Expire)
	p.closeLater(sl, c, CloseExpired)
	p.st.expired++
	p.lostConn(sl.set)
	p.connectWhenFree(sl)
}

// lostConn records that a slot of s no longer holds a connection.
func (p *Pool[C]) lostConn(s *set[C]) {
	if s.Lost(p.loop) {
		p.stopSlowStart(s)
		p.armBreaker()
		p.forgetCapacity(s) // what it accepts may change across a restart
		p.probeDeadIfNoneOnline()
		// A dead backend may have lost the last connection of the pool.
		p.follow(followRebalance | followDead)
	}
}

// probeDeadIfNoneOnline probes every dead backend at once when no backend
// is online any more: one of them may have come back while its backoff
// runs, and claims would otherwise fail fast until it ends.
func (p *Pool[C]) probeDeadIfNoneOnline() {
	for _, s := range p.order {
		if s.State() == slotset.Online {
			return
		}
	}
	now := p.now()
	for _, s := range p.order {
		if !s.Dead() || s.State() == slotset.Draining {
			continue
		}
		for _, sl := range s.slots {
			if sl.State() == slot.Failed && !sl.Retiring() {
				p.loop.At(&sl.t, now)
			}
		}
	}
}

// slotFailed moves a slot to failed after ev, closes what it held, and
// schedules its reconnect.
func (p *Pool[C]) slotFailed(sl *pslot[C], ev slot.Event, err error) { p.fail(sl, ev, err, true) }

// fail is slotFailed; closeConn is false when an I/O job in flight still
// holds the connection and will close it itself.
func (p *Pool[C]) fail(sl *pslot[C], ev slot.Event, err error, closeConn bool) {
	hadConn := sl.State().HasConn()
	p.unidle(sl)  // a discard also ended a claim: the index learns both
	p.abandon(sl) // any completion still in flight is stale now
	if !sl.fire(ev) {
		return
	}
	s := sl.set
	if hadConn {
		c := sl.conn
		var zero C
		sl.conn = zero
		if closeConn {
			cause := CloseFailed
			if ev == slot.Discard {
				cause = CloseDiscarded
			}
			p.closeLater(sl, c, cause)
		}
	}
	sl.Failed()
	// A backend is dead only when connects to it fail: a connection that
	// was open and is lost (a discard, a failed check or recycle hook)
	// says nothing of whether the next connect succeeds, and a connect
	// refused while the backend holds others says it is at its capacity.
	var refused, capped, newlyDead bool
	var fc *firstCheckError
	retryAfter, overloaded := backend.IsOverloaded(err)
	switch {
	case ev == slot.ConnectErr && overloaded:
		// The backend is up and refused under load: never toward dead,
		// its open connections kept, every connect to it held for the
		// time it asked.
		refused = s.Live() > 0
		capped = s.Overloaded(err, p.loop.Nanos(), p.connectingOf(s))
		s.st.overloaded++
		p.st.overloaded++
		if retryAfter > 0 {
			s.dial.Hold(p.loop.Nanos() + int64(retryAfter))
		}
	case ev == slot.ConnectErr && !(s.Live() > 0 && errors.As(err, &fc)):
		// A first check that fails while the backend holds other
		// connections: it accepted this one, which is lost as an open
		// one is. With none held, it counts as a failed connect.
		refused, capped, newlyDead = s.Failed(p.loop, err, p.loop.Nanos(), p.pol.DeadAfter, p.connectingOf(s))
	default:
		s.Dropped(err, p.loop.Nanos())
		s.st.lost++
		p.st.lost++
	}
	s.st.failures++
	p.lastErr = err
	p.st.failures++
	p.loop.Log(p.log, slog.LevelDebug, "slot failed", "slot", sl.ID(), "err", err)
	if refused {
		s.st.refused++
		p.st.refused++
	}
	if capped {
		p.loop.Log(p.log, slog.LevelInfo, "backend at its capacity", "backend", s.b.Name, "open", s.Live(), "err", err)
		// The rebalancer is offered the capacity as the backend's cap,
		// and gives what it refuses to the other backends. One more
		// connect is tried after a backoff that grows each time it is
		// refused (the connections of other clients, or ghosts of killed
		// ones, may hold the rest), and is short again after one is
		// accepted (see connectDone).
		p.follow(followRebalance)
		s.capRounds++
		p.loop.After(&s.capTimer, p.backoff(s.capRounds, sl.rng.Rand()))
	}
	// A slot it refused retires when the set has more than it accepts, so
	// that no slot retries against a full backend: the capacity's probe
	// does, one connect at a time.
	over := refused && s.Capacity() > 0 && s.wantedNow() > s.Capacity()
	if newlyDead {
		p.loop.Log(p.log, slog.LevelWarn, "backend dead", "backend", s.b.Name, "failures", s.Failures(), "err", err)
	}
	if hadConn {
		p.lostConn(s)
	}
	if newlyDead {
		p.follow(followDead)
		if len(p.order) > p.pol.MaxSlots {
			// Fewer slots than backends: the dead backend's probe moves
			// to a backend tried less, so that every backend is tried
			// and, with all of them down, the pool fails fast.
			p.follow(followRebalance)
		}
	}
	switch {
	case sl.Retiring() || p.closing() || over:
		p.stopSlot(sl)
	default:
		p.loop.After(&sl.t, max(p.backoff(sl.Failures(), sl.rng.Rand()), retryAfter))
	}
}

// connectingOf counts the connects in flight to s while it holds
// connections: with them, the most it accepted so far (Set.Failed,
// Set.Overloaded). It is 0 for a set that holds none.
func (p *Pool[C]) connectingOf(s *set[C]) int {
	connecting := 0
	if s.Live() > 0 {
		for _, o := range s.slots {
			if o.State() == slot.Connecting {
				connecting++
			}
		}
	}
	return connecting
}

func (p *Pool[C]) backoff(n int, r *rand.Rand) (d time.Duration) {
	defer func() {
		if v := recover(); v != nil {
			p.policyError("pool: backoff panicked: %v", v)
			d = p.pol.BackoffMax
		}
	}()
	d = p.pol.Backoff.Delay(n, r)
	if d < 0 {
		p.policyError("pool: backoff returned a negative delay %v; using BackoffMin", d)
		d = p.pol.BackoffMin
	}
	p.st.observeBackoff(d)
	return d
}

// ioDue runs when a slot's I/O deadline or backoff ends.
func (p *Pool[C]) ioDue(sl *pslot[C]) {
	switch sl.State() {
	case slot.Failed:
		if sl.fire(slot.BackoffElapsed) {
			p.connectWhenFree(sl)
		}
	case slot.Connecting:
		p.slotFailed(sl, slot.ConnectErr, fmt.Errorf("connect %s: timed out after %v", sl.set.b.Name, p.pol.ConnectTimeout))
	case slot.Checking:
		p.hookTimedOut(sl, slot.CheckErr, "health check")
	case slot.Recycling:
		p.hookTimedOut(sl, slot.RecycleErr, "recycle")
	}
}

// hookTimedOut fails a slot whose check or recycle overran. The hook still
// holds the connection, so its (now stale) completion closes it.
func (p *Pool[C]) hookTimedOut(sl *pslot[C], ev slot.Event, what string) {
	p.fail(sl, ev, fmt.Errorf("%s %s: timed out after %v", what, sl.set.b.Name, p.pol.HealthTimeout), false)
}

// healthDue runs every health interval for each slot holding a
// connection, and when its lifetime ends: an idle slot is checked (or
// expired); a claimed one is looked at again next interval, and expires
// on release once its lifetime ended.
func (p *Pool[C]) healthDue(sl *pslot[C]) {
	now := p.loop.Nanos()
	p.cclock.Mark(p.loop.Time(now)) // the timer of a claimed slot times the claims too
	ended := sl.expired(now)
	if sl.State() == slot.Claimed {
		sl.replace = sl.replace || ended
		p.scheduleHealth(sl, now)
		return
	}
	if ended || (p.pol.MaxConnIdleTime > 0 && now-sl.idleSince >= int64(p.pol.MaxConnIdleTime)) {
		p.expire(sl)
		return
	}
	p.scheduleHealth(sl, now)
	if p.validate == nil {
		return
	}
	p.unidle(sl)
	sl.fire(slot.CheckDue)
	p.st.checks++
	p.runHook(sl, "health check", p.validate, slot.CheckOK, slot.CheckErr)
}

// runHook runs a check or the recycle hook on the slot's connection off the
// loop, bounded by HealthTimeout on the loop's clock.
func (p *Pool[C]) runHook(sl *pslot[C], op string, f func(context.Context, C) error, ok, bad slot.Event) {
	gen := sl.StartIO()
	ctx := p.ioContext()
	sl.cancel = ctx
	p.loop.After(&sl.t, p.pol.HealthTimeout)
	j := p.newHookJob()
	j.sl, j.gen, j.c, j.b, j.id, j.pos = sl, gen, sl.conn, *sl.backend(), sl.actionID(), len(p.hooking)
	j.op, j.f, j.ok, j.bad, j.ctx = op, f, ok, bad, ctx
	p.hooking = append(p.hooking, j)
	kind := fsm.Check
	if ok == slot.RecycleOK {
		kind = fsm.Recycle
	}
	p.loop.Spawn(fsm.Action{Kind: kind, ID: j.id, Ctx: ctx}, j.ioFn)
}

// hookJob is a check or recycle hook in flight, and the connection it
// holds. A Close whose context ended closes the connections of the hooks
// still running (closed is then set), so that their completions do not.
// Jobs are reused (Pool.freeJobs): a hook costs no allocation of its own
// but its context's; ioFn and doneFn are its methods, bound once.
type hookJob[C any] struct {
	p      *Pool[C]
	sl     *pslot[C]
	gen    uint32
	c      C
	b      backend.Backend
	id     string // the slot's
	closed bool
	pos    int // index in Pool.hooking
	op     string
	f      func(context.Context, C) error
	ok     slot.Event
	bad    slot.Event
	ctx    *ioCtx
	err    error // what f returned
	ioFn   func() func()
	doneFn func()
}

// newHookJob returns a job from the free list, or a new one.
func (p *Pool[C]) newHookJob() *hookJob[C] {
	if n := len(p.freeJobs); n > 0 {
		j := p.freeJobs[n-1]
		p.freeJobs[n-1] = nil
		p.freeJobs = p.freeJobs[:n-1]
		return j
	}
	j := &hookJob[C]{p: p}
	j.ioFn, j.doneFn = j.io, j.done
	return j
}

// io runs the hook, off the loop, and returns the completion.
func (j *hookJob[C]) io() func() {
	j.err = j.p.call(j.op, j.ctx, j.c, j.f)
	return j.doneFn
}

// done is the hook's completion, with the loop held. The job goes back to
// the free list first: nothing below reads it.
func (j *hookJob[C]) done() {
	p, sl, gen, c, closed, err := j.p, j.sl, j.gen, j.c, j.closed, j.err
	op, ok, bad := j.op, j.ok, j.bad
	j.ctx.cancel()
	p.hookDone(j)
	p.freeHookJob(j)
	if !sl.Current(gen) {
		// The slot gave up on this connection (timeout, or the pool
		// closed): close it, unless Close already did.
		if !closed {
			p.closeLater(sl, c, p.stopCause(CloseFailed))
		}
		p.pendingDone(sl)
		return
	}
	sl.cancel = nil
	p.loop.Cancel(&sl.t)
	if err != nil {
		p.slotFailed(sl, bad, fmt.Errorf("%s %s: %w", op, sl.set.b.Name, err))
		return
	}
	sl.Succeeded()
	sl.set.Checked()
	if sl.fire(ok) {
		now := p.loop.Nanos()
		if sl.expired(now) {
			// The lifetime ended while the check ran, so its timer
			// passed: replace the connection now.
			sl.replace = true
		}
		p.scheduleHealth(sl, now)
		p.idleSlot(sl)
	}
}

// freeHookJob clears a finished job and keeps it for the next hook.
func (p *Pool[C]) freeHookJob(j *hookJob[C]) {
	var zero C
	j.sl, j.c, j.b, j.f, j.ctx, j.err, j.closed = nil, zero, backend.Backend{}, nil, nil, nil, false
	if len(p.freeJobs) < 1024 {
		p.freeJobs = append(p.freeJobs, j)
	}
}

func (p *Pool[C]) hookDone(j *hookJob[C]) {
	last := p.hooking[len(p.hooking)-1]
	p.hooking[j.pos] = last
	last.pos = j.pos
	p.hooking[len(p.hooking)-1] = nil
	p.hooking = p.hooking[:len(p.hooking)-1]
}

// closeHooked closes, off the loop, the connections held by the hooks
// still running; their completions will not close them again.
func (p *Pool[C]) closeHooked() {
	for _, j := range p.hooking {
		if j.closed {
			continue
		}
		j.closed = true
		p.st.closes++
		c, b := j.c, j.b
		if p.hooks.removed != nil {
			p.hooks.removed(b, c)
		}
		p.loop.Spawn(fsm.Action{Kind: fsm.CloseConn, ID: j.id}, func() func() {
			p.closeConn(b, c, ClosePoolClosed)
			return nil
		})
	}
}

// stopCause is cause, or ClosePoolClosed while the pool closes.
func (p *Pool[C]) stopCause(cause CloseCause) CloseCause {
	if p.closing() {
		return ClosePoolClosed
	}
	return cause
}

// stopSlot stops a slot and closes its connection, if it holds one.
func (p *Pool[C]) stopSlot(sl *pslot[C]) {
	if sl.State().HasConn() {
		// Spawn the close first, so that Close sees it in flight.
		p.closeLater(sl, sl.conn, p.stopCause(CloseRetired))
	}
	p.stopSlotKeepConn(sl)
}

// stopSlotKeepConn stops a slot; its connection, if any, is the caller's
// to close.
func (p *Pool[C]) stopSlotKeepConn(sl *pslot[C]) {
	if sl.State() == slot.Stopped {
		return
	}
	hadConn := sl.State().HasConn()
	wasClaimed := sl.State() == slot.Claimed
	if s := sl.set; s.State() == slotset.Failing && len(s.dial.queue) > 0 && !p.closing() {
		// The slot that tried a failing backend may be the one stopping:
		// the next waiting slot takes its turn, at the dial timer.
		p.loop.AtNanos(&s.dial.timer, p.loop.Nanos())
	}
	if wasClaimed {
		sl.set.Claimed--
		p.nclaimed--
	}
	p.untrack(sl)
	p.unidle(sl)
	p.abandon(sl)
	p.loop.Cancel(&sl.t)
	sl.fire(slot.Stop)
	// What the slot still has pending now counts against its backend.
	n := sl.TakePending()
	sl.set.Orphans += n
	p.orphans += n
	if !wasClaimed {
		// A claimer may still read the connection through its handle.
		var zero C
		sl.conn = zero
	}
	s := sl.set
	if sl.Keep() {
		s.Retiring--
	}
	last := s.slots[len(s.slots)-1]
	s.slots[sl.pos] = last
	last.pos = sl.pos
	s.slots[len(s.slots)-1] = nil
	s.slots = s.slots[:len(s.slots)-1]
	p.nslots--
	if hadConn {
		p.lostConn(s)
	}
	p.follow(followDrain)
	p.checkQuiet()
	p.capacityFreed()
}

// capacityFreed runs when a slot stops: claimers waiting may now get the
// slot it held, so the rebalancer is asked again.
func (p *Pool[C]) capacityFreed() {
	if p.waiters.n > 0 {
		p.follow(followRebalance)
		return
	}
	p.follow(followFill)
}

// retire stops a slot now if nothing holds its connection, and otherwise
// once it comes back.
func (p *Pool[C]) retire(sl *pslot[C]) {
	switch now, marked := sl.Retire(); {
	case now:
		p.stopSlot(sl)
	case marked:
		sl.set.Retiring++
	}
}

// Slow start (Policy.SlowStartWindow): a backend that comes back after its
// connects failed gets its share back in doubling steps, 1, 2, 4 ... slots,
// until the window ends, rather than at once: a fleet of clients that all
// see it return does not open every connection it had in the same moment.
// The window is cut in as many steps as doublings reach
// MaxSlotsPerBackend, so that the whole share is back by its end. The cap
// of each step is offered to the rebalancer as the backend's Cap, which
// gives what it cuts to the other backends meanwhile.

// slowSteps is the number of steps of a slow start: the doublings from 1
// to MaxSlotsPerBackend, at least one.
func (p *Pool[C]) slowSteps() int {
	n := 1
	for 1<<n < p.pol.MaxSlotsPerBackend {
		n++
	}
	return n
}

// slowStep is the length of one step of a slow start.
func (p *Pool[C]) slowStep() time.Duration {
	return max(p.pol.SlowStartWindow/time.Duration(p.slowSteps()), time.Nanosecond)
}

// slowStartCap is the most slots s may have now in its slow start.
func (p *Pool[C]) slowStartCap(s *set[C]) int {
	k := int((p.loop.Nanos() - s.slowSince) / int64(p.slowStep()))
	if k >= p.slowSteps() {
		return p.pol.MaxSlotsPerBackend
	}
	return 1 << k
}

// startSlowStart begins the slow start of s, which came back at now.
func (p *Pool[C]) startSlowStart(s *set[C], now int64) {
	if p.pol.SlowStartWindow <= 0 {
		return
	}
	s.slowSince = max(now, 1)
	p.st.slowStarts++
	p.loop.After(&s.slowTimer, p.slowStep())
}

// slowStartStep ends one step of s's slow start: its cap doubles, and the
// rebalance that follows gives it the slots (even beyond the room others
// still hold, as for a backend that comes back); after the last step the
// slow start is over.
func (p *Pool[C]) slowStartStep(s *set[C]) {
	if s.slowSince == 0 {
		return
	}
	if p.loop.Nanos()-s.slowSince >= int64(p.slowStep())*int64(p.slowSteps()) {
		s.slowSince = 0
	} else {
		p.loop.After(&s.slowTimer, p.slowStep())
	}
	s.back = s.State() == slotset.Online
	p.follow(followRebalance)
}

// stopSlowStart ends s's slow start: it went offline again.
func (p *Pool[C]) stopSlowStart(s *set[C]) {
	s.slowSince = 0
	p.loop.Cancel(&s.slowTimer)
}

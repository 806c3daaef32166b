package pool

import (
	"context"
	"fmt"
	"time"

	"github.com/qorbgo/qorb/backend"
	"github.com/qorbgo/qorb/fsm"
	"github.com/qorbgo/qorb/pool/machine"
	"github.com/qorbgo/qorb/slot"
	"github.com/qorbgo/qorb/slotset"
)

// Handle is one claim of a connection. It belongs to the claimer until
// Release or Discard, and to that claim only: every Claim returns a new
// Handle. A handle used after its claim ended (a second Release, a Release
// after Discard, a copy kept after the connection was claimed again) never
// touches another claim: the call does nothing, and the misuse is counted
// in Stats.Misuse and logged at error level.
type Handle[C any] struct {
	sl *pslot[C] // the claimed slot; the claim is live while sl.cur is this handle
}

// Conn returns the claimed connection. After the claim ended it returns the
// zero C: a connection given back belongs to the pool.
func (h *Handle[C]) Conn() C {
	if sl := h.sl; sl.cur == h {
		return sl.conn
	}
	var zero C
	return zero
}

// Backend returns the backend the connection goes to.
func (h *Handle[C]) Backend() backend.Backend { return *h.sl.backend() }

// pool returns the handle's pool, and panics with a clear message for a
// nil or zero handle (the result of a failed Claim, say).
func (h *Handle[C]) pool(op string) *Pool[C] {
	if h == nil || h.sl == nil {
		panic("pool: " + op + " of a nil Handle: Claim returned an error")
	}
	return h.sl.set.p
}

// Release gives the connection back to the pool: the recycle hook runs
// (OnRecycle; or, with Policy.CheckOnRelease, Validate), then the
// connection serves the next claim. After Close forced the connection shut,
// Release does nothing. A second Release, or a Release after Discard, does
// nothing and is counted as misuse.
func (h *Handle[C]) Release() {
	p := h.pool("Release")
	p.loop.Enter()
	ok, held := p.release(h)
	p.loop.Leave()
	if ok && p.tr.release != nil {
		p.traceRelease(*h.sl.backend(), held, false, nil)
	}
}

// release is Release with the loop held. It reports whether h was claimed
// and for how long (when a release tracer wants it).
func (p *Pool[C]) release(h *Handle[C]) (bool, time.Duration) {
	sl := h.sl
	if !p.endClaim(h, "Release") {
		return false, 0
	}
	held := p.heldFor(sl)
	if p.recycle != nil && !sl.Retiring() && !p.closing() {
		sl.fire(slot.Release)
		p.unclaim(sl)
		p.st.recycles++
		p.runHook(sl, "recycle", p.recycle, slot.RecycleOK, slot.RecycleErr)
		return true, held
	}
	sl.fire(slot.Return)
	p.unclaim(sl)
	if sl.set.fb.probing {
		p.probeEnded(sl, false)
	}
	p.idleSlot(sl)
	return true, held
}

// Discard tells the pool the connection is bad: it is closed, err is
// recorded as its backend's last error and counted as a failure, and the
// slot reconnects after its backoff. After Close forced the connection shut,
// Discard does nothing. Discard after the claim ended does nothing and is
// counted as misuse.
func (h *Handle[C]) Discard(err error) {
	p := h.pool("Discard")
	sl := h.sl
	p.loop.Enter()
	if !p.endClaim(h, "Discard") {
		p.loop.Leave()
		return
	}
	held := p.heldFor(sl)
	p.discard(sl, err)
	p.loop.Leave()
	if p.tr.release != nil {
		p.traceRelease(*h.sl.backend(), held, true, err)
	}
}

// endClaim ends h's claim, with the loop held: it reports whether the
// slot is still claimed by h and the caller goes on to release it. It
// returns false when a forced Close stopped the slot, and counts and logs
// a handle whose claim had already ended.
func (p *Pool[C]) endClaim(h *Handle[C], op string) bool {
	sl := h.sl
	if sl.cur != h {
		p.st.misuse++
		p.logError("handle used after its claim ended", "op", op, "backend", h.sl.set.b.Name)
		return false
	}
	sl.cur = nil
	return sl.State() == slot.Claimed
}

// heldFor is how long sl has been claimed, when a release tracer wants it.
func (p *Pool[C]) heldFor(sl *pslot[C]) time.Duration {
	if p.tr.release == nil {
		return 0
	}
	return time.Duration(p.loop.Nanos() - sl.claimed)
}

// discard closes a claimed slot's connection: a lost connection of its backend.
func (p *Pool[C]) discard(sl *pslot[C], err error) {
	if err == nil {
		err = fmt.Errorf("discarded")
	}
	p.unclaim(sl)
	p.st.discards++
	if sl.set.fb.probing {
		p.probeEnded(sl, true)
	}
	p.slotFailed(sl, slot.Discard, fmt.Errorf("discard %s: %w", sl.set.b.Name, err))
}

// unclaim counts a claim's end. The caller then updates the LeastClaimed
// index (idleSlot does, whatever it does with the slot).
func (p *Pool[C]) unclaim(sl *pslot[C]) {
	sl.set.Claimed--
	p.nclaimed--
}

// claimSlot hands an idle (or just connected) slot to a claimer and
// returns the claim's handle.
func (p *Pool[C]) claimSlot(sl *pslot[C]) *Handle[C] {
	sl.fire(slot.Claim)
	sl.set.Claimed++
	p.unidle(sl)
	sl.set.st.claims++
	p.nclaimed++
	p.st.claims++
	if p.tr.release != nil {
		sl.claimed = p.loop.Nanos()
	} else {
		sl.claimed = int64(p.cclock.Start())
	}
	sl.checkDue = false
	if len(p.handles) == 0 {
		// Handles are used once each; allocating them in blocks keeps the
		// claim path free of allocations.
		p.handles = make([]Handle[C], 64)
	}
	h := &p.handles[0]
	p.handles = p.handles[1:]
	h.sl = sl
	sl.cur = h
	return h
}

// pick chooses an idle slot through the Picker, or returns nil.
func (p *Pool[C]) pick() *pslot[C] {
	if p.leastClaimed {
		if s := p.lcPick(); s != nil {
			sl := s.idle[len(s.idle)-1]
			if s.fb.probing {
				p.picked(s, sl)
			}
			return sl
		}
		return nil
	}
	p.cands = p.cands[:0]
	p.candSets = p.candSets[:0]
	for i, s := range p.order {
		if s.State() == slotset.Online && len(s.idle) > 0 && s.pickable() {
			p.cands = append(p.cands, Candidate{Name: s.b.Name, Claimed: s.Claimed, Idle: len(s.idle), Slots: len(s.slots), Rank: i, Latency: s.fb.decayed(p.reports, len(p.order))})
			p.candSets = append(p.candSets, s)
		}
	}
	var s *set[C]
	switch len(p.cands) {
	case 0:
		return nil
	case 1:
		s = p.candSets[0]
	default:
		s = p.candSets[p.callPicker()]
	}
	sl := s.idle[len(s.idle)-1]
	p.picked(s, sl)
	return sl
}

func (p *Pool[C]) callPicker() (i int) {
	defer func() {
		if v := recover(); v != nil {
			p.policyError("pool: picker panicked: %v", v)
			i = 0
		}
	}()
	i = p.pol.Picker.Pick(p.cands, p.rng)
	if i < 0 || i >= len(p.cands) {
		p.policyError("pool: picker chose %d of %d candidates", i, len(p.cands))
		i = 0
	}
	return i
}

// Claim returns a connection for the caller's exclusive use until it calls
// Release or Discard on the handle.
//
// With an idle connection, Claim returns at once without allocating.
// Otherwise it waits in a first-in, first-out queue until a connection is
// free, ctx ends, or Policy.ClaimTimeout passes on the pool's clock. It
// fails with ctx's error, or with ErrNoBackends, ErrNoBackendsOnline (with
// the last backend error) or ErrAllClaimsUsed, chosen by why no connection
// came; at once with ErrNoBackendsOnline when the pool is failed, and with
// ErrClosed after Close. Cancelling a claim never cancels a connect.
//
// With an AcquireHook, the hook runs in the caller's goroutine, bounded by
// Policy.HealthTimeout; when it fails (or panics), the connection is
// discarded (a lost connection of its backend, see Policy.DeadAfter), and
// the caller waits again at the head of the queue. Policy.ClaimTimeout bounds the whole claim,
// retries included.
func (p *Pool[C]) Claim(ctx context.Context) (*Handle[C], error) {
	if p.tr.claim == nil {
		return p.claimHooked(ctx, nil)
	}
	var buf [2]context.Context // the tracers' contexts, on the stack for up to two
	ctxs := p.traceClaimStart(ctx, buf[:0])
	var wait time.Duration
	h, err := p.claimHooked(ctx, &wait)
	p.traceClaimEnd(ctxs, wait, h, err)
	return h, err
}

// claimHooked is Claim without tracing: a claim, and when the connection
// is due a check on claim or the connector has an AcquireHook, those
// hooks and their retries within one ClaimTimeout.
//
// With wait not nil, it sets *wait to how long the claim took when it
// waited in the queue or ran hooks, and leaves it at zero for a claim
// served at once from an idle connection, for which it reads no clock.
func (p *Pool[C]) claimHooked(ctx context.Context, wait *time.Duration) (*Handle[C], error) {
	var start time.Time
	if p.onAcquire != nil {
		start = p.loop.Now()
	}
	h, err := p.claim(ctx, nil, nil, p.pol.ClaimTimeout, wait)
	if err != nil || (p.onAcquire == nil && !h.sl.checkDue) {
		return h, err
	}
	if start.IsZero() {
		// Only a claim served at once is due a check: it waited for
		// nothing.
		start = p.loop.Now()
	}
	deadline := start.Add(p.pol.ClaimTimeout)
	for err == nil {
		herr := p.hooksOn(ctx, h, min(p.pol.HealthTimeout, deadline.Sub(p.loop.Now())))
		if herr == nil {
			p.loop.Enter()
			ok, aerr := p.afterHooks(h, deadline)
			if ok != nil || aerr != nil {
				p.loop.Leave()
				h, err = ok, aerr
				break
			}
			// Its backend left the resolver's list while the hooks ran:
			// wait again at the head of the queue, in the same event.
			var w *waiter[C]
			h, w, err = p.request(ctx, true, deadline.Sub(p.now()))
			p.loop.Leave()
			if w != nil {
				h, err = p.await(ctx, w, nil)
			}
			continue
		}
		// Discard and queue again at the head in one event, so that no
		// connection freed in between goes to a claimer behind this one.
		left := deadline.Sub(p.loop.Now())
		h, err = p.claim(ctx, h, herr, left, nil)
	}
	if wait != nil {
		*wait = p.loop.Now().Sub(start)
	}
	if err != nil {
		return nil, err
	}
	return h, nil
}

// hooksOn runs the claim hooks of h, the claim of a claimer's goroutine,
// within limit.
func (p *Pool[C]) hooksOn(ctx context.Context, h *Handle[C], limit time.Duration) error {
	hctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	return p.claimHooks(hctx, h.sl.conn, h.sl.checkDue)
}

// claimHooks runs what a claim runs on its connection before the claimer
// gets it, off the loop: the check of a connection that stayed idle
// longer than Policy.CheckIdleAfter (when check), then the AcquireHook.
func (p *Pool[C]) claimHooks(ctx context.Context, c C, check bool) error {
	if check {
		if err := p.call("check on claim", ctx, c, p.validate); err != nil {
			return fmt.Errorf("check on claim: %w", err)
		}
	}
	if p.onAcquire != nil {
		if err := p.call("acquire hook", ctx, c, p.onAcquire); err != nil {
			return fmt.Errorf("acquire hook: %w", err)
		}
	}
	return nil
}

// claim serves one claim, waiting at most timeout. With bad set (its check
// on claim or acquire hook failed), it first discards bad with badErr, and
// the claimer keeps its place at the head of the queue.
//
// With wait not nil, a claim that waited in the queue sets *wait to how
// long it waited.
func (p *Pool[C]) claim(ctx context.Context, bad *Handle[C], badErr error, timeout time.Duration, wait *time.Duration) (*Handle[C], error) {
	p.loop.Enter()
	if bad != nil {
		p.hookFailed(bad, badErr)
	}
	h, w, err := p.request(ctx, bad != nil, timeout)
	p.loop.Leave()
	if w == nil {
		return h, err
	}
	return p.await(ctx, w, wait)
}

// await waits, without the loop held, for a queued claim to be served or
// to fail.
func (p *Pool[C]) await(ctx context.Context, w *waiter[C], wait *time.Duration) (*Handle[C], error) {
	select {
	case <-w.ready:
	case <-ctx.Done():
		p.loop.Enter()
		if w.queued {
			p.waiters.remove(w)
			p.loop.Cancel(&w.timer)
			err := ctx.Err()
			p.st.failed(err)
			p.waited(w, wait)
			p.freeWaiter(w)
			why := p.claimErr()
			why.(*claimError).timeout = false // the context ended, not the pool's deadline
			p.loop.Leave()
			return nil, &waitError{ctx: err, why: why}
		}
		p.loop.Leave()
		<-w.ready // already sent, with the loop held
	}
	p.loop.Enter()
	h, err := w.h, w.err
	p.waited(w, wait)
	p.freeWaiter(w)
	if h != nil {
		switch {
		case h.sl.cur != h || h.sl.State() != slot.Claimed:
			// A forced Close stopped the slot after the hand-off: the
			// claimer never sees a stopped slot.
			p.handBack(h)
			h, err = nil, ErrClosed
			p.st.failed(err)
		case ctx.Err() != nil:
			// The context ended just after the hand-off: give it back
			// unused.
			p.giveback(h)
			h, err = nil, ctx.Err()
			p.st.failed(err)
		}
	}
	p.loop.Leave()
	return h, err
}

// request is the core of a claim, with the loop held, shared by Claim and
// the simulator's claims: the claim fails at once (closed, failed, its
// context done, its time already out, or the queue full), or takes an idle connection
// (skipping the queue only when nobody waits, or when front: a claimer
// whose acquire hook failed keeps its place at the head), or waits in the
// queue with its deadline, returned as the waiter.
func (p *Pool[C]) request(ctx context.Context, front bool, timeout time.Duration) (*Handle[C], *waiter[C], error) {
	var err error
	switch {
	case ctx.Err() != nil:
		err = ctx.Err()
	case front && timeout <= 0:
		err = p.claimErr()
	}
	if err != nil {
		p.st.failed(err)
		return nil, nil, err
	}
	if err := p.admit(); err != nil {
		return nil, nil, err
	}
	if p.waiters.head == nil || front {
		if h := p.takeIdle(); h != nil {
			p.track(h.sl, ctx)
			return h, nil, nil
		}
	}
	if m := p.pol.MaxWaiters; m > 0 && !front && p.waiters.n >= m {
		p.st.failed(ErrQueueFull)
		return nil, nil, ErrQueueFull
	}
	w := p.newWaiter(ctx)
	p.enqueue(w, front, timeout)
	return nil, w, nil
}

// hookFailed ends a claim whose acquire hook failed, with the loop held:
// the connection is discarded and its backend charged the failure.
func (p *Pool[C]) hookFailed(h *Handle[C], err error) {
	if p.endClaim(h, "acquire hook") {
		p.discard(h.sl, err)
	}
}

// claimAsync is Claim for the simulator (internal/simhook.ClaimAsync): it
// never blocks, and done is called exactly once with the loop held. It
// runs the same core (request, hookFailed); the acquire hook, when the
// connector has one, runs as an action (fsm.Acquire) of the driver,
// bounded by Policy.HealthTimeout on the loop's clock, and when it fails
// the claimer waits again at the head of the queue, within its deadline.
func (p *Pool[C]) claimAsync(ctx context.Context, timeout time.Duration, handedOff func(any), done func(any, error)) {
	p.claimAsyncTry(ctx, timeout, false, handedOff, done)
}

// claimAsyncTry is claimAsync, or with try TryClaim for the simulator
// (internal/simhook.TryClaimAsync).
func (p *Pool[C]) claimAsyncTry(ctx context.Context, timeout time.Duration, try bool, handedOff func(any), done func(any, error)) {
	if ctx == nil {
		ctx = context.Background()
	}
	if timeout <= 0 {
		timeout = p.pol.ClaimTimeout
	}
	p.loop.Enter()
	defer p.loop.Leave()
	// Most claims are served or refused at once: their asyncClaim is
	// then the next one's.
	c := p.asyncFree
	if c == nil {
		c = new(asyncClaim[C])
	}
	p.asyncFree = nil
	*c = asyncClaim[C]{p: p, ctx: ctx, handedOff: handedOff, done: done, try: try}
	c.deadline = p.now().Add(timeout)
	c.request(false, timeout)
	if !c.kept {
		*c = asyncClaim[C]{}
		p.asyncFree = c
	}
}

// asyncClaim is one claim of claimAsync, through its acquire-hook retries.
type asyncClaim[C any] struct {
	p         *Pool[C]
	ctx       context.Context
	deadline  time.Time
	handedOff func(any) // told of each hand-off, before the hooks; or nil
	done      func(any, error)
	cancel    context.CancelFunc // of its hooks in flight (Close cancels them)
	try       bool               // TryClaim's: never waits, and a failed hook ends it
	pos       int                // index in Pool.acquiring while its hooks run
	kept      bool               // a waiter or its hooks call it back later
}

func (c *asyncClaim[C]) request(front bool, timeout time.Duration) {
	if c.try {
		h, err := c.p.tryRequest(c.ctx)
		c.handed(h, err)
		return
	}
	h, w, err := c.p.request(c.ctx, front, timeout)
	if w != nil {
		c.kept = true
		w.done = c.handed
		return
	}
	c.handed(h, err)
}

// handed runs, with the loop held, when the claim is served or fails.
func (c *asyncClaim[C]) handed(h *Handle[C], err error) {
	p := c.p
	switch {
	case h == nil:
		c.done(nil, err)
		return
	case c.handedOff != nil:
		c.handedOff(h)
	}
	switch {
	case p.onAcquire == nil && !h.sl.checkDue:
		c.done(h, nil)
		return
	}
	conn, check := h.sl.conn, h.sl.checkDue
	// The hooks end with the claim's context, after HealthTimeout (or at
	// the claim's deadline, if sooner) on the loop's clock, or when the
	// pool closes.
	c.kept = true
	ctx, cancel := context.WithCancel(c.ctx)
	c.cancel = cancel
	c.pos = len(p.acquiring)
	p.acquiring = append(p.acquiring, c)
	t := new(fsm.Timer)
	p.initTimer(t, cancel)
	p.loop.After(t, min(p.pol.HealthTimeout, c.deadline.Sub(p.now())))
	p.loop.Spawn(fsm.Action{Kind: fsm.Acquire, ID: h.sl.actionID(), Ctx: ctx}, func() func() {
		herr := p.claimHooks(ctx, conn, check)
		return func() {
			p.loop.Cancel(t)
			cancel()
			last := p.acquiring[len(p.acquiring)-1]
			p.acquiring[c.pos], last.pos = last, c.pos
			p.acquiring = p.acquiring[:len(p.acquiring)-1]
			c.hooked(h, herr)
		}
	})
}

// hooked runs, with the loop held, when the acquire hook returned.
func (c *asyncClaim[C]) hooked(h *Handle[C], herr error) {
	p := c.p
	if herr != nil {
		p.hookFailed(h, herr)
		if c.try {
			c.done(nil, herr)
			return
		}
		c.request(true, c.deadline.Sub(p.now()))
		return
	}
	switch h, err := p.afterHooks(h, c.deadline); {
	case h != nil:
		c.done(h, nil)
	case err == nil && c.try:
		// Its backend left while the hooks ran; a TryClaim does not
		// look again (as TryClaim does not).
		p.st.failed(ErrNoIdle)
		c.done(nil, ErrNoIdle)
	case err == nil:
		c.request(true, c.deadline.Sub(p.now()))
	default:
		c.done(nil, err)
	}
}

// afterHooks decides, with the loop held, what becomes of a claim whose
// hooks (a check on claim, an AcquireHook) succeeded: the claimer gets h;
// or, when the backend left the resolver's list meanwhile, or the
// connection's lifetime ended or Reset came, h goes back unused (to be
// replaced, in the latter cases) and the claimer waits again at the head
// of the queue (nil, nil);
// or the claim fails: ErrClosed when a forced Close stopped the slot,
// the timeout error when its deadline (if not zero) passed while the
// hooks ran.
func (p *Pool[C]) afterHooks(h *Handle[C], deadline time.Time) (*Handle[C], error) {
	sl := h.sl
	switch {
	case sl.cur != h || sl.State() != slot.Claimed:
		p.handBack(h)
		p.st.failed(ErrClosed)
		return nil, ErrClosed
	case !deadline.IsZero() && p.now().After(deadline):
		p.giveback(h)
		err := p.claimErr()
		p.st.failed(err)
		return nil, err
	case sl.set.State() == slotset.Draining:
		p.giveback(h)
		return nil, nil
	case sl.replace || sl.expired(p.loop.Nanos()):
		// Its lifetime ended (or Reset came) while the hooks ran: it is
		// replaced, not handed out.
		sl.replace = true
		p.giveback(h)
		return nil, nil
	}
	return h, nil
}

// admit returns the error for a claim the pool refuses at once: closed,
// or failed.
func (p *Pool[C]) admit() error {
	switch p.state.Get() {
	case machine.Stopping, machine.Stopped:
		p.st.failed(ErrClosed)
		return ErrClosed
	case machine.Failed:
		p.st.failed(ErrNoBackendsOnline)
		return p.allDeadErr()
	case machine.Broken:
		err := p.breakerErr()
		p.st.failed(err)
		return err
	}
	return nil
}

// breakerErr is the error of a claim that fails because the circuit
// breaker is open: ErrCircuitOpen, which is also ErrNoBackendsOnline, with
// the last connect error, and how long until the next connect is tried.
func (p *Pool[C]) breakerErr() error {
	err := &claimError{kind: ErrCircuitOpen, also: ErrNoBackendsOnline, cause: p.lastErr}
	err.retryAfter = p.nextConnect(false)
	return err
}

// allDeadErr is the error of a claim that fails because every backend is
// dead: ErrNoBackendsOnline with the last connect error, and how long
// until the next connect to a dead backend is tried (RetryAfter).
func (p *Pool[C]) allDeadErr() error {
	err := &claimError{kind: ErrNoBackendsOnline, cause: p.lastErr}
	err.retryAfter = p.nextConnect(true)
	return err
}

// nextConnect returns how long until the next connect to a backend (a
// dead one, with deadOnly) is tried, or 0 when one is under way or about
// to start, or none is scheduled: then nobody knows.
func (p *Pool[C]) nextConnect(deadOnly bool) time.Duration {
	var next int64 = -1
	now := p.loop.Nanos()
	for _, s := range p.order {
		if (deadOnly && !s.Dead()) || s.State() == slotset.Draining {
			continue
		}
		for _, sl := range s.slots {
			switch {
			case sl.State() == slot.Failed && sl.t.Pending():
				w := sl.t.WhenNanos()
				if w <= now {
					// Its backoff has ended and its timer is about to
					// run: the connect is as good as under way.
					return 0
				}
				if next < 0 || w < next {
					next = w
				}
			case sl.State() == slot.Connecting || sl.State() == slot.Waiting:
				return 0 // an attempt is under way: its outcome is not known yet
			}
		}
	}
	if next < 0 {
		return 0
	}
	return time.Duration(next - now)
}

// takeIdle claims an idle connection for a claimer allowed to skip the
// queue, or returns nil. It is the claim fast path: no goroutine hand-off,
// and no allocation but one block of handles every 64 claims.
func (p *Pool[C]) takeIdle() *Handle[C] {
	sl := p.pick()
	if sl == nil {
		return nil
	}
	h := p.claimSlot(sl)
	if p.checkIdle > 0 && p.loop.Nanos()-sl.idleSince > int64(p.checkIdle) {
		// Idle too long to hand out unchecked. (A slot handed to a
		// waiter has just become idle: it is never due.)
		sl.checkDue = true
		p.st.checks++
	}
	p.st.waits.observe(0)
	if d := p.demand(); p.nslots < d && d != p.lastDemand {
		p.follow(followRebalance)
	}
	return h
}

// enqueue puts a waiter in the claim queue with its deadline, and asks for
// more slots if demand now exceeds them.
func (p *Pool[C]) enqueue(w *waiter[C], front bool, timeout time.Duration) {
	if front {
		p.waiters.pushFront(w)
	} else {
		p.waiters.pushBack(w)
	}
	p.loop.After(&w.timer, timeout)
	if p.codel.On() && !p.shedTimer.Pending() {
		p.armShed(w.since)
	}
	if p.nslots < p.demand() {
		p.follow(followRebalance)
	}
}

// giveback returns a claimed slot that the claimer never used.
func (p *Pool[C]) giveback(h *Handle[C]) {
	sl := h.sl
	p.handBack(h)
	sl.fire(slot.Giveback)
	p.unclaim(sl)
	p.idleSlot(sl)
}

// handBack ends a claim that its claimer never saw: the handle is
// invalidated and the claim is not counted.
func (p *Pool[C]) handBack(h *Handle[C]) {
	sl := h.sl
	if sl.cur == h {
		sl.cur = nil
	}
	sl.set.st.claims--
	p.st.claims--
}

// waiter is a claimer in the queue.
type waiter[C any] struct {
	ctx        context.Context
	done       func(*Handle[C], error) // claimAsync's callback, or nil
	ready      chan struct{}
	h          *Handle[C]
	err        error
	timer      fsm.Timer
	since      time.Time
	prev, next *waiter[C]
	queued     bool
}

func (p *Pool[C]) newWaiter(ctx context.Context) *waiter[C] {
	var w *waiter[C]
	if n := len(p.freeW); n > 0 {
		w = p.freeW[n-1]
		p.freeW = p.freeW[:n-1]
	} else {
		w = &waiter[C]{ready: make(chan struct{}, 1)}
		p.initTimer(&w.timer, func() { p.waiterTimedOut(w) })
	}
	w.ctx = ctx
	w.since = p.now()
	return w
}

// waited sets *wait, when wait is not nil, to how long w has waited.
func (p *Pool[C]) waited(w *waiter[C], wait *time.Duration) {
	if wait != nil {
		*wait = p.now().Sub(w.since)
	}
}

func (p *Pool[C]) freeWaiter(w *waiter[C]) {
	w.ctx, w.h, w.err, w.done = nil, nil, nil, nil
	if len(p.freeW) < 1024 {
		p.freeW = append(p.freeW, w)
	}
}

func (p *Pool[C]) waiterTimedOut(w *waiter[C]) {
	if !w.queued {
		return
	}
	p.finishWaiter(w, nil, p.claimErr())
}

// serve hands sl to the first waiter whose context is not done, and
// reports whether it found one. Waiters whose context is done are woken
// with their context's error: they are never handed a connection.
func (p *Pool[C]) serve(sl *pslot[C]) bool {
	for w := p.waiters.head; w != nil; w = p.waiters.head {
		if err := w.ctx.Err(); err != nil {
			p.st.failed(err)
			p.finishWaiter(w, nil, err)
			continue
		}
		now := p.now()
		if now.After(w.timer.When(p.loop)) {
			// Its deadline passed and its timer has not fired yet: the
			// process stalled (a GC pause, a VM stall) and this hand-off
			// runs first. It fails as its timer would have.
			p.finishWaiter(w, nil, p.claimErr())
			continue
		}
		if p.codel.On() && p.codelShed(w, now) {
			p.st.shed++
			p.finishWaiter(w, nil, ErrClaimShed)
			continue
		}
		h := p.claimSlot(sl)
		p.track(sl, w.ctx)
		p.cclock.Mark(now)
		p.st.waits.observe(now.Sub(w.since))
		p.finishWaiter(w, h, nil)
		if p.codel.On() {
			p.armShed(now)
		}
		return true
	}
	return false
}

// finishWaiter removes w from the queue and wakes it with h or err.
func (p *Pool[C]) finishWaiter(w *waiter[C], h *Handle[C], err error) {
	p.waiters.remove(w)
	p.loop.Cancel(&w.timer)
	if h == nil && err != nil && err != w.ctx.Err() {
		p.st.failed(err)
	}
	if done := w.done; done != nil {
		p.freeWaiter(w)
		done(h, err)
		return
	}
	w.h, w.err = h, err
	w.ready <- struct{}{}
}

// waiterList is the FIFO claim queue, intrusive and doubly linked.
type waiterList[C any] struct {
	head, tail *waiter[C]
	n          int
}

func (l *waiterList[C]) pushBack(w *waiter[C]) {
	w.prev, w.next = l.tail, nil
	if l.tail != nil {
		l.tail.next = w
	} else {
		l.head = w
	}
	l.tail = w
	w.queued = true
	l.n++
}

func (l *waiterList[C]) pushFront(w *waiter[C]) {
	w.prev, w.next = nil, l.head
	if l.head != nil {
		l.head.prev = w
	} else {
		l.tail = w
	}
	l.head = w
	w.queued = true
	l.n++
}

func (l *waiterList[C]) remove(w *waiter[C]) {
	if !w.queued {
		return
	}
	if w.prev != nil {
		w.prev.next = w.next
	} else {
		l.head = w.next
	}
	if w.next != nil {
		w.next.prev = w.prev
	} else {
		l.tail = w.prev
	}
	w.prev, w.next, w.queued = nil, nil, false
	l.n--
}

package pool

import (
	"context"
	"fmt"
	"time"

	"github.com/qorbgo/qorb/backend"
	"github.com/qorbgo/qorb/fsm"
	"github.com/qorbgo/qorb/slot"
	"github.com/qorbgo/qorb/slotset"
)

// Handle is a claimed connection. It belongs to the claimer until Release
// or Discard; after either, the claimer must not use it or its connection
// again (the pool reuses Handle values, as it reuses connections).
type Handle[C any] struct {
	s *pslot[C]
}

// Conn returns the claimed connection.
func (h *Handle[C]) Conn() C { return h.s.conn }

// Backend returns the backend the connection goes to.
func (h *Handle[C]) Backend() backend.Backend { return h.s.b }

// Release gives the connection back to the pool: the recycle hook runs
// (OnRecycle, else Validate, if the connector has either), then the
// connection serves the next claim. Release panics when the handle is not
// claimed (released twice); after Close forced the connection shut it does
// nothing.
func (h *Handle[C]) Release() {
	sl := h.s
	p := sl.p
	p.loop.Enter()
	defer p.loop.Leave()
	if !h.claimed("Release") {
		return
	}
	sl.fire(slot.Release)
	p.unclaim(sl)
	if p.recycle != nil && !sl.stopWanted && !p.closing() {
		p.st.recycles++
		p.runHook(sl, "recycle", p.recycle, slot.RecycleOK, slot.RecycleErr)
		return
	}
	sl.fire(slot.RecycleOK)
	var now time.Time
	if !sl.expireAt.IsZero() || p.pol.MaxConnIdleTime > 0 {
		now = p.now()
	}
	p.idleSlot(sl, now)
}

// Discard tells the pool the connection is bad: it is closed, err is
// recorded as its backend's last error and counted as a failure, and the
// slot reconnects after its backoff. Discard panics when the handle is not
// claimed; after Close forced the connection shut it does nothing.
func (h *Handle[C]) Discard(err error) {
	p := h.s.p
	p.loop.Enter()
	defer p.loop.Leave()
	if h.claimed("Discard") {
		p.discard(h.s, err)
	}
}

// claimed reports whether the handle's slot is claimed, false when a
// forced Close stopped it, and panics otherwise (op on a handle already
// given back). The loop must be held.
func (h *Handle[C]) claimed(op string) bool {
	switch h.s.state.Get() {
	case slot.Claimed:
		return true
	case slot.Stopped:
		return false
	}
	panic(fmt.Sprintf("pool: %s of a handle that is not claimed (slot %s is %s)", op, h.s.id, h.s.state.Get()))
}

// discard closes a claimed slot's connection and charges its backend.
func (p *Pool[C]) discard(sl *pslot[C], err error) {
	if err == nil {
		err = fmt.Errorf("discarded")
	}
	p.unclaim(sl)
	p.st.discards++
	p.slotFailed(sl, slot.Discard, fmt.Errorf("discard %s: %w", sl.b.Name, err))
}

func (p *Pool[C]) unclaim(sl *pslot[C]) {
	sl.set.claimed--
	p.nclaimed--
}

// claimSlot hands an idle (or just connected) slot to a claimer.
func (p *Pool[C]) claimSlot(sl *pslot[C]) {
	p.unidle(sl)
	sl.fire(slot.Claim)
	sl.set.claimed++
	sl.set.st.claims++
	p.nclaimed++
	p.st.claims++
	sl.claimedAt = p.now()
}

// pick chooses an idle slot through the Picker, or returns nil.
func (p *Pool[C]) pick() *pslot[C] {
	if _, ok := p.pol.Picker.(LeastClaimed); ok {
		return p.pickLeastClaimed()
	}
	p.cands = p.cands[:0]
	p.candSets = p.candSets[:0]
	for i, s := range p.order {
		if s.state.Get() == slotset.Online && len(s.idle) > 0 {
			p.cands = append(p.cands, Candidate{Name: s.b.Name, Claimed: s.claimed, Idle: len(s.idle), Slots: len(s.slots), Rank: i})
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
	return s.idle[len(s.idle)-1]
}

// pickLeastClaimed is what LeastClaimed picks, found in one pass over the
// sets without building the candidates: the default policy's claim path
// stays cheap with many backends. (TestLeastClaimedInPlace checks that
// both agree.)
func (p *Pool[C]) pickLeastClaimed() *pslot[C] {
	var best *set[C]
	for _, s := range p.order {
		if s.state.Get() == slotset.Online && len(s.idle) > 0 && (best == nil || s.claimed < best.claimed) {
			best = s
		}
	}
	if best == nil {
		return nil
	}
	return best.idle[len(best.idle)-1]
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
// Policy.HealthTimeout; when it fails, the connection is discarded and the
// caller waits again at the head of the queue.
func (p *Pool[C]) Claim(ctx context.Context) (*Handle[C], error) {
	h, err := p.claim(ctx, nil, nil)
	if err != nil || p.onAcquire == nil {
		return h, err
	}
	for {
		hctx, cancel := context.WithTimeout(ctx, p.pol.HealthTimeout)
		err = p.call("acquire hook", hctx, h.s.conn, p.onAcquire)
		cancel()
		if err == nil {
			return h, nil
		}
		// Discard and queue again at the head in one event, so that no
		// connection freed in between goes to a claimer behind this one.
		if h, err = p.claim(ctx, h.s, fmt.Errorf("acquire hook: %w", err)); err != nil {
			return nil, err
		}
	}
}

// claim serves one claim. With bad set (its acquire hook failed), it first
// discards bad with badErr, and the claimer keeps its place at the head of
// the queue.
func (p *Pool[C]) claim(ctx context.Context, bad *pslot[C], badErr error) (*Handle[C], error) {
	front := bad != nil
	if err := ctx.Err(); err != nil && !front {
		return nil, err
	}
	p.loop.Enter()
	if front {
		if bad.state.Get() == slot.Claimed {
			p.discard(bad, badErr)
		}
		if err := ctx.Err(); err != nil {
			p.loop.Leave()
			return nil, err
		}
	}
	if err := p.admit(); err != nil {
		p.loop.Leave()
		return nil, err
	}
	if p.waiters.head == nil || front {
		if sl := p.takeIdle(); sl != nil {
			p.loop.Leave()
			return &sl.handle, nil
		}
	}
	w := p.newWaiter(ctx)
	p.enqueue(w, front, p.pol.ClaimTimeout)
	p.loop.Leave()

	select {
	case <-w.ready:
	case <-ctx.Done():
		p.loop.Enter()
		if w.queued {
			p.waiters.remove(w)
			p.loop.Cancel(&w.timer)
			p.st.failed(ctx.Err())
			p.freeWaiter(w)
			p.loop.Leave()
			return nil, ctx.Err()
		}
		p.loop.Leave()
		<-w.ready // already sent, with the loop held
	}
	p.loop.Enter()
	defer p.loop.Leave()
	h, err := w.h, w.err
	p.freeWaiter(w)
	if h != nil && ctx.Err() != nil {
		// The context ended just after the hand-off: give it back unused.
		p.giveback(h.s)
		return nil, ctx.Err()
	}
	return h, err
}

// ClaimAsync is Claim for callers that must not block: a simulator driving
// pools in virtual time, or an event loop of the caller's own. It must be
// called without the pool's loop held. done is called exactly once, with
// the loop held, either before ClaimAsync returns or later from whatever
// goroutine runs the event that serves or fails the claim; it must not
// call the pool (schedule the use and the Release elsewhere). timeout
// replaces Policy.ClaimTimeout when positive. ctx may be nil; a claim
// whose ctx is done is never served. The acquire hook does not run.
func (p *Pool[C]) ClaimAsync(ctx context.Context, timeout time.Duration, done func(*Handle[C], error)) {
	if ctx == nil {
		ctx = context.Background()
	}
	if timeout <= 0 {
		timeout = p.pol.ClaimTimeout
	}
	p.loop.Enter()
	defer p.loop.Leave()
	err := p.admit()
	if err == nil {
		err = ctx.Err()
		if err != nil {
			p.st.failed(err)
		}
	}
	if err != nil {
		done(nil, err)
		return
	}
	if p.waiters.head == nil {
		if sl := p.takeIdle(); sl != nil {
			done(&sl.handle, nil)
			return
		}
	}
	w := p.newWaiter(ctx)
	w.done = done
	p.enqueue(w, false, timeout)
}

// admit returns the error for a claim the pool refuses at once: closed,
// or failed.
func (p *Pool[C]) admit() error {
	switch p.state.Get() {
	case Stopping, Stopped:
		p.st.failed(ErrClosed)
		return ErrClosed
	case Failed:
		p.st.failed(ErrNoBackendsOnline)
		return withCause(ErrNoBackendsOnline, p.lastErr)
	}
	return nil
}

// takeIdle claims an idle connection for a claimer allowed to skip the
// queue, or returns nil. It is the claim fast path: no allocation, no
// goroutine hand-off.
func (p *Pool[C]) takeIdle() *pslot[C] {
	sl := p.pick()
	if sl == nil {
		return nil
	}
	p.claimSlot(sl)
	p.st.waits.observe(0)
	if d := p.demand(); p.nslots < d && d != p.lastDemand {
		p.rebalanceNow(false)
	}
	return sl
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
	if p.nslots < p.demand() {
		p.rebalanceNow(false)
	}
}

// giveback returns a claimed slot that the claimer never used.
func (p *Pool[C]) giveback(sl *pslot[C]) {
	sl.fire(slot.Giveback)
	p.unclaim(sl)
	sl.set.st.claims--
	p.st.claims--
	p.idleSlot(sl, time.Time{})
}

// waiter is a claimer in the queue.
type waiter[C any] struct {
	ctx        context.Context
	done       func(*Handle[C], error) // ClaimAsync's callback, or nil
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
		w.timer.Init(func() { p.waiterTimedOut(w) })
	}
	w.ctx = ctx
	w.since = p.now()
	return w
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
		p.claimSlot(sl)
		p.st.waits.observe(p.now().Sub(w.since))
		p.finishWaiter(w, &sl.handle, nil)
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

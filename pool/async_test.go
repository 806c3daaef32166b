package pool

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/benbjohnson/clock"

	"github.com/qorbgo/qorb/backend"
	"github.com/qorbgo/qorb/fsm"
	"github.com/qorbgo/qorb/resolver"
	"github.com/qorbgo/qorb/slot"
)

func TestClaimAsyncServesInOrderAndTimesOut(t *testing.T) {
	h := newHarness(t, Policy{MaxSlots: 1, ClaimTimeout: time.Minute}, 1, nil)
	var got []string
	var first *Handle[*fakeConn]
	h.p.claimAsync(nil, 0, nil, func(hd any, err error) {
		if err != nil {
			t.Errorf("first: %v", err)
		}
		first = hd.(*Handle[*fakeConn])
		got = append(got, "first")
	})
	if first == nil {
		t.Fatal("the fast path did not answer before returning")
	}
	var second *Handle[*fakeConn]
	h.p.claimAsync(nil, 0, nil, func(hd any, err error) { second = hd.(*Handle[*fakeConn]); got = append(got, "second") })
	var thirdErr error
	h.p.claimAsync(nil, 5*time.Second, nil, func(hd any, err error) {
		if hd != nil {
			t.Errorf("third: a handle with error %v", err)
		}
		thirdErr = err
		got = append(got, "third")
	})
	if len(got) != 1 {
		t.Fatalf("served %v while the only slot is claimed", got)
	}
	first.Release()
	if second == nil {
		t.Fatal("release did not serve the queued claim")
	}
	h.advance(5 * time.Second)
	if !errors.Is(thirdErr, ErrAllClaimsUsed) {
		t.Fatalf("third: %v", thirdErr)
	}
	second.Release()
	if len(got) != 3 || got[1] != "second" || got[2] != "third" {
		t.Fatalf("order %v", got)
	}
}

func TestPoolsShareOneLoop(t *testing.T) {
	clk := clock.NewMock()
	l := fsm.NewLoop(fsm.Config{Clock: clk, Seed: 3, Strict: true})
	var ids []string
	l.AddObserver(fsm.ObserverFunc(func(tr fsm.Transition) {
		if st, ok := slot.Kind.Step(tr); ok && st.Event == slot.ConnectOK {
			ids = append(ids, tr.ID)
		}
	}))
	var pools []*Pool[*fakeConn]
	fake := newFakeConnector()
	for _, n := range []string{"a", "b"} {
		p, err := New(resolver.NewFixed(addr(1)), backend.Connector[*fakeConn](fake), Policy{MaxSlots: 1, SparesWanted: 1}, withLoop(l), WithName(n))
		if err != nil {
			t.Fatal(err)
		}
		pools = append(pools, p)
	}
	l.WaitIdle()
	slices.Sort(ids)
	if len(ids) != 2 || !strings.HasPrefix(ids[0], "a/") || !strings.HasPrefix(ids[1], "b/") {
		t.Fatalf("slot ids %v, want one per pool, prefixed by its name", ids)
	}
	for _, p := range pools {
		done := make(chan error, 1)
		go func() { done <- p.Close(t.Context()) }()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	if fake.openCount() != 0 {
		t.Fatalf("%d open", fake.openCount())
	}
}

// withLoop is internal/simhook.WithLoop, for the tests of this package.
func withLoop(l *fsm.Loop) Option { return func(o *options) { o.loop = l } }

// acquireCounting adds an AcquireHook that fails the first fails calls.
type acquireCounting struct {
	*fakeConnector
	mu    sync.Mutex
	calls int
	fails int
}

func (c *acquireCounting) OnAcquire(context.Context, *fakeConn) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.calls++
	if c.calls <= c.fails {
		return errors.New("session reset failed")
	}
	return nil
}

// The simulator's claims run the acquire hook as the core's action: a
// failed hook discards the connection and the claim waits again at the
// head of the queue, within its deadline.
func TestClaimAsyncRunsTheAcquireHook(t *testing.T) {
	var hook *acquireCounting
	h := newHarness(t, Policy{MaxSlots: 1, SparesWanted: 1, ClaimTimeout: time.Minute, BackoffMin: time.Second, BackoffMax: time.Second},
		1, func(f *fakeConnector) backend.Connector[*fakeConn] {
			hook = &acquireCounting{fakeConnector: f, fails: 1}
			return hook
		})
	var got *Handle[*fakeConn]
	var gotErr error
	answered := 0
	h.p.claimAsync(nil, 0, nil, func(hd any, err error) {
		answered++
		got, _ = hd.(*Handle[*fakeConn])
		gotErr = err
	})
	h.settle() // the hook ran and failed: the connection was discarded
	if answered != 0 {
		t.Fatalf("answered before the hook passed: %v, %v", got, gotErr)
	}
	if st := h.stats(); st.Discards != 1 || st.Waiters != 1 {
		t.Fatalf("after the failed hook: discards %d, waiters %d", st.Discards, st.Waiters)
	}
	h.advance(2 * time.Second) // the slot reconnects; the hook passes
	if answered != 1 || got == nil || gotErr != nil {
		t.Fatalf("answered %d times: %v, %v", answered, got, gotErr)
	}
	got.Release()

	// A hook that always fails: the claim ends at its deadline.
	hook.mu.Lock()
	hook.fails = 1 << 30
	hook.mu.Unlock()
	answered = 0
	h.p.claimAsync(nil, 5*time.Second, nil, func(hd any, err error) { answered++; gotErr = err })
	for i := 0; answered == 0 && i < 100; i++ {
		h.advance(time.Second)
	}
	if answered != 1 || !errors.Is(gotErr, ErrAllClaimsUsed) && !errors.Is(gotErr, ErrNoBackendsOnline) {
		t.Fatalf("answered %d times, error %v", answered, gotErr)
	}
	if st := h.stats(); st.ClaimErrors.Timeouts != 1 {
		t.Fatalf("claim errors %+v", st.ClaimErrors)
	}
}

// The simulator's close runs Close in two halves: the pool says when it
// is quiet (its claimed connection released), then the second half ends
// it; a later Close returns nil at once.
func TestCloseAsyncInTwoHalves(t *testing.T) {
	h := newHarness(t, Policy{MaxSlots: 2, SparesWanted: 2}, 1, nil)
	hd := h.claim()
	quiet := 0
	end := h.p.closeAsync(func() { quiet++ })
	if end == nil {
		t.Fatal("no second half")
	}
	h.settle()
	if quiet != 0 {
		t.Fatal("quiet while a connection is claimed")
	}
	if _, err := h.p.Claim(context.Background()); !errors.Is(err, ErrClosed) {
		t.Fatalf("claim while closing: %v", err)
	}
	if h.p.closeAsync(func() {}) != nil {
		t.Fatal("a second asynchronous close started")
	}
	hd.Release()
	h.settle()
	if quiet != 1 {
		t.Fatalf("quiet called %d times after the last release", quiet)
	}
	if forced := end(); forced != 0 {
		t.Fatalf("forced %d", forced)
	}
	if err := h.p.Close(context.Background()); err != nil {
		t.Fatalf("Close after: %v", err)
	}
	h.p.loop.WaitIdle()
	if n := h.fake.openCount(); n != 0 || h.stats().State != "stopped" {
		t.Fatalf("%d open, state %s", n, h.stats().State)
	}
}

// TestServeFailsAWaiterPastItsDeadline: when a stalled process resumes
// (a GC pause), a hand-off and a waiter's deadline may both be due, and
// the hand-off may run first. The waiter is failed as its timer would
// have failed it, never served past its deadline.
func TestServeFailsAWaiterPastItsDeadline(t *testing.T) {
	h := newHarness(t, Policy{MaxSlots: 1, ClaimTimeout: time.Minute}, 1, nil)
	first := h.claim()
	var got *Handle[*fakeConn]
	var gotErr error
	done := false
	h.p.claimAsync(nil, 5*time.Second, nil, func(hd any, err error) {
		got, _ = hd.(*Handle[*fakeConn])
		gotErr, done = err, true
	})
	// Stall: hold every timer, as the simulator does for a paused client.
	var held []*fsm.Timer
	h.p.loop.Enter()
	h.p.loop.SetTimerGate(func(tm *fsm.Timer) bool { held = append(held, tm); return true })
	h.p.loop.Leave()
	h.advance(10 * time.Second)
	if done || len(held) == 0 {
		t.Fatalf("done %v with every timer held (%d held)", done, len(held))
	}
	first.Release() // at resume the hand-off runs before the deadline's timer
	if !done || got != nil || !errors.Is(gotErr, ErrAllClaimsUsed) {
		t.Fatalf("done %v: handle %v, error %v; want ErrAllClaimsUsed", done, got, gotErr)
	}
	h.p.loop.Enter()
	h.p.loop.SetTimerGate(nil)
	for _, tm := range held {
		h.p.loop.FireHeld(tm)
	}
	h.p.loop.Leave()
	h.settle()
	h.p.loop.Enter()
	n := h.p.nclaimed
	h.p.loop.Leave()
	if n != 0 {
		t.Fatalf("%d claimed after resume", n)
	}
}

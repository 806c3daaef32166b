package core

import (
	"testing"
	"time"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func at(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }

func TestCoDel(t *testing.T) {
	c := NewCoDel(10*time.Millisecond, 100*time.Millisecond)
	if !c.On() || NewCoDel(0, time.Second).On() {
		t.Fatal("On: a target turns shedding on, none leaves it off")
	}
	// The first interval: a claim served after 5ms, then one after 25ms.
	if c.Serve(at(0), 5*time.Millisecond) || c.Overloaded() {
		t.Fatal("shed or overloaded in the first interval")
	}
	if c.Serve(at(50), 25*time.Millisecond) {
		t.Fatal("shed in an interval that is not overloaded")
	}
	// Its least wait, 5ms, was under the target: the second interval is not
	// overloaded either, whatever its claims waited.
	if c.Serve(at(100), 30*time.Millisecond) || c.Serve(at(150), 40*time.Millisecond) || c.Overloaded() {
		t.Fatal("shed or overloaded after an interval whose least wait was under the target")
	}
	// The second's least wait was 30ms > 10ms: the third is overloaded, and
	// a claim that waited more than twice the target is shed.
	if !c.Serve(at(200), 21*time.Millisecond) || !c.Overloaded() {
		t.Fatal("a claim that waited more than twice the target in an overloaded interval was served")
	}
	if c.Serve(at(210), 20*time.Millisecond) {
		t.Fatal("a claim that waited exactly twice the target was shed")
	}
	if c.Serve(at(220), 5*time.Millisecond) {
		t.Fatal("a claim within the target was shed")
	}
	// The third's least wait, 5ms, is under the target: the fourth is not
	// overloaded, and nothing is shed however long it waited.
	if c.Serve(at(300), time.Second) || c.Overloaded() {
		t.Fatal("shed in an interval that is not overloaded")
	}
}

func TestCoDelShedHeadAndNext(t *testing.T) {
	c := NewCoDel(10*time.Millisecond, 100*time.Millisecond)
	// No claim served before, and the head has waited 15ms > 10ms: the
	// interval that starts is overloaded, but the head is within twice the
	// target; the next check is when it passes twice the target.
	if c.ShedHead(at(0), 15*time.Millisecond) || !c.Overloaded() {
		t.Fatal("want overloaded, the head not shed")
	}
	if got, want := c.Next(at(0), at(-15)), at(5).Add(time.Nanosecond); !got.Equal(want) {
		t.Fatalf("Next = %v, want %v", got.Sub(t0), want.Sub(t0))
	}
	if !c.ShedHead(at(100), 21*time.Millisecond) || !c.Overloaded() {
		t.Fatal("the head, waiting 21ms in an overloaded interval, is not shed")
	}
	if c.ShedHead(at(100), 20*time.Millisecond) {
		t.Fatal("a head that waited exactly twice the target is shed")
	}
	// Overloaded: the next check is when the head passes twice the target,
	// if that comes before the interval's end.
	if got, want := c.Next(at(100), at(95)), at(115).Add(time.Nanosecond); !got.Equal(want) {
		t.Fatalf("Next = %v, want %v", got.Sub(t0), want.Sub(t0))
	}
	if got, want := c.Next(at(150), at(10)), at(150); !got.Equal(want) {
		t.Fatalf("Next in the past = %v, want now %v", got.Sub(t0), want.Sub(t0))
	}
	if got, want := c.Next(at(100), at(190)), at(200); !got.Equal(want) {
		t.Fatalf("Next = %v, want the interval's end %v", got.Sub(t0), want.Sub(t0))
	}
	// An empty queue (-1) never sheds, and decides the next interval from
	// nothing served: not overloaded.
	if c.ShedHead(at(200), -1) || c.Overloaded() {
		t.Fatal("an empty queue shed or stayed overloaded")
	}
}

func TestConnectGate(t *testing.T) {
	const ms = int64(time.Millisecond)
	// At most 2 in flight, no rate.
	g := NewConnectGate(0, 0)
	for i := range 2 {
		if !g.Allow(0, 2, 0) {
			t.Fatalf("connect %d refused under the limit", i)
		}
		g.Started()
	}
	if g.Allow(0, 2, 0) || g.Connecting() != 2 {
		t.Fatal("a third connect allowed with two in flight")
	}
	if _, ok := g.Next(0, 2, 0); ok {
		t.Fatal("Next gave a time with no rate: only a connect's end frees the gate")
	}
	g.Done()
	if !g.Allow(0, 2, 0) {
		t.Fatal("refused after a connect ended")
	}

	// 10 a second: a burst of 10, then one per 100ms.
	g = NewConnectGate(0, 10)
	for i := range 10 {
		if !g.Allow(0, 0, 10) {
			t.Fatalf("connect %d of the burst refused", i)
		}
	}
	if g.Allow(0, 0, 10) {
		t.Fatal("the 11th connect at once allowed")
	}
	next, ok := g.Next(0, 0, 10)
	if !ok || next != 100*ms {
		t.Fatalf("Next = %v %v, want 100ms", time.Duration(next), ok)
	}
	if g.Allow(99*ms, 0, 10) {
		t.Fatal("allowed before a whole token")
	}
	if !g.Allow(100*ms, 0, 10) {
		t.Fatal("refused with a whole token")
	}
	// A long quiet time fills the bucket to its burst only.
	n := 0
	for g.Allow(time.Hour.Nanoseconds(), 0, 10) {
		n++
	}
	if n != 10 {
		t.Fatalf("after an hour, %d connects at once, want the burst of 10", n)
	}
	// A rate under 1 a second still has a burst of one.
	g = NewConnectGate(0, 0.5)
	if !g.Allow(0, 0, 0.5) || g.Allow(ms, 0, 0.5) {
		t.Fatal("rate 0.5: want one connect, then none")
	}
	if next, _ := g.Next(0, 0, 0.5); next != 2*int64(time.Second) {
		t.Fatalf("rate 0.5: next token at %v, want 2s", time.Duration(next))
	}
}

func TestClamp(t *testing.T) {
	for _, tc := range []struct {
		want, perBackend, capacity, room int
		got                              int
		bad                              WantProblems
	}{
		{3, 10, 10, 100, 3, 0},
		{-1, 10, 10, 100, 0, WantNegative},
		{12, 10, 10, 100, 10, WantAbovePerBackend},
		{8, 10, 5, 100, 5, 0}, // the backend's capacity: no fault of the rebalancer
		{8, 10, 10, 6, 6, WantAboveTotal},
		{12, 10, 10, 6, 6, WantAbovePerBackend | WantAboveTotal},
		{8, 10, 5, 6, 5, 0},
	} {
		got, bad := Clamp(tc.want, tc.perBackend, tc.capacity, tc.room)
		if got != tc.got || bad != tc.bad {
			t.Errorf("Clamp(%d, %d, %d, %d) = %d, %b; want %d, %b", tc.want, tc.perBackend, tc.capacity, tc.room, got, bad, tc.got, tc.bad)
		}
	}
	if p := WantAbovePerBackend | WantAboveTotal; !p.Has(WantAboveTotal) || p.Has(WantNegative) {
		t.Error("Has")
	}
}

func TestDemand(t *testing.T) {
	for _, tc := range []struct{ claimed, waiting, spares, min, max, want int }{
		{0, 0, 2, 0, 10, 2},
		{5, 3, 2, 0, 10, 10},
		{5, 3, 2, 0, 8, 8},
		{0, 0, 0, 4, 10, 4},
	} {
		if got := Demand(tc.claimed, tc.waiting, tc.spares, tc.min, tc.max); got != tc.want {
			t.Errorf("Demand%v = %d, want %d", tc, got, tc.want)
		}
	}
}

func TestDampedShrink(t *testing.T) {
	// A surplus of 1 with a share of 0.3: rounding alone would never remove
	// it; the carry does, at the second step.
	var carry float64
	if n := DampedShrink(&carry, 1, 0.3); n != 0 {
		t.Fatalf("step 1 removed %d", n)
	}
	if n := DampedShrink(&carry, 1, 0.3); n != 1 {
		t.Fatalf("step 2 removed %d, want 1", n)
	}
	// Never more than the surplus.
	carry = 0
	if n := DampedShrink(&carry, 4, 1); n != 4 {
		t.Fatalf("share 1 removed %d of 4", n)
	}
	total, surplus := 0, 100
	carry = 0
	for range 20 {
		n := DampedShrink(&carry, surplus, 0.5)
		surplus -= n
		total += n
	}
	if surplus != 0 || total != 100 {
		t.Fatalf("halving 100 for 20 steps left %d", surplus)
	}
}

func TestClaimClock(t *testing.T) {
	var c ClaimClock
	c.Mark(at(0))  // no claim yet
	a := c.Start() // claim 1
	c.Mark(at(10)) // after claim 1
	c.Mark(at(20)) // the same claims: the earlier mark is kept
	b := c.Start() // claim 2
	if got := c.HeldAtLeast(a, at(100)); got != 90*time.Millisecond {
		t.Fatalf("claim 1 held at least %v, want 90ms", got)
	}
	if got := c.HeldAtLeast(b, at(100)); got != 0 {
		t.Fatalf("claim 2, with no mark after it, held at least %v, want 0", got)
	}
	// After more marks than the ring keeps, the oldest kept still bounds.
	for i := range 100 {
		c.Start()
		c.Mark(at(200 + i))
	}
	if got := c.HeldAtLeast(a, at(1000)); got != (1000-268)*time.Millisecond {
		t.Fatalf("claim 1 after the ring turned: at least %v, want %v", got, (1000-268)*time.Millisecond)
	}
}

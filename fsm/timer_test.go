package fsm_test

import (
	"slices"
	"testing"
	"time"

	"github.com/benbjohnson/clock"
	"pgregory.net/rapid"

	"github.com/qorbgo/qorb/fsm"
)

// TestTimersFireInDeadlineThenSequenceOrder checks the heap against a
// sorted list: timers fire by deadline, equal deadlines in scheduling order,
// rescheduled timers by their last schedule, cancelled ones never.
func TestTimersFireInDeadlineThenSequenceOrder(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		clk := clock.NewMock()
		l := fsm.NewLoop(fsm.Config{Clock: clk, Seed: 1, Strict: true})
		l.Enter()
		defer l.Leave()
		l.Halt() // fire only through RunDue
		n := rapid.IntRange(1, 40).Draw(rt, "n")
		timers := make([]fsm.Timer, n)
		var fired []int
		type sched struct {
			when time.Duration
			seq  int
		}
		want := map[int]sched{}
		seq := 0
		for i := range timers {
			timers[i].Init(func() { fired = append(fired, i) })
		}
		ops := rapid.IntRange(1, 100).Draw(rt, "ops")
		for range ops {
			i := rapid.IntRange(0, n-1).Draw(rt, "timer")
			if rapid.IntRange(0, 4).Draw(rt, "op") == 0 {
				l.Cancel(&timers[i])
				delete(want, i)
				continue
			}
			d := time.Duration(rapid.IntRange(0, 5).Draw(rt, "deadline")) * time.Second
			l.After(&timers[i], d)
			seq++
			want[i] = sched{d, seq}
		}
		clk.Add(time.Minute)
		l.RunDue()
		var order []int
		for i := range want {
			order = append(order, i)
		}
		slices.SortFunc(order, func(a, b int) int {
			if want[a].when != want[b].when {
				return int(want[a].when - want[b].when)
			}
			return want[a].seq - want[b].seq
		})
		if !slices.Equal(fired, order) {
			rt.Fatalf("fired %v, want %v", fired, order)
		}
	})
}

func TestRunDueFiresOnlyWhatIsDue(t *testing.T) {
	clk := clock.NewMock()
	l := fsm.NewLoop(fsm.Config{Clock: clk, Seed: 1, Strict: true})
	l.Enter()
	defer l.Leave()
	var a, b fsm.Timer
	var fired []string
	a.Init(func() { fired = append(fired, "a") })
	b.Init(func() { fired = append(fired, "b"); l.After(&b, time.Second) })
	l.After(&a, 2*time.Second)
	l.After(&b, time.Second)
	if l.RunDue() != 0 {
		t.Fatal("fired early")
	}
	clk.Set(clk.Now().Add(time.Second))
	if l.RunDue() != 1 || !b.Pending() || a.Pending() == false {
		t.Fatalf("fired %v", fired)
	}
	clk.Set(clk.Now().Add(time.Second))
	l.RunDue()
	if !slices.Equal(fired, []string{"b", "a", "b"}) {
		t.Fatalf("fired %v", fired)
	}
	if next, ok := l.NextDeadline(); !ok || !next.Equal(clk.Now().Add(time.Second)) {
		t.Fatalf("next deadline %v %v", next, ok)
	}
}

// TestTimerGateHoldsTimers checks that a timer the gate holds does not
// fire, stays pending, fires once with FireHeld, and that cancelling or
// scheduling it again lets it go.
func TestTimerGateHoldsTimers(t *testing.T) {
	clk := clock.NewMock()
	l := fsm.NewLoop(fsm.Config{Clock: clk, Seed: 1, Strict: true})
	l.Enter()
	defer l.Leave()
	l.Halt()
	var a, b, c, d fsm.Timer
	var fired []string
	a.Init(func() { fired = append(fired, "a") })
	b.Init(func() { fired = append(fired, "b") })
	c.Init(func() { fired = append(fired, "c") })
	d.Init(func() { fired = append(fired, "d") })
	var held []*fsm.Timer
	l.SetTimerGate(func(t *fsm.Timer) bool {
		if t == &d {
			return false
		}
		held = append(held, t)
		return true
	})
	for i, tm := range []*fsm.Timer{&a, &b, &c, &d} {
		l.After(tm, time.Duration(i+1)*time.Second)
	}
	clk.Add(time.Minute)
	if n := l.RunDue(); n != 1 || !slices.Equal(fired, []string{"d"}) {
		t.Fatalf("fired %d: %v", n, fired)
	}
	if len(held) != 3 || !a.Pending() || !b.Pending() || !c.Pending() || d.Pending() {
		t.Fatalf("held %d; pending a %v b %v c %v d %v", len(held), a.Pending(), b.Pending(), c.Pending(), d.Pending())
	}
	if _, ok := l.NextDeadline(); ok {
		t.Fatal("a held timer is in the heap")
	}
	l.Cancel(&b)           // let go: never fires
	l.After(&c, time.Hour) // scheduled again: fires at its new deadline
	l.SetTimerGate(nil)
	for _, tm := range held {
		l.FireHeld(tm)
	}
	if !slices.Equal(fired, []string{"d", "a"}) || a.Pending() || b.Pending() || !c.Pending() {
		t.Fatalf("fired %v", fired)
	}
	if l.FireHeld(&a) {
		t.Fatal("FireHeld fired a timer that is not held")
	}
	clk.Add(time.Hour)
	l.RunDue()
	if !slices.Equal(fired, []string{"d", "a", "c"}) {
		t.Fatalf("fired %v", fired)
	}
}

// nanoClock is a mock clock that also gives its time as nanoseconds
// since an origin of its own.
type nanoClock struct {
	*clock.Mock
	origin time.Time
	reads  int
}

func (c *nanoClock) Nanos() int64 {
	c.reads++
	return int64(c.Now().Sub(c.origin))
}

// TestNanoClock checks that a loop on a clock that gives nanoseconds reads
// it through Nanos, and that its stamps, deadlines and times agree with
// the clock's Now.
func TestNanoClock(t *testing.T) {
	mock := clock.NewMock()
	clk := &nanoClock{Mock: mock, origin: mock.Now().Add(-time.Hour)}
	l := fsm.NewLoop(fsm.Config{Clock: clk, Seed: 1, Strict: true})
	l.Enter()
	defer l.Leave()
	l.Halt()
	if n := l.Nanos(); n != 0 {
		t.Fatalf("Nanos at the start = %d, want 0", n)
	}
	var tm fsm.Timer
	fired := 0
	tm.Init(func() { fired++ })
	mock.Add(time.Second)
	l.After(&tm, time.Minute)
	reads := clk.reads
	if n := l.Nanos(); n != int64(time.Second) || clk.reads != reads+1 {
		t.Fatalf("Nanos = %d after %d reads, want %d after one", n, clk.reads-reads, int64(time.Second))
	}
	if d, ok := l.NextDeadlineNanos(); !ok || d != int64(time.Second+time.Minute) {
		t.Fatalf("NextDeadlineNanos = %d, %v", d, ok)
	}
	if d, ok := l.NextDeadline(); !ok || !d.Equal(mock.Now().Add(time.Minute)) || !l.Time(l.Nanos()).Equal(mock.Now()) {
		t.Fatalf("NextDeadline = %v, %v; now %v", d, ok, mock.Now())
	}
	mock.Add(time.Minute - 1)
	if l.RunDue() != 0 {
		t.Fatal("fired early")
	}
	mock.Add(1)
	if l.RunDue() != 1 || fired != 1 {
		t.Fatalf("fired %d times", fired)
	}
	if _, ok := l.NextDeadlineNanos(); ok {
		t.Fatal("a deadline is left")
	}
}

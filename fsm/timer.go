package fsm

import (
	"container/heap"
	"time"
)

// Timer is a deadline in the loop's heap. Embed one in the thing it belongs
// to and set what it runs once, with [Timer.Init] or [Timer.InitDue];
// scheduling and cancelling then allocate nothing. Timers with equal
// deadlines fire in the order they were scheduled.
type Timer struct {
	when int64  // the deadline, in nanoseconds from the loop's root time
	seq  uint32 // the order of scheduling, among equal deadlines (wraps)
	idx  int32  // position in the heap, -1 when not pending, or held
	due  Due
}

// held is the idx of a timer that came due while its owner was stopped
// (see [Loop.SetTimerGate]): pending, but in no heap.
const held = -2

// Due is what a timer runs when it fires, with the loop held. A thing that
// owns a timer can implement it itself, so that the timer needs no
// closure.
type Due interface{ Due() }

// DueFunc adapts a function to [Due].
type DueFunc func()

// Due calls f().
func (f DueFunc) Due() { f() }

// Init sets the callback run, with the loop held, when the timer fires.
func (t *Timer) Init(fire func()) { t.InitDue(DueFunc(fire)) }

// InitDue sets what runs, with the loop held, when the timer fires.
func (t *Timer) InitDue(d Due) {
	t.due = d
	t.idx = -1
}

// Pending reports whether the timer is scheduled (or held by the loop's
// gate: due, and not fired yet).
func (t *Timer) Pending() bool { return t.idx != -1 }

// When is the deadline the timer was last scheduled for, on l's clock:
// still its deadline after it fired, or while a gate holds it.
func (t *Timer) When(l *Loop) time.Time { return l.root.Add(time.Duration(t.when)) }

// WhenNanos is When as a stamp of the loop's clock (see Loop.Nanos).
func (t *Timer) WhenNanos() int64 { return t.when }

// Callback is what the timer runs when it fires (set by [Timer.Init] or
// [Timer.InitDue]).
func (t *Timer) Callback() Due { return t.due }

// After schedules t to fire d from now on the loop's clock, replacing any
// earlier schedule of t.
func (l *Loop) After(t *Timer, d time.Duration) { l.at(t, l.nanos()+int64(d)) }

// At schedules t to fire at when, replacing any earlier schedule of t.
func (l *Loop) At(t *Timer, when time.Time) { l.at(t, int64(when.Sub(l.root))) }

// AtNanos schedules t to fire at when, a stamp of [Loop.Nanos], replacing
// any earlier schedule of t.
func (l *Loop) AtNanos(t *Timer, when int64) { l.at(t, when) }

func (l *Loop) at(t *Timer, when int64) {
	if t.due == nil {
		panic("fsm: timer scheduled before Init")
	}
	l.seq++
	t.when, t.seq = when, l.seq
	h := (*timerHeap)(&l.heap)
	if t.idx >= 0 {
		heap.Fix(h, int(t.idx))
	} else {
		heap.Push(h, t)
	}
	if !l.armed || when < l.wakeAt {
		l.rearm = true
	}
}

// Cancel unschedules t; it is a no-op for a timer that is not pending.
// A held timer (see [Loop.SetTimerGate]) is let go: it will not fire.
func (l *Loop) Cancel(t *Timer) {
	if t.idx >= 0 {
		heap.Remove((*timerHeap)(&l.heap), int(t.idx))
	} else if t.idx == held {
		t.idx = -1
	}
}

// SetTimerGate installs a gate consulted by [Loop.RunDue] before each timer
// fires: when it returns true the timer does not fire and is held (still
// pending: Cancel lets it go, and scheduling it again puts it back in the
// heap) until the gate's owner fires it with [Loop.FireHeld]. The
// simulator stops a paused client's timers this way, on a loop all
// clients share. The gate runs with the loop held; nil removes it.
func (l *Loop) SetTimerGate(gate func(t *Timer) (hold bool)) { l.gate = gate }

// FireHeld fires t, a timer the gate held, with the loop held; the caller
// ends the event (Leave runs its follow-up work and the event-end check).
// It reports false, and does nothing, when t is no longer held: cancelled
// or scheduled again since.
func (l *Loop) FireHeld(t *Timer) bool {
	if t.idx != held {
		return false
	}
	t.idx = -1
	t.due.Due()
	return true
}

// NextDeadline returns the earliest pending deadline, and false when no timer
// is pending.
func (l *Loop) NextDeadline() (time.Time, bool) {
	if len(l.heap) == 0 {
		return time.Time{}, false
	}
	return l.root.Add(time.Duration(l.heap[0].when)), true
}

// NextDeadlineNanos is [Loop.NextDeadline] as a stamp of [Loop.Nanos]:
// nanoseconds from the loop's root time.
func (l *Loop) NextDeadlineNanos() (int64, bool) {
	if len(l.heap) == 0 {
		return 0, false
	}
	return l.heap[0].when, true
}

// RunDue fires, in (deadline, sequence) order, every timer whose deadline is
// not after the clock's now, including timers that firing schedules for now.
// It returns how many fired.
func (l *Loop) RunDue() int {
	now := l.nanos()
	stamp := l.root.Add(time.Duration(now))
	n := 0
	for len(l.heap) > 0 && l.heap[0].when <= now {
		t := heap.Pop((*timerHeap)(&l.heap)).(*Timer)
		if l.gate != nil && l.gate(t) {
			t.idx = held
			continue
		}
		n++
		l.stamp, l.stamped = stamp, true // read above: the event needs no other
		t.due.Due()
		if len(l.deferred) > 0 {
			l.runDeferred()
		}
		if l.check != nil {
			l.check()
		}
		l.stamped = false
	}
	l.rearm = true
	return n
}

// arm points the one real timer at the earliest deadline.
func (l *Loop) arm() {
	l.rearm = false
	if l.halted {
		return
	}
	if len(l.heap) == 0 {
		if l.wake != nil && l.armed {
			l.wake.Stop()
		}
		l.armed = false
		return
	}
	next := l.heap[0].when
	if l.armed && next == l.wakeAt {
		return
	}
	d := time.Duration(next - l.nanos())
	if d <= 0 {
		// Already due. A mock clock would never fire a timer set in its
		// past, so run the due timers from a goroutine of our own.
		l.armed = false
		go l.onWake()
		return
	}
	l.wakeAt, l.armed = next, true
	if l.wake == nil {
		l.wake = l.clk.AfterFunc(d, l.onWake)
		return
	}
	l.wake.Reset(d)
}

func (l *Loop) onWake() {
	l.Enter()
	defer l.Leave()
	l.armed = false
	if !l.halted {
		l.RunDue()
	}
}

type timerHeap []*Timer

func (h timerHeap) Len() int { return len(h) }
func (h timerHeap) Less(i, j int) bool {
	if h[i].when != h[j].when {
		return h[i].when < h[j].when
	}
	// Sequence numbers wrap: the earlier is the one behind by less than
	// half the range. Two timers with the same deadline are never
	// scheduled two billion schedules apart while both pending.
	return int32(h[i].seq-h[j].seq) < 0
}
func (h timerHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].idx = int32(i)
	h[j].idx = int32(j)
}
func (h *timerHeap) Push(x any) {
	t := x.(*Timer)
	t.idx = int32(len(*h))
	*h = append(*h, t)
}
func (h *timerHeap) Pop() any {
	old := *h
	t := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	t.idx = -1
	return t
}

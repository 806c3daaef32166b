package fsm

import (
	"container/heap"
	"time"
)

// Timer is a deadline in the loop's heap. Embed one in the thing it belongs
// to and set its callback once with [Timer.Init]; scheduling and cancelling
// then allocate nothing. Timers with equal deadlines fire in the order they
// were scheduled.
type Timer struct {
	when time.Time
	seq  uint64
	idx  int // position in the heap, or -1
	fire func()
}

// Init sets the callback run, with the loop held, when the timer fires.
func (t *Timer) Init(fire func()) {
	t.fire = fire
	t.idx = -1
}

// Pending reports whether the timer is scheduled.
func (t *Timer) Pending() bool { return t.idx >= 0 }

// When is the deadline of a pending timer.
func (t *Timer) When() time.Time { return t.when }

// After schedules t to fire d from now on the loop's clock, replacing any
// earlier schedule of t.
func (l *Loop) After(t *Timer, d time.Duration) { l.At(t, l.Now().Add(d)) }

// At schedules t to fire at when, replacing any earlier schedule of t.
func (l *Loop) At(t *Timer, when time.Time) {
	if t.fire == nil {
		panic("fsm: timer scheduled before Init")
	}
	l.seq++
	t.when, t.seq = when, l.seq
	h := (*timerHeap)(&l.heap)
	if t.idx >= 0 {
		heap.Fix(h, t.idx)
	} else {
		heap.Push(h, t)
	}
	if l.wakeAt.IsZero() || when.Before(l.wakeAt) {
		l.rearm = true
	}
}

// Cancel unschedules t; it is a no-op for a timer that is not pending.
func (l *Loop) Cancel(t *Timer) {
	if t.idx >= 0 {
		heap.Remove((*timerHeap)(&l.heap), t.idx)
	}
}

// NextDeadline returns the earliest pending deadline, and false when no timer
// is pending.
func (l *Loop) NextDeadline() (time.Time, bool) {
	if len(l.heap) == 0 {
		return time.Time{}, false
	}
	return l.heap[0].when, true
}

// RunDue fires, in (deadline, sequence) order, every timer whose deadline is
// not after the clock's now, including timers that firing schedules for now.
// It returns how many fired.
func (l *Loop) RunDue() int {
	now := l.Now()
	n := 0
	for len(l.heap) > 0 && !l.heap[0].when.After(now) {
		t := heap.Pop((*timerHeap)(&l.heap)).(*Timer)
		n++
		l.stamp, l.stamped = now, true // read above: the event needs no other
		t.fire()
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
		if l.wake != nil && !l.wakeAt.IsZero() {
			l.wake.Stop()
		}
		l.wakeAt = time.Time{}
		return
	}
	next := l.heap[0].when
	if next.Equal(l.wakeAt) {
		return
	}
	d := next.Sub(l.Now())
	if d <= 0 {
		// Already due. A mock clock would never fire a timer set in its
		// past, so run the due timers from a goroutine of our own.
		l.wakeAt = time.Time{}
		go l.onWake()
		return
	}
	l.wakeAt = next
	if l.wake == nil {
		l.wake = l.clk.AfterFunc(d, l.onWake)
		return
	}
	l.wake.Reset(d)
}

func (l *Loop) onWake() {
	l.Enter()
	defer l.Leave()
	l.wakeAt = time.Time{}
	if !l.halted {
		l.RunDue()
	}
}

type timerHeap []*Timer

func (h timerHeap) Len() int { return len(h) }
func (h timerHeap) Less(i, j int) bool {
	if !h[i].when.Equal(h[j].when) {
		return h[i].when.Before(h[j].when)
	}
	return h[i].seq < h[j].seq
}
func (h timerHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].idx = i
	h[j].idx = j
}
func (h *timerHeap) Push(x any) {
	t := x.(*Timer)
	t.idx = len(*h)
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

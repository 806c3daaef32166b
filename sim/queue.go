package sim

// handler is something that happens at a virtual time: a claim arriving,
// a claim's release, an I/O completion, a fault.
type handler interface {
	run(s *Sim)
}

// handlerFunc adapts a function to handler, for rare events (faults).
type handlerFunc func(s *Sim)

func (f handlerFunc) run(s *Sim) { f(s) }

// event is one entry of the simulator's queue, ordered by (at, seq): events
// at the same time run in the order they were scheduled.
type event struct {
	at  int64 // nanoseconds since epoch
	seq uint64
	h   handler
}

// queue is a binary min-heap of events, written out to avoid
// container/heap's interface calls on the hot path.
type queue struct {
	ev  []event
	seq uint64
}

func (q *queue) len() int { return len(q.ev) }

func less(a, b *event) bool {
	if a.at != b.at {
		return a.at < b.at
	}
	return a.seq < b.seq
}

func (q *queue) push(at int64, h handler) {
	q.seq++
	q.ev = append(q.ev, event{at: at, seq: q.seq, h: h})
	i := len(q.ev) - 1
	for i > 0 {
		p := (i - 1) / 2
		if !less(&q.ev[i], &q.ev[p]) {
			break
		}
		q.ev[i], q.ev[p] = q.ev[p], q.ev[i]
		i = p
	}
}

// peek returns the earliest event's time; the queue must not be empty.
func (q *queue) peek() int64 { return q.ev[0].at }

func (q *queue) pop() event {
	top := q.ev[0]
	n := len(q.ev) - 1
	q.ev[0] = q.ev[n]
	q.ev[n] = event{}
	q.ev = q.ev[:n]
	i := 0
	for {
		l := 2*i + 1
		if l >= n {
			break
		}
		m := l
		if r := l + 1; r < n && less(&q.ev[r], &q.ev[l]) {
			m = r
		}
		if !less(&q.ev[m], &q.ev[i]) {
			break
		}
		q.ev[i], q.ev[m] = q.ev[m], q.ev[i]
		i = m
	}
	return top
}

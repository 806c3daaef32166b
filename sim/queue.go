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

// queue is a 4-ary min-heap of events, written out to avoid
// container/heap's interface calls on the hot path. Its entries hold no
// pointer (a handler is kept in a slab, by index), so that moving them
// costs no write barrier and the collector has nothing in them to scan;
// four children a node make the heap half as deep as a binary one.
type queue struct {
	ev   []entry
	seq  uint64
	hs   []handler // by entry.h
	free []int32   // unused indexes of hs
}

// entry is an event in the heap, its handler in queue.hs.
type entry struct {
	at  int64
	seq uint64
	h   int32
}

func (q *queue) len() int { return len(q.ev) }

func less(a, b *event) bool {
	if a.at != b.at {
		return a.at < b.at
	}
	return a.seq < b.seq
}

func (e *entry) before(o *entry) bool {
	return e.at < o.at || e.at == o.at && e.seq < o.seq
}

func (q *queue) push(at int64, h handler) {
	q.seq++
	var hi int32
	if n := len(q.free); n > 0 {
		hi = q.free[n-1]
		q.free = q.free[:n-1]
		q.hs[hi] = h
	} else {
		hi = int32(len(q.hs))
		q.hs = append(q.hs, h)
	}
	e := entry{at: at, seq: q.seq, h: hi}
	q.ev = append(q.ev, e)
	i := len(q.ev) - 1
	for i > 0 {
		p := (i - 1) / 4
		if !e.before(&q.ev[p]) {
			break
		}
		q.ev[i] = q.ev[p]
		i = p
	}
	q.ev[i] = e
}

// peek returns the earliest event's time; the queue must not be empty.
func (q *queue) peek() int64 { return q.ev[0].at }

func (q *queue) pop() event {
	top := q.ev[0]
	n := len(q.ev) - 1
	e := q.ev[n]
	q.ev = q.ev[:n]
	if n > 0 {
		i := 0
		for {
			c := 4*i + 1
			if c >= n {
				break
			}
			m := c
			for j := c + 1; j < min(c+4, n); j++ {
				if q.ev[j].before(&q.ev[m]) {
					m = j
				}
			}
			if !q.ev[m].before(&e) {
				break
			}
			q.ev[i] = q.ev[m]
			i = m
		}
		q.ev[i] = e
	}
	h := q.hs[top.h]
	q.hs[top.h] = nil
	q.free = append(q.free, top.h)
	return event{at: top.at, seq: top.seq, h: h}
}
